/* SPDX-License-Identifier: MIT */
/* Creating the bmap of an image file. */
#ifndef BMAPKIT_CREATE_H
#define BMAPKIT_CREATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bmapkit/api.h"
#include "bmapkit/bmap.h"
#include "bmapkit/map.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Options of bk_create_bmap. Start from bk_create_options_init: struct_size tells the
 * library which fields the caller knows, so fields can be added at the end later.
 */
struct bk_create_options {
    size_t struct_size;
    enum bk_hash hash;         /* range and file checksum algorithm; 0 means sha256 */
    bool no_checksum;          /* leave out the per-range checksums */
    bool detect_zeros;         /* drop mapped blocks that hold only zero bytes */
    unsigned threads;          /* hashing threads; 0 means one per online CPU */
    enum bk_map_method method; /* BK_MAP_AUTO unless testing a fallback */
    bk_progress_fn progress;   /* may be NULL; called on the caller's thread */
    void *progress_ctx;
    bk_cancel_fn cancel; /* may be NULL */
    void *cancel_ctx;
};

/* Set O to the defaults: all zero, padding included, and its size. */
static inline void bk_create_options_init(struct bk_create_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
}

/* What create found out, for the caller's messages. */
struct bk_create_info {
    size_t struct_size;        /* set by the caller to sizeof(struct bk_create_info) */
    enum bk_map_method method; /* how the map was obtained */
    uint64_t mapped_bytes;     /* bytes covered by the ranges */
    uint64_t zero_blocks;      /* blocks dropped by detect_zeros */
    unsigned threads;          /* hashing threads used */
};

/*
 * Build the block map of the image file at PATH. The block size is the file system's.
 * A block holding any data is mapped; ranges are maximal. Range checksums are computed
 * on several threads, each range hashed in order, with memory bounded by threads x
 * buffer size. OPTS may be NULL for the defaults; INFO may be NULL, else the library
 * fills as much of it as its struct_size covers. Returns the map (free it with
 * bk_bmap_free), or NULL with ERR filled.
 */
BK_API struct bk_bmap *bk_create_bmap(const char *path, const struct bk_create_options *opts,
                                      struct bk_create_info *info, struct bk_error *err);

#ifdef __cplusplus
}
#endif

#endif
