/* SPDX-License-Identifier: MIT */
/*
 * bk_copy: sets up the pipeline (copy_pipeline.h), runs its stages, then writes the
 * image's beginning last and reads the copy back when asked.
 */
#include "copy/pipeline.h"
#include "common/cpus.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

bool pipeline_cancelled(const struct pipeline *p)
{
    return p->opts->cancel && atomic_load(p->opts->cancel);
}

/* Record the first failure and make every stage stop. Call with the lock held. */
void pipeline_fail_locked(struct pipeline *p, const struct bk_error *e)
{
    if (!p->failed) {
        p->failed = true;
        p->error = *e;
    }
    p->stop = true;
    pthread_cond_broadcast(&p->to_reader);
    pthread_cond_broadcast(&p->to_hashers);
    pthread_cond_broadcast(&p->to_writer);
    pthread_cond_broadcast(&p->to_caller);
}

void pipeline_wake_locked(struct pipeline *p, bool any)
{
    uint64_t need = any ? 1 : WAKE_BATCH;
    if (SLOT_COUNT - (p->filled - p->written) >= need)
        pthread_cond_signal(&p->to_reader);
    for (unsigned h = 0; h < p->hashers; h++) {
        if (p->filled - p->hashed[h] >= need) {
            pthread_cond_broadcast(&p->to_hashers);
            break;
        }
    }
    if (pipeline_hashed_all(p) - p->written >= need && pipeline_writer_ready(p))
        pthread_cond_signal(&p->to_writer);
}

void pipeline_fail(struct pipeline *p, const struct bk_error *e)
{
    pthread_mutex_lock(&p->lock);
    pipeline_fail_locked(p, e);
    pthread_mutex_unlock(&p->lock);
}

size_t pipeline_range_count(const struct pipeline *p)
{
    return p->bmap ? p->bmap->range_count : 1;
}

static void report_progress(struct pipeline *p, uint64_t done)
{
    if (!p->opts->cb.progress)
        return;
    pthread_mutex_lock(&p->cb_lock);
    p->opts->cb.progress(p->opts->cb.ctx, done, p->stats->bytes_total);
    pthread_mutex_unlock(&p->cb_lock);
}

static int pipeline_init(struct pipeline *p, struct bk_error *err)
{
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->cb_lock, NULL);
    pthread_cond_init(&p->to_reader, NULL);
    pthread_cond_init(&p->to_hashers, NULL);
    pthread_cond_init(&p->to_writer, NULL);
    pthread_cond_init(&p->to_caller, NULL);
    /* The slots and the scratch buffer in one block on huge pages where the kernel
       offers them: a few page faults instead of one per 4 KiB of the ring. */
    size_t bytes = (size_t)SLOT_COUNT * SLOT_BYTES + SCRATCH_BYTES;
    if (posix_memalign((void **)&p->ring, HUGE_PAGE_BYTES, bytes) != 0)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory for copy buffers");
#ifdef MADV_HUGEPAGE
    (void)madvise(p->ring, bytes, MADV_HUGEPAGE);
#endif
    for (size_t i = 0; i < SLOT_COUNT; i++)
        p->slots[i].data = p->ring + i * SLOT_BYTES;
    p->scratch = p->ring + (size_t)SLOT_COUNT * SLOT_BYTES;
    p->head = calloc(1, (size_t)p->head_bytes);
    if (!p->head)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    return 0;
}

static void pipeline_destroy(struct pipeline *p)
{
    free(p->ring);
    free(p->head);
    free(p->head_parts);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->cb_lock);
    pthread_cond_destroy(&p->to_reader);
    pthread_cond_destroy(&p->to_hashers);
    pthread_cond_destroy(&p->to_writer);
    pthread_cond_destroy(&p->to_caller);
}

/* How often the calling thread reports progress while the stages run. */
#define PROGRESS_INTERVAL_NS (100 * 1000 * 1000)

/* Run the three stages; the calling thread reports progress until the writer is done. */
static int pipeline_run(struct pipeline *p, struct bk_error *err)
{
    pthread_t tids[2 + MAX_HASHERS];
    struct hasher_arg args[MAX_HASHERS];
    unsigned started = 0;
    for (unsigned t = 0; t < 2 + p->hashers; t++) {
        int e;
        if (t == 0)
            e = pthread_create(&tids[t], NULL, pipeline_reader_main, p);
        else if (t == 1)
            e = pthread_create(&tids[t], NULL, pipeline_writer_main, p);
        else {
            args[t - 2] = (struct hasher_arg){p, t - 2};
            e = pthread_create(&tids[t], NULL, pipeline_hasher_main, &args[t - 2]);
        }
        if (e != 0) {
            struct bk_error te;
            bk_error_set(&te, BK_E_IO, e, "cannot start a copy thread");
            pipeline_fail(p, &te);
            break;
        }
        started++;
    }
    report_progress(p, 0);
    pthread_mutex_lock(&p->lock);
    while (!p->finished && !p->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += PROGRESS_INTERVAL_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->to_caller, &p->lock, &until);
        if (pipeline_cancelled(p) && !p->stop) {
            struct bk_error ce;
            bk_error_set(&ce, BK_E_CANCELLED, 0, "interrupted");
            pipeline_fail_locked(p, &ce);
        }
        uint64_t done = p->done_bytes;
        pthread_mutex_unlock(&p->lock);
        report_progress(p, done);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    if (p->failed) {
        *err = p->error;
        return -1;
    }
    return 0;
}

