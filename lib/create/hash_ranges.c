/* SPDX-License-Identifier: MIT */
/*
 * Range checksums of a new bmap, on several threads. A range is hashed by one thread
 * from start to end (a digest is sequential); threads take ranges largest first so one
 * long range does not finish last.
 */
#include "create/create_impl.h"

#include "common/cpus.h"
#include "common/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sized_range {
    uint64_t bytes;
    size_t index;
};

struct hash_job {
    int fd;
    const char *name;
    struct bk_bmap *bmap;
    struct sized_range *order; /* ranges, largest first */
    bk_cancel_fn cancel;
    void *cancel_ctx;

    atomic_size_t next;
    atomic_uint_fast64_t done_bytes;
    atomic_int stop;

    pthread_mutex_t lock;
    pthread_cond_t finished;
    unsigned running;
    bool failed;
    struct bk_error first_error;
};

/*
 * Hash N image bytes at OFF, read into BUF. Reading beats mapping the file: hashing
 * mapped page-cache pages costs far more CPU in TLB misses (most of all in a virtual
 * machine) than the kernel's copy into a buffer that stays in the cache.
 */
static int hash_piece(struct hash_job *job, struct bk_digest *d, uint8_t *buf, uint64_t off,
                      size_t n, struct bk_error *err)
{
    if (create_read_full(job->fd, job->name, buf, n, off, err) < 0)
        return -1;
    return bk_digest_update(d, buf, n, err);
}

static int hash_range(struct hash_job *job, struct bk_digest *d, uint8_t *buf, size_t i,
                      struct bk_error *err)
{
    struct bk_bmap *b = job->bmap;
    uint64_t off = b->ranges[i].first * b->block_size;
    uint64_t left = bk_bmap_range_bytes(b, i);
    while (left > 0) {
        if (atomic_load(&job->stop))
            return 1;
        if (bk_cancelled(job->cancel, job->cancel_ctx))
            return bk_error_set(err, BK_E_CANCELLED, 0, "cancelled");
        size_t n = left < CREATE_BUFFER ? (size_t)left : CREATE_BUFFER;
        if (hash_piece(job, d, buf, off, n, err) < 0)
            return -1;
        off += n;
        left -= n;
        atomic_fetch_add(&job->done_bytes, n);
    }
    uint8_t digest[BK_DIGEST_MAX];
    if (bk_digest_final(d, digest, err) < 0)
        return -1;
    /* Each range's digest is computed by one thread, but the bits saying which digests
       are present share bytes between neighbouring ranges: set them under the lock. */
    pthread_mutex_lock(&job->lock);
    bk_bmap_set_digest(b, i, digest);
    pthread_mutex_unlock(&job->lock);
    return 0;
}

static void *hash_worker(void *arg)
{
    struct hash_job *job = arg;
    struct bk_error err;
    bk_error_clear(&err);
    int rc = 0;

    struct bk_digest *d = bk_digest_new(job->bmap->hash, &err);
    uint8_t *buf = d ? malloc(CREATE_BUFFER) : NULL;
    if (!d)
        rc = -1;
    else if (!buf)
        rc = bk_error_set(&err, BK_E_NOMEM, 0, "out of memory for a hash buffer");

    while (rc == 0) {
        size_t k = atomic_fetch_add(&job->next, 1);
        if (k >= job->bmap->range_count)
            break;
        rc = hash_range(job, d, buf, job->order[k].index, &err);
    }
    free(buf);
    bk_digest_free(d);

    pthread_mutex_lock(&job->lock);
    if (rc < 0 && !job->failed) {
        job->failed = true;
        job->first_error = err;
        atomic_store(&job->stop, 1);
    }
    job->running--;
    pthread_cond_signal(&job->finished);
    pthread_mutex_unlock(&job->lock);
    return NULL;
}

static int by_size_desc(const void *a, const void *b)
{
    const struct sized_range *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static unsigned online_cpus(void)
{
    unsigned n = bk_cpu_count();
    return n > CREATE_MAX_THREADS ? CREATE_MAX_THREADS : n;
}

int create_hash_ranges(int fd, const char *name, struct bk_bmap *b,
                       const struct bk_create_options *o, unsigned *used_threads,
                       struct bk_error *err)
{
    if (b->range_count == 0)
        return 0;
    struct hash_job job = {
        .fd = fd, .name = name, .bmap = b, .cancel = o->cancel, .cancel_ctx = o->cancel_ctx};
    struct sized_range *sized = malloc(b->range_count * sizeof *sized);
    if (!sized)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < b->range_count; i++)
        sized[i] = (struct sized_range){bk_bmap_range_bytes(b, i), i};
    qsort(sized, b->range_count, sizeof *sized, by_size_desc);
    job.order = sized;

    unsigned threads = o->threads ? o->threads : online_cpus();
    if (threads > CREATE_MAX_THREADS)
        threads = CREATE_MAX_THREADS;
    if (threads > b->range_count)
        threads = (unsigned)b->range_count;
    *used_threads = threads;

    pthread_mutex_init(&job.lock, NULL);
    pthread_cond_init(&job.finished, NULL);
    pthread_t tids[CREATE_MAX_THREADS];
    unsigned started = 0;
    int rc = 0;
    for (; started < threads; started++) {
        pthread_mutex_lock(&job.lock);
        job.running++;
        pthread_mutex_unlock(&job.lock);
        int e = pthread_create(&tids[started], NULL, hash_worker, &job);
        if (e != 0) {
            pthread_mutex_lock(&job.lock);
            job.running--;
            pthread_mutex_unlock(&job.lock);
            if (started == 0)
                rc = bk_error_set(err, BK_E_IO, e, "cannot start a hashing thread");
            break;
        }
    }

    uint64_t total = bk_bmap_mapped_bytes(b);
    pthread_mutex_lock(&job.lock);
    while (job.running > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&job.finished, &job.lock, &until);
        if (o->progress && job.running > 0) {
            pthread_mutex_unlock(&job.lock);
            o->progress(o->progress_ctx, atomic_load(&job.done_bytes), total);
            pthread_mutex_lock(&job.lock);
        }
    }
    pthread_mutex_unlock(&job.lock);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    if (o->progress && !job.failed && rc == 0)
        o->progress(o->progress_ctx, total, total);

    if (job.failed && rc == 0) {
        *err = job.first_error;
        rc = -1;
    }
    pthread_mutex_destroy(&job.lock);
    pthread_cond_destroy(&job.finished);
    free(job.order);
    return rc;
}
