/* SPDX-License-Identifier: MIT */
#ifndef BMAPKIT_CREATE_H
#define BMAPKIT_CREATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bmapkit/bmap.h"
#include "bmapkit/map.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Progress report: DONE of TOTAL bytes processed. Called on the caller's thread. */
typedef void (*bk_progress_fn)(void *ctx, uint64_t done, uint64_t total);

struct bk_create_options {
    enum bk_hash hash;         /* range and file checksum algorithm; 0 means sha256 */
    bool no_checksum;          /* leave out the per-range checksums */
    bool detect_zeros;         /* drop mapped blocks that hold only zero bytes */
    unsigned threads;          /* hashing threads; 0 means one per online CPU */
    enum bk_map_method method; /* BK_MAP_AUTO unless testing a fallback */
    bk_progress_fn progress;   /* may be NULL */
    void *progress_ctx;
    const atomic_int *cancel; /* when non-NULL and set, stop with BK_E_CANCELLED */
};

/* What create found out, for the caller's messages. */
struct bk_create_info {
    enum bk_map_method method; /* how the map was obtained */
    uint64_t mapped_bytes;     /* bytes covered by the ranges */
    uint64_t zero_blocks;      /* blocks dropped by detect_zeros */
    unsigned threads;          /* hashing threads used */
};

/*
 * Build the block map of the image file at PATH into BMAP (initialised by this call).
 * The block size is the file system's. A block holding any data is mapped; ranges are
 * maximal. Range checksums are computed on several threads, each range hashed in order,
 * with memory bounded by threads x buffer size. INFO may be NULL.
 * Returns 0, or -1 with ERR filled and BMAP empty.
 */
int bk_create_bmap(const char *path, const struct bk_create_options *opts, struct bk_bmap *bmap,
                   struct bk_create_info *info, struct bk_error *err);

#ifdef __cplusplus
}
#endif

#endif
