/* SPDX-License-Identifier: MIT */
/*
 * Random access into an xz file through its block index.
 *
 * Multi-threaded xz cuts the image into independent blocks and lists them in an index
 * at the end of each stream. With the index read, any image byte can be found in its
 * block and that block decoded alone; blocks holding nothing the copy needs are never
 * decoded, and the planned blocks are decoded on several threads at once.
 *
 * Opening checks what can be checked cheaply: every stream's footer, index (its CRC32,
 * and its size against the footer), header (against the footer's flags) and padding,
 * and that the streams fill the file exactly. A file that fails is refused at once,
 * before anything is written. Block headers and data are checked when a block is
 * decoded: its sizes against the index, its data by its integrity check.
 *
 * Damage inside a block that holds no mapped data goes undetected, and the copy
 * succeeds. This is deliberate: such a block is never decoded, and its bytes lie
 * outside every mapped range, so they cannot reach the destination; the mapped data is
 * still checked by its blocks' integrity checks and by the bmap's range checksums. Only
 * decoding every block (what the stream decoder does) would find it, at the cost this
 * reader exists to avoid. A copy without a bmap reads every block, so it does fail.
 *
 * Planned reading: plan() lists the blocks that meet a mapped area ("jobs", ascending)
 * and starts workers that decode them in order. A worker keeps only the decoded bytes
 * that lie in mapped areas, in chunks queued on the job, and hands a job's last chunk
 * over only once the block's integrity check has been verified, so no reader can take
 * all of a damaged block's data without seeing the error. pread() takes the bytes from
 * the queues, freeing chunks as it moves past them; anything not planned (or read a
 * second time) is decoded on demand, in the caller's thread.
 *
 * Memory: workers share MEM_BUDGET (160 MiB) for their decoders (the LZMA2 dictionary:
 * 1 MiB at xz -1, 8 MiB at -6, 64 MiB at -9) and for decoded bytes waiting for the
 * reader. Decoders are granted in job order, so blocks are started in order. The job
 * the reader is waiting for may always go on: it may start a decoder that alone exceeds
 * the budget (only for dictionaries over 160 MiB) and may hold two chunks beyond it.
 * Each worker also has XZ_IO_BYTES of input and as much scratch (at most 8 workers: 4 MiB),
 * and on-demand reading one more decoder of its own. With xz -6 blocks (24 MiB) two
 * cores decode fully in parallel; at xz -9 (192 MiB blocks, 64 MiB dictionaries) the
 * budget lets a second block run only some 30 MiB ahead. Peak RSS of a copy stays under
 * 256 MiB including the copy's own buffers.
 */
#include "decode.h"
#include "xz_internal.h"
#include "cpus.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 8u
#define CHUNK_BYTES ((size_t)1 << 20)
#define MEM_BUDGET ((uint64_t)160 << 20)
#define NO_FAILURE SIZE_MAX

/* Decoded image bytes [off, off + len) waiting for the reader. */
struct chunk {
    struct chunk *next;
    uint64_t off;
    size_t len;
    uint8_t data[];
};

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED };

/* A planned block. */
struct job {
    struct xz_blk b;
    enum job_state state;
    struct chunk *first, *last; /* queued for the reader */
    uint64_t held;              /* chunk bytes allocated and not yet freed */
    struct bk_error error;
};

struct xzi;

struct worker {
    struct xzi *x;
    pthread_t thread;
    struct xz_blockdec d;
    uint8_t *scratch;
};

struct xzi {
    struct bk_source pub;
    struct bk_source *in;
    lzma_index *index;
    uint64_t size;
    unsigned cpus;

    /* On-demand decoding, in the caller's thread. */
    struct xz_blockdec cur;
    uint8_t *scratch;
    uint64_t rpos; /* read() position */

