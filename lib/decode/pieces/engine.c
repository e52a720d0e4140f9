/* SPDX-License-Identifier: MIT */
/*
 * Random access into a compressed file cut into pieces that decode on their own (xz
 * blocks, zstd frames), given where each piece lies in the file and in the image. Any
 * image byte can then be found in its piece and that piece decoded alone: pieces that
 * hold nothing the copy needs are never decoded, and the planned ones are decoded on
 * several threads at once.
 *
 * Damage inside a piece that holds no mapped data goes undetected, and the copy
 * succeeds. This is deliberate: such a piece is never decoded, and its bytes lie outside
 * every mapped range, so they cannot reach the destination; the mapped data is still
 * checked by its pieces' integrity checks and by the bmap's range checksums. Only
 * decoding every piece (what the stream decoders do) would find it, at the cost this
 * reader exists to avoid. A copy without a bmap reads every piece, so it does fail.
 *
 * Planned reading: plan() lists the pieces that meet a mapped area ("jobs", ascending)
 * and starts workers that decode them in order. A worker keeps only the decoded bytes
 * that lie in mapped areas, in chunks queued on the job, and hands a job's last chunk
 * over only once the piece's integrity check has been verified, so no reader can take
 * all of a damaged piece's data without seeing the error. pread() takes the bytes from
 * the queues, freeing chunks as it moves past them; anything not planned (or read a
 * second time) is decoded on demand, in the caller's thread.
 *
 * Memory: workers share MEM_BUDGET (160 MiB) for their decoders (what the format's
 * header op asks for: an LZMA2 dictionary, a zstd window) and for decoded bytes waiting
 * for the reader. Decoders are granted in job order, so pieces are started in order. The
 * job the reader is waiting for may always go on: it may start a decoder that alone
 * exceeds the budget and may hold two chunks beyond it. Workers start no job more than
 * two per worker ahead of the one the reader is at: when decoding outruns the copy (zstd
 * does), the budget would otherwise fill with bytes that only wait, and every new chunk
 * costs page faults. Freed chunks are kept for reuse until the source is closed. Each
 * worker also has PIECES_IO_BYTES of scratch and its decoder as much input (at most 8 workers:
 * 4 MiB), and on-demand reading one more decoder of its own.
 */
#include "decode/pieces/engine.h"
#include "common/cpus.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int pieces_read_at(struct bk_source *in, const char *format, void *buf, size_t len, uint64_t off,
                   struct bk_error *err)
{
    uint8_t *p = buf;
    while (len > 0) {
        size_t got = 0;
        if (bk_source_pread(in, p, len, off, &got, err) < 0)
            return -1;
        if (got == 0)
            return bk_error_set(err, BK_E_FORMAT, 0,
                                "%s: %s: the file ends early (truncated) at byte %" PRIu64,
                                in->name, format, off);
        p += got;
        len -= got;
        off += got;
    }
    return 0;
}

/* --- planned decoding: the reader ------------------------------------------------ */

/* Free the chunks of JB that end at or before OFF. Call locked. */
static void drop_chunks(struct pieces *ps, struct job *jb, uint64_t off)
{
    bool freed = false;
    while (jb->first && jb->first->off + jb->first->len <= off) {
        struct chunk *c = jb->first;
        jb->first = c->next;
        if (!jb->first)
            jb->last = NULL;
        pieces_free_chunk(ps, jb, c);
        freed = true;
    }
    if (freed)
        pthread_cond_broadcast(&ps->changed);
}

