/* SPDX-License-Identifier: MIT */
/* Block devices: identity, in-use checks, capacity, I/O tuning, discard and zero-out. */
#include "dest/fd_dest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int blockdev_zero(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err)
{
    const struct fd_dest *f = d->priv;
    /* The ioctl takes whole 512-byte sectors; anything else is written as zeros. */
    if (offset % 512 || len % 512)
        return bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: zeroing a partial sector", d->name);
    return bk_blockdev_zeroout(f->fd, d->name, offset, len, err);
}

static int blockdev_discard(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err)
{
    const struct fd_dest *f = d->priv;
    return bk_blockdev_discard(f->fd, d->name, offset, len, err);
}

static void blockdev_start_writeback(struct bk_dest *d)
{
    const struct fd_dest *f = d->priv;
    sync_file_range(f->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

static const struct bk_dest_ops blockdev_ops = {
    .kind = "block device",
    .write = fd_dest_write,
    .read = fd_dest_read,
    .flush = fd_dest_flush,
    .zero = blockdev_zero,
    .discard = blockdev_discard,
    .start_writeback = blockdev_start_writeback,
    .close = fd_dest_close,
    .punch = fd_dest_punch,
};

/* A whole disk with its removable flag set, when only such a disk may be written. */
static int check_removable(const char *path, const char *disk, bool is_partition,
                           const struct bk_dest_options *o, struct bk_error *err)
{
    char removable[16] = "";
    if (is_partition)
        return bk_error_set(err, BK_E_NOT_REMOVABLE, 0,
                            "destination %s is a partition of %s, not a whole removable disk", path,
                            disk);
    if (bk_disk_read_attr(o->sysroot, disk, "removable", removable, sizeof removable) < 0 ||
        strcmp(removable, "1") != 0)
        return bk_error_set(err, BK_E_NOT_REMOVABLE, 0,
                            "destination %s (%s) is not a removable disk", path, disk);
    return 0;
}

/* The checks that need no descriptor: which disk, removable, in use. */
static int check_disk(struct bk_dest *d, dev_t rdev, const struct bk_dest_options *o,
                      struct bk_error *err)
{
    struct fd_dest *f = d->priv;
    char disk[256];
    bool is_partition = false;
    if (bk_disk_of_dev(o->sysroot, rdev, disk, sizeof disk, &is_partition, err) < 0)
        return bk_error_prefix(err, "destination %s", d->name);
    f->disk = strdup(disk);
    f->sysroot = o->sysroot ? strdup(o->sysroot) : NULL;
    if (!f->disk || (o->sysroot && !f->sysroot))
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    if (o->removable_only && check_removable(d->name, disk, is_partition, o, err) < 0)
        return -1;
    struct bk_disk_usage usage;
    if (bk_disk_usage(o->sysroot, disk, &usage, err) < 0)
        return bk_error_prefix(err, "destination %s", d->name);
    /* No option overrides this one: it is the system this very process runs on. */
    if (usage.holds_root)
        return bk_error_set(err, BK_E_REFUSED, 0, "refusing to write to %s: %s", d->name,
                            usage.what);
    if ((usage.mounted || usage.swap || usage.holders) && !o->force)
        return bk_error_set(err, BK_E_IN_USE, 0, "refusing to write to %s: %s", d->name,
                            usage.what);
    dev_t root;
    if (o->warn && bk_root_device(o->sysroot, &root) < 0)
        o->warn(o->warn_ctx, "cannot tell which disk holds the running system (the root "
                             "directory is on no block device visible here, as in a "
                             "container); only the exclusive open guards it");
    return 0;
}

/* O_EXCL on a block device fails while the kernel has it claimed (mounted, ...). */
static int open_exclusive(struct bk_dest *d, uint64_t image_size, struct bk_error *err)
{
    struct fd_dest *f = d->priv;
    f->fd = open(d->name, O_WRONLY | O_EXCL | O_CLOEXEC);
    if (f->fd < 0) {
        /* Claimed by the kernel: no option can override that. */
        if (errno == EBUSY)
            return bk_error_set(err, BK_E_REFUSED, errno,
                                "cannot open %s exclusively: it is mounted or in use", d->name);
        return bk_error_set(err, BK_E_IO, errno, "cannot open destination %s", d->name);
    }
    if (bk_blockdev_size(f->fd, d->name, &d->size, err) < 0)
        return -1;
    if (d->size < image_size)
        return bk_error_set(err, BK_E_REFUSED, 0,
                            "destination %s is too small: %" PRIu64
                            " bytes, the image needs %" PRIu64 "; nothing was written",
                            d->name, d->size, image_size);
    return 0;
}

struct bk_dest *bk_dest_open_blockdev(const char *path, dev_t rdev, uint64_t image_size,
                                      const struct bk_dest_options *o, struct bk_error *err)
{
    struct bk_dest *d = bk_dest_new(&blockdev_ops, path, err);
    if (!d)
        return NULL;
    /* The descriptor is opened after the checks: -1 until then. */
    /* Who uses the disk first (the familiar message), then the copy's own inputs. */
    struct stat st = {.st_mode = S_IFBLK, .st_rdev = rdev};
    if (fd_dest_attach(d, -1, err) < 0 || check_disk(d, rdev, o, err) < 0 ||
        bk_dest_check_inputs(path, &st, o, err) < 0 || open_exclusive(d, image_size, err) < 0) {
        bk_dest_close(d);
        return NULL;
    }
    struct fd_dest *f = d->priv;
    d->caps = BK_DEST_CAN_READ | BK_DEST_IS_DISK | BK_DEST_CAN_ZERO;
    if (bk_blockdev_can_discard(o->sysroot, f->disk))
        d->caps |= BK_DEST_CAN_DISCARD;
    if (bk_blockdev_discard_zeroes(o->sysroot, f->disk))
        d->caps |= BK_DEST_DISCARD_ZEROES;
    d->logical_block = bk_blockdev_logical_block(f->fd);
    fd_dest_open_direct(d);
    if (!o->no_tune && bk_tuning_apply(&f->tuning, o->sysroot, f->disk, o->warn, o->warn_ctx) < 0) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        bk_dest_close(d);
        return NULL;
    }
    return d;
}
