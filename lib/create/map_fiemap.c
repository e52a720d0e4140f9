/* SPDX-License-Identifier: MIT */
#include "bmapkit/map.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/fiemap.h>
#include <linux/fs.h>

#define EXTENTS_PER_CALL 512

int bk_map_fiemap(int fd, const char *name, uint64_t size, bk_map_extent_fn fn, void *ctx,
                  struct bk_error *err)
{
    size_t bytes = sizeof(struct fiemap) + EXTENTS_PER_CALL * sizeof(struct fiemap_extent);
    struct fiemap *fm = malloc(bytes);
    if (!fm)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");

    int rc = 0;
    uint64_t pos = 0;
    bool first_call = true;
    while (pos < size) {
        memset(fm, 0, sizeof *fm);
        fm->fm_start = pos;
        fm->fm_length = size - pos;
        /* Sync once, so delayed allocations show up as real extents. */
        fm->fm_flags = first_call ? FIEMAP_FLAG_SYNC : 0;
        fm->fm_extent_count = EXTENTS_PER_CALL;
        if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
            int e = errno;
            if (first_call && (e == EOPNOTSUPP || e == ENOTTY || e == EINVAL))
                rc = bk_error_set(err, BK_E_UNSUPPORTED, e, "%s: FIEMAP is not supported", name);
            else
                rc = bk_error_set(err, BK_E_IO, e, "%s: FIEMAP failed at byte %" PRIu64, name, pos);
            break;
        }
        first_call = false;
        if (fm->fm_mapped_extents == 0)
            break;

        bool last = false;
        for (uint32_t i = 0; i < fm->fm_mapped_extents; i++) {
            const struct fiemap_extent *x = &fm->fm_extents[i];
            uint64_t start = x->fe_logical;
            uint64_t end = x->fe_logical + x->fe_length;
            if (x->fe_flags & FIEMAP_EXTENT_LAST)
                last = true;
            if (end > size)
                end = size;
            if (start < pos)
                start = pos;
            if (start < end && (rc = fn(ctx, start, end, err)) < 0)
                break;
            if (end > pos)
                pos = end;
        }
        if (rc < 0 || last)
            break;
    }
    free(fm);
    return rc;
}
