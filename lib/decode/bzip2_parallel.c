/* SPDX-License-Identifier: MIT */
/*
 * bzip2 files of many streams (what pbzip2 writes: one stream per 900 kB of input)
 * decoded on every CPU. Streams start on byte boundaries with "BZh", the level and the
 * 48-bit magic of a block or of the stream end, so the file is cut into jobs of a few
 * streams at those marks; workers decode jobs ahead of the reader, which hands their
 * output out in order.
 *
 * The parallel path only ever takes a job whose streams all ended exactly where the
 * job ends. Anything else (a damaged stream, a truncated file, trailing bytes, a mark
 * that happened to be compressed data, a job larger than its output bound) makes the
 * reader go on from the start of that job with the sequential decoder, which gives the
 * file's real content or its real error, with the right offsets.
 */
#include "common/cpus.h"
#include "decode/decode.h"

#include <bzlib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MARK_BYTES 10u
#define SCAN_BYTES (256u << 10)
/* A job ends at the first mark after this many streams or compressed bytes. */
#define JOB_STREAMS 2u
#define JOB_IN_BYTES (2u << 20)
/* pbzip2's streams decode to 900 kB at most; a job over this bound goes sequential. */
#define JOB_OUT_MAX (8u << 20)
#define MAX_WORKERS 8u

static const uint8_t block_magic[6] = {0x31, 0x41, 0x59, 0x26, 0x53, 0x59};
static const uint8_t end_magic[6] = {0x17, 0x72, 0x45, 0x38, 0x50, 0x90};

enum job_state { JOB_FREE, JOB_PENDING, JOB_RUNNING, JOB_DONE, JOB_FAILED };

struct job {
    enum job_state state;
    uint64_t start, end; /* compressed bytes [start, end) */
    uint8_t *in;
    uint8_t *out;
    size_t out_len, out_cap;
};

struct bzip2_parallel {
    struct bk_source pub;
    struct bk_source *in;
    uint64_t in_size;

    /* The scanner's window of compressed bytes, at scan_at in the file. */
    uint8_t *scan;
    uint64_t scan_at;
    size_t scan_len;
    uint64_t next_start; /* where the next job starts; in_size when all are made */

    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_t threads[MAX_WORKERS];
    unsigned workers;
    bool stop;
    struct job *jobs; /* a ring of job_count */
    unsigned job_count;
    uint64_t made, taken; /* job sequence numbers: made by the reader, taken by it */
    size_t out_pos;       /* read position in job `taken` */

    /* Set once a job could not be used: everything from there on is sequential. */
    struct bk_source *sequential;
};

static bool is_mark(const uint8_t *p)
{
    return p[0] == 'B' && p[1] == 'Z' && p[2] == 'h' && p[3] >= '1' && p[3] <= '9' &&
           (memcmp(p + 4, block_magic, 6) == 0 || memcmp(p + 4, end_magic, 6) == 0);
}

/* Decode one job; false when it is not a run of whole, good streams. */
static bool job_decode(struct job *j)
{
    size_t len = (size_t)(j->end - j->start);
    size_t pos = 0;
    j->out_len = 0;
    while (pos < len) {
        if (len - pos < MARK_BYTES || !is_mark(j->in + pos))
            return false;
        bz_stream bz;
        memset(&bz, 0, sizeof bz);
        if (BZ2_bzDecompressInit(&bz, 0, 0) != BZ_OK)
            return false;
        int rc = BZ_OK;
        while (rc == BZ_OK) {
            if (j->out_len == j->out_cap) {
                size_t cap = j->out_cap ? 2 * j->out_cap : (1u << 20);
                uint8_t *o = cap <= JOB_OUT_MAX ? realloc(j->out, cap) : NULL;
                if (!o)
                    break;
                j->out = o;
                j->out_cap = cap;
            }
            bz.next_in = (char *)(j->in + pos);
            bz.avail_in = (unsigned)(len - pos);
            bz.next_out = (char *)(j->out + j->out_len);
            bz.avail_out = (unsigned)(j->out_cap - j->out_len);
            unsigned in_before = bz.avail_in, out_before = bz.avail_out;
            rc = BZ2_bzDecompress(&bz);
            pos += in_before - bz.avail_in;
            j->out_len += out_before - bz.avail_out;
            if (rc == BZ_OK && bz.avail_out != 0 && in_before == bz.avail_in &&
                out_before == bz.avail_out)
                break; /* no progress: the stream goes on past the job */
        }
        BZ2_bzDecompressEnd(&bz);
        if (rc != BZ_STREAM_END)
            return false;
    }
    return true;
}

