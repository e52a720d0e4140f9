/* SPDX-License-Identifier: MIT */
/* Internal: the copy job as the pipeline, the head and read-back see it. */
#ifndef BMAPKIT_COPY_IMPL_H
#define BMAPKIT_COPY_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "bmap/bmap_impl.h"
#include "bmapkit/copy.h"
#include "dest/dest_impl.h"
#include "source/source_impl.h"

/* One destination of a job: its own statistics and outcome. */
struct copy_dest {
    struct bk_dest *dest;
    struct bk_copy_stats stats; /* its own fields; the shared ones are merged in at the end */
    bool done;                  /* its result is known */
    bool failed;
    struct bk_error error;
};

struct bk_copy {
    const struct bk_bmap *bmap; /* NULL: the whole image */
    struct bk_source *src;
    struct bk_dest *dest; /* the first destination, dests[0].dest */
    struct copy_dest *dests;
    size_t ndests;
    pthread_mutex_t src_lock; /* read-back rewrites of several destinations share the source */

    bool verify;
    bool readback;
    unsigned readback_retries;
    uint64_t head_bytes;
    /* Re-flash only what changed (unchanged.c); the survey's findings while it runs. */
    bool skip_unchanged;
    struct copy_unchanged *unchanged;

    bk_progress_fn progress;
    void *progress_ctx;
    bk_copy_range_fn verified;
    void *verified_ctx;
    bk_copy_mismatch_fn mismatch;
    void *mismatch_ctx;
    bk_copy_dest_mismatch_fn dest_mismatch;
    void *dest_mismatch_ctx;
    bk_copy_dest_fn dest_done;
    void *dest_done_ctx;
    bk_cancel_fn cancel;
    void *cancel_ctx;
    atomic_int cancelled; /* bk_copy_cancel */

    /* Serialises the callbacks, which may come from several threads. */
    pthread_mutex_t cb_lock;
    bool ran;
    uint64_t started_ns; /* CLOCK_MONOTONIC at the start of the run */
    struct bk_copy_stats stats;
    struct copy_extras *extras; /* forced ranges, zeroing, GPT (extras.h); NULL: none */
};

/* Whether the job was asked to stop (bk_copy_cancel or the cancellation hook). */
bool copy_cancelled(struct bk_copy *job);

/* Ranges to copy: the bmap's, or one for the whole image. */
size_t copy_range_count(const struct bk_copy *job);

/* Run the pipeline, the head and the read-back (driver.c). */
int copy_drive(struct bk_copy *job, struct bk_error *err);

/* Refuse read-back, before anything is written, where it cannot work (readback.c). */
int copy_readback_check(const struct bk_copy *job, const struct bk_dest *dest,
                        struct bk_error *err);

/*
 * Read every range that has a checksum back from destination D and compare. A range
 * that differs is rewritten from the source (when seekable) up to readback_retries
 * times.
 */
int copy_readback(struct bk_copy *job, struct copy_dest *d, struct bk_error *err);

/* Destination D is done, with ERR when it failed: record it and tell the caller. */
void copy_dest_finish(struct bk_copy *job, struct copy_dest *d, const struct bk_error *err);

#endif
