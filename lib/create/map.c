/* SPDX-License-Identifier: MIT */
#include "bmapkit/map.h"

const char *bk_map_method_name(enum bk_map_method method)
{
    switch (method) {
    case BK_MAP_FIEMAP:
        return "fiemap";
    case BK_MAP_SEEK:
        return "seek";
    case BK_MAP_AUTO:
        break;
    }
    return "auto";
}

int bk_map_file(int fd, const char *name, uint64_t size, enum bk_map_method method,
                enum bk_map_method *used, bk_map_extent_fn fn, void *ctx, struct bk_error *err)
{
    if (method != BK_MAP_SEEK) {
        if (used)
            *used = BK_MAP_FIEMAP;
        int rc = bk_map_fiemap(fd, name, size, fn, ctx, err);
        if (rc == 0 || method == BK_MAP_FIEMAP || !err || err->code != BK_E_UNSUPPORTED)
            return rc;
        /* FIEMAP fails before reporting anything when unsupported, so no area repeats. */
        bk_error_clear(err);
    }
    if (used)
        *used = BK_MAP_SEEK;
    return bk_map_seek(fd, name, size, fn, ctx, err);
}
