/* SPDX-License-Identifier: MIT */
#include "copy/ring_state.h"

#include <string.h>

void ring_init(struct ring_state *r, unsigned slots, unsigned hashers)
{
    memset(r, 0, sizeof *r);
    r->slots = slots > RING_MAX_SLOTS ? RING_MAX_SLOTS : slots ? slots : 1;
    r->write_lag = r->slots / 2 ? r->slots / 2 : 1;
    r->wake_batch = 2;
    r->hashers = hashers > RING_MAX_HASHERS ? RING_MAX_HASHERS : hashers ? hashers : 1;
    r->writers = r->live_writers = 1;
    bk_error_clear(&r->error);
}

void ring_set_writers(struct ring_state *r, unsigned writers)
{
    r->writers = writers > RING_MAX_WRITERS ? RING_MAX_WRITERS : writers ? writers : 1;
    r->live_writers = r->writers;
}

bool ring_reader_may_fill(const struct ring_state *r)
{
    return r->filled - r->written < r->slots;
}

void ring_filled(struct ring_state *r, const struct slot_meta *m)
{
    r->meta[ring_slot(r, r->filled)] = *m;
    r->filled++;
}

bool ring_hasher_may_hash(const struct ring_state *r, unsigned h)
{
    return r->hashed[h] < r->filled;
}

void ring_hashed(struct ring_state *r, unsigned h)
{
    r->hashed[h]++;
}

void ring_concluded(struct ring_state *r, unsigned h, size_t range)
{
    r->concluded[h] = range + 1;
}

uint64_t ring_hashed_all(const struct ring_state *r)
{
    uint64_t n = r->hashed[0];
    for (unsigned h = 1; h < r->hashers; h++)
        if (r->hashed[h] < n)
            n = r->hashed[h];
    return n;
}

static bool slot_judged(const struct ring_state *r, const struct slot_meta *m)
{
    for (unsigned h = 0; h < r->hashers; h++)
        if ((m->owners & 1u << h) && r->concluded[h] <= m->last_of[h])
            return false;
    return true;
}

bool ring_writer_may_write_by(const struct ring_state *r, unsigned w)
{
    uint64_t hashed = ring_hashed_all(r), pos = r->wpos[w];
    if (r->wgone[w] || r->wfinished[w] || pos >= hashed)
        return false;
    const struct slot_meta *m = &r->meta[ring_slot(r, pos)];
    if (hashed - pos >= r->write_lag || m->eof || m->empty)
        return true;
    return slot_judged(r, m);
}

bool ring_writer_may_write(const struct ring_state *r)
{
    return ring_writer_may_write_by(r, 0);
}

/* The slowest live writer sets what the reader may refill and what progress shows. */
static void ring_update_slowest(struct ring_state *r)
{
    bool any = false, finished = true;
    uint64_t pos = 0, bytes = 0;
    for (unsigned w = 0; w < r->writers; w++) {
        if (r->wgone[w])
            continue;
        if (!any || r->wpos[w] < pos)
            pos = r->wpos[w];
        if (!any || r->wbytes[w] < bytes)
            bytes = r->wbytes[w];
        finished = finished && r->wfinished[w];
        any = true;
    }
    if (!any)
        return;
    r->written = pos;
    r->done_bytes = bytes;
    r->finished = finished;
}

void ring_written_by(struct ring_state *r, unsigned w, uint64_t bytes)
{
    r->wfinished[w] = r->meta[ring_slot(r, r->wpos[w])].eof;
    r->wpos[w]++;
    r->wbytes[w] += bytes;
    ring_update_slowest(r);
}

void ring_written(struct ring_state *r, uint64_t bytes)
{
    ring_written_by(r, 0, bytes);
}

unsigned ring_drop_writer(struct ring_state *r, unsigned w)
{
    if (!r->wgone[w]) {
        r->wgone[w] = true;
        r->live_writers--;
        ring_update_slowest(r);
    }
    return r->live_writers;
}

void ring_fail(struct ring_state *r, const struct bk_error *e)
{
    if (!r->failed) {
        r->failed = true;
        r->error = *e;
    }
    r->stop = true;
}

unsigned ring_wakeups(const struct ring_state *r, bool any)
{
    uint64_t need = any ? 1 : r->wake_batch;
    unsigned wake = 0;
    if (r->slots - (r->filled - r->written) >= need)
        wake |= RING_WAKE_READER;
    for (unsigned h = 0; h < r->hashers; h++) {
        if (r->filled - r->hashed[h] >= need) {
            wake |= RING_WAKE_HASHERS;
            break;
        }
    }
    uint64_t hashed = ring_hashed_all(r);
    for (unsigned w = 0; w < r->writers; w++) {
        if (hashed - r->wpos[w] >= need && ring_writer_may_write_by(r, w)) {
            wake |= RING_WAKE_WRITER;
            break;
        }
    }
    return wake;
}