static void *worker_main(void *arg)
{
    struct bzip2_parallel *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        struct job *j = NULL;
        for (uint64_t n = b->taken; n < b->made && !j; n++)
            if (b->jobs[n % b->job_count].state == JOB_PENDING)
                j = &b->jobs[n % b->job_count];
        if (b->stop)
            break;
        if (!j) {
            pthread_cond_wait(&b->changed, &b->lock);
            continue;
        }
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&b->lock);
        bool ok = job_decode(j);
        pthread_mutex_lock(&b->lock);
        j->state = ok ? JOB_DONE : JOB_FAILED;
        pthread_cond_broadcast(&b->changed);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* Make sure the window holds the bytes at [at, at + MARK_BYTES) when the file does. */
static int scan_fill(struct bzip2_parallel *b, uint64_t at, struct bk_error *err)
{
    if (at >= b->scan_at && at + MARK_BYTES <= b->scan_at + b->scan_len)
        return 0;
    b->scan_at = at;
    b->scan_len = 0;
    uint64_t left = b->in_size - at;
    size_t want = left < SCAN_BYTES ? (size_t)left : SCAN_BYTES;
    if (want && bk_source_pread_full(b->in, b->scan, want, at, err) < 0)
        return -1;
    b->scan_len = want;
    return 0;
}

/* The first mark at FROM or after, below UNTIL; *AT = UNTIL when there is none. */
static int mark_find(struct bzip2_parallel *b, uint64_t from, uint64_t until, uint64_t *at,
                     struct bk_error *err)
{
    uint64_t pos = from;
    while (pos < until && pos + MARK_BYTES <= b->in_size) {
        if (scan_fill(b, pos, err) < 0)
            return -1;
        /* Marks may start up to here in the window; only 'B' can begin one. */
        uint64_t limit = b->scan_at + b->scan_len - MARK_BYTES + 1;
        if (limit > until)
            limit = until;
        const uint8_t *p = memchr(b->scan + (pos - b->scan_at), 'B', (size_t)(limit - pos));
        if (!p) {
            pos = limit;
            continue;
        }
        pos = b->scan_at + (uint64_t)(p - b->scan);
        if (is_mark(p)) {
            *at = pos;
            return 0;
        }
        pos++;
    }
    *at = until;
    return 0;
}

/* The end of the job that starts at START: a mark after a few streams, or the file's end. */
static int job_end_find(struct bzip2_parallel *b, uint64_t start, uint64_t *end,
                        struct bk_error *err)
{
    uint64_t at = start;
    for (unsigned marks = 0; marks < JOB_STREAMS && at - start < JOB_IN_BYTES; marks++)
        if (mark_find(b, at + 1, b->in_size, &at, err) < 0)
            return -1;
    *end = at;
    return 0;
}

/* Hand the workers jobs until the ring is full or the file is cut up. */
static int jobs_make(struct bzip2_parallel *b, struct bk_error *err)
{
    for (;;) {
        pthread_mutex_lock(&b->lock);
        bool room = b->made - b->taken < b->job_count;
        struct job *j = &b->jobs[b->made % b->job_count];
        pthread_mutex_unlock(&b->lock);
        if (!room || b->next_start >= b->in_size)
            return 0;
        uint64_t end;
        if (job_end_find(b, b->next_start, &end, err) < 0)
            return -1;
        size_t len = (size_t)(end - b->next_start);
        uint8_t *in = realloc(j->in, len);
        if (!in)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        j->in = in;
        if (bk_source_pread_full(b->in, j->in, len, b->next_start, err) < 0)
            return -1;
        j->start = b->next_start;
        j->end = end;
        b->next_start = end;
        pthread_mutex_lock(&b->lock);
        j->state = JOB_PENDING;
        b->made++;
        pthread_cond_broadcast(&b->changed);
        pthread_mutex_unlock(&b->lock);
    }
}

static void workers_stop(struct bzip2_parallel *b)
{
    pthread_mutex_lock(&b->lock);
    b->stop = true;
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->lock);
    for (unsigned i = 0; i < b->workers; i++)
        pthread_join(b->threads[i], NULL);
    b->workers = 0;
}

