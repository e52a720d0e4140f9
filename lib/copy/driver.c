/* SPDX-License-Identifier: MIT */
/*
 * The order of a copy: tell the source what will be read, clear the head of a disk,
 * run the pipeline's stages, write the image's beginning last, and read the copy back
 * when asked.
 */
#include "copy/pipeline.h"

#include "copy/extras.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cpus.h"
#include "copy/unchanged.h"

/* How often the calling thread reports progress while the stages run. */
#define PROGRESS_INTERVAL_NS (100 * 1000 * 1000)

static void report_progress(struct bk_copy *job, uint64_t done)
{
    if (!job->progress)
        return;
    done += copy_unchanged_settled(job); /* ranges the destination held already */
    pthread_mutex_lock(&job->cb_lock);
    job->progress(job->progress_ctx, done, job->stats.bytes_total);
    pthread_mutex_unlock(&job->cb_lock);
}

/* Start the reader, the writers and the hashers; the first failure stops the rest. */
static unsigned start_stages(struct pipeline *p, pthread_t *tids, struct hasher_arg *args)
{
    unsigned started = 0;
    unsigned writers = p->state.writers;
    for (unsigned t = 0; t < 1 + writers + p->state.hashers; t++) {
        int e = 0;
        if (t == 0)
            e = pthread_create(&tids[started], NULL, pipeline_reader_main, p);
        else if (t <= writers) {
            /* A destination dropped before the start has no writer. */
            if (p->state.wgone[t - 1])
                continue;
            e = pthread_create(&tids[started], NULL, pipeline_writer_main, &p->writers[t - 1]);
        } else {
            unsigned h = t - 1 - writers;
            args[h] = (struct hasher_arg){p, h};
            e = pthread_create(&tids[started], NULL, pipeline_hasher_main, &args[h]);
        }
        if (e != 0) {
            struct bk_error te;
            bk_error_set(&te, BK_E_IO, e, "cannot start a copy thread");
            pipeline_fail(p, &te);
            break;
        }
        started++;
    }
    return started;
}

/* Run the stages; the calling thread reports progress until the writers are done. */
static int pipeline_run(struct pipeline *p, struct bk_error *err)
{
    pthread_t *tids = calloc(1 + p->state.writers + MAX_HASHERS, sizeof *tids);
    struct hasher_arg args[MAX_HASHERS];
    if (!tids)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    unsigned started = start_stages(p, tids, args);
    report_progress(p->job, 0);
    pthread_mutex_lock(&p->lock);
    while (!p->state.finished && !p->state.stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += PROGRESS_INTERVAL_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->to_caller, &p->lock, &until);
        uint64_t done = p->state.done_bytes;
        pthread_mutex_unlock(&p->lock);
        pipeline_check_cancel(p);
        report_progress(p->job, done);
        pthread_mutex_lock(&p->lock);
    }
    bool stopped = p->state.stop;
    pthread_mutex_unlock(&p->lock);
    /* The reader may wait for bytes that never come (a stalled ssh): wake it. */
    if (stopped)
        bk_source_interrupt(p->job->src);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    free(tids);
    if (p->state.failed) {
        if (err)
            *err = p->state.error;
        return -1;
    }
    return 0;
}

/* Tell a source that can work ahead which areas the reader will ask for. */
static int plan_source(const struct bk_copy *job, struct bk_error *err)
{
    const struct bk_bmap *b = job->bmap;
    struct bk_area *areas = malloc((b->range_count ? b->range_count : 1) * sizeof *areas);
    if (!areas)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < b->range_count; i++) {
        if (copy_unchanged_skips(job, i))
            continue;
        areas[n].start = bk_bmap_range_start(b, i);
        areas[n].end = areas[n].start + bk_bmap_range_bytes(b, i);
        n++;
    }
    int rc = bk_source_plan(job->src, areas, n, err);
    free(areas);
    return rc;
}

