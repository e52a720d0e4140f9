/* SPDX-License-Identifier: MIT */
/*
 * Internal: the copy pipeline's ring of buffers and its threads' meeting point. A
 * reader (reader.c, in the order of lanes.h), hashers (hasher.c: one per CPU, each
 * checking the ranges the reader gives it) and a writer (writer.c) pass the slots
 * around in order; driver.c starts them. The rules of
 * who may go on live in ring_state.h; this adds the buffers, the lock, one condition per
 * kind of waiter, and the stop on failure or cancellation. The stages depend on this,
 * not on each other.
 */
#ifndef BMAPKIT_COPY_PIPELINE_H
#define BMAPKIT_COPY_PIPELINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "copy/copy_impl.h"
#include "copy/ring_state.h"

/* Slots of a stream, a decoder or a URL: small, so that a slow source still moves the
   writer and the progress often. */
#define SLOT_BYTES (1u << 20)
/* Slots of a local file read side by side to one destination: fewer hand-overs between
   the stages, whose waits left the CPUs idle at times; a local image copied 5% faster
   than with 1 MiB (bench/RESULTS-hash.md). */
#define WIDE_SLOT_BYTES (4u << 20)
#define SLOT_COUNT 8u
/* With several destinations: room for their writers to drift apart a little. */
#define MANY_SLOT_COUNT RING_MAX_SLOTS
#define SLOT_SEGMENTS 256u
#define WRITEBACK_WINDOW (32u << 20)
#define MAX_HASHERS RING_MAX_HASHERS
/* The reader's own buffer, for stream bytes it skips or checks for at the end. */
#define SCRATCH_BYTES (1u << 20)
/* Alignment of the ring, so that it can sit on x86-64's 2 MiB pages. */
#define HUGE_PAGE_BYTES (2u << 20)

/* A piece of one range in a slot. */
struct segment {
    uint64_t offset; /* in the image */
    const uint8_t *data;
    uint32_t len;
    size_t range;
    unsigned owner; /* the hasher that checks it */
    bool range_end;
};

struct slot {
    uint8_t *data;
    size_t nseg;
    struct segment seg[SLOT_SEGMENTS];
};

struct pipeline {
    struct bk_copy *job;
    uint8_t *ring; /* the slots' data, then the scratch buffer */
    struct slot slots[RING_MAX_SLOTS];
    unsigned nslots;   /* SLOT_COUNT, or MANY_SLOT_COUNT for several destinations */
    size_t slot_bytes; /* SLOT_BYTES, or WIDE_SLOT_BYTES for a local file to one dest */
    uint8_t *scratch;  /* SCRATCH_BYTES, the reader's */

    pthread_mutex_t lock; /* guards state and the statistics */
    struct ring_state state;
    /* One per kind of waiter, so an event wakes only the thread it concerns. */
    pthread_cond_t to_reader;  /* a slot was written: room to fill */
    pthread_cond_t to_hashers; /* a slot was filled */
    pthread_cond_t to_writer;  /* slots were hashed */
    pthread_cond_t to_caller;  /* the writers saw the end, or a failure */

    /* Image bytes below head_bytes, kept until the end by whichever writer is first at a
       slot (head_seq: slots looked at), for every destination. */
    uint64_t head_bytes;
    uint8_t *head;
    struct head_part {
        uint64_t offset, len;
    } * head_parts;
    size_t head_count, head_cap;
    pthread_mutex_t head_lock;
    uint64_t head_seq;

    /* One per destination of the job. */
    struct writer_arg {
        struct pipeline *p;
        unsigned index;
        uint64_t since_writeback;
    } * writers;
};

/*
 * Whether JOB's image is a local file read through its bmap: its ranges may be read in
 * any order at little cost (not a stream, a decoder or a network source).
 */
bool pipeline_source_is_local(const struct bk_copy *job);

/* Set up P for JOB with HASHERS hashers. Returns 0, or -1 with ERR filled. */
int pipeline_init(struct pipeline *p, struct bk_copy *job, unsigned hashers, struct bk_error *err);
void pipeline_destroy(struct pipeline *p);

/* Wake the stages ring_wakeups names. Call with the lock held. */
void pipeline_wake_locked(struct pipeline *p, bool any);

/*
 * The same from a writer: a writer's step never lets another writer on, and with
 * several, waking them only to sleep again would cost a context switch each.
 */
void pipeline_wake_from_writer_locked(struct pipeline *p, bool any);

/* Record the first failure and make every stage stop; with the lock held or not. */
void pipeline_fail_locked(struct pipeline *p, const struct bk_error *e);
void pipeline_fail(struct pipeline *p, const struct bk_error *e);

/* Stop with BK_E_CANCELLED when the job was asked to; true then. Call without the lock. */
bool pipeline_check_cancel(struct pipeline *p);

/* The stages' thread functions (reader.c, hasher.c, writer.c). */
struct hasher_arg {
    struct pipeline *p;
    unsigned index;
};
void *pipeline_reader_main(void *arg);
void *pipeline_hasher_main(void *arg); /* takes a struct hasher_arg */
void *pipeline_writer_main(void *arg); /* takes a struct writer_arg */

/*
 * The end of one destination's copy, after its writer wrote the last slot (driver.c):
 * the head, the flushes and the read-back; its result goes to copy_dest_finish.
 */
void pipeline_dest_tail(struct pipeline *p, unsigned w);

/* Overwrite with zeros the mapped part of destination W's head, and flush (driver.c). */
int pipeline_clear_head(struct pipeline *p, unsigned w, struct bk_error *err);

#endif