/* Go on sequentially from compressed byte AT: the parallel path is over. */
static int sequential_start(struct bzip2_parallel *b, uint64_t at, struct bk_error *err)
{
    workers_stop(b);
    struct bk_source *tail = bk_source_view(b->in, at, err);
    if (!tail)
        return -1;
    b->sequential = bk_decode_bzip2_at(tail, at, err);
    if (!b->sequential) {
        bk_source_close(tail);
        return -1;
    }
    return 0;
}

static int parallel_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                         struct bk_error *err)
{
    struct bzip2_parallel *b = src->priv;
    *got = 0;
    while (!b->sequential) {
        if (jobs_make(b, err) < 0)
            return -1;
        pthread_mutex_lock(&b->lock);
        if (b->taken == b->made) {
            pthread_mutex_unlock(&b->lock);
            return 0; /* every job was handed out: the file ended with a whole stream */
        }
        struct job *j = &b->jobs[b->taken % b->job_count];
        while (j->state == JOB_PENDING || j->state == JOB_RUNNING)
            pthread_cond_wait(&b->changed, &b->lock);
        pthread_mutex_unlock(&b->lock);
        if (j->state == JOB_FAILED) {
            if (sequential_start(b, j->start, err) < 0)
                return -1;
            break;
        }
        size_t n = j->out_len - b->out_pos < len ? j->out_len - b->out_pos : len;
        memcpy(buf, j->out + b->out_pos, n);
        b->out_pos += n;
        if (b->out_pos == j->out_len) {
            b->out_pos = 0;
            pthread_mutex_lock(&b->lock);
            j->state = JOB_FREE;
            b->taken++;
            pthread_mutex_unlock(&b->lock);
        }
        if (n > 0) {
            *got = n;
            return 0;
        }
    }
    return bk_source_read(b->sequential, buf, len, got, err);
}

static void parallel_close(struct bk_source *src)
{
    struct bzip2_parallel *b = src->priv;
    workers_stop(b);
    if (b->sequential)
        bk_source_close(b->sequential);
    for (unsigned i = 0; b->jobs && i < b->job_count; i++) {
        free(b->jobs[i].in);
        free(b->jobs[i].out);
    }
    free(b->jobs);
    free(b->scan);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->changed);
    bk_source_close(b->in);
    free(b);
}

/* True when the file starts with a stream and a second one starts early enough. */
static int has_streams(struct bzip2_parallel *b, bool *several, struct bk_error *err)
{
    *several = false;
    if (b->in_size < 2 * MARK_BYTES)
        return 0;
    if (scan_fill(b, 0, err) < 0)
        return -1;
    if (!is_mark(b->scan))
        return 0;
    uint64_t until = b->in_size < JOB_IN_BYTES ? b->in_size : JOB_IN_BYTES, at;
    if (mark_find(b, 1, until, &at, err) < 0)
        return -1;
    *several = at < until;
    return 0;
}

static const struct bk_source_ops parallel_ops = {
    .read = parallel_read,
    .close = parallel_close,
};

struct bk_source *bk_decode_bzip2_parallel(struct bk_source *in, struct bk_error *err)
{
    unsigned cpus = bk_cpu_count();
    if (!in->seekable || in->size <= 0 || cpus < 2) {
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: bzip2: not decoded in parallel", in->name);
        return NULL;
    }
    struct bzip2_parallel *b = calloc(1, sizeof *b);
    if (!b) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    b->in = in;
    b->in_size = (uint64_t)in->size;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->changed, NULL);
    b->scan = malloc(SCAN_BYTES);
    unsigned workers = cpus > MAX_WORKERS ? MAX_WORKERS : cpus;
    b->job_count = workers + 1;
    b->jobs = calloc(b->job_count, sizeof *b->jobs);
    bool several = false;
    if (!b->scan || !b->jobs) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    } else if (has_streams(b, &several, err) == 0 && !several) {
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: bzip2: a single stream", in->name);
    } else if (several) {
        for (; b->workers < workers; b->workers++)
            if (pthread_create(&b->threads[b->workers], NULL, worker_main, b) != 0)
                break;
        if (b->workers > 0) {
            bk_source_init_decoder(&b->pub, in, &parallel_ops, b);
            return &b->pub;
        }
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: bzip2: no decoding threads", in->name);
    }
    /* The caller keeps IN and decodes it sequentially (or reports ERR). */
    b->in = NULL;
    workers_stop(b);
    free(b->jobs);
    free(b->scan);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->changed);
    free(b);
    return NULL;
}
