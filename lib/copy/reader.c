/* SPDX-License-Identifier: MIT */
/* The reader stage: fills slots with the mapped pieces of the image, in order. */
#include "copy/pipeline.h"
#include "source/source_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct reader_pos {
    size_t range;    /* current range */
    uint64_t offset; /* next image byte to deliver */
    uint64_t end;    /* end of the current range; UINT64_MAX when unknown */
    uint64_t stream; /* position of a non-seekable source */
};

static void reader_enter_range(struct pipeline *p, struct reader_pos *r)
{
    if (p->bmap) {
        const struct bk_range *rg = &p->bmap->ranges[r->range];
        r->offset = rg->first * p->bmap->block_size;
        r->end = r->offset + bk_bmap_range_bytes(p->bmap, r->range);
    } else {
        r->offset = 0;
        r->end = p->src->size >= 0 ? (uint64_t)p->src->size : UINT64_MAX;
    }
}

/* Skip stream bytes up to OFFSET. */
static int reader_skip(struct pipeline *p, struct reader_pos *r, uint64_t offset,
                       struct bk_error *err)
{
    if (r->stream >= offset)
        return 0;
    if (bk_source_skip_full(p->src, offset - r->stream, r->stream, p->scratch, SCRATCH_BYTES, err) <
        0)
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
    if (reader_skip(p, r, p->bmap->image_size, err) < 0)
        return -1;
    size_t got;
    if (p->src->read(p->src, p->scratch, SCRATCH_BYTES, &got, err) < 0)
        return -1;
    if (got > 0)
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s: the image is longer than the %" PRIu64
                            " bytes its bmap describes: is it the right bmap?",
                            p->src->name, p->bmap->image_size);
    return 0;
}

/* Fill one slot; returns 1 when the image is complete, 0 to go on, -1 on error. */
static int reader_fill(struct pipeline *p, struct reader_pos *r, struct slot *s,
                       struct bk_error *err)
{
    size_t used = 0;
    s->nseg = 0;
    s->eof = false;
    while (r->range < pipeline_range_count(p)) {
        if (used == SLOT_BYTES || s->nseg == SLOT_SEGMENTS)
            return 0;
        uint64_t want = r->end - r->offset;
        struct segment *g = &s->seg[s->nseg];
        *g = (struct segment){.offset = r->offset, .range = r->range};
        if (want > SLOT_BYTES - used)
            want = SLOT_BYTES - used;
        size_t got = (size_t)want;
        uint8_t *buf = s->data + used;
        g->data = buf;
        if (p->src->seekable && p->bmap) {
            if (bk_source_pread_full(p->src, buf, got, r->offset, err) < 0)
                return -1;
        } else {
            if (reader_skip(p, r, r->offset, err) < 0)
                return -1;
            if (p->bmap || r->end != UINT64_MAX) {
                if (bk_source_read_full(p->src, buf, got, r->offset, err) < 0)
                    return -1;
            } else if (p->src->read(p->src, buf, got, &got, err) < 0) {
                return -1;
            }
            r->stream += got;
        }
        used += got;
        bool at_end = r->offset + got == r->end || (got == 0 && r->end == UINT64_MAX);
        if (got > 0 || at_end) {
            g->len = (uint32_t)got;
            g->range_end = at_end;
            s->nseg++;
        }
        r->offset += got;
        if (at_end) {
            r->range++;
            if (r->range < pipeline_range_count(p))
                reader_enter_range(p, r);
        }
    }
    if (p->bmap && !p->src->seekable && reader_drain(p, r, err) < 0)
        return -1;
    s->eof = true;
    return 1;
}

void *pipeline_reader_main(void *arg)
{
    struct pipeline *p = arg;
    struct bk_error err;
    bk_error_clear(&err);
    struct reader_pos r = {0};
    if (pipeline_range_count(p) > 0)
        reader_enter_range(p, &r);

    for (int done = 0; !done;) {
        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->filled - p->written >= SLOT_COUNT) {
            pipeline_wake_locked(p, true);
            pthread_cond_wait(&p->to_reader, &p->lock);
        }
        bool stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        if (pipeline_cancelled(p)) {
            bk_error_set(&err, BK_E_CANCELLED, 0, "interrupted");
            pipeline_fail(p, &err);
            break;
        }
        struct slot *s = &p->slots[p->filled % SLOT_COUNT];
        done = reader_fill(p, &r, s, &err);
        if (done < 0) {
            pipeline_fail(p, &err);
            break;
        }
        pthread_mutex_lock(&p->lock);
        p->filled++;
        pipeline_wake_locked(p, done != 0);
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}
