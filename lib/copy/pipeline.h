/* SPDX-License-Identifier: MIT */
/*
 * Internal: the copy pipeline shared by its stages. A reader (copy_read.c), hashers
 * (copy_hash.c: one per CPU, each taking every Nth range) and a writer (copy_write.c)
 * pass the slots of a ring around in order; copy.c drives them. A slot holds up to
 * SLOT_SEGMENTS pieces of ranges, so many small ranges travel together. The writer
 * trails the hashers by up to half the ring, which lets short ranges be verified
 * before they are written without stalling long ones.
 */
#ifndef BMAPKIT_COPY_PIPELINE_H
#define BMAPKIT_COPY_PIPELINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "copy/copy_impl.h"

/* Small enough that the ring stays in the CPU's cache between the stages. */
#define SLOT_BYTES (1u << 20)
#define SLOT_COUNT 8u
#define SLOT_SEGMENTS 256u
#define WRITE_LAG (SLOT_COUNT / 2)
#define WAKE_BATCH 2u
#define WRITEBACK_WINDOW (32u << 20)
#define MAX_HASHERS 8u
/* The reader's own buffer, for stream bytes it skips or checks for at the end. */
#define SCRATCH_BYTES (1u << 20)
/* Alignment of the ring, so that it can sit on x86-64's 2 MiB pages. */
#define HUGE_PAGE_BYTES (2u << 20)

struct segment {
    uint64_t offset; /* in the image */
    const uint8_t *data;
    uint32_t len;
    size_t range;
    bool range_end;
};

struct slot {
    uint8_t *data;
    size_t nseg;
    struct segment seg[SLOT_SEGMENTS];
    bool eof;
};

struct pipeline {
    const struct bk_bmap *bmap; /* NULL: whole image, one pseudo range */
    struct bk_source *src;
    struct bk_dest *dest;
    const struct bk_copy_options *opts;
    struct bk_copy_stats *stats;

    uint8_t *ring; /* the slots' data, then the scratch buffer */
    struct slot slots[SLOT_COUNT];
    uint8_t *scratch; /* SCRATCH_BYTES, the reader's */
    pthread_mutex_t lock;
    /* One per kind of waiter, so an event wakes only the thread it concerns. */
    pthread_cond_t to_reader;  /* a slot was written: room to fill */
    pthread_cond_t to_hashers; /* a slot was filled */
    pthread_cond_t to_writer;  /* slots were hashed */
    pthread_cond_t to_caller;  /* the writer saw the end */
    uint64_t filled, written;  /* slot sequence numbers */
    /* Hasher H takes the ranges whose index modulo hashers is H, in order. */
    unsigned hashers;
    uint64_t hashed[MAX_HASHERS];  /* slots hasher H has finished */
    size_t concluded[MAX_HASHERS]; /* hasher H has judged its ranges below this index */
    bool finished;                 /* the writer saw the end */
    bool stop;
    struct bk_error error;
    bool failed;

    pthread_mutex_t cb_lock;
    uint64_t done_bytes;

    /* image bytes below head_bytes, kept until the end */
    uint64_t head_bytes;
    uint8_t *head;
    struct bk_interval *head_parts;
    size_t head_count, head_cap;
    uint64_t since_writeback;
};

struct hasher_arg {
    struct pipeline *p;
    unsigned index;
};

/*
 * Wake the stages that have work waiting, with the lock held. After a step a stage
 * wakes another only for WAKE_BATCH slots or more (ANY false): every wake-up costs a
 * context switch, dear on virtual machines, and one for a single slot is soon followed
 * by another. Before it waits or ends, a stage wakes every other that has work at all
 * (ANY true), so that no work is left behind while all wait.
 */
void pipeline_wake_locked(struct pipeline *p, bool any);

/* The writer's next slot may be written. Call with the lock held. */
bool pipeline_writer_ready(const struct pipeline *p);

/* True when the caller asked to stop. */
bool pipeline_cancelled(const struct pipeline *p);

/* Record the first failure and make every stage stop; with the lock held or not. */
void pipeline_fail_locked(struct pipeline *p, const struct bk_error *e);
void pipeline_fail(struct pipeline *p, const struct bk_error *e);

/* Ranges to copy: the bmap's, or one for the whole image. */
size_t pipeline_range_count(const struct pipeline *p);

/* Slots every hasher has finished. Call with the lock held. */
uint64_t pipeline_hashed_all(const struct pipeline *p);

/* The stages' thread functions; the hashers take a struct hasher_arg. */
void *pipeline_reader_main(void *arg);
void *pipeline_hasher_main(void *arg);
void *pipeline_writer_main(void *arg);

#endif
