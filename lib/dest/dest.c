/* SPDX-License-Identifier: MIT */
/* Destinations: the safety checks before anything is opened for writing, and the I/O. */
#include "bmapkit/dest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dest/dest_impl.h"

/* A path that names a device node directory: there a missing node is a typo, not a file. */
static bool in_device_directory(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return false;
    char dir[PATH_MAX];
    bool dev = false;
    if (realpath(dirname(copy), dir)) {
        dev = (strcmp(dir, "/dev") == 0 || strncmp(dir, "/dev/", 5) == 0) &&
              strcmp(dir, "/dev/shm") != 0 && strncmp(dir, "/dev/shm/", 9) != 0;
    }
    free(copy);
    return dev;
}

static struct bk_dest *dest_new(const char *path, const struct bk_dest_options *o,
                                struct bk_error *err)
{
    struct bk_dest *d = calloc(1, sizeof *d);
    if (d) {
        d->fd = -1;
        d->path = strdup(path);
        d->sysroot = o->sysroot ? strdup(o->sysroot) : NULL;
        d->warn = o->warn;
        d->warn_ctx = o->warn_ctx;
    }
    if (!d || !d->path || (o->sysroot && !d->sysroot)) {
        bk_dest_close(d);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    return d;
}

static int open_file(struct bk_dest *d, uint64_t image_size, struct bk_error *err)
{
    d->kind = BK_DEST_FILE;
    d->fd = open(d->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (d->fd < 0)
        return bk_error_set(err, BK_E_IO, errno, "cannot create destination %s", d->path);
    /* Sizing the file first leaves every block we do not write as a hole. */
    if (ftruncate(d->fd, (off_t)image_size) < 0)
        return bk_error_set(err, BK_E_IO, errno, "cannot set the size of %s to %" PRIu64, d->path,
                            image_size);
    d->size = image_size;
    return 0;
}

struct bk_dest *bk_dest_open(const char *path, uint64_t image_size,
                             const struct bk_dest_options *opts, struct bk_error *err)
{
    struct bk_dest_options none = {0};
    const struct bk_dest_options *o = opts ? opts : &none;
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (!exists && errno != ENOENT) {
        bk_error_set(err, BK_E_IO, errno, "cannot access destination %s", path);
        return NULL;
    }
    if (!exists && in_device_directory(path)) {
        bk_error_set(err, BK_E_REFUSED, 0,
                     "destination %s does not exist; refusing to create a regular file in a "
                     "device directory (is the device plugged in, is the name right?)",
                     path);
        return NULL;
    }
    if (o->removable_only && (!exists || !S_ISBLK(st.st_mode))) {
        bk_error_set(err, BK_E_REFUSED, 0,
                     "destination %s is not a block device, but --removable-device was given",
                     path);
        return NULL;
    }

    struct bk_dest *d = dest_new(path, o, err);
    if (!d)
        return NULL;
    int rc;
    if (exists && S_ISBLK(st.st_mode)) {
        rc = bk_dest_open_blockdev(d, &st, image_size, o, err);
    } else if (exists && S_ISCHR(st.st_mode)) {
        d->kind = BK_DEST_CHARDEV;
        d->size = UINT64_MAX;
        d->fd = open(path, O_WRONLY | O_CLOEXEC);
        rc = d->fd < 0 ? bk_error_set(err, BK_E_IO, errno, "cannot open %s", path) : 0;
    } else if (exists && S_ISDIR(st.st_mode)) {
        rc = bk_error_set(err, BK_E_INVALID, 0, "destination %s is a directory", path);
    } else if (exists && !S_ISREG(st.st_mode)) {
        rc = bk_error_set(err, BK_E_INVALID, 0, "destination %s is neither a file nor a device",
                          path);
    } else {
        rc = open_file(d, image_size, err);
    }
    if (rc < 0) {
        bk_dest_close(d);
        return NULL;
    }
    return d;
}

int bk_dest_write(struct bk_dest *d, const void *buf, size_t len, uint64_t offset,
                  struct bk_error *err)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(d->fd, p, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return bk_error_set(err, BK_E_IO, errno, "%s: write failed at byte %" PRIu64, d->path,
                                offset);
        }
        if (n == 0)
            return bk_error_set(err, BK_E_IO, ENOSPC, "%s: write failed at byte %" PRIu64, d->path,
                                offset);
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

int bk_dest_flush(struct bk_dest *d, struct bk_error *err)
{
    if (d->kind == BK_DEST_CHARDEV)
        return 0;
    if (fdatasync(d->fd) < 0)
        return bk_error_set(err, BK_E_IO, errno, "%s: flushing written data failed", d->path);
    return 0;
}

void bk_dest_close(struct bk_dest *d)
{
    if (!d)
        return;
    bk_dest_restore_tuning(d);
    if (d->fd >= 0)
        close(d->fd);
    free(d->path);
    free(d->disk);
    free(d->sysroot);
    free(d);
}
