/* SPDX-License-Identifier: MIT */
/* The writer stage: writes verified slots, holding back the image's first bytes. */
#include "copy/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The hasher that owns RANGE has given its verdict. */
static bool range_judged(const struct pipeline *p, size_t range)
{
    return p->concluded[range % p->hashers] > range;
}

static int keep_head(struct pipeline *p, const uint8_t *data, uint64_t offset, uint64_t len,
                     struct bk_error *err)
{
    if (p->head_count == p->head_cap) {
        size_t cap = p->head_cap ? 2 * p->head_cap : 16;
        struct bk_interval *n = realloc(p->head_parts, cap * sizeof *n);
        if (!n)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        p->head_parts = n;
        p->head_cap = cap;
    }
    memcpy(p->head + offset, data, (size_t)len);
    p->head_parts[p->head_count++] = (struct bk_interval){offset, len};
    return 0;
}

static int write_segment(struct pipeline *p, const struct segment *g, struct bk_error *err)
{
    const uint8_t *data = g->data;
    uint64_t offset = g->offset, len = g->len;
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
    if (bk_dest_write(p->dest, data, (size_t)len, offset, err) < 0)
        return -1;
    p->stats->bytes_written += len;
    p->since_writeback += len;
    if (p->dest->kind == BK_DEST_BLOCKDEV && p->since_writeback >= WRITEBACK_WINDOW) {
        /* Start writing back what is dirty so a slow disk never collects gigabytes. */
        sync_file_range(p->dest->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        p->since_writeback = 0;
    }
    return 0;
}

static bool slot_writable(const struct pipeline *p, const struct slot *s)
{
    uint64_t hashed = pipeline_hashed_all(p);
    if (p->written >= hashed)
        return false;
    if (hashed - p->written >= WRITE_LAG || s->eof)
        return true;
    for (size_t i = 0; i < s->nseg; i++)
        if (!range_judged(p, s->seg[i].range))
            return false;
    return true;
}

bool pipeline_writer_ready(const struct pipeline *p)
{
    return slot_writable(p, &p->slots[p->written % SLOT_COUNT]);
}

void *pipeline_writer_main(void *arg)
{
    struct pipeline *p = arg;
    struct bk_error err;
    bk_error_clear(&err);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        struct slot *s = &p->slots[p->written % SLOT_COUNT];
        while (!p->stop && !slot_writable(p, s)) {
            pipeline_wake_locked(p, true);
            pthread_cond_wait(&p->to_writer, &p->lock);
        }
        bool stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
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
        bool eof = s->eof;
        pthread_mutex_lock(&p->lock);
        p->written++;
        p->done_bytes += bytes;
        p->finished = eof;
        pipeline_wake_locked(p, eof);
        if (eof)
            pthread_cond_signal(&p->to_caller);
        pthread_mutex_unlock(&p->lock);
        if (eof)
            break;
    }
    return NULL;
}