/* The job from the head on whose piece holds OFF, or njobs. Call locked. */
static size_t find_job(const struct pieces *ps, uint64_t off)
{
    size_t lo = ps->head, hi = ps->njobs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct piece *p = &ps->pieces[ps->jobs[mid].piece];
        if (p->uoff + p->usize <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ps->njobs && ps->pieces[ps->jobs[lo].piece].uoff <= off ? lo : ps->njobs;
}

/* Serve a read from the workers' chunks: 0 served, 1 not planned (decode on demand). */
static int planned_read(struct pieces *ps, uint8_t *buf, size_t len, uint64_t off, size_t *got,
                        struct bk_error *err)
{
    pthread_mutex_lock(&ps->lock);
    size_t k = find_job(ps, off);
    size_t a = pieces_area_after(ps, off);
    if (k == ps->njobs || a == ps->nareas || ps->areas[a].start > off) {
        pthread_mutex_unlock(&ps->lock);
        return 1;
    }
    /* Jobs passed over must still finish: their errors are not to be lost. */
    while (ps->head < k) {
        struct job *h = &ps->jobs[ps->head];
        drop_chunks(ps, h, UINT64_MAX);
        if (h->state == JOB_DONE) {
            ps->head++;
            pthread_cond_broadcast(&ps->changed);
        } else if (h->state == JOB_FAILED) {
            *err = h->error;
            pthread_mutex_unlock(&ps->lock);
            return -1;
        } else {
            pthread_cond_wait(&ps->changed, &ps->lock);
        }
    }
    struct job *jb = &ps->jobs[k];
    for (;;) {
        drop_chunks(ps, jb, off);
        struct chunk *c = jb->first;
        if (c) {
            pthread_mutex_unlock(&ps->lock);
            if (c->off > off)
                return 1; /* read before: decode again */
            /* Only this thread frees chunks, and a queued chunk no longer changes. */
            size_t n = (size_t)bk_min_u64(len, c->off + c->len - off);
            memcpy(buf, c->data + (off - c->off), n);
            *got = n;
            return 0;
        }
        if (jb->state == JOB_DONE) {
            pthread_mutex_unlock(&ps->lock);
            return 1;
        }
        if (jb->state == JOB_FAILED) {
            *err = jb->error;
            pthread_mutex_unlock(&ps->lock);
            return -1;
        }
        pthread_cond_wait(&ps->changed, &ps->lock);
    }
}

static void worker_free(struct pieces *ps, struct worker *w)
{
    if (w->d.dec)
        ps->ops->destroy(w->d.dec);
    free(w->scratch);
}

/* Stop the workers and forget the plan. */
static void plan_stop(struct pieces *ps)
{
    if (!ps->planned)
        return;
    pthread_mutex_lock(&ps->lock);
    ps->stop = true;
    pthread_cond_broadcast(&ps->changed);
    pthread_mutex_unlock(&ps->lock);
    for (unsigned i = 0; i < ps->nworkers; i++) {
        pthread_join(ps->workers[i].thread, NULL);
        worker_free(ps, &ps->workers[i]);
    }
    for (size_t j = 0; j < ps->njobs; j++)
        drop_chunks(ps, &ps->jobs[j], UINT64_MAX);
    free(ps->workers);
    free(ps->jobs);
    free(ps->areas);
    ps->workers = NULL;
    ps->jobs = NULL;
    ps->areas = NULL;
    ps->nworkers = 0;
    ps->njobs = ps->nareas = 0;
    ps->planned = false;
}

static int area_cmp(const void *a, const void *b)
{
    const struct bk_area *p = a, *q = b;
    return p->start < q->start ? -1 : p->start > q->start;
}

/* The areas clipped to the image, sorted and merged. */
static int set_areas(struct pieces *ps, const struct bk_area *areas, size_t count,
                     struct bk_error *err)
{
    ps->areas = malloc((count ? count : 1) * sizeof *ps->areas);
    if (!ps->areas)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t s = areas[i].start, e = bk_min_u64(areas[i].end, ps->size);
        if (s < e)
            ps->areas[n++] = (struct bk_area){s, e};
    }
    qsort(ps->areas, n, sizeof *ps->areas, area_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && ps->areas[i].start <= ps->areas[m - 1].end) {
            if (ps->areas[i].end > ps->areas[m - 1].end)
                ps->areas[m - 1].end = ps->areas[i].end;
        } else {
            ps->areas[m++] = ps->areas[i];
        }
    }
    ps->nareas = m;
    return 0;
}

