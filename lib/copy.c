/* SPDX-License-Identifier: MIT */
/*
 * The copy pipeline: a reader, hashers (one per CPU, each taking every Nth range)
 * and a writer thread pass slots of a ring around in order. A slot holds up to SLOT_SEGMENTS pieces
 * of ranges, so many small ranges travel together. The writer trails the hasher by up to half the
 * ring, which lets short ranges be verified before they are written without stalling long ones.
 */
#include "bmapkit/copy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "copy_internal.h"

#define SLOT_BYTES (4u << 20)
#define SLOT_COUNT 8u
#define SLOT_SEGMENTS 256u
#define WRITE_LAG (SLOT_COUNT / 2)
#define WRITEBACK_WINDOW (32u << 20)
#define MAX_HASHERS 8u

/* Pieces at least this long are mapped from a mappable source instead of read. */
#define MAP_MIN (256u << 10)

struct segment {
    uint64_t offset; /* in the image */
    const uint8_t *data;
    uint32_t len;
    size_t range;
    bool range_end;
    void *map; /* mapping to release after writing, or NULL */
    size_t map_len;
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

    struct slot slots[SLOT_COUNT];
    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint64_t filled, written; /* slot sequence numbers */
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

static bool cancelled(const struct pipeline *p)
{
    return p->opts->cancel && atomic_load(p->opts->cancel);
}

/* Record the first failure and make every stage stop. Call with the lock held. */
static void fail_locked(struct pipeline *p, const struct bk_error *e)
{
    if (!p->failed) {
        p->failed = true;
        p->error = *e;
    }
    p->stop = true;
    pthread_cond_broadcast(&p->changed);
}

static void fail(struct pipeline *p, const struct bk_error *e)
{
    pthread_mutex_lock(&p->lock);
    fail_locked(p, e);
    pthread_mutex_unlock(&p->lock);
}

static size_t range_count(const struct pipeline *p)
{
    return p->bmap ? p->bmap->range_count : 1;
}

/* --- reader ------------------------------------------------------------------------ */

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

/* Skip stream bytes up to OFFSET, using the CAP bytes at BUF as scratch space. */
static int reader_skip(struct pipeline *p, struct reader_pos *r, uint64_t offset, uint8_t *buf,
                       size_t cap, struct bk_error *err)
{
    while (r->stream < offset) {
        uint64_t n = offset - r->stream < cap ? offset - r->stream : cap;
        if (bk_source_read_full(p->src, buf, (size_t)n, r->stream, err) < 0)
            return -1;
        r->stream += n;
    }
    return 0;
}

/*
 * Read a stream to its end after the last range: a decoder reports a truncated or
 * damaged stream only when it gets there, and the image must be as long as the bmap
 * says. Uses the CAP bytes at BUF as scratch space.
 */
static int reader_drain(struct pipeline *p, struct reader_pos *r, uint8_t *buf, size_t cap,
                        struct bk_error *err)
{
    if (cap == 0)
        cap = 1; /* a full slot still has the byte after it: see pipeline_init */
    if (reader_skip(p, r, p->bmap->image_size, buf, cap, err) < 0)
        return -1;
    size_t got;
    if (p->src->read(p->src, buf, cap, &got, err) < 0)
        return -1;
    if (got > 0)
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s: the image is longer than the %" PRIu64
                            " bytes its bmap describes: is it the right bmap?",
                            p->src->name, p->bmap->image_size);
    return 0;
}

/* Map LEN image bytes at OFFSET; the mapping starts at the page below OFFSET. */
static int map_piece(struct pipeline *p, struct segment *g, uint64_t offset, size_t len,
                     struct bk_error *err)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t start = offset - offset % page;
    size_t map_len = (size_t)(offset - start) + len;
    /* Populate here, in the reader, so the hasher never waits on page faults. */
    void *m =
        mmap(NULL, map_len, PROT_READ, MAP_SHARED | MAP_POPULATE, p->src->map_fd, (off_t)start);
    if (m == MAP_FAILED)
        return bk_error_set(err, BK_E_IO, errno, "%s: cannot map bytes %" PRIu64 "-%" PRIu64,
                            p->src->name, offset, offset + len - 1);
    g->map = m;
    g->map_len = map_len;
    g->data = (const uint8_t *)m + (offset - start);
    return 0;
}

