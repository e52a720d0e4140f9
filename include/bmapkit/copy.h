/* SPDX-License-Identifier: MIT */
#ifndef BMAPKIT_COPY_H
#define BMAPKIT_COPY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bmapkit/bmap.h"
#include "bmapkit/dest.h"
#include "bmapkit/source.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Callbacks of a copy. They are never called concurrently (a lock serialises them) but
 * may come from the library's worker threads; keep them short.
 */
struct bk_copy_callbacks {
    /* DONE of TOTAL bytes verified and written; TOTAL is 0 when unknown. Called on the
       thread that called bk_copy: once at 0, then ten times a second and at the end. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    /* Range INDEX of the bmap matched its checksum (before its last bytes are written). */
    void (*range_verified)(void *ctx, size_t index, const struct bk_range *range);
    /* Read-back of range INDEX did not match; ATTEMPT counts from 1. */
    void (*readback_mismatch)(void *ctx, size_t index, const struct bk_range *range,
                              unsigned attempt);
    bk_warn_fn warn;
    void *ctx;
};

struct bk_copy_options {
    bool no_verify;            /* do not check range checksums while copying */
    bool readback;             /* after writing, read every range back and check it */
    unsigned readback_retries; /* rewrite a range that reads back wrong this many times */
    uint64_t head_bytes;       /* image bytes written last; 0 means 1 MiB */
    const atomic_int *cancel;  /* when set, stop with BK_E_CANCELLED */
    struct bk_copy_callbacks cb;
};

struct bk_copy_stats {
    uint64_t bytes_total;    /* bytes to copy (mapped bytes, or the image size) */
    uint64_t bytes_written;  /* bytes written to the destination */
    size_t ranges_verified;  /* ranges that matched their checksum */
    size_t ranges_unchecked; /* ranges without a checksum (or with --no-verify) */
    size_t readback_checked; /* ranges read back and matched */
    size_t readback_failed;  /* ranges that still differ after the retries */
    bool head_written;       /* the image's first bytes reached the destination */
};

/* Bytes of the image's beginning that are written last, unless the options say otherwise. */
#define BK_COPY_HEAD_BYTES (1024 * 1024)

/*
 * Check, before the destination is opened, that SRC can be the image BMAP describes
 * (its size, when known, equals ImageSize). Returns 0, or -1 with ERR filled.
 */
int bk_copy_check_source(const struct bk_bmap *bmap, const struct bk_source *src,
                         struct bk_error *err);

/*
 * Copy the mapped ranges of BMAP from SRC to DEST, or the whole image when BMAP is
 * NULL. Reading, hashing and writing run on separate threads through a ring of
 * buffers (32 MiB in all); holes of a seekable source are not read. Each range is
 * hashed and compared with its checksum; ranges short enough to fit in half the ring
 * are checked before any of their bytes are written. The first head_bytes of the image
 * are held back and written only after everything else was written, verified and
 * flushed, so a failed or interrupted copy never looks like a complete image.
 * With opts->readback the written ranges are read back from the medium and checked.
 * Returns 0 only when every range with a checksum matched (and, with read-back, read
 * back correctly). STATS (may be NULL) is filled in either case.
 */
int bk_copy(const struct bk_bmap *bmap, struct bk_source *src, struct bk_dest *dest,
            const struct bk_copy_options *opts, struct bk_copy_stats *stats, struct bk_error *err);

#ifdef __cplusplus
}
#endif

#endif