/* One job per piece that meets an area, in order. */
static int set_jobs(struct pieces *ps, struct bk_error *err)
{
    size_t cap = 0;
    for (size_t a = 0; a < ps->nareas; a++) {
        for (size_t i = pieces_piece_after(ps, ps->areas[a].start);
             i < ps->npieces && ps->pieces[i].uoff < ps->areas[a].end; i++) {
            if (ps->njobs > 0 && ps->jobs[ps->njobs - 1].piece >= i)
                continue;
            if (ps->njobs == cap) {
                cap = cap ? 2 * cap : 64;
                struct job *nj = realloc(ps->jobs, cap * sizeof *nj);
                if (!nj)
                    return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
                ps->jobs = nj;
            }
            ps->jobs[ps->njobs++] = (struct job){.piece = i, .state = JOB_QUEUED};
        }
    }
    return 0;
}

/*
 * Tell the compressed file which of its bytes the jobs read: their pieces, joined where
 * they follow one another. A file that fetches (a URL) fetches those ahead, and when
 * every piece is needed that is the file less its headers and index, as streaming it.
 */
static int plan_input(struct pieces *ps, struct bk_error *err)
{
    struct bk_area *c = malloc((ps->njobs ? ps->njobs : 1) * sizeof *c);
    if (!c)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    size_t n = 0;
    for (size_t j = 0; j < ps->njobs; j++) {
        const struct piece *p = &ps->pieces[ps->jobs[j].piece];
        if (n > 0 && c[n - 1].end == p->coff)
            c[n - 1].end = p->coff + p->csize;
        else
            c[n++] = (struct bk_area){p->coff, p->coff + p->csize};
    }
    int rc = bk_source_plan(ps->in, c, n, err);
    free(c);
    return rc;
}

static int pieces_plan(struct bk_source *src, const struct bk_area *areas, size_t count,
                       struct bk_error *err)
{
    struct pieces *ps = src->priv;
    plan_stop(ps);
    /* The workers take over; the on-demand decoder's memory is not needed meanwhile. */
    pieces_pdec_end(ps, &ps->cur);
    ps->planned = true;
    ps->stop = false;
    ps->next_job = ps->granted = ps->head = 0;
    ps->fail_from = NO_FAILURE;
    ps->used = 0;
    if (set_areas(ps, areas, count, err) < 0 || set_jobs(ps, err) < 0 || plan_input(ps, err) < 0) {
        plan_stop(ps);
        return -1;
    }
    unsigned n = ps->cpus < MAX_WORKERS ? ps->cpus : MAX_WORKERS;
    if (n > ps->njobs)
        n = (unsigned)ps->njobs;
    ps->ahead = (size_t)AHEAD_PER_WORKER * n;
    ps->workers = calloc(n ? n : 1, sizeof *ps->workers);
    if (!ps->workers) {
        plan_stop(ps);
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &ps->workers[i];
        w->ps = ps;
        w->d.dec = ps->ops->create(ps->in, ps->ctx);
        w->scratch = malloc(PIECES_IO_BYTES);
        if (!w->d.dec || !w->scratch) {
            worker_free(ps, w);
            break;
        }
        int e = pthread_create(&w->thread, NULL, pieces_worker_main, w);
        if (e != 0) {
            worker_free(ps, w);
            if (i == 0) {
                plan_stop(ps);
                return bk_error_set(err, BK_E_IO, e, "%s: cannot start a decoding thread",
                                    ps->in->name);
            }
            break;
        }
        ps->nworkers++;
    }
    if (n > 0 && ps->nworkers == 0) {
        plan_stop(ps);
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    return 0;
}

/* --- the source ------------------------------------------------------------------ */

/* Decode LEN bytes at OFF (within one piece) in the caller's thread. */
static int demand_read(struct pieces *ps, uint8_t *buf, size_t len, uint64_t off, size_t *got,
                       struct bk_error *err)
{
    struct pdec *d = &ps->cur;
    if (!d->dec && !(d->dec = ps->ops->create(ps->in, ps->ctx)))
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    if (!ps->scratch && !(ps->scratch = malloc(PIECES_IO_BYTES)))
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    /* Go on with the piece being decoded when OFF is ahead in it; else start over. */
    if (!d->live || d->done == d->p->usize || off < d->p->uoff + d->done ||
        off >= d->p->uoff + d->p->usize) {
        size_t i = pieces_piece_after(ps, off);
        if (i == ps->npieces) {
            *got = 0;
            return 0;
        }
        uint64_t mem;
        if (pieces_pdec_header(ps, d, i, &mem, err) < 0 || pieces_pdec_start(ps, d, err) < 0) {
            pieces_pdec_end(ps, d);
            return -1;
        }
    }
    uint64_t rel = off - d->p->uoff;
    size_t n = (size_t)bk_min_u64(len, d->p->usize - rel);
    if (pieces_pdec_skip(ps, d, ps->scratch, rel, err) < 0 ||
        pieces_pdec_decode(ps, d, buf, n, err) < 0) {
        pieces_pdec_end(ps, d);
        return -1;
    }
    *got = n;
    return 0;
}

static int pieces_pread(struct bk_source *src, void *buf, size_t len, uint64_t offset, size_t *got,
                        struct bk_error *err)
{
    struct pieces *ps = src->priv;
    *got = 0;
    if (offset >= ps->size || len == 0)
        return 0;
    len = (size_t)bk_min_u64(len, ps->size - offset);
    if (ps->planned) {
        int rc = planned_read(ps, buf, len, offset, got, err);
        if (rc <= 0)
            return rc;
    }
    return demand_read(ps, buf, len, offset, got, err);
}

/* Sequential reading decodes the whole image ahead on the workers. */
static int pieces_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                       struct bk_error *err)
{
    struct pieces *ps = src->priv;
    if (!ps->planned) {
        struct bk_area all = {0, ps->size};
        if (pieces_plan(src, &all, 1, err) < 0)
            return -1;
    }
    if (pieces_pread(src, buf, len, ps->rpos, got, err) < 0)
        return -1;
    ps->rpos += *got;
    return 0;
}

