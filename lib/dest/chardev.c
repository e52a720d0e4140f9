/* SPDX-License-Identifier: MIT */
/* Character devices (/dev/null, a tape, a serial line): written as they are. */
#include "dest/fd_dest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

/* Nothing to make durable: a character device has no cache of ours to flush. */
static int chardev_flush(struct bk_dest *d, struct bk_error *err)
{
    (void)d;
    (void)err;
    return 0;
}

static const struct bk_dest_ops chardev_ops = {
    .kind = "character device",
    .write = fd_dest_write,
    .flush = chardev_flush,
    .close = fd_dest_close,
};

struct bk_dest *bk_dest_open_chardev(const char *path, struct bk_error *err)
{
    struct bk_dest *d = bk_dest_new(&chardev_ops, path, err);
    if (!d)
        return NULL;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        bk_error_set(err, BK_E_IO, errno, "cannot open %s", path);
        bk_dest_close(d);
        return NULL;
    }
    if (fd_dest_attach(d, fd, err) < 0) {
        bk_dest_close(d);
        return NULL;
    }
    d->size = UINT64_MAX;
    return d;
}
