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
    bk_error_clear(&r->error);
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

bool ring_writer_may_write(const struct ring_state *r)
{
    uint64_t hashed = ring_hashed_all(r);
    if (r->written >= hashed)
        return false;
    const struct slot_meta *m = &r->meta[ring_slot(r, r->written)];
    if (hashed - r->written >= r->write_lag || m->eof || m->empty)
        return true;
    return slot_judged(r, m);
}

void ring_written(struct ring_state *r, uint64_t bytes)
{
    r->finished = r->meta[ring_slot(r, r->written)].eof;
    r->written++;
    r->done_bytes += bytes;
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
    if (ring_hashed_all(r) - r->written >= need && ring_writer_may_write(r))
        wake |= RING_WAKE_WRITER;
    return wake;
}