static void pieces_close(struct bk_source *src)
{
    struct pieces *ps = src->priv;
    plan_stop(ps);
    pieces_pdec_end(ps, &ps->cur);
    if (ps->cur.dec)
        ps->ops->destroy(ps->cur.dec);
    free(ps->scratch);
    while (ps->pool) {
        struct chunk *c = ps->pool;
        ps->pool = c->next;
        free(c);
    }
    if (ps->ops->free_ctx)
        ps->ops->free_ctx(ps->ctx);
    free(ps->pieces);
    pthread_mutex_destroy(&ps->lock);
    pthread_cond_destroy(&ps->changed);
    bk_source_close(ps->in);
    free(ps);
}

/* The pieces follow one another from image byte 0, none empty, within int64_t. */
static bool pieces_valid(const struct piece *pieces, size_t count)
{
    uint64_t next = 0;
    for (size_t i = 0; i < count; i++) {
        if (pieces[i].uoff != next || pieces[i].usize == 0 || pieces[i].csize == 0 ||
            pieces[i].usize > (uint64_t)INT64_MAX - next)
            return false;
        next += pieces[i].usize;
    }
    return true;
}

static const struct bk_source_ops pieces_ops = {
    .read = pieces_read,
    .pread = pieces_pread,
    .plan = pieces_plan,
    .close = pieces_close,
};

struct bk_source *pieces_open(struct bk_source *in, struct piece *pieces, size_t count,
                              const struct piece_ops *ops, void *ctx, struct bk_error *err)
{
    struct pieces *ps = NULL;
    if (!pieces_valid(pieces, count))
        bk_error_set(err, BK_E_INVALID, 0, "%s: %s: the pieces do not make up an image", in->name,
                     ops->format);
    else if (!(ps = calloc(1, sizeof *ps)))
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    if (!ps) {
        if (ops->free_ctx)
            ops->free_ctx(ctx);
        free(pieces);
        return NULL;
    }
    ps->in = in;
    ps->ops = ops;
    ps->ctx = ctx;
    ps->pieces = pieces;
    ps->npieces = count;
    ps->size = count ? pieces[count - 1].uoff + pieces[count - 1].usize : 0;
    ps->cpus = bk_cpu_count();
    pthread_mutex_init(&ps->lock, NULL);
    pthread_cond_init(&ps->changed, NULL);
    ps->pub.name = in->name;
    ps->pub.size = (int64_t)ps->size;
    ps->pub.seekable = true;
    ps->pub.ops = &pieces_ops;
    ps->pub.below = in;
    ps->pub.works_ahead = true;
    ps->pub.priv = ps;
    return &ps->pub;
}
