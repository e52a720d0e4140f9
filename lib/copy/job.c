/* SPDX-License-Identifier: MIT */
/* The public copy job: what to copy, how, and what happened. */
#include "copy/extras.h"

#include <inttypes.h>
#include <stdlib.h>

#include "common/util.h"
#include "copy/unchanged.h"

int bk_copy_check_source(const struct bk_bmap *bmap, const struct bk_source *src,
                         struct bk_error *err)
{
    if (src->size >= 0 && (uint64_t)src->size != bmap->image_size)
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s is %" PRId64 " bytes but the bmap describes an image of %" PRIu64
                            " bytes: is it the right bmap?",
                            src->name, src->size, bmap->image_size);
    return 0;
}

/* Whether BMAP has ranges and not one range checksum: nothing it maps can be verified. */
static bool nothing_verifiable(const struct bk_bmap *bmap)
{
    for (size_t i = 0; i < bmap->range_count; i++)
        if (bk_bmap_digest(bmap, i))
            return false;
    return bmap->range_count > 0;
}

int bk_copy_check_verifiable(const struct bk_bmap *bmap, bool verify, bool readback,
                             struct bk_error *err)
{
    if (!nothing_verifiable(bmap))
        return 0;
    if (verify)
        return bk_error_set(err, BK_E_UNVERIFIABLE, 0,
                            "no range checksums (bmap format version %u.%u), so the data cannot "
                            "be verified",
                            bmap->version_major, bmap->version_minor);
    if (readback)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "read-back needs range checksums, and the bmap has none");
    return 0;
}

struct bk_copy *bk_copy_new(const struct bk_bmap *bmap, struct bk_source *src, struct bk_dest *dest,
                            struct bk_error *err)
{
    if (!src || !dest) {
        bk_error_set(err, BK_E_INVALID, 0, "a copy needs a source and a destination");
        return NULL;
    }
    struct bk_copy *job = calloc(1, sizeof *job);
    if (!job) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    job->bmap = bmap;
    job->src = src;
    job->dest = dest;
    job->verify = true;
    if (!copy_extras_get(job, err)) {
        free(job);
        return NULL;
    }
    atomic_init(&job->cancelled, 0);
    pthread_mutex_init(&job->cb_lock, NULL);
    return job;
}

void bk_copy_set_verify(struct bk_copy *job, bool verify)
{
    job->verify = verify;
}

void bk_copy_set_readback(struct bk_copy *job, bool readback, unsigned retries)
{
    job->readback = readback;
    job->readback_retries = retries;
}

void bk_copy_set_skip_unchanged(struct bk_copy *job, bool skip)
{
    job->skip_unchanged = skip;
}

void bk_copy_set_head_bytes(struct bk_copy *job, uint64_t bytes)
{
    job->head_bytes = bytes;
}

void bk_copy_set_progress_fn(struct bk_copy *job, bk_progress_fn fn, void *ctx)
{
    job->progress = fn;
    job->progress_ctx = ctx;
}

void bk_copy_set_verified_fn(struct bk_copy *job, bk_copy_range_fn fn, void *ctx)
{
    job->verified = fn;
    job->verified_ctx = ctx;
}

void bk_copy_set_readback_mismatch_fn(struct bk_copy *job, bk_copy_mismatch_fn fn, void *ctx)
{
    job->mismatch = fn;
    job->mismatch_ctx = ctx;
}

void bk_copy_set_cancel_fn(struct bk_copy *job, bk_cancel_fn fn, void *ctx)
{
    job->cancel = fn;
    job->cancel_ctx = ctx;
}

void bk_copy_cancel(struct bk_copy *job)
{
    atomic_store(&job->cancelled, 1);
}

bool copy_cancelled(struct bk_copy *job)
{
    return atomic_load(&job->cancelled) || bk_cancelled(job->cancel, job->cancel_ctx);
}

size_t copy_range_count(const struct bk_copy *job)
{
    return job->bmap ? job->bmap->range_count : 1;
}

int bk_copy_run(struct bk_copy *job, struct bk_error *err)
{
    if (job->ran)
        return bk_error_set(err, BK_E_INVALID, 0, "a copy job runs only once");
    job->ran = true;
    job->stats = (struct bk_copy_stats){0};
    if (job->bmap && bk_copy_check_source(job->bmap, job->src, err) < 0)
        return -1;
    if (job->bmap && bk_copy_check_verifiable(job->bmap, job->verify, job->readback, err) < 0)
        return -1;
    if (job->readback && copy_readback_check(job, err) < 0)
        return -1;
    if (copy_extras_begin(job, err) < 0 || copy_unchanged_check(job, err) < 0)
        return -1;
    job->stats.bytes_total = job->bmap             ? bk_bmap_mapped_bytes(job->bmap)
                             : job->src->size >= 0 ? (uint64_t)job->src->size
                                                   : 0;
    int rc = copy_drive(job, err);
    copy_extras_end(job);
    return rc;
}

const struct bk_copy_stats *bk_copy_get_stats(const struct bk_copy *job)
{
    return &job->stats;
}

void bk_copy_free(struct bk_copy *job)
{
    if (!job)
        return;
    copy_unchanged_free(job);
    pthread_mutex_destroy(&job->cb_lock);
    copy_extras_free(job);
    free(job);
}
