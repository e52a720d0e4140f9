/* SPDX-License-Identifier: MIT */
/*
 * The writer stage, one per destination: writes verified slots, holding back the image's
 * first bytes; a destination that fails is dropped and the others go on.
 */
#include "copy/pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "copy/unchanged.h"

static int keep_head(struct pipeline *p, const uint8_t *data, uint64_t offset, uint64_t len,
                     struct bk_error *err)
{
    if (p->head_count == p->head_cap) {
        size_t cap = p->head_cap ? 2 * p->head_cap : 16;
        struct head_part *n = realloc(p->head_parts, cap * sizeof *n);
        if (!n)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        p->head_parts = n;
        p->head_cap = cap;
    }
    memcpy(p->head + offset, data, (size_t)len);
    p->head_parts[p->head_count++] = (struct head_part){offset, len};
    return 0;
}

/*
 * Keep the head bytes of slot SEQ, once for all writers: the first writer there copies
 * them, under the head lock, so that any writer past the last slot finds the head whole.
 */
static int keep_slot_head(struct pipeline *p, uint64_t seq, const struct slot *s,
                          struct bk_error *err)
{
    if (s->nseg == 0 || s->seg[0].offset >= p->head_bytes)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&p->head_lock);
    if (seq >= p->head_seq) {
        for (size_t i = 0; i < s->nseg && rc == 0; i++) {
            const struct segment *g = &s->seg[i];
            if (g->offset >= p->head_bytes)
                break;
            uint64_t n = p->head_bytes - g->offset < g->len ? p->head_bytes - g->offset : g->len;
            rc = keep_head(p, g->data, g->offset, n, err);
        }
        p->head_seq = seq + 1;
    }
    pthread_mutex_unlock(&p->head_lock);
    return rc;
}

static int write_segment(struct writer_arg *w, const struct segment *g, struct bk_error *err)
{
    struct pipeline *p = w->p;
    struct copy_dest *d = &p->job->dests[w->index];
    const uint8_t *data = g->data;
    uint64_t offset = g->offset, len = g->len;
    if (len == 0) /* the end of a range, or a range the destination holds already */
        return 0;
    if (offset < p->head_bytes) {
        uint64_t n = p->head_bytes - offset < len ? p->head_bytes - offset : len;
        data += n;
        offset += n;
        len -= n;
    }
    if (len == 0)
        return 0;
    uint64_t wrote = len;
    /* Skipping what is there is for a job of one destination (bk_copy_run checks). */
    if (p->job->unchanged ? copy_unchanged_write(p->job, data, (size_t)len, offset, &wrote, err) < 0
                          : bk_dest_write(d->dest, data, (size_t)len, offset, err) < 0)
        return -1;
    d->stats.bytes_written += wrote;
    w->since_writeback += wrote;
    if (w->since_writeback >= WRITEBACK_WINDOW) {
        bk_dest_start_writeback(d->dest);
        w->since_writeback = 0;
    }
    return 0;
}

/*
 * Writer W's destination failed with ERR. With others left, it is dropped with its own
 * error; the last one fails the copy, as a single destination always did.
 */
static void writer_drop(struct writer_arg *w, const struct bk_error *err)
{
    struct pipeline *p = w->p;
    pthread_mutex_lock(&p->lock);
    unsigned live = ring_drop_writer(&p->state, w->index);
    if (live == 0) {
        pipeline_fail_locked(p, err);
        pthread_mutex_unlock(&p->lock);
        return;
    }
    /* The reader may have waited for this one; the caller may wait for the rest. */
    pipeline_wake_from_writer_locked(p, true);
    pthread_cond_signal(&p->to_caller);
    pthread_mutex_unlock(&p->lock);
    copy_dest_finish(p->job, &p->job->dests[w->index], err);
}

void *pipeline_writer_main(void *arg)
{
    struct writer_arg *w = arg;
    struct pipeline *p = w->p;
    struct bk_error err;
    bk_error_clear(&err);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->state.stop && !ring_writer_may_write_by(&p->state, w->index)) {
            pipeline_wake_from_writer_locked(p, true);
            pthread_cond_wait(&p->to_writer, &p->lock);
        }
        bool stop = p->state.stop;
        uint64_t seq = p->state.wpos[w->index];
        unsigned slot = ring_slot(&p->state, seq);
        bool eof = p->state.meta[slot].eof;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return NULL;
        const struct slot *s = &p->slots[slot];
        if (keep_slot_head(p, seq, s, &err) < 0) {
            pipeline_fail(p, &err);
            return NULL;
        }
        int rc = 0;
        uint64_t bytes = 0;
        for (size_t i = 0; i < s->nseg && rc == 0; i++) {
            rc = write_segment(w, &s->seg[i], &err);
            bytes += s->seg[i].len;
        }
        if (rc < 0) {
            writer_drop(w, &err);
            return NULL;
        }
        pthread_mutex_lock(&p->lock);
        ring_written_by(&p->state, w->index, bytes);
        pipeline_wake_from_writer_locked(p, eof);
        if (p->state.finished)
            pthread_cond_signal(&p->to_caller);
        pthread_mutex_unlock(&p->lock);
        if (eof)
            break;
    }
    pipeline_dest_tail(p, w->index);
    return NULL;
}
