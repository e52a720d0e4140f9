/* SPDX-License-Identifier: MIT */
/* Regular files: created or truncated, sized to the image, unwritten blocks left as holes. */
#include "dest/fd_dest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>

static int file_set_size(struct bk_dest *d, uint64_t size, struct bk_error *err)
{
    struct fd_dest *f = d->priv;
    if (ftruncate(f->fd, (off_t)size) < 0)
        return bk_error_set(err, BK_E_IO, errno, "cannot set the size of %s to %" PRIu64, d->name,
                            size);
    d->size = size;
    return 0;
}

static const struct bk_dest_ops file_ops = {
    .kind = "file",
    .write = fd_dest_write,
    .read = fd_dest_read,
    .flush = fd_dest_flush,
    .set_size = file_set_size,
    .close = fd_dest_close,
    .punch = fd_dest_punch,
};

struct bk_dest *bk_dest_open_file(const char *path, uint64_t image_size, bool keep_content,
                                  struct bk_error *err)
{
    struct bk_dest *d = bk_dest_new(&file_ops, path, err);
    if (!d)
        return NULL;
    int fd = open(path, O_WRONLY | O_CREAT | (keep_content ? 0 : O_TRUNC) | O_CLOEXEC, 0666);
    if (fd < 0) {
        bk_error_set(err, BK_E_IO, errno, "cannot create destination %s", path);
        bk_dest_close(d);
        return NULL;
    }
    if (fd_dest_attach(d, fd, err) < 0) {
        bk_dest_close(d);
        return NULL;
    }
    d->caps = BK_DEST_CAN_READ | BK_DEST_SIZED_BY_IMAGE;
    /* Sizing the file first leaves every block we do not write as a hole. */
    if (file_set_size(d, image_size, err) < 0) {
        bk_dest_close(d);
        return NULL;
    }
    fd_dest_open_direct(d);
    return d;
}
