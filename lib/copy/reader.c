/* SPDX-License-Identifier: MIT */
/* The reader stage: fills slots with the mapped pieces of the image, in order. */
#include "copy/pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copy/unchanged.h"

/* How far a stream is read past the image's end to find what is wrong with it. */
#define DRAIN_LIMIT ((uint64_t)64 << 20)

struct reader_pos {
    size_t range;    /* current range */
    uint64_t offset; /* next image byte to deliver */
    uint64_t end;    /* end of the current range; UINT64_MAX when unknown */
    uint64_t stream; /* position of a non-seekable source */
};

static void reader_enter_range(const struct bk_copy *job, struct reader_pos *r)
{
    if (job->bmap) {
        r->offset = bk_bmap_range_start(job->bmap, r->range);
        r->end = r->offset + bk_bmap_range_bytes(job->bmap, r->range);
        if (copy_unchanged_skips(job, r->range))
            r->end = r->offset; /* one empty piece, so that its hasher concludes it */
    } else {
        r->offset = 0;
        r->end = job->src->size >= 0 ? (uint64_t)job->src->size : UINT64_MAX;
    }
}

/* Skip stream bytes up to OFFSET. */
static int reader_skip(struct pipeline *p, struct reader_pos *r, uint64_t offset,
                       struct bk_error *err)
{
    if (r->stream >= offset)
        return 0;
    if (bk_source_skip_full(p->job->src, offset - r->stream, r->stream, p->scratch, SCRATCH_BYTES,
                            err) < 0)
        return -1;
    r->stream = offset;
    return 0;
}

/*
 * Read a stream to its end after the last range: a decoder reports a truncated or
 * damaged stream only when it gets there, and the image must be as long as the bmap
 * says.
 */
static int reader_drain(struct pipeline *p, struct reader_pos *r, struct bk_error *err)
{
    const struct bk_copy *job = p->job;
    if (reader_skip(p, r, job->bmap->image_size, err) < 0)
        return -1;
    /* Damage can lengthen a stream before its check fails at the end of the block:
       read on a little, so that the decoder names the damage when that is the cause. */
    uint64_t extra = 0;
    size_t got;
    do {
        if (bk_source_read(job->src, p->scratch, SCRATCH_BYTES, &got, err) < 0)
            return -1;
        extra += got;
    } while (got > 0 && extra < DRAIN_LIMIT);
    if (extra > 0)
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s: the image is longer than the %" PRIu64
                            " bytes its bmap describes: is it the right bmap?",
                            job->src->name, job->bmap->image_size);
    return 0;
}

/* Read the next WANT bytes of the current range into BUF; *GOT says how many came. */
static int reader_piece(struct pipeline *p, struct reader_pos *r, uint8_t *buf, size_t want,
                        size_t *got, struct bk_error *err)
{
    const struct bk_copy *job = p->job;
    *got = want;
    if (job->src->seekable && job->bmap)
        return bk_source_pread_full(job->src, buf, want, r->offset, err);
    if (reader_skip(p, r, r->offset, err) < 0)
        return -1;
    int rc;
    if (job->bmap || r->end != UINT64_MAX)
        rc = bk_source_read_full(job->src, buf, want, r->offset, err);
    else
        rc = bk_source_read(job->src, buf, want, got, err);
    if (rc == 0)
        r->stream += *got;
    return rc;
}

/*
 * Fill one slot and describe it in M; returns 1 when the image is complete, 0 to go
 * on, -1 on error.
 */
static int reader_fill(struct pipeline *p, struct reader_pos *r, struct slot *s,
                       struct slot_meta *m, struct bk_error *err)
{
    const struct bk_copy *job = p->job;
    size_t used = 0;
    s->nseg = 0;
    *m = (struct slot_meta){.first_range = r->range};
    while (r->range < copy_range_count(job)) {
        if (used == SLOT_BYTES || s->nseg == SLOT_SEGMENTS)
            return 0;
        uint64_t want = r->end - r->offset;
        struct segment *g = &s->seg[s->nseg];
        *g = (struct segment){.offset = r->offset, .range = r->range};
        if (want > SLOT_BYTES - used)
            want = SLOT_BYTES - used;
        size_t got;
        g->data = s->data + used;
        if (reader_piece(p, r, s->data + used, (size_t)want, &got, err) < 0)
            return -1;
        used += got;
        bool at_end = r->offset + got == r->end || (got == 0 && r->end == UINT64_MAX);
        if (got > 0 || at_end) {
            g->len = (uint32_t)got;
            g->range_end = at_end;
            s->nseg++;
            m->last_range = r->range;
        }
        r->offset += got;
        if (at_end) {
            r->range++;
            if (r->range < copy_range_count(job))
                reader_enter_range(job, r);
        }
    }
    if (job->bmap && !job->src->seekable && reader_drain(p, r, err) < 0)
        return -1;
    m->eof = true;
    return 1;
}

void *pipeline_reader_main(void *arg)
{
    struct pipeline *p = arg;
    struct bk_error err;
    bk_error_clear(&err);
    struct reader_pos r = {0};
    if (copy_range_count(p->job) > 0)
        reader_enter_range(p->job, &r);

    for (int done = 0; !done;) {
        pthread_mutex_lock(&p->lock);
        while (!p->state.stop && !ring_reader_may_fill(&p->state)) {
            pipeline_wake_locked(p, true);
            pthread_cond_wait(&p->to_reader, &p->lock);
        }
        bool stop = p->state.stop;
        unsigned slot = ring_slot(&p->state, p->state.filled);
        pthread_mutex_unlock(&p->lock);
        if (stop || pipeline_check_cancel(p))
            break;
        struct slot_meta m;
        done = reader_fill(p, &r, &p->slots[slot], &m, &err);
        if (done < 0) {
            pipeline_fail(p, &err);
            break;
        }
        m.empty = p->slots[slot].nseg == 0;
        pthread_mutex_lock(&p->lock);
        ring_filled(&p->state, &m);
        pipeline_wake_locked(p, done != 0);
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}