static void unmap_slot(struct slot *s)
{
    for (size_t i = 0; i < s->nseg; i++) {
        if (s->seg[i].map)
            munmap(s->seg[i].map, s->seg[i].map_len);
        s->seg[i].map = NULL;
    }
}

/* Fill one slot; returns 1 when the image is complete, 0 to go on, -1 on error. */
static int reader_fill(struct pipeline *p, struct reader_pos *r, struct slot *s,
                       struct bk_error *err)
{
    size_t used = 0;
    s->nseg = 0;
    s->eof = false;
    while (r->range < range_count(p)) {
        if (used == SLOT_BYTES || s->nseg == SLOT_SEGMENTS)
            return 0;
        uint64_t want = r->end - r->offset;
        struct segment *g = &s->seg[s->nseg];
        *g = (struct segment){.offset = r->offset, .range = r->range};
        bool mapped = p->src->map_fd >= 0 && p->bmap && want >= MAP_MIN;
        if (want > SLOT_BYTES - used)
            want = SLOT_BYTES - used;
        size_t got = (size_t)want;
        if (mapped) {
            /* A mapped piece takes a whole slot's share of the ring, but no buffer. */
            if (used > 0)
                return 0;
            if (map_piece(p, g, r->offset, got, err) < 0)
                return -1;
            used = SLOT_BYTES;
        } else {
            uint8_t *buf = s->data + used;
            g->data = buf;
            if (p->src->seekable && p->bmap) {
                if (bk_source_pread_full(p->src, buf, got, r->offset, err) < 0)
                    return -1;
            } else {
                if (reader_skip(p, r, r->offset, buf, SLOT_BYTES - used, err) < 0)
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
        }
        bool at_end = r->offset + got == r->end || (got == 0 && r->end == UINT64_MAX);
        if (got > 0 || at_end) {
            g->len = (uint32_t)got;
            g->range_end = at_end;
            s->nseg++;
        }
        r->offset += got;
        if (at_end) {
            r->range++;
            if (r->range < range_count(p))
                reader_enter_range(p, r);
        }
    }
    if (p->bmap && !p->src->seekable &&
        reader_drain(p, r, s->data + used, SLOT_BYTES - used, err) < 0)
        return -1;
    s->eof = true;
    return 1;
}

static void *reader_main(void *arg)
{
    struct pipeline *p = arg;
    struct bk_error err;
    bk_error_clear(&err);
    struct reader_pos r = {0};
    if (range_count(p) > 0)
        reader_enter_range(p, &r);

    for (int done = 0; !done;) {
        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->filled - p->written >= SLOT_COUNT)
            pthread_cond_wait(&p->changed, &p->lock);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        if (cancelled(p)) {
            bk_error_set(&err, BK_E_CANCELLED, 0, "interrupted");
            fail(p, &err);
            break;
        }
        struct slot *s = &p->slots[p->filled % SLOT_COUNT];
        done = reader_fill(p, &r, s, &err);
        if (done < 0) {
            fail(p, &err);
            break;
        }
        pthread_mutex_lock(&p->lock);
        p->filled++;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

/* --- hasher ------------------------------------------------------------------------ */

static const uint8_t *expected_digest(const struct pipeline *p, size_t range)
{
    if (!p->bmap || p->opts->no_verify)
        return NULL;
    return bk_bmap_digest(p->bmap, range);
}

/* Slots every hasher has finished. Call with the lock held. */
static uint64_t hashed_all(const struct pipeline *p)
{
    uint64_t n = p->hashed[0];
    for (unsigned h = 1; h < p->hashers; h++)
        if (p->hashed[h] < n)
            n = p->hashed[h];
    return n;
}

static bool range_judged(const struct pipeline *p, size_t range)
{
    return p->concluded[range % p->hashers] > range;
}

static int hash_segment(struct pipeline *p, struct bk_digest *d, const struct segment *g,
                        struct bk_error *err)
{
    const uint8_t *want = expected_digest(p, g->range);
    if (want && bk_digest_update(d, g->data, g->len, err) < 0)
        return -1;
    if (!g->range_end)
        return 0;
    if (want) {
        uint8_t got[BK_DIGEST_MAX];
        if (bk_digest_final(d, got, err) < 0)
            return -1;
        size_t n = bk_hash_size(p->bmap->hash);
        if (memcmp(got, want, n) != 0) {
            const struct bk_range *rg = &p->bmap->ranges[g->range];
            char hw[2 * BK_DIGEST_MAX + 1], hg[2 * BK_DIGEST_MAX + 1];
            bk_hex_encode(want, n, hw);
            bk_hex_encode(got, n, hg);
            return bk_error_set(err, BK_E_VERIFY, 0,
                                "%s: blocks %" PRIu64 "-%" PRIu64 " (bytes %" PRIu64 "-%" PRIu64
                                ") do not match the bmap: %s expected %s, got %s",
                                p->src->name, rg->first, rg->last, rg->first * p->bmap->block_size,
                                rg->first * p->bmap->block_size +
                                    bk_bmap_range_bytes(p->bmap, g->range) - 1,
                                bk_hash_name(p->bmap->hash), hw, hg);
        }
        if (p->opts->cb.range_verified) {
            pthread_mutex_lock(&p->cb_lock);
            p->opts->cb.range_verified(p->opts->cb.ctx, g->range, &p->bmap->ranges[g->range]);
            pthread_mutex_unlock(&p->cb_lock);
        }
    }
    pthread_mutex_lock(&p->lock);
    if (want)
        p->stats->ranges_verified++;
    else
        p->stats->ranges_unchecked++;
    p->concluded[g->range % p->hashers] = g->range + 1;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

struct hasher_arg {
    struct pipeline *p;
    unsigned index;
};

static void *hasher_main(void *arg)
{
    struct pipeline *p = ((struct hasher_arg *)arg)->p;
    unsigned me = ((struct hasher_arg *)arg)->index;
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_digest *d = NULL;
    if (p->bmap && p->bmap->hash != BK_HASH_NONE && !p->opts->no_verify) {
        d = bk_digest_new(p->bmap->hash, &err);
        if (!d) {
            fail(p, &err);
            return NULL;
        }
    }
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->hashed[me] == p->filled)
            pthread_cond_wait(&p->changed, &p->lock);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        struct slot *s = &p->slots[p->hashed[me] % SLOT_COUNT];
        int rc = 0;
        for (size_t i = 0; i < s->nseg && rc == 0; i++)
            if (s->seg[i].range % p->hashers == me)
                rc = hash_segment(p, d, &s->seg[i], &err);
        if (rc < 0) {
            fail(p, &err);
            break;
        }
        /* Once handed on, the slot may be refilled at once: read eof before that. */
        bool eof = s->eof;
        pthread_mutex_lock(&p->lock);
        p->hashed[me]++;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (eof)
            break;
    }
    bk_digest_free(d);
    return NULL;
}

/* --- writer ------------------------------------------------------------------------ */

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
    uint64_t hashed = hashed_all(p);
    if (p->written >= hashed)
        return false;
    if (hashed - p->written >= WRITE_LAG || s->eof)
        return true;
    for (size_t i = 0; i < s->nseg; i++)
        if (!range_judged(p, s->seg[i].range))
            return false;
    return true;
}

