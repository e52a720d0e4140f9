/* SPDX-License-Identifier: MIT */
/*
 * Holes in files and blocks a disk may unmap. On a regular file a punched hole reads as
 * zeros and frees its blocks. On a block device the same call asks the kernel for
 * write-zeroes with unmapping allowed: it fails rather than discard blocks whose content
 * would then be undefined, which BLKDISCARD does not promise.
 */
#include "dest/fd_dest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>

#include <linux/falloc.h>

int fd_dest_punch(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err)
{
    const struct fd_dest *f = d->priv;
    for (;;) {
        if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
                      (off_t)len) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        /* No way to promise zeros here (no write-zeroes, a file system without holes,
           a range the device cannot take): the caller zeroes another way. */
        bool unsupported =
            errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL || errno == ENOTTY;
        return bk_error_set(err, unsupported ? BK_E_UNSUPPORTED : BK_E_IO, errno,
                            "%s: punching a hole of %" PRIu64 " bytes at byte %" PRIu64 " failed",
                            d->name, len, offset);
    }
}