/*
 * Overwrite with zeros what the image will put into the destination's first head_bytes
 * (the mapped parts; all of it without a bmap), and flush. Done first on a disk, so that
 * an interrupted copy leaves neither the old partition table nor a part of the new image
 * there; holes keep their old content as a bmap copy promises.
 */
int pipeline_clear_head(struct pipeline *p, unsigned w, struct bk_error *err)
{
    const struct bk_copy *job = p->job;
    struct copy_dest *d = &p->job->dests[w];
    uint64_t limit = p->head_bytes < d->dest->size ? p->head_bytes : d->dest->size;
    /* Written as zeros, like the image will be: no zero-out command a USB disk may lack. */
    uint8_t *zeros = calloc(1, (size_t)limit);
    if (!zeros)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < copy_range_count(job) && rc == 0; i++) {
        uint64_t start = job->bmap ? bk_bmap_range_start(job->bmap, i) : 0;
        uint64_t end = job->bmap ? start + bk_bmap_range_bytes(job->bmap, i) : limit;
        if (start >= limit)
            break;
        if (end > limit)
            end = limit;
        d->stats.head_cleared = true;
        rc = bk_dest_write(d->dest, zeros, (size_t)(end - start), start, err);
    }
    free(zeros);
    return rc < 0 ? -1 : bk_dest_flush(d->dest, err);
}

/*
 * Everything else is written, verified and durable: now the beginning of the image,
 * back to front, so that a failure on the way never leaves its first sector written.
 */