static void *writer_main(void *arg)
{
    struct pipeline *p = arg;
    struct bk_error err;
    bk_error_clear(&err);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        struct slot *s = &p->slots[p->written % SLOT_COUNT];
        while (!p->stop && !slot_writable(p, s))
            pthread_cond_wait(&p->changed, &p->lock);
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
            fail(p, &err);
            break;
        }
        unmap_slot(s);
        bool eof = s->eof;
        pthread_mutex_lock(&p->lock);
        p->written++;
        p->done_bytes += bytes;
        p->finished = eof;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (eof)
            break;
    }
    return NULL;
}

/* --- driver ------------------------------------------------------------------------ */

static void report_progress(struct pipeline *p, uint64_t done)
{
    if (!p->opts->cb.progress)
        return;
    pthread_mutex_lock(&p->cb_lock);
    p->opts->cb.progress(p->opts->cb.ctx, done, p->stats->bytes_total);
    pthread_mutex_unlock(&p->cb_lock);
}

static int pipeline_init(struct pipeline *p, struct bk_error *err)
{
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->cb_lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    for (size_t i = 0; i < SLOT_COUNT; i++) {
        /* Page alignment keeps the door open for O_DIRECT writes. */
        /* One spare byte past the end lets a full slot serve as drain scratch. */
        if (posix_memalign((void **)&p->slots[i].data, 4096, SLOT_BYTES + 4096) != 0)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory for copy buffers");
    }
    p->head = calloc(1, (size_t)p->head_bytes);
    if (!p->head)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    return 0;
}