/* Tell a source that can work ahead which areas the reader will ask for. */
static int plan_source(struct pipeline *p, struct bk_error *err)
{
    size_t n = p->bmap->range_count;
    struct bk_area *areas = malloc((n ? n : 1) * sizeof *areas);
    if (!areas)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < n; i++) {
        areas[i].start = p->bmap->ranges[i].first * p->bmap->block_size;
        areas[i].end = areas[i].start + bk_bmap_range_bytes(p->bmap, i);
    }
    int rc = p->src->plan(p->src, areas, n, err);
    free(areas);
    return rc;
}

/*
 * Overwrite with zeros what the image will put into the destination's first head_bytes
 * (the mapped parts; all of it without a bmap), and flush. Done first on a block device,
 * so that an interrupted copy leaves neither the old partition table nor a part of the
 * new image there; holes keep their old content as a bmap copy promises.
 */
static int clear_head(struct pipeline *p, struct bk_error *err)
{
    uint64_t limit = p->head_bytes < p->dest->size ? p->head_bytes : p->dest->size;
    uint8_t *zeros = calloc(1, (size_t)limit);
    if (!zeros)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    int rc = 0;
    size_t count = p->bmap ? p->bmap->range_count : 1;
    for (size_t i = 0; i < count && rc == 0; i++) {
        uint64_t start = p->bmap ? p->bmap->ranges[i].first * p->bmap->block_size : 0;
        uint64_t end = p->bmap ? start + bk_bmap_range_bytes(p->bmap, i) : limit;
        if (start >= limit)
            break;
        if (end > limit)
            end = limit;
        rc = bk_dest_write(p->dest, zeros, (size_t)(end - start), start, err);
    }
    free(zeros);
    return rc < 0 ? -1 : bk_dest_flush(p->dest, err);
}

/* Everything else is written, verified and durable: now the beginning of the image. */
static int write_head(struct pipeline *p, struct bk_error *err)
{
    if (bk_dest_flush(p->dest, err) < 0)
        return -1;
    for (size_t i = 0; i < p->head_count; i++) {
        const struct bk_interval *h = &p->head_parts[i];
        if (bk_dest_write(p->dest, p->head + h->offset, (size_t)h->len, h->offset, err) < 0)
            return -1;
        p->stats->bytes_written += h->len;
    }
    if (bk_dest_flush(p->dest, err) < 0)
        return -1;
    p->stats->head_written = true;
    return 0;
}

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

int bk_copy(const struct bk_bmap *bmap, struct bk_source *src, struct bk_dest *dest,
            const struct bk_copy_options *opts, struct bk_copy_stats *stats, struct bk_error *err)
{
    struct bk_copy_options none = {0};
    struct bk_copy_stats local;
    opts = opts ? opts : &none;
    stats = stats ? stats : &local;
    memset(stats, 0, sizeof *stats);

    if (bmap && bk_copy_check_source(bmap, src, err) < 0)
        return -1;
    if (opts->readback && bk_readback_check(bmap, dest, err) < 0)
        return -1;
    stats->bytes_total = bmap             ? bk_bmap_mapped_bytes(bmap)
                         : src->size >= 0 ? (uint64_t)src->size
                                          : 0;

    struct pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    p->bmap = bmap;
    p->src = src;
    p->dest = dest;
    p->opts = opts;
    p->stats = stats;
    p->head_bytes = opts->head_bytes ? opts->head_bytes : BK_COPY_HEAD_BYTES;
    unsigned cpus = bk_cpu_count();
    /* A decoding reader is the critical path: keep a CPU for it. */
    if (src->decodes && cpus > 1)
        cpus--;
    p->hashers = cpus > MAX_HASHERS ? MAX_HASHERS : cpus;
    if (!bmap || bmap->range_count < 2 || opts->no_verify)
        p->hashers = 1;

    int rc = pipeline_init(p, err);
    if (rc == 0 && bmap && src->plan)
        rc = plan_source(p, err);
    if (rc == 0 && dest->kind == BK_DEST_BLOCKDEV)
        rc = clear_head(p, err);
    if (rc == 0)
        rc = pipeline_run(p, err);
    if (rc == 0 && !bmap && dest->kind == BK_DEST_FILE && src->size < 0) {
        /* A stream's size is known only now. */
        if (ftruncate(dest->fd, (off_t)p->done_bytes) < 0)
            rc = bk_error_set(err, BK_E_IO, errno, "cannot set the size of %s", dest->path);
    }
    if (rc == 0)
        rc = write_head(p, err);
    if (rc < 0) {
        /* Keep what was written durable; the caller reports what state it is in. */
        struct bk_error ignored;
        bk_dest_flush(dest, &ignored);
    }
    if (rc == 0 && bmap && opts->readback) {
        rc = bk_readback(bmap, src, dest, opts, stats, &p->cb_lock, err);
        /* A copy that reads back wrong must not look complete either. */
        struct bk_error ignored;
        if (rc < 0 && clear_head(p, &ignored) == 0)
            stats->head_written = false;
    }
    if (rc == 0)
        report_progress(p, p->done_bytes);
    pipeline_destroy(p);
    free(p);
    return rc;
}
