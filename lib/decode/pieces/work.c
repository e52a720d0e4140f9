/* SPDX-License-Identifier: MIT */
/*
 * The workers of source_pieces.c: each takes the next planned piece, decodes it through
 * the format's ops and queues the bytes that lie in mapped areas for the reader.
 */
#include "decode/pieces/engine.h"

#include <stdlib.h>
#include <string.h>

/* --- one piece's decoding -------------------------------------------------------- */

void pieces_pdec_end(const struct pieces *ps, struct pdec *d)
{
    if (d->dec)
        ps->ops->end(d->dec);
    d->p = NULL;
    d->live = false;
}

/* Read piece I's header; *MEM receives what decoding it takes. */
int pieces_pdec_header(struct pieces *ps, struct pdec *d, size_t i, uint64_t *mem,
                       struct bk_error *err)
{
    pieces_pdec_end(ps, d);
    *mem = 0;
    if (ps->ops->header(d->dec, &ps->pieces[i], i, mem, err) < 0)
        return -1;
    d->p = &ps->pieces[i];
    d->done = 0;
    return 0;
}

int pieces_pdec_start(struct pieces *ps, struct pdec *d, struct bk_error *err)
{
    d->live = true;
    return ps->ops->start(d->dec, err);
}

int pieces_pdec_decode(struct pieces *ps, struct pdec *d, uint8_t *out, size_t len,
                       struct bk_error *err)
{
    if (ps->ops->decode(d->dec, out, len, err) < 0)
        return -1;
    d->done += len;
    return 0;
}

/* Decode and drop the piece's bytes up to piece offset TARGET, through SCRATCH. */
int pieces_pdec_skip(struct pieces *ps, struct pdec *d, uint8_t *scratch, uint64_t target,
                     struct bk_error *err)
{
    while (d->done < target)
        if (pieces_pdec_decode(ps, d, scratch,
                               (size_t)bk_min_u64(target - d->done, PIECES_IO_BYTES), err) < 0)
            return -1;
    return 0;
}

/* --- planned decoding: the workers ----------------------------------------------- */

/* Job J is no longer wanted: closing, or an earlier job failed. Call locked. */
static bool abandoned(const struct pieces *ps, size_t j)
{
    return ps->stop || (ps->fail_from != NO_FAILURE && j > ps->fail_from);
}

/*
 * Full chunks are kept for reuse: fresh ones would have their pages faulted in again,
 * which costs as much as decoding at zstd's speed. A chunk is allocated only when none
 * is kept, so there are never more than were once in use together. Call locked.
 */
void pieces_free_chunk(struct pieces *ps, struct job *jb, struct chunk *c)
{
    ps->used -= c->len;
    jb->held -= c->len;
    if (c->len == CHUNK_BYTES) {
        c->next = ps->pool;
        ps->pool = c;
    } else {
        free(c);
    }
}