static void pipeline_destroy(struct pipeline *p)
{
    /* Slots filled but not written when a copy stopped may still hold mappings. */
    for (uint64_t k = p->written; k <= p->filled; k++)
        unmap_slot(&p->slots[k % SLOT_COUNT]);
    for (size_t i = 0; i < SLOT_COUNT; i++)
        free(p->slots[i].data);
    free(p->head);
    free(p->head_parts);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->cb_lock);
    pthread_cond_destroy(&p->changed);
}

/* Run the three stages; the calling thread reports progress until the writer is done. */
static int pipeline_run(struct pipeline *p, struct bk_error *err)
{
    pthread_t tids[2 + MAX_HASHERS];
    struct hasher_arg args[MAX_HASHERS];
    unsigned started = 0;
    for (unsigned t = 0; t < 2 + p->hashers; t++) {
        int e;
        if (t == 0)
            e = pthread_create(&tids[t], NULL, reader_main, p);
        else if (t == 1)
            e = pthread_create(&tids[t], NULL, writer_main, p);
        else {
            args[t - 2] = (struct hasher_arg){p, t - 2};
            e = pthread_create(&tids[t], NULL, hasher_main, &args[t - 2]);
        }
        if (e != 0) {
            struct bk_error te;
            bk_error_set(&te, BK_E_IO, e, "cannot start a copy thread");
            fail(p, &te);
            break;
        }
        started++;
    }
    pthread_mutex_lock(&p->lock);
    while (!p->finished && !p->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->changed, &p->lock, &until);
        if (cancelled(p) && !p->stop) {
            struct bk_error ce;
            bk_error_set(&ce, BK_E_CANCELLED, 0, "interrupted");
            fail_locked(p, &ce);
        }
        uint64_t done = p->done_bytes;
        pthread_mutex_unlock(&p->lock);
        report_progress(p, done);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    if (p->failed) {
        *err = p->error;
        return -1;
    }
    return 0;
}

/* Tell a source that can work ahead which areas the reader will ask for. */
static int plan_source(struct pipeline *p, struct bk_error *err)
{
    size_t n = p->bmap->range_count;
    struct bk_area *areas = malloc((n ? n : 1) * sizeof *areas);
    if (!areas)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < n; i++) {
        areas[i].start = p->bmap->ranges[i].first * p->bmap->block_size;
        areas[i].end = areas[i].start + bk_bmap_range_bytes(p->bmap, i);
    }
    int rc = p->src->plan(p->src, areas, n, err);
    free(areas);
    return rc;
}

/*
 * Overwrite with zeros what the image will put into the destination's first head_bytes
 * (the mapped parts; all of it without a bmap), and flush. Done first on a block device,
 * so that an interrupted copy leaves neither the old partition table nor a part of the
 * new image there; holes keep their old content as a bmap copy promises.
 */