    /* Planned decoding; everything below is under the lock once workers run. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool planned, stop;
    struct bk_area *areas; /* sorted, disjoint, non-empty */
    size_t nareas;
    struct job *jobs;
    size_t njobs;
    size_t next_job;  /* next job for a worker */
    size_t granted;   /* jobs below this have had their decoder memory granted */
    size_t head;      /* first job the reader may still need */
    size_t fail_from; /* first failed job, or NO_FAILURE */
    uint64_t used;    /* decoder and chunk memory in use */
    struct worker *workers;
    unsigned nworkers;
};

/* --- planned decoding: the workers ----------------------------------------------- */

/* Job J is no longer wanted: closing, or an earlier job failed. Call locked. */
static bool abandoned(const struct xzi *x, size_t j)
{
    return x->stop || (x->fail_from != NO_FAILURE && j > x->fail_from);
}

static void free_chunk(struct xzi *x, struct job *jb, struct chunk *c)
{
    x->used -= c->len;
    jb->held -= c->len;
    free(c);
}

/* A chunk of LEN bytes for job J, once the budget allows; NULL when abandoned. */
static struct chunk *get_chunk(struct xzi *x, size_t j, size_t len, struct bk_error *err)
{
    struct job *jb = &x->jobs[j];
    pthread_mutex_lock(&x->lock);
    while (!abandoned(x, j) && x->used + len > MEM_BUDGET &&
           !(j == x->head && jb->held < 2 * CHUNK_BYTES))
        pthread_cond_wait(&x->changed, &x->lock);
    bool gone = abandoned(x, j);
    if (!gone) {
        x->used += len;
        jb->held += len;
    }
    pthread_mutex_unlock(&x->lock);
    if (gone)
        return NULL;
    struct chunk *c = malloc(sizeof *c + len);
    if (!c) {
        pthread_mutex_lock(&x->lock);
        x->used -= len;
        jb->held -= len;
        pthread_mutex_unlock(&x->lock);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    c->next = NULL;
    c->len = len;
    return c;
}

static void publish(struct xzi *x, struct job *jb, struct chunk *c)
{
    pthread_mutex_lock(&x->lock);
    if (jb->last)
        jb->last->next = c;
    else
        jb->first = c;
    jb->last = c;
    pthread_cond_broadcast(&x->changed);
    pthread_mutex_unlock(&x->lock);
}

/* The first area that ends after OFF (nareas when none). */
static size_t area_after(const struct xzi *x, uint64_t off)
{
    size_t lo = 0, hi = x->nareas;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->areas[mid].end <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Skip to block offset TARGET in steps, giving up when job J is abandoned. */
static int worker_skip(struct xzi *x, struct worker *w, size_t j, uint64_t target,
                       struct bk_error *err)
{
    struct xz_blockdec *d = &w->d;
    while (d->strm.total_out < target) {
        pthread_mutex_lock(&x->lock);
        bool gone = abandoned(x, j);
        pthread_mutex_unlock(&x->lock);
        if (gone)
            return -1;
        uint64_t step = xz_min64(target, d->strm.total_out + 4 * CHUNK_BYTES);
        if (xz_blockdec_skip(x->in, d, w->scratch, step, err) < 0)
            return -1;
    }
    return 0;
}

/* Decode job J: its mapped bytes into chunks, the rest into scratch. */
static int decode_job(struct xzi *x, struct worker *w, size_t j, struct bk_error *err)
{
    struct job *jb = &x->jobs[j];
    const struct xz_blk *b = &jb->b;
    struct xz_blockdec *d = &w->d;
    struct chunk *pending = NULL; /* decoded, handed over when the next one is */
    int rc = 0;
    for (size_t a = area_after(x, b->uoff); rc == 0 && a < x->nareas; a++) {
        if (x->areas[a].start >= b->uoff + b->usize)
            break;
        uint64_t s = x->areas[a].start > b->uoff ? x->areas[a].start - b->uoff : 0;
        uint64_t e = xz_min64(x->areas[a].end - b->uoff, b->usize);
        rc = worker_skip(x, w, j, s, err);
        while (rc == 0 && d->strm.total_out < e) {
            size_t n = (size_t)xz_min64(e - d->strm.total_out, CHUNK_BYTES);
            struct chunk *c = get_chunk(x, j, n, err);
            if (!c) {
                rc = -1;
                break;
            }
            c->off = b->uoff + d->strm.total_out;
            if ((rc = xz_blockdec_decode(x->in, d, c->data, n, err)) < 0) {
                pthread_mutex_lock(&x->lock);
                free_chunk(x, jb, c);
                pthread_mutex_unlock(&x->lock);
                break;
            }
            if (pending)
                publish(x, jb, pending);
            pending = c;
        }
    }
    if (rc == 0 && !d->finished)
        rc = worker_skip(x, w, j, b->usize, err);
    pthread_mutex_lock(&x->lock);
    if (pending) {
        if (rc == 0) {
            if (jb->last)
                jb->last->next = pending;
            else
                jb->first = pending;
            jb->last = pending;
        } else {
            free_chunk(x, jb, pending);
        }
    }
    pthread_mutex_unlock(&x->lock);
    return rc;
}

static void run_job(struct xzi *x, struct worker *w, size_t j)
{
    struct job *jb = &x->jobs[j];
    struct bk_error err;
    bk_error_clear(&err);
    uint64_t mem = 0;
    int rc = xz_blockdec_header(x->in, &w->d, &jb->b, &mem, &err);

    /* Decoders are granted in job order, so that blocks start in the order needed. */
    pthread_mutex_lock(&x->lock);
    while (!abandoned(x, j) &&
           !(x->granted == j && (rc < 0 || x->used + mem <= MEM_BUDGET || j == x->head)))
        pthread_cond_wait(&x->changed, &x->lock);
    bool gone = abandoned(x, j);
    uint64_t granted_mem = 0;
    if (!gone) {
        x->granted++;
        if (rc == 0)
            granted_mem = mem;
        x->used += granted_mem;
        pthread_cond_broadcast(&x->changed);
    }
    pthread_mutex_unlock(&x->lock);

    if (gone)
        rc = -1;
    else if (rc == 0 && (rc = xz_blockdec_start(x->in, &w->d, &err)) == 0)
        rc = decode_job(x, w, j, &err);
    xz_blockdec_end(&w->d);

    pthread_mutex_lock(&x->lock);
    x->used -= granted_mem;
    if (rc == 0) {
        jb->state = JOB_DONE;
    } else if (err.code == BK_OK) {
        /* Stopped: closing, or an earlier block failed and this one is not needed. */
        jb->state = JOB_FAILED;
        bk_error_set(&jb->error, BK_E_CANCELLED, 0, "%s: xz: decoding stopped", x->in->name);
    } else {
        jb->state = JOB_FAILED;
        jb->error = err;
        if (x->fail_from == NO_FAILURE || j < x->fail_from)
            x->fail_from = j;
    }
    pthread_cond_broadcast(&x->changed);
    pthread_mutex_unlock(&x->lock);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct xzi *x = w->x;
    pthread_mutex_lock(&x->lock);
    while (x->next_job < x->njobs && !abandoned(x, x->next_job)) {
        size_t j = x->next_job++;
        x->jobs[j].state = JOB_RUNNING;
        pthread_mutex_unlock(&x->lock);
        run_job(x, w, j);
        pthread_mutex_lock(&x->lock);
    }
    pthread_mutex_unlock(&x->lock);
    return NULL;
}

/* --- planned decoding: the reader ------------------------------------------------ */

/* Free the chunks of JB that end at or before OFF. Call locked. */
static void drop_chunks(struct xzi *x, struct job *jb, uint64_t off)
{
    bool freed = false;
    while (jb->first && jb->first->off + jb->first->len <= off) {
        struct chunk *c = jb->first;
        jb->first = c->next;
        if (!jb->first)
            jb->last = NULL;
        free_chunk(x, jb, c);
        freed = true;
    }
    if (freed)
        pthread_cond_broadcast(&x->changed);
}

/* The job from the head on whose block holds OFF, or njobs. Call locked. */
static size_t find_job(const struct xzi *x, uint64_t off)
{
    size_t lo = x->head, hi = x->njobs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->jobs[mid].b.uoff + x->jobs[mid].b.usize <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->njobs && x->jobs[lo].b.uoff <= off ? lo : x->njobs;
}

/* Serve a read from the workers' chunks: 0 served, 1 not planned (decode on demand). */
static int planned_read(struct xzi *x, uint8_t *buf, size_t len, uint64_t off, size_t *got,
                        struct bk_error *err)
{
    pthread_mutex_lock(&x->lock);
    size_t k = find_job(x, off);
    size_t a = area_after(x, off);
    if (k == x->njobs || a == x->nareas || x->areas[a].start > off) {
        pthread_mutex_unlock(&x->lock);
        return 1;
    }
    /* Jobs passed over must still finish: their errors are not to be lost. */
    while (x->head < k) {
        struct job *h = &x->jobs[x->head];
        drop_chunks(x, h, UINT64_MAX);
        if (h->state == JOB_DONE) {
            x->head++;
            pthread_cond_broadcast(&x->changed);
        } else if (h->state == JOB_FAILED) {
            *err = h->error;
            pthread_mutex_unlock(&x->lock);
            return -1;
        } else {
            pthread_cond_wait(&x->changed, &x->lock);
        }
    }
    struct job *jb = &x->jobs[k];
    for (;;) {
        drop_chunks(x, jb, off);
        struct chunk *c = jb->first;
        if (c) {
            pthread_mutex_unlock(&x->lock);
            if (c->off > off)
                return 1; /* read before: decode again */
            /* Only this thread frees chunks, and a queued chunk no longer changes. */
            size_t n = (size_t)xz_min64(len, c->off + c->len - off);
            memcpy(buf, c->data + (off - c->off), n);
            *got = n;
            return 0;
        }
        if (jb->state == JOB_DONE) {
            pthread_mutex_unlock(&x->lock);
            return 1;
        }
        if (jb->state == JOB_FAILED) {
            *err = jb->error;
            pthread_mutex_unlock(&x->lock);
            return -1;
        }
        pthread_cond_wait(&x->changed, &x->lock);
    }
}

/* Stop the workers and forget the plan. */
static void plan_stop(struct xzi *x)
{
    if (!x->planned)
        return;
    pthread_mutex_lock(&x->lock);
    x->stop = true;
    pthread_cond_broadcast(&x->changed);
    pthread_mutex_unlock(&x->lock);
    for (unsigned i = 0; i < x->nworkers; i++) {
        pthread_join(x->workers[i].thread, NULL);
        xz_blockdec_end(&x->workers[i].d);
        free(x->workers[i].d.inbuf);
        free(x->workers[i].scratch);
    }
    for (size_t j = 0; j < x->njobs; j++)
        drop_chunks(x, &x->jobs[j], UINT64_MAX);
    free(x->workers);
    free(x->jobs);
    free(x->areas);
    x->workers = NULL;
    x->jobs = NULL;
    x->areas = NULL;
    x->nworkers = 0;
    x->njobs = x->nareas = 0;
    x->planned = false;
}

static int area_cmp(const void *a, const void *b)
{
    const struct bk_area *p = a, *q = b;
    return p->start < q->start ? -1 : p->start > q->start;
}

/* The areas clipped to the image, sorted and merged. */
static int set_areas(struct xzi *x, const struct bk_area *areas, size_t count, struct bk_error *err)
{
    x->areas = malloc((count ? count : 1) * sizeof *x->areas);
    if (!x->areas)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t s = areas[i].start, e = xz_min64(areas[i].end, x->size);
        if (s < e)
            x->areas[n++] = (struct bk_area){s, e};
    }
    qsort(x->areas, n, sizeof *x->areas, area_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && x->areas[i].start <= x->areas[m - 1].end) {
            if (x->areas[i].end > x->areas[m - 1].end)
                x->areas[m - 1].end = x->areas[i].end;
        } else {
            x->areas[m++] = x->areas[i];
        }
    }
    x->nareas = m;
    return 0;
}

