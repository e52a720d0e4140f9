/* SPDX-License-Identifier: MIT */
/* Internal: pieces of the copy shared between copy.c and verify_readback.c. */
#ifndef BMAPKIT_COPY_INTERNAL_H
#define BMAPKIT_COPY_INTERNAL_H

#include <pthread.h>

#include "bmapkit/copy.h"

struct bk_interval {
    uint64_t offset;
    uint64_t len;
};

/* Refuse read-back, before anything is written, where it cannot work. */
int bk_readback_check(const struct bk_bmap *bmap, const struct bk_dest *dest, struct bk_error *err);

/*
 * Read every range of BMAP that has a checksum back from DEST, bypassing the page
 * cache where the file system allows, and compare. A range that differs is rewritten
 * from SRC (when seekable) up to opts->readback_retries times. CB_LOCK serialises the
 * callbacks with the rest of the copy.
 */
int bk_readback(const struct bk_bmap *bmap, struct bk_source *src, struct bk_dest *dest,
                const struct bk_copy_options *opts, struct bk_copy_stats *stats,
                pthread_mutex_t *cb_lock, struct bk_error *err);

#endif
