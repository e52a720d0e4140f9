/* SPDX-License-Identifier: MIT */
/*
 * Internal: the shared state of the copy pipeline, without threads. A reader fills the
 * slots of a ring in order, hashers (each owning the ranges the reader gives it) check what
 * it filled, and a writer writes slots once every hasher is past them. This unit says who may go on
 * and whom an event should wake; it calls no stage, takes no lock and starts no thread,
 * so its rules can be driven step by step in a test. The pipeline (pipeline.h) holds it
 * under its lock.
 */
#ifndef BMAPKIT_COPY_RING_STATE_H
#define BMAPKIT_COPY_RING_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bmapkit/error.h"

#define RING_MAX_SLOTS 16u
#define RING_MAX_HASHERS 8u
/* Writers, one per destination: a few words of state each. */
#define RING_MAX_WRITERS 64u

/* What the reader put into a slot, as far as the other stages need to know. */
struct slot_meta {
    bool empty;      /* no segment (only at the end) */
    unsigned owners; /* bit H: hasher H checks a segment in it */
    /* For each owner, the highest range of its segments; with a hasher's ranges judged
       in ascending order, the slot's are judged once that one is. */
    size_t last_of[RING_MAX_HASHERS];
    bool eof; /* the last slot of the copy */
};

/* A segment of RANGE, checked by hasher OWNER, went into the slot M describes. */
static inline void ring_meta_add(struct slot_meta *m, unsigned owner, size_t range)
{
    if (!(m->owners & 1u << owner) || m->last_of[owner] < range)
        m->last_of[owner] = range;
    m->owners |= 1u << owner;
}

struct ring_state {
    unsigned slots;      /* slots in the ring */
    unsigned write_lag;  /* the writer may trail the hashers by this many slots */
    unsigned wake_batch; /* slots of work that make a stage worth waking after a step */
    unsigned hashers;
    uint64_t filled, written;           /* slot sequence numbers; written: by every live writer */
    uint64_t hashed[RING_MAX_HASHERS];  /* slots hasher H has finished */
    size_t concluded[RING_MAX_HASHERS]; /* hasher H has judged its ranges below this index */
    struct slot_meta meta[RING_MAX_SLOTS];
    uint64_t done_bytes; /* bytes of written slots */
    bool finished;       /* every live writer wrote the last slot */
    bool stop;           /* every stage must stop */
    bool failed;
    struct bk_error error; /* the first failure */
    /* Per writer: slots written, their bytes, whether it wrote the last one or was
       dropped (its destination failed); written and done_bytes are the slowest live one's. */
    unsigned writers, live_writers;
    uint64_t wpos[RING_MAX_WRITERS];
    uint64_t wbytes[RING_MAX_WRITERS];
    bool wfinished[RING_MAX_WRITERS];
    bool wgone[RING_MAX_WRITERS];
};

/* Who an event concerns: bits of ring_wakeups. */
enum { RING_WAKE_READER = 1, RING_WAKE_HASHERS = 2, RING_WAKE_WRITER = 4 };

/* SLOTS slots (at most RING_MAX_SLOTS) and HASHERS hashers (1 to RING_MAX_HASHERS). */
void ring_init(struct ring_state *r, unsigned slots, unsigned hashers);

/* WRITERS writers (1 to RING_MAX_WRITERS; ring_init sets one), before any step. */
void ring_set_writers(struct ring_state *r, unsigned writers);

/* Slot index of sequence number SEQ. */
static inline unsigned ring_slot(const struct ring_state *r, uint64_t seq)
{
    return (unsigned)(seq % r->slots);
}

/* The reader has a free slot to fill (the writer is done with it). */
bool ring_reader_may_fill(const struct ring_state *r);

/* The reader filled the next slot with what M says. */
void ring_filled(struct ring_state *r, const struct slot_meta *m);

/* Hasher H has a filled slot it has not hashed. */
bool ring_hasher_may_hash(const struct ring_state *r, unsigned h);

/* Hasher H is done with its next slot. */
void ring_hashed(struct ring_state *r, unsigned h);

/*
 * Hasher H has judged RANGE (matched, or had no checksum to match). Each hasher must
 * judge its ranges in ascending order.
 */
void ring_concluded(struct ring_state *r, unsigned h, size_t range);

/* Slots every hasher has finished. */
uint64_t ring_hashed_all(const struct ring_state *r);

/*
 * The writer may write its next slot: every hasher is past it, and either every range
 * in it was judged, or the writer would otherwise trail by write_lag slots (a range
 * longer than that is written before its end is checked), or it is the last.
 */
bool ring_writer_may_write(const struct ring_state *r);

/* The writer wrote its next slot, BYTES of image data. */
void ring_written(struct ring_state *r, uint64_t bytes);

/* The same for writer W of several. */
bool ring_writer_may_write_by(const struct ring_state *r, unsigned w);
void ring_written_by(struct ring_state *r, unsigned w, uint64_t bytes);

/*
 * Writer W stops for good (its destination failed): the others go on and the reader no
 * longer waits for it. Returns the writers still live; at 0 the caller fails the ring.
 */
unsigned ring_drop_writer(struct ring_state *r, unsigned w);

/* Record a failure (the first one is kept) and make every stage stop. */
void ring_fail(struct ring_state *r, const struct bk_error *e);

/*
 * The stages that have work now. After a step a stage wakes another only for
 * wake_batch slots or more (ANY false): every wake-up costs a context switch, dear on
 * virtual machines, and one for a single slot is soon followed by another. Before it
 * waits or ends, a stage wakes every other that has work at all (ANY true), so that no
 * work is left behind while all wait.
 */
unsigned ring_wakeups(const struct ring_state *r, bool any);

#endif