/* A chunk of LEN bytes for job J, once the budget allows; NULL when abandoned. */
static struct chunk *get_chunk(struct pieces *ps, size_t j, size_t len, struct bk_error *err)
{
    struct job *jb = &ps->jobs[j];
    pthread_mutex_lock(&ps->lock);
    while (!abandoned(ps, j) && ps->used + len > MEM_BUDGET &&
           !(j == ps->head && jb->held < 2 * CHUNK_BYTES))
        pthread_cond_wait(&ps->changed, &ps->lock);
    bool gone = abandoned(ps, j);
    struct chunk *c = NULL;
    if (!gone) {
        ps->used += len;
        jb->held += len;
        if (len == CHUNK_BYTES && ps->pool) {
            c = ps->pool;
            ps->pool = c->next;
        }
    }
    pthread_mutex_unlock(&ps->lock);
    if (gone)
        return NULL;
    if (!c)
        c = malloc(sizeof *c + len);
    if (!c) {
        pthread_mutex_lock(&ps->lock);
        ps->used -= len;
        jb->held -= len;
        pthread_mutex_unlock(&ps->lock);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    c->next = NULL;
    c->len = len;
    return c;
}

/* Queue C on JB for the reader. Call locked. */
static void queue_chunk(struct job *jb, struct chunk *c)
{
    if (jb->last)
        jb->last->next = c;
    else
        jb->first = c;
    jb->last = c;
}

static void publish(struct pieces *ps, struct job *jb, struct chunk *c)
{
    pthread_mutex_lock(&ps->lock);
    queue_chunk(jb, c);
    pthread_cond_broadcast(&ps->changed);
    pthread_mutex_unlock(&ps->lock);
}

/* The first area that ends after OFF (nareas when none). */
size_t pieces_area_after(const struct pieces *ps, uint64_t off)
{
    size_t lo = 0, hi = ps->nareas;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ps->areas[mid].end <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first piece that ends after OFF (npieces when none). */
size_t pieces_piece_after(const struct pieces *ps, uint64_t off)
{
    size_t lo = 0, hi = ps->npieces;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ps->pieces[mid].uoff + ps->pieces[mid].usize <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Skip to piece offset TARGET in steps, giving up when job J is abandoned. */
static int worker_skip(struct pieces *ps, struct worker *w, size_t j, uint64_t target,
                       struct bk_error *err)
{
    struct pdec *d = &w->d;
    while (d->done < target) {
        pthread_mutex_lock(&ps->lock);
        bool gone = abandoned(ps, j);
        pthread_mutex_unlock(&ps->lock);
        if (gone)
            return -1;
        uint64_t step = bk_min_u64(target, d->done + 4 * CHUNK_BYTES);
        if (pieces_pdec_skip(ps, d, w->scratch, step, err) < 0)
            return -1;
    }
    return 0;
}

/* Decode job J: its mapped bytes into chunks, the rest into scratch. */
static int decode_job(struct pieces *ps, struct worker *w, size_t j, struct bk_error *err)
{
    struct job *jb = &ps->jobs[j];
    const struct piece *p = &ps->pieces[jb->piece];
    struct pdec *d = &w->d;
    struct chunk *pending = NULL; /* decoded, handed over when the next one is */
    int rc = 0;
    for (size_t a = pieces_area_after(ps, p->uoff); rc == 0 && a < ps->nareas; a++) {
        if (ps->areas[a].start >= p->uoff + p->usize)
            break;
        uint64_t s = ps->areas[a].start > p->uoff ? ps->areas[a].start - p->uoff : 0;
        uint64_t e = bk_min_u64(ps->areas[a].end - p->uoff, p->usize);
        rc = worker_skip(ps, w, j, s, err);
        while (rc == 0 && d->done < e) {
            size_t n = (size_t)bk_min_u64(e - d->done, CHUNK_BYTES);
            struct chunk *c = get_chunk(ps, j, n, err);
            if (!c) {
                rc = -1;
                break;
            }
            c->off = p->uoff + d->done;
            if ((rc = pieces_pdec_decode(ps, d, c->data, n, err)) < 0) {
                pthread_mutex_lock(&ps->lock);
                pieces_free_chunk(ps, jb, c);
                pthread_mutex_unlock(&ps->lock);
                break;
            }
            if (pending)
                publish(ps, jb, pending);
            pending = c;
        }
    }
    /* Decoding to the piece's end verifies its integrity check. */
    if (rc == 0 && d->done < p->usize)
        rc = worker_skip(ps, w, j, p->usize, err);
    pthread_mutex_lock(&ps->lock);
    if (pending) {
        if (rc == 0)
            queue_chunk(jb, pending);
        else
            pieces_free_chunk(ps, jb, pending);
    }
    pthread_mutex_unlock(&ps->lock);
    return rc;
}

static void run_job(struct pieces *ps, struct worker *w, size_t j)
{
    struct job *jb = &ps->jobs[j];
    struct bk_error err;
    bk_error_clear(&err);
    uint64_t mem = 0;
    int rc = pieces_pdec_header(ps, &w->d, jb->piece, &mem, &err);

    /* Decoders are granted in job order, so that pieces start in the order needed. */
    pthread_mutex_lock(&ps->lock);
    while (!abandoned(ps, j) &&
           !(ps->granted == j && (rc < 0 || ps->used + mem <= MEM_BUDGET || j == ps->head)))
        pthread_cond_wait(&ps->changed, &ps->lock);
    bool gone = abandoned(ps, j);
    uint64_t granted_mem = 0;
    if (!gone) {
        ps->granted++;
        if (rc == 0)
            granted_mem = mem;
        ps->used += granted_mem;
        pthread_cond_broadcast(&ps->changed);
    }
    pthread_mutex_unlock(&ps->lock);

    if (gone)
        rc = -1;
    else if (rc == 0 && (rc = pieces_pdec_start(ps, &w->d, &err)) == 0)
        rc = decode_job(ps, w, j, &err);
    pieces_pdec_end(ps, &w->d);

    pthread_mutex_lock(&ps->lock);
    ps->used -= granted_mem;
    if (rc == 0) {
        jb->state = JOB_DONE;
    } else if (err.code == BK_OK) {
        /* Stopped: closing, or an earlier piece failed and this one is not needed. */
        jb->state = JOB_FAILED;
        bk_error_set(&jb->error, BK_E_CANCELLED, 0, "%s: %s: decoding stopped", ps->in->name,
                     ps->ops->format);
    } else {
        jb->state = JOB_FAILED;
        jb->error = err;
        if (ps->fail_from == NO_FAILURE || j < ps->fail_from)
            ps->fail_from = j;
    }
    pthread_cond_broadcast(&ps->changed);
    pthread_mutex_unlock(&ps->lock);
}

void *pieces_worker_main(void *arg)
{
    struct worker *w = arg;
    struct pieces *ps = w->ps;
    pthread_mutex_lock(&ps->lock);
    for (;;) {
        /* Not too far ahead of the reader: decoded bytes wait in memory until it comes. */
        while (ps->next_job < ps->njobs && !abandoned(ps, ps->next_job) &&
               ps->next_job >= ps->head + ps->ahead)
            pthread_cond_wait(&ps->changed, &ps->lock);
        if (ps->next_job >= ps->njobs || abandoned(ps, ps->next_job))
            break;
        size_t j = ps->next_job++;
        ps->jobs[j].state = JOB_RUNNING;
        pthread_mutex_unlock(&ps->lock);
        run_job(ps, w, j);
        pthread_mutex_lock(&ps->lock);
    }
    pthread_mutex_unlock(&ps->lock);
    return NULL;
}
