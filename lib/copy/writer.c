/* SPDX-License-Identifier: MIT */
/* The writer stage: writes verified slots, holding back the image's first bytes. */
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

static int write_segment(struct pipeline *p, const struct segment *g, struct bk_error *err)
{
    struct bk_copy *job = p->job;
    const uint8_t *data = g->data;
    uint64_t offset = g->offset, len = g->len;
    if (len == 0) /* the end of a range, or a range the destination holds already */
        return 0;
    if (offset < p->head_bytes) {
        uint64_t n = p->head_bytes - offset < len ? p->head_bytes - offset : len;
        if (keep_head(p, data, offset, n, err) < 0)
            return -1;
        data += n;
        offset += n;
        len -= n;
    }
    if (len == 0)
        return 0;
    uint64_t wrote = len;
    if (job->unchanged ? copy_unchanged_write(job, data, (size_t)len, offset, &wrote, err) < 0
                       : bk_dest_write(job->dest, data, (size_t)len, offset, err) < 0)
        return -1;
    job->stats.bytes_written += wrote;
    p->since_writeback += wrote;
    if (p->since_writeback >= WRITEBACK_WINDOW) {
        bk_dest_start_writeback(job->dest);
        p->since_writeback = 0;
    }
    return 0;
}

void *pipeline_writer_main(void *arg)
{
    struct pipeline *p = arg;
    struct bk_error err;
    bk_error_clear(&err);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->state.stop && !ring_writer_may_write(&p->state)) {
            pipeline_wake_locked(p, true);
            pthread_cond_wait(&p->to_writer, &p->lock);
        }
        bool stop = p->state.stop;
        unsigned slot = ring_slot(&p->state, p->state.written);
        bool eof = p->state.meta[slot].eof;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        const struct slot *s = &p->slots[slot];
        int rc = 0;
        uint64_t bytes = 0;
        for (size_t i = 0; i < s->nseg && rc == 0; i++) {
            rc = write_segment(p, &s->seg[i], &err);
            bytes += s->seg[i].len;
        }
        if (rc < 0) {
            pipeline_fail(p, &err);
            break;
        }
        pthread_mutex_lock(&p->lock);
        ring_written(&p->state, bytes);
        pipeline_wake_locked(p, eof);
        if (eof)
            pthread_cond_signal(&p->to_caller);
        pthread_mutex_unlock(&p->lock);
        if (eof)
            break;
    }
    return NULL;
}