static int write_head(struct pipeline *p, unsigned w, struct bk_error *err)
{
    struct bk_copy *job = p->job;
    struct copy_dest *d = &job->dests[w];
    if (bk_dest_flush(d->dest, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = p->head_count; i-- > 0 && rc == 0;) {
        const struct head_part *h = &p->head_parts[i];
        uint64_t wrote = h->len;
        /* A cleared head is written in full; else only what differs, when asked to. */
        if (job->unchanged && !d->stats.head_cleared)
            rc = copy_unchanged_write(job, p->head + h->offset, (size_t)h->len, h->offset, &wrote,
                                      err);
        else
            rc = bk_dest_write(d->dest, p->head + h->offset, (size_t)h->len, h->offset, err);
        if (rc == 0)
            d->stats.bytes_written += wrote;
    }
    bool all_written = rc == 0;
    if (rc == 0)
        rc = bk_dest_flush(d->dest, err);
    if (rc == 0) {
        d->stats.head_written = true;
        return 0;
    }
    /*
     * Back to front, a failed write never reached the first sector; but once all of the
     * head went out, a failed flush may still let it reach the medium. Take the head
     * away again; where even that fails, say it may be there.
     */
    struct bk_error ignored;
    bool cleared = pipeline_clear_head(p, w, &ignored) == 0;
    d->stats.head_written = all_written && !cleared;
    return -1;
}

/* Hashers to start: one per CPU, less one for a reader that decodes. */
static unsigned hasher_count(const struct bk_copy *job)
{
    if (!job->bmap || job->bmap->range_count < 2 || !job->verify)
        return 1;
    unsigned cpus = bk_cpu_count();
    /* A decoding reader is the critical path: keep a CPU for it. */
    if (job->src->decodes && cpus > 1)
        cpus--;
    return cpus > MAX_HASHERS ? MAX_HASHERS : cpus;
}

void pipeline_dest_tail(struct pipeline *p, unsigned w)
{
    struct bk_copy *job = p->job;
    struct copy_dest *d = &job->dests[w];
    struct bk_error err;
    bk_error_clear(&err);
    pthread_mutex_lock(&p->lock);
    uint64_t done = p->state.wbytes[w];
    pthread_mutex_unlock(&p->lock);
    int rc = 0;
    /* Nothing copied is no copy: an empty image is an error, as for create. */
    if (!job->bmap && done == 0)
        rc = bk_error_set(&err, BK_E_FORMAT, 0, "%s: the image is empty, there is nothing to copy",
                          job->src->name);
    /* A stream's size is known only now. */
    if (rc == 0 && !job->bmap && job->src->size < 0 && (d->dest->caps & BK_DEST_SIZED_BY_IMAGE))
        rc = bk_dest_set_size(d->dest, done, &err);
    /* Forced ranges and zeroing: only in a copy to one destination (bk_copy_run). */
    if (rc == 0 && job->ndests == 1)
        rc = copy_extras_after_data(job, &err);
    if (rc == 0)
        rc = write_head(p, w, &err);
    if (rc < 0) {
        /* Keep what was written durable; the caller reports what state it is in. */
        struct bk_error ignored;
        bk_dest_flush(d->dest, &ignored);
    } else if (job->bmap && job->readback) {
        rc = copy_readback(job, d, &err);
        /* A copy that reads back wrong must not look complete either. */
        struct bk_error ignored;
        if (rc < 0 && pipeline_clear_head(p, w, &ignored) == 0)
            d->stats.head_written = false;
    }
    /* The GPT's backup, looked at or moved: a copy to one destination (bk_copy_run). */
    if (rc == 0 && job->ndests == 1)
        rc = copy_gpt(job, &err);
    copy_dest_finish(job, d, rc < 0 ? &err : NULL);
}

/*
 * Clear the head of every disk first; one that fails there is dropped before the start
 * when others are left. Returns 0, or -1 with ERR filled when none is left.
 */
static int clear_heads(struct pipeline *p, struct bk_error *err)
{
    struct bk_copy *job = p->job;
    int rc = 0;
    for (unsigned w = 0; w < job->ndests; w++) {
        if (!(job->dests[w].dest->caps & BK_DEST_IS_DISK))
            continue;
        struct bk_error e;
        bk_error_clear(&e);
        if (pipeline_clear_head(p, w, &e) == 0)
            continue;
        if (ring_drop_writer(&p->state, w) == 0) {
            if (err)
                *err = e;
            rc = -1;
            break;
        }
        struct bk_error ignored;
        bk_dest_flush(job->dests[w].dest, &ignored);
        copy_dest_finish(job, &job->dests[w], &e);
    }
    return rc;
}

/* Hasher count, buffers, then the copy: up to each destination's head and read-back. */
int copy_drive(struct bk_copy *job, struct bk_error *err)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    job->started_ns = (uint64_t)t0.tv_sec * 1000000000u + (uint64_t)t0.tv_nsec;
    struct pipeline *p = malloc(sizeof *p);
    if (!p)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    struct bk_error global;
    bk_error_clear(&global);
    int rc = pipeline_init(p, job, hasher_count(job), &global);
    if (rc == 0)
        rc = copy_unchanged_survey(job, p->head_bytes, &global);
    if (rc == 0 && job->bmap)
        rc = plan_source(job, &global);
    /* With nothing to write (skip_unchanged), the head stays as it is. */
    if (rc == 0 && copy_unchanged_any_change(job))
        rc = clear_heads(p, &global);
    if (rc == 0)
        rc = pipeline_run(p, &global);
    /* What no writer finished failed with the copy's failure. */
    size_t ok = 0, first_failed = SIZE_MAX;
    for (size_t w = 0; w < job->ndests; w++) {
        struct copy_dest *d = &job->dests[w];
        if (!d->done) {
            struct bk_error ignored;
            bk_dest_flush(d->dest, &ignored);
            copy_dest_finish(job, d, &global);
        }
        if (!d->failed)
            ok++;
        else if (first_failed == SIZE_MAX)
            first_failed = w;
    }
    if (ok > 0)
        report_progress(job, p->state.done_bytes);
    pipeline_destroy(p);
    free(p);
    if (first_failed == SIZE_MAX)
        return 0;
    if (err)
        *err = job->dests[first_failed].error;
    return -1;
}
