/* SPDX-License-Identifier: MIT */
#include "bmapkit/map.h"

#include <errno.h>
#include <inttypes.h>
#include <unistd.h>

int bk_map_seek(int fd, const char *name, uint64_t size, bk_map_extent_fn fn, void *ctx,
                struct bk_error *err)
{
    uint64_t pos = 0;
    while (pos < size) {
        off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO) /* no data after pos */
                return 0;
            if (errno == EINVAL && pos == 0)
                return bk_error_set(err, BK_E_UNSUPPORTED, errno, "%s: SEEK_DATA is not supported",
                                    name);
            return bk_error_set(err, BK_E_IO, errno, "%s: SEEK_DATA failed at byte %" PRIu64, name,
                                pos);
        }
        if ((uint64_t)data >= size)
            return 0;
        off_t hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0)
            return bk_error_set(err, BK_E_IO, errno, "%s: SEEK_HOLE failed at byte %" PRIu64, name,
                                (uint64_t)data);
        uint64_t end = (uint64_t)hole < size ? (uint64_t)hole : size;
        if (fn(ctx, (uint64_t)data, end, err) < 0)
            return -1;
        pos = end;
    }
    return 0;
}
