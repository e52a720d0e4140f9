/* SPDX-License-Identifier: MIT */
/* Descriptor-backed destinations: writing, reading back past the cache, flushing. */
#include "dest/fd_dest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int fd_dest_attach(struct bk_dest *d, int fd, struct bk_error *err)
{
    struct fd_dest *f = calloc(1, sizeof *f);
    if (!f) {
        if (fd >= 0)
            close(fd);
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    f->fd = fd;
    f->direct = f->cached = -1;
    d->priv = f;
    return 0;
}

/* Open the file behind D's descriptor once more: the same inode, whatever its path now. */
static int reopen(const struct bk_dest *d, int flags)
{
    const struct fd_dest *f = d->priv;
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", f->fd);
    int fd = open(self, flags | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) /* no /proc */
        fd = open(d->name, flags | O_CLOEXEC);
    return fd;
}

void fd_dest_open_direct(struct bk_dest *d)
{
    struct fd_dest *f = d->priv;
    f->direct = reopen(d, O_RDONLY | O_DIRECT);
    if (f->direct >= 0)
        d->caps |= BK_DEST_DIRECT_IO;
}

int fd_dest_write(struct bk_dest *d, const void *buf, size_t len, uint64_t offset,
                  struct bk_error *err)
{
    struct fd_dest *f = d->priv;
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(f->fd, p, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return bk_error_set(err, BK_E_IO, errno, "%s: write failed at byte %" PRIu64, d->name,
                                offset);
        }
        if (n == 0)
            return bk_error_set(err, BK_E_IO, ENOSPC, "%s: write failed at byte %" PRIu64, d->name,
                                offset);
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

static bool aligned(const void *buf, size_t len, uint64_t offset)
{
    return (uintptr_t)buf % FD_DEST_ALIGN == 0 && len % FD_DEST_ALIGN == 0 &&
           offset % FD_DEST_ALIGN == 0;
}

/* The descriptor a read of BUF, LEN, OFFSET goes through, or -1 with ERR filled. */
static int reader_for(struct bk_dest *d, const void *buf, size_t len, uint64_t offset,
                      struct bk_error *err)
{
    struct fd_dest *f = d->priv;
    if (f->direct >= 0 && aligned(buf, len, offset))
        return f->direct;
    if (f->cached < 0) {
        f->cached = reopen(d, O_RDONLY);
        if (f->cached < 0)
            return bk_error_set(err, BK_E_IO, errno, "cannot open %s to read it back", d->name);
    }
    /* No O_DIRECT for this read: at least drop what the page cache holds of it, so the
       bytes come from the medium (the kernel keeps dirty pages until written back). */
    (void)posix_fadvise(f->cached, (off_t)offset, (off_t)len, POSIX_FADV_DONTNEED);
    return f->cached;
}

int fd_dest_read(struct bk_dest *d, void *buf, size_t len, uint64_t offset, size_t *got,
                 struct bk_error *err)
{
    int fd = reader_for(d, buf, len, offset, err);
    if (fd < 0)
        return -1;
    for (;;) {
        ssize_t n = pread(fd, buf, len, (off_t)offset);
        if (n >= 0) {
            *got = (size_t)n;
            return 0;
        }
        if (errno != EINTR)
            return bk_error_set(err, BK_E_IO, errno, "%s: read-back failed at byte %" PRIu64,
                                d->name, offset);
    }
}

int fd_dest_flush(struct bk_dest *d, struct bk_error *err)
{
    struct fd_dest *f = d->priv;
    while (fdatasync(f->fd) < 0)
        if (errno != EINTR)
            return bk_error_set(err, BK_E_IO, errno, "%s: flushing written data failed", d->name);
    return 0;
}

void fd_dest_close(struct bk_dest *d)
{
    struct fd_dest *f = d->priv;
    bk_tuning_restore(&f->tuning);
    int fds[3] = {f->fd, f->direct, f->cached};
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(f->disk);
    free(f->sysroot);
    free(f);
}
