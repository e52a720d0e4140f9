/* SPDX-License-Identifier: MIT */
/* Block device destinations: identity, in-use checks, capacity, and I/O tuning. */
#include "bmapkit/disk.h"
#include "dest/dest_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/fs.h>

static void warn(struct bk_dest *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(struct bk_dest *d, const char *fmt, ...)
{
    if (!d->warn)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    d->warn(d->warn_ctx, msg);
}

int bk_dest_open_blockdev(struct bk_dest *d, const struct stat *st, uint64_t image_size,
                          const struct bk_dest_options *o, struct bk_error *err)
{
    d->kind = BK_DEST_BLOCKDEV;
    char disk[256];
    bool is_partition = false;
    if (bk_disk_of_dev(o->sysroot, st->st_rdev, disk, sizeof disk, &is_partition, err) < 0)
        return bk_error_prefix(err, "destination %s", d->path);
    d->disk = strdup(disk);
    if (!d->disk)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");

    if (o->removable_only) {
        char removable[16] = "";
        if (is_partition)
            return bk_error_set(err, BK_E_REFUSED, 0,
                                "destination %s is a partition of %s, but --removable-device "
                                "accepts only a whole disk",
                                d->path, disk);
        if (bk_disk_read_attr(o->sysroot, disk, "removable", removable, sizeof removable) < 0 ||
            strcmp(removable, "1") != 0)
            return bk_error_set(err, BK_E_REFUSED, 0,
                                "destination %s (%s) is not a removable disk, but "
                                "--removable-device was given",
                                d->path, disk);
    }

    struct bk_disk_usage usage;
    if (bk_disk_usage(o->sysroot, disk, &usage, err) < 0)
        return bk_error_prefix(err, "destination %s", d->path);
    if ((usage.mounted || usage.swap || usage.holders) && !o->force)
        return bk_error_set(err, BK_E_REFUSED, 0,
                            "refusing to write to %s: %s (stop using it first, or use --force "
                            "if you really mean to overwrite it)",
                            d->path, usage.what);

    /* O_EXCL on a block device fails while the kernel has it claimed (mounted, ...). */
    d->fd = open(d->path, O_WRONLY | O_EXCL | O_CLOEXEC);
    if (d->fd < 0) {
        if (errno == EBUSY)
            return bk_error_set(err, BK_E_REFUSED, errno,
                                "cannot open %s exclusively: it is mounted or in use", d->path);
        return bk_error_set(err, BK_E_IO, errno, "cannot open destination %s", d->path);
    }
    uint64_t size = 0;
    if (ioctl(d->fd, BLKGETSIZE64, &size) < 0)
        return bk_error_set(err, BK_E_IO, errno, "cannot get the size of %s", d->path);
    d->size = size;
    if (size < image_size)
        return bk_error_set(err, BK_E_REFUSED, 0,
                            "destination %s is too small: %" PRIu64
                            " bytes, the image needs %" PRIu64 "; nothing was written",
                            d->path, size, image_size);
    return 0;
}

static char *sysfs_path(const struct bk_dest *d, const char *attr)
{
    char *p = NULL;
    if (asprintf(&p, "%s/sys/class/block/%s/%s", d->sysroot ? d->sysroot : "", d->disk, attr) < 0)
        return NULL;
    return p;
}

static int write_attr(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, value, strlen(value));
    int e = errno;
    close(fd);
    errno = e;
    return n < 0 ? -1 : 0;
}

/* Set sysfs attribute ATTR to VALUE; remember the old value in *SAVED. */
static void tune_attr(struct bk_dest *d, const char *attr, const char *value, char **saved)
{
    char *path = sysfs_path(d, attr);
    char old[256];
    if (!path)
        return;
    if (bk_disk_read_attr(d->sysroot, d->disk, attr, old, sizeof old) < 0) {
        free(path);
        return;
    }
    /* The scheduler list marks the active one in brackets: "mq-deadline [none]". */
    char *open_br = strchr(old, '['), *close_br = open_br ? strchr(open_br, ']') : NULL;
    const char *current = old;
    if (open_br && close_br) {
        *close_br = '\0';
        current = open_br + 1;
    }
    if (strcmp(current, value) == 0) {
        free(path);
        return;
    }
    if (write_attr(path, value) < 0) {
        warn(d, "cannot set %s of %s to %s: %s", attr, d->disk, value, strerror(errno));
    } else {
        *saved = strdup(current);
    }
    free(path);
}

void bk_dest_tune(struct bk_dest *d)
{
    if (d->kind != BK_DEST_BLOCKDEV || !d->disk)
        return;
    /* Keep the page cache from filling with dirty pages of a slow USB disk, and let the
       requests go out in our (ascending) order. */
    tune_attr(d, "bdi/max_ratio", "1", &d->saved_max_ratio);
    tune_attr(d, "queue/scheduler", "none", &d->saved_scheduler);
}

void bk_dest_restore_tuning(struct bk_dest *d)
{
    char *saved[2] = {d->saved_max_ratio, d->saved_scheduler};
    const char *attrs[2] = {"bdi/max_ratio", "queue/scheduler"};
    for (int i = 0; i < 2; i++) {
        if (!saved[i])
            continue;
        char *path = sysfs_path(d, attrs[i]);
        if (!path || write_attr(path, saved[i]) < 0)
            warn(d, "cannot restore %s of %s to %s", attrs[i], d->disk, saved[i]);
        free(path);
        free(saved[i]);
    }
    d->saved_max_ratio = d->saved_scheduler = NULL;
}