static int clear_head(struct pipeline *p, struct bk_error *err)
{
    uint64_t limit = p->head_bytes < p->dest->size ? p->head_bytes : p->dest->size;
    uint8_t *zeros = calloc(1, (size_t)limit);
    if (!zeros)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    int rc = 0;
    size_t count = p->bmap ? p->bmap->range_count : 1;
    for (size_t i = 0; i < count && rc == 0; i++) {
        uint64_t start = p->bmap ? p->bmap->ranges[i].first * p->bmap->block_size : 0;
        uint64_t end = p->bmap ? start + bk_bmap_range_bytes(p->bmap, i) : limit;
        if (start >= limit)
            break;
        if (end > limit)
            end = limit;
        rc = bk_dest_write(p->dest, zeros, (size_t)(end - start), start, err);
    }
    free(zeros);
    return rc < 0 ? -1 : bk_dest_flush(p->dest, err);
}

/* Everything else is written, verified and durable: now the beginning of the image. */
static int write_head(struct pipeline *p, struct bk_error *err)
{
    if (bk_dest_flush(p->dest, err) < 0)
        return -1;
    for (size_t i = 0; i < p->head_count; i++) {
        const struct bk_interval *h = &p->head_parts[i];
        if (bk_dest_write(p->dest, p->head + h->offset, (size_t)h->len, h->offset, err) < 0)
            return -1;
        p->stats->bytes_written += h->len;
    }
    if (bk_dest_flush(p->dest, err) < 0)
        return -1;
    p->stats->head_written = true;
    return 0;
}

int bk_copy_check_source(const struct bk_bmap *bmap, const struct bk_source *src,
                         struct bk_error *err)
{
    if (src->size >= 0 && (uint64_t)src->size != bmap->image_size)
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s is %" PRId64 " bytes but the bmap describes an image of %" PRIu64
                            " bytes: is it the right bmap?",
                            src->name, src->size, bmap->image_size);
    return 0;
}

int bk_copy(const struct bk_bmap *bmap, struct bk_source *src, struct bk_dest *dest,
            const struct bk_copy_options *opts, struct bk_copy_stats *stats, struct bk_error *err)
{
    struct bk_copy_options none = {0};
    struct bk_copy_stats local;
    opts = opts ? opts : &none;
    stats = stats ? stats : &local;
    memset(stats, 0, sizeof *stats);

    if (bmap && bk_copy_check_source(bmap, src, err) < 0)
        return -1;
    if (opts->readback && bk_readback_check(bmap, dest, err) < 0)
        return -1;
    stats->bytes_total = bmap             ? bk_bmap_mapped_bytes(bmap)
                         : src->size >= 0 ? (uint64_t)src->size
                                          : 0;

    struct pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    p->bmap = bmap;
    p->src = src;
    p->dest = dest;
    p->opts = opts;
    p->stats = stats;
    p->head_bytes = opts->head_bytes ? opts->head_bytes : BK_COPY_HEAD_BYTES;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->hashers = cpus < 1 ? 1 : cpus > (long)MAX_HASHERS ? MAX_HASHERS : (unsigned)cpus;
    if (!bmap || bmap->range_count < 2 || opts->no_verify)
        p->hashers = 1;

    int rc = pipeline_init(p, err);
    if (rc == 0 && bmap && src->plan)
        rc = plan_source(p, err);
    if (rc == 0 && dest->kind == BK_DEST_BLOCKDEV)
        rc = clear_head(p, err);
    if (rc == 0)
        rc = pipeline_run(p, err);
    if (rc == 0 && !bmap && dest->kind == BK_DEST_FILE && src->size < 0) {
        /* A stream's size is known only now. */
        if (ftruncate(dest->fd, (off_t)p->done_bytes) < 0)
            rc = bk_error_set(err, BK_E_IO, errno, "cannot set the size of %s", dest->path);
    }
    if (rc == 0)
        rc = write_head(p, err);
    if (rc < 0) {
        /* Keep what was written durable; the caller reports what state it is in. */
        struct bk_error ignored;
        bk_dest_flush(dest, &ignored);
    }
    if (rc == 0 && bmap && opts->readback) {
        rc = bk_readback(bmap, src, dest, opts, stats, &p->cb_lock, err);
        /* A copy that reads back wrong must not look complete either. */
        struct bk_error ignored;
        if (rc < 0 && clear_head(p, &ignored) == 0)
            stats->head_written = false;
    }
    if (rc == 0)
        report_progress(p, p->done_bytes);
    pipeline_destroy(p);
    free(p);
    return rc;
}
