/* SPDX-License-Identifier: MIT */
/* The reader stage: fills slots with the mapped pieces of the image (order: lanes.h). */
#include "copy/lanes.h"
#include "copy/pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copy/unchanged.h"

/* How far a stream is read past the image's end to find what is wrong with it. */
#define DRAIN_LIMIT ((uint64_t)64 << 20)
/* Ranges this long are read side by side where the source allows: a shorter one is
   hashed while the ring already holds its neighbours, which other hashers check. It
   must fit in half of the ring, so that a shorter range is held whole. */
#define SIDE_BY_SIDE_BYTES ((uint64_t)4 << 20)
_Static_assert(SIDE_BY_SIDE_BYTES <= (uint64_t)SLOT_COUNT * SLOT_BYTES / 2,
               "a range read in order must fit in half of the ring");

struct reader_pos {
    struct lanes order; /* with a bmap: the next piece of which range */
    uint64_t offset;    /* without: next image byte to deliver */
    uint64_t end;       /* without: the image's end; UINT64_MAX when unknown */
    bool whole_done;    /* without: the image was read to its end */
    uint64_t stream;    /* position of a non-seekable source */
};

/* A range the destination holds already (skip_unchanged) is read as one empty piece, so
   that its hasher concludes it. */
static uint64_t range_len(const void *ctx, size_t i)
{
    const struct bk_copy *job = ctx;
    return copy_unchanged_skips(job, i) ? 0 : bk_bmap_range_bytes(job->bmap, i);
}

/*
 * Ranges read side by side: one per hasher where reading out of order costs little, a
 * local file. A stream cannot go back, a network source would start a request for each
 * turn, and a decoder works ahead in the order the plan gave it.
 */
static unsigned side_by_side(const struct bk_copy *job, unsigned hashers)
{
    return pipeline_source_is_local(job) ? hashers : 1;
}

static void reader_start(const struct pipeline *p, struct reader_pos *r)
{
    const struct bk_copy *job = p->job;
    /* A lane's turn is one slot, so that the hashers of ranges read side by side
       alternate. */
    if (job->bmap)
        lanes_init(&r->order, job->bmap->range_count, side_by_side(job, p->state.hashers),
                   p->state.hashers, SIDE_BY_SIDE_BYTES, p->slot_bytes, range_len, job);
    else
        r->end = job->src->size >= 0 ? (uint64_t)job->src->size : UINT64_MAX;
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

/* Read WANT image bytes at OFFSET into BUF; *GOT says how many came. */
static int reader_piece(struct pipeline *p, struct reader_pos *r, uint64_t offset, uint8_t *buf,
                        size_t want, size_t *got, struct bk_error *err)
{
    const struct bk_copy *job = p->job;
    *got = want;
    if (job->src->seekable && job->bmap)
        return bk_source_pread_full(job->src, buf, want, offset, err);
    if (reader_skip(p, r, offset, err) < 0)
        return -1;
    int rc;
    if (job->bmap || r->end != UINT64_MAX)
        rc = bk_source_read_full(job->src, buf, want, offset, err);
    else
        rc = bk_source_read(job->src, buf, want, got, err);
    if (rc == 0)
        r->stream += *got;
    return rc;
}

/*
 * Fill one slot with pieces of the bmap's ranges and describe it in M; returns 1 when
 * the image is complete, 0 to go on, -1 on error.
 */
static int reader_fill_ranges(struct pipeline *p, struct reader_pos *r, struct slot *s,
                              struct slot_meta *m, struct bk_error *err)
{
    const struct bk_copy *job = p->job;
    size_t used = 0;
    while (!lanes_done(&r->order)) {
        if (used == p->slot_bytes || s->nseg == SLOT_SEGMENTS)
            return 0;
        struct lane_piece pc;
        lanes_next(&r->order, p->slot_bytes - used, &pc);
        uint64_t offset = bk_bmap_range_start(job->bmap, pc.range) + pc.at;
        size_t got;
        if (reader_piece(p, r, offset, s->data + used, (size_t)pc.len, &got, err) < 0)
            return -1;
        s->seg[s->nseg++] = (struct segment){.offset = offset,
                                             .data = s->data + used,
                                             .len = (uint32_t)pc.len,
                                             .range = pc.range,
                                             .owner = pc.owner,
                                             .range_end = pc.range_end};
        ring_meta_add(m, pc.owner, pc.range);
        used += (size_t)pc.len;
    }
    if (!job->src->seekable && reader_drain(p, r, err) < 0)
        return -1;
    m->eof = true;
    return 1;
}

/* Fill one slot with the whole image (no bmap), as reader_fill_ranges. */
static int reader_fill_whole(struct pipeline *p, struct reader_pos *r, struct slot *s,
                             struct slot_meta *m, struct bk_error *err)
{
    size_t used = 0;
    while (!r->whole_done) {
        if (used == p->slot_bytes || s->nseg == SLOT_SEGMENTS)
            return 0;
        uint64_t want = r->end - r->offset;
        if (want > p->slot_bytes - used)
            want = p->slot_bytes - used;
        size_t got;
        if (reader_piece(p, r, r->offset, s->data + used, (size_t)want, &got, err) < 0)
            return -1;
        bool at_end = r->offset + got == r->end || (got == 0 && r->end == UINT64_MAX);
        if (got > 0 || at_end) {
            s->seg[s->nseg++] = (struct segment){.offset = r->offset,
                                                 .data = s->data + used,
                                                 .len = (uint32_t)got,
                                                 .range_end = at_end};
            ring_meta_add(m, 0, 0);
        }
        used += got;
        r->offset += got;
        r->whole_done = at_end;
    }
    m->eof = true;
    return 1;
}

static int reader_fill(struct pipeline *p, struct reader_pos *r, struct slot *s,
                       struct slot_meta *m, struct bk_error *err)
{
    s->nseg = 0;
    *m = (struct slot_meta){0};
    if (p->job->bmap)
        return reader_fill_ranges(p, r, s, m, err);
    return reader_fill_whole(p, r, s, m, err);
}

void *pipeline_reader_main(void *arg)
{
    struct pipeline *p = arg;
    struct bk_error err;
    bk_error_clear(&err);
    struct reader_pos r = {0};
    reader_start(p, &r);

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
