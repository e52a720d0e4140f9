/* SPDX-License-Identifier: MIT */
/*
 * Internal to source_pieces.c (the reader, planning and the source) and pieces_work.c
 * (decoding pieces, the workers): the engine's state, shared under one lock.
 */
#ifndef BMAPKIT_PIECES_ENGINE_H
#define BMAPKIT_PIECES_ENGINE_H

#include <pthread.h>
#include <stdbool.h>

#include "decode/pieces/pieces.h"

#define MAX_WORKERS 8u
#define CHUNK_BYTES ((size_t)1 << 20)
#define MEM_BUDGET ((uint64_t)160 << 20)
#define NO_FAILURE SIZE_MAX
#define AHEAD_PER_WORKER 2u

/* Decoded image bytes [off, off + len) waiting for the reader. */
struct chunk {
    struct chunk *next;
    uint64_t off;
    size_t len;
    uint8_t data[];
};

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED };

/* A planned piece. */
struct job {
    size_t piece;
    enum job_state state;
    struct chunk *first, *last; /* queued for the reader */
    uint64_t held;              /* chunk bytes allocated and not yet freed */
    struct bk_error error;
};

/* A format decoder and how far it got in its piece. */
struct pdec {
    void *dec;
    const struct piece *p; /* the piece whose header was read, or NULL */
    uint64_t done;         /* its bytes decoded so far */
    bool live;             /* started */
};

struct pieces;

struct worker {
    struct pieces *ps;
    pthread_t thread;
    struct pdec d;
    uint8_t *scratch;
};

struct pieces {
    struct bk_source pub;
    struct bk_source *in;
    const struct piece_ops *ops;
    void *ctx;
    struct piece *pieces;
    size_t npieces;
    uint64_t size;
    unsigned cpus;

    /* On-demand decoding, in the caller's thread. */
    struct pdec cur;
    uint8_t *scratch;
    uint64_t rpos; /* read() position */

    /* Planned decoding; everything below is under the lock once workers run. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool planned, stop;
    struct bk_area *areas; /* sorted, disjoint, non-empty */
    size_t nareas;
    struct job *jobs;
    size_t njobs;
    size_t next_job;    /* next job for a worker */
    size_t granted;     /* jobs below this have had their decoder memory granted */
    size_t head;        /* first job the reader may still need */
    size_t fail_from;   /* first failed job, or NO_FAILURE */
    size_t ahead;       /* jobs from the head on that workers may start */
    uint64_t used;      /* decoder and chunk memory in use */
    struct chunk *pool; /* freed chunks of CHUNK_BYTES, for reuse */
    struct worker *workers;
    unsigned nworkers;
};

/* One piece's decoding through the format's ops (pieces_work.c). */
void pieces_pdec_end(const struct pieces *ps, struct pdec *d);
int pieces_pdec_header(struct pieces *ps, struct pdec *d, size_t i, uint64_t *mem,
                       struct bk_error *err);
int pieces_pdec_start(struct pieces *ps, struct pdec *d, struct bk_error *err);
int pieces_pdec_decode(struct pieces *ps, struct pdec *d, uint8_t *out, size_t len,
                       struct bk_error *err);
int pieces_pdec_skip(struct pieces *ps, struct pdec *d, uint8_t *scratch, uint64_t target,
                     struct bk_error *err);

/* Free chunk C of job JB, keeping full-size chunks for reuse. Call locked. */
void pieces_free_chunk(struct pieces *ps, struct job *jb, struct chunk *c);

/* The first area, and the first piece, that ends after OFF (the count when none). */
size_t pieces_area_after(const struct pieces *ps, uint64_t off);
size_t pieces_piece_after(const struct pieces *ps, uint64_t off);

/* A worker thread's body; ARG is its struct worker. */
void *pieces_worker_main(void *arg);

#endif