/* One job per block that meets an area, in order. */
static int set_jobs(struct xzi *x, struct bk_error *err)
{
    size_t cap = 0;
    lzma_index_iter it;
    lzma_index_iter_init(&it, x->index);
    for (size_t a = 0; a < x->nareas; a++) {
        if (lzma_index_iter_locate(&it, x->areas[a].start))
            break;
        for (;;) {
            struct xz_blk b;
            xz_blk_from(&it, &b);
            if (x->njobs == 0 || x->jobs[x->njobs - 1].b.uoff < b.uoff) {
                if (x->njobs == cap) {
                    cap = cap ? 2 * cap : 64;
                    struct job *nj = realloc(x->jobs, cap * sizeof *nj);
                    if (!nj)
                        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
                    x->jobs = nj;
                }
                x->jobs[x->njobs++] = (struct job){.b = b, .state = JOB_QUEUED};
            }
            if (b.uoff + b.usize >= x->areas[a].end ||
                lzma_index_iter_next(&it, LZMA_INDEX_ITER_NONEMPTY_BLOCK))
                break;
        }
    }
    return 0;
}

static int xzi_plan(struct bk_source *src, const struct bk_area *areas, size_t count,
                    struct bk_error *err)
{
    struct xzi *x = src->priv;
    plan_stop(x);
    /* The workers take over; the on-demand decoder's memory is not needed meanwhile. */
    xz_blockdec_end(&x->cur);
    x->planned = true;
    x->stop = false;
    x->next_job = x->granted = x->head = 0;
    x->fail_from = NO_FAILURE;
    x->used = 0;
    if (set_areas(x, areas, count, err) < 0 || set_jobs(x, err) < 0) {
        plan_stop(x);
        return -1;
    }
    unsigned n = x->cpus < MAX_WORKERS ? x->cpus : MAX_WORKERS;
    if (n > x->njobs)
        n = (unsigned)x->njobs;
    x->workers = calloc(n ? n : 1, sizeof *x->workers);
    if (!x->workers) {
        plan_stop(x);
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &x->workers[i];
        w->x = x;
        xz_blockdec_init(&w->d);
        w->d.inbuf = malloc(XZ_IO_BYTES);
        w->scratch = malloc(XZ_IO_BYTES);
        if (!w->d.inbuf || !w->scratch) {
            free(w->d.inbuf);
            free(w->scratch);
            break;
        }
        int e = pthread_create(&w->thread, NULL, worker_main, w);
        if (e != 0) {
            free(w->d.inbuf);
            free(w->scratch);
            if (i == 0) {
                plan_stop(x);
                return bk_error_set(err, BK_E_IO, e, "%s: cannot start a decoding thread",
                                    x->in->name);
            }
            break;
        }
        x->nworkers++;
    }
    if (n > 0 && x->nworkers == 0) {
        plan_stop(x);
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    return 0;
}

/* --- the source ------------------------------------------------------------------ */

/* Decode LEN bytes at OFF (within one block) in the caller's thread. */
static int demand_read(struct xzi *x, uint8_t *buf, size_t len, uint64_t off, size_t *got,
                       struct bk_error *err)
{
    struct xz_blockdec *d = &x->cur;
    if (!d->inbuf && !(d->inbuf = malloc(XZ_IO_BYTES)))
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    if (!x->scratch && !(x->scratch = malloc(XZ_IO_BYTES)))
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    /* Go on with the block being decoded when OFF is ahead in it; else start over. */
    if (!d->live || d->finished || off < d->b.uoff + d->strm.total_out ||
        off >= d->b.uoff + d->b.usize) {
        lzma_index_iter it;
        lzma_index_iter_init(&it, x->index);
        if (lzma_index_iter_locate(&it, off)) {
            *got = 0;
            return 0;
        }
        struct xz_blk b;
        xz_blk_from(&it, &b);
        uint64_t mem;
        if (xz_blockdec_header(x->in, d, &b, &mem, err) < 0 ||
            xz_blockdec_start(x->in, d, err) < 0) {
            xz_blockdec_end(d);
            return -1;
        }
    }
    uint64_t rel = off - d->b.uoff;
    size_t n = (size_t)xz_min64(len, d->b.usize - rel);
    if (xz_blockdec_skip(x->in, d, x->scratch, rel, err) < 0 ||
        xz_blockdec_decode(x->in, d, buf, n, err) < 0) {
        xz_blockdec_end(d);
        return -1;
    }
    *got = n;
    return 0;
}

static int xzi_pread(struct bk_source *src, void *buf, size_t len, uint64_t offset, size_t *got,
                     struct bk_error *err)
{
    struct xzi *x = src->priv;
    *got = 0;
    if (offset >= x->size || len == 0)
        return 0;
    len = (size_t)xz_min64(len, x->size - offset);
    if (x->planned) {
        int rc = planned_read(x, buf, len, offset, got, err);
        if (rc <= 0)
            return rc;
    }
    return demand_read(x, buf, len, offset, got, err);
}

/* Sequential reading decodes the whole image ahead on the workers. */
static int xzi_read(struct bk_source *src, void *buf, size_t len, size_t *got, struct bk_error *err)
{
    struct xzi *x = src->priv;
    if (!x->planned) {
        struct bk_area all = {0, x->size};
        if (xzi_plan(src, &all, 1, err) < 0)
            return -1;
    }
    if (xzi_pread(src, buf, len, x->rpos, got, err) < 0)
        return -1;
    x->rpos += *got;
    return 0;
}

static void xzi_close(struct bk_source *src)
{
    struct xzi *x = src->priv;
    plan_stop(x);
    xz_blockdec_end(&x->cur);
    free(x->cur.inbuf);
    free(x->scratch);
    lzma_index_end(x->index, NULL);
    pthread_mutex_destroy(&x->lock);
    pthread_cond_destroy(&x->changed);
    bk_source_close(x->in);
    free(x);
}

struct bk_source *bk_decode_xz_indexed(struct bk_source *in, struct bk_error *err)
{
    if (!in->seekable || !in->pread || in->size < 0) {
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: xz: random access needs a regular file",
                     in->name);
        return NULL;
    }
    lzma_index *index = NULL;
    if (xz_index_read(in, &index, err) < 0)
        return NULL;
    uint32_t checks = lzma_index_checks(index);
    bool checks_ok = true;
    for (unsigned id = 0; id <= LZMA_CHECK_ID_MAX; id++)
        if ((checks >> id & 1) && !lzma_check_is_supported((lzma_check)id))
            checks_ok = false;
    if (lzma_index_block_count(index) < 2 || !checks_ok ||
        lzma_index_uncompressed_size(index) > INT64_MAX) {
        /* One block cannot be split; an unknown check is for the stream decoder. */
        lzma_index_end(index, NULL);
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: xz: no random access into this file", in->name);
        return NULL;
    }
    struct xzi *x = calloc(1, sizeof *x);
    if (!x) {
        lzma_index_end(index, NULL);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    x->in = in;
    x->index = index;
    x->size = lzma_index_uncompressed_size(index);
    x->cpus = bk_cpu_count();
    xz_blockdec_init(&x->cur);
    pthread_mutex_init(&x->lock, NULL);
    pthread_cond_init(&x->changed, NULL);
    x->pub.name = in->name;
    x->pub.size = (int64_t)x->size;
    x->pub.seekable = true;
    x->pub.map_fd = -1;
    x->pub.read = xzi_read;
    x->pub.pread = xzi_pread;
    x->pub.plan = xzi_plan;
    x->pub.close = xzi_close;
    x->pub.priv = x;
    return &x->pub;
}
