/* SPDX-License-Identifier: MIT */
/* The public copy job: what to copy, how, and what happened. */
#include "copy/extras.h"

#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

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
    job->dests = calloc(1, sizeof *job->dests);
    if (!job->dests) {
        free(job);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    job->dests[0].dest = dest;
    job->ndests = 1;
    job->bmap = bmap;
    job->src = src;
    job->dest = dest;
    job->verify = true;
    if (!copy_extras_get(job, err)) {
        free(job->dests);
        free(job);
        return NULL;
    }
    atomic_init(&job->cancelled, 0);
    pthread_mutex_init(&job->cb_lock, NULL);
    pthread_mutex_init(&job->src_lock, NULL);
    return job;
}

int bk_copy_add_dest(struct bk_copy *job, struct bk_dest *dest, struct bk_error *err)
{
    if (!dest)
        return bk_error_set(err, BK_E_INVALID, 0, "no destination to add");
    if (job->ran)
        return bk_error_set(err, BK_E_INVALID, 0, "%s: the copy job already ran", dest->name);
    for (size_t i = 0; i < job->ndests; i++)
        if (job->dests[i].dest == dest)
            return bk_error_set(err, BK_E_INVALID, 0, "%s is already a destination of the copy",
                                dest->name);
    if (job->ndests >= BK_COPY_MAX_DESTS)
        return bk_error_set(err, BK_E_INVALID, 0, "%s: a copy writes at most %d destinations",
                            dest->name, BK_COPY_MAX_DESTS);
    struct copy_dest *n = realloc(job->dests, (job->ndests + 1) * sizeof *n);
    if (!n)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    job->dests = n;
    job->dests[job->ndests] = (struct copy_dest){.dest = dest};
    return (int)job->ndests++;
}

size_t bk_copy_dest_count(const struct bk_copy *job)
{
    return job->ndests;
}

const struct bk_copy_stats *bk_copy_get_dest_stats(const struct bk_copy *job, size_t index)
{
    return index < job->ndests ? &job->dests[index].stats : NULL;
}

int bk_copy_get_dest_result(const struct bk_copy *job, size_t index, struct bk_error *err)
{
    if (index >= job->ndests)
        return bk_error_set(err, BK_E_INVALID, 0, "the copy has no destination %zu", index);
    if (!job->ran)
        return bk_error_set(err, BK_E_INVALID, 0, "%s: the copy job has not run",
                            job->dests[index].dest->name);
    if (!job->dests[index].failed)
        return 0;
    if (err)
        *err = job->dests[index].error;
    return -1;
}

void bk_copy_set_dest_done_fn(struct bk_copy *job, bk_copy_dest_fn fn, void *ctx)
{
    job->dest_done = fn;
    job->dest_done_ctx = ctx;
}

void bk_copy_set_dest_mismatch_fn(struct bk_copy *job, bk_copy_dest_mismatch_fn fn, void *ctx)
{
    job->dest_mismatch = fn;
    job->dest_mismatch_ctx = ctx;
}

void copy_dest_finish(struct bk_copy *job, struct copy_dest *d, const struct bk_error *err)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    pthread_mutex_lock(&job->cb_lock);
    d->done = true;
    d->stats.elapsed_ns = ns > job->started_ns ? ns - job->started_ns : 0;
    if (err) {
        d->failed = true;
        d->error = *err;
    }
    if (job->dest_done)
        job->dest_done(job->dest_done_ctx, (size_t)(d - job->dests), err);
    pthread_mutex_unlock(&job->cb_lock);
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

/* The job's statistics from the destinations': with one, exactly its own. */
static void merge_stats(struct bk_copy *job)
{
    struct bk_copy_stats *all = &job->stats;
    all->bytes_written = all->readback_checked = all->readback_failed = 0;
    all->head_written = all->head_cleared = false;
    for (size_t i = 0; i < job->ndests; i++) {
        struct bk_copy_stats *st = &job->dests[i].stats;
        st->bytes_total = all->bytes_total;
        st->ranges_verified = all->ranges_verified;
        st->ranges_unchecked = all->ranges_unchecked;
        all->bytes_written += st->bytes_written;
        all->readback_checked += st->readback_checked;
        all->readback_failed += st->readback_failed;
        all->head_written = all->head_written || st->head_written;
        all->head_cleared = all->head_cleared || st->head_cleared;
        if (st->elapsed_ns > all->elapsed_ns)
            all->elapsed_ns = st->elapsed_ns;
    }
}

/* Refused before anything is written: every destination fails with ERR. */
static int refuse_all(struct bk_copy *job, struct bk_error *err)
{
    for (size_t i = 0; i < job->ndests; i++) {
        job->dests[i].failed = true;
        job->dests[i].error = *err;
    }
    return -1;
}

/* Whether forced ranges, zeroing or moving the GPT were asked for. */
static bool extras_asked(const struct bk_copy *job)
{
    const struct copy_extras *x = job->extras;
    return x && (x->n_forced > 0 || x->zero_unmapped || x->relocate_gpt);
}

int bk_copy_run(struct bk_copy *job, struct bk_error *err)
{
    struct bk_error local;
    if (!err)
        err = &local;
    if (job->ran)
        return bk_error_set(err, BK_E_INVALID, 0, "a copy job runs only once");
    job->ran = true;
    job->stats = (struct bk_copy_stats){0};
    for (size_t i = 0; i < job->ndests; i++)
        job->dests[i] = (struct copy_dest){.dest = job->dests[i].dest};
    if (job->bmap && bk_copy_check_source(job->bmap, job->src, err) < 0)
        return refuse_all(job, err);
    if (job->bmap && bk_copy_check_verifiable(job->bmap, job->verify, job->readback, err) < 0)
        return refuse_all(job, err);
    for (size_t i = 0; i < job->ndests && job->readback; i++)
        if (copy_readback_check(job, job->dests[i].dest, err) < 0)
            return refuse_all(job, err);
    /* Forced ranges, zeroing, the GPT and skipping what is there work on one destination. */
    if (job->ndests > 1 && (job->skip_unchanged || extras_asked(job))) {
        bk_error_set(err, BK_E_INVALID, 0,
                     "skipping unchanged data, forced ranges, zeroing unmapped space and "
                     "moving the GPT apply to a copy to one destination");
        return refuse_all(job, err);
    }
    if (copy_extras_begin(job, err) < 0 || copy_unchanged_check(job, err) < 0)
        return refuse_all(job, err);
    job->stats.bytes_total = job->bmap             ? bk_bmap_mapped_bytes(job->bmap)
                             : job->src->size >= 0 ? (uint64_t)job->src->size
                                                   : 0;
    int rc = copy_drive(job, err);
    copy_extras_end(job);
    merge_stats(job);
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
    pthread_mutex_destroy(&job->src_lock);
    free(job->dests);
    free(job);
}
