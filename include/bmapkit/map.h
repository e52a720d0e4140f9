/* SPDX-License-Identifier: MIT */
#ifndef BMAPKIT_MAP_H
#define BMAPKIT_MAP_H

#include <stdint.h>

#include "bmapkit/api.h"
#include "bmapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the data areas of a file are found. */
enum bk_map_method {
    BK_MAP_AUTO = 0, /* FIEMAP, falling back to SEEK_DATA/SEEK_HOLE where unsupported */
    BK_MAP_FIEMAP,
    BK_MAP_SEEK,
};

/* Name of METHOD for messages ("fiemap", "seek"). */
BK_API const char *bk_map_method_name(enum bk_map_method method);

/*
 * Called for each data area [START, END) in bytes, in ascending order, never beyond
 * the file size. Areas may touch; preallocated (unwritten) extents are reported as
 * data. Returns 0 to go on, or -1 with ERR filled to stop.
 */
typedef int (*bk_map_extent_fn)(void *ctx, uint64_t start, uint64_t end, struct bk_error *err);

/*
 * Report the data areas of the first SIZE bytes of the open file FD (NAME for
 * messages). With BK_MAP_FIEMAP the kernel is asked to write dirty pages back first so
 * the extent list is complete. *USED receives the method that did the work (may be
 * NULL). Returns 0, or -1 with ERR filled; a method the file system does not support
 * fails with code BK_E_UNSUPPORTED.
 */
BK_API int bk_map_file(int fd, const char *name, uint64_t size, enum bk_map_method method,
                       enum bk_map_method *used, bk_map_extent_fn fn, void *ctx,
                       struct bk_error *err);

/* The FIEMAP walk alone (see bk_map_file). */
BK_API int bk_map_fiemap(int fd, const char *name, uint64_t size, bk_map_extent_fn fn, void *ctx,
                         struct bk_error *err);

/* The SEEK_DATA/SEEK_HOLE walk alone (see bk_map_file). */
BK_API int bk_map_seek(int fd, const char *name, uint64_t size, bk_map_extent_fn fn, void *ctx,
                       struct bk_error *err);

#ifdef __cplusplus
}
#endif

#endif
