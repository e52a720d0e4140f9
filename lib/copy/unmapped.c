/* SPDX-License-Identifier: MIT */
/*
 * Zeroing what the bmap leaves out. After the mapped data is written, verified and
 * flushed, and before the head, every unmapped range of the image is made to read as
 * zeros in the cheapest way that promises zeros: a hole or write-zeroes that may unmap
 * (punch), a discard where the device says discarded blocks read as zeros, the device's
 * zero-out command, and last zeros written from here. Past the image's end nothing is
 * touched.
 */
#include "copy/extras.h"

#include <inttypes.h>
#include <stdlib.h>

/* On a disk the fast ways take ranges that start and end on a 4 KiB boundary (any
   sector size); the rest is written. */
#define ZERO_ALIGN 4096u
/* One command at a time, so that a cancellation is noticed between them. */
#define ZERO_CHUNK ((uint64_t)1 << 30)
#define WRITE_CHUNK ((size_t)1 << 20)

enum zero_way { WAY_PUNCH, WAY_DISCARD, WAY_ZERO, WAY_WRITE, WAY_COUNT };

struct zeroing {
    struct bk_copy *job;
    bool refused[WAY_COUNT]; /* a way the destination turned down once */
    uint8_t *zeros;
};

static int write_zeros(struct zeroing *z, uint64_t offset, uint64_t len, struct bk_error *err)
{
    struct bk_copy *job = z->job;
    if (!z->zeros) {
        z->zeros = calloc(1, WRITE_CHUNK);
        if (!z->zeros)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    while (len > 0) {
        if (copy_cancelled(job))
            return bk_error_set(err, BK_E_CANCELLED, 0, "cancelled");
        size_t n = len < WRITE_CHUNK ? (size_t)len : WRITE_CHUNK;
        if (bk_dest_write(job->dest, z->zeros, n, offset, err) < 0)
            return -1;
        offset += n;
        len -= n;
        job->stats.zeroed_written += n;
    }
    return 0;
}

/* Whether WAY may be tried on the destination at all. */
static bool way_offered(const struct zeroing *z, enum zero_way way)
{
    const struct bk_dest *d = z->job->dest;
    if (z->refused[way])
        return false;
    switch (way) {
    case WAY_PUNCH:
        return d->ops->punch != NULL;
    case WAY_DISCARD:
        return d->ops->discard && (d->caps & BK_DEST_CAN_DISCARD) &&
               (d->caps & BK_DEST_DISCARD_ZEROES);
    case WAY_ZERO:
        return d->ops->zero && (d->caps & BK_DEST_CAN_ZERO);
    default:
        return true;
    }
}

/* Zero an aligned piece with the first way the destination takes. */
static int zero_piece(struct zeroing *z, uint64_t offset, uint64_t len, struct bk_error *err)
{
    struct bk_copy *job = z->job;
    struct bk_dest *d = job->dest;
    for (enum zero_way way = WAY_PUNCH; way < WAY_WRITE; way++) {
        if (!way_offered(z, way))
            continue;
        struct bk_error e;
        bk_error_clear(&e);
        int rc = way == WAY_PUNCH     ? d->ops->punch(d, offset, len, &e)
                 : way == WAY_DISCARD ? d->ops->discard(d, offset, len, &e)
                                      : d->ops->zero(d, offset, len, &e);
        if (rc == 0) {
            if (way == WAY_ZERO)
                job->stats.zeroed_offloaded += len;
            else
                job->stats.zeroed_released += len;
            return 0;
        }
        if (e.code != BK_E_UNSUPPORTED) {
            if (err)
                *err = e;
            return -1;
        }
        z->refused[way] = true;
    }
    return write_zeros(z, offset, len, err);
}

/* Make image bytes [START, END) read as zeros. */
static int zero_span(struct zeroing *z, uint64_t start, uint64_t end, struct bk_error *err)
{
    /* A file punches any byte range (a partial block is zeroed in place). */
    if (!(z->job->dest->caps & BK_DEST_IS_DISK))
        return zero_piece(z, start, end - start, err);
    uint64_t lo = (start + ZERO_ALIGN - 1) / ZERO_ALIGN * ZERO_ALIGN;
    uint64_t hi = end / ZERO_ALIGN * ZERO_ALIGN;
    if (lo >= hi)
        return write_zeros(z, start, end - start, err);
    if (lo > start && write_zeros(z, start, lo - start, err) < 0)
        return -1;
    for (uint64_t at = lo; at < hi;) {
        if (copy_cancelled(z->job))
            return bk_error_set(err, BK_E_CANCELLED, 0, "cancelled");
        uint64_t n = hi - at < ZERO_CHUNK ? hi - at : ZERO_CHUNK;
        if (zero_piece(z, at, n, err) < 0)
            return -1;
        at += n;
    }
    return end > hi ? write_zeros(z, hi, end - hi, err) : 0;
}

int copy_zero_unmapped(struct bk_copy *job, struct bk_error *err)
{
    const struct bk_bmap *b = job->bmap;
    if (!job->extras || !job->extras->zero_unmapped || !b)
        return 0;
    /* The mapped data is durable before any of the fast ways drops cached pages. */
    if (bk_dest_flush(job->dest, err) < 0)
        return -1;
    struct zeroing z = {.job = job};
    uint64_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= b->range_count && rc == 0; i++) {
        uint64_t start = i < b->range_count ? bk_bmap_range_start(b, i) : b->image_size;
        if (start > at)
            rc = zero_span(&z, at, start, err);
        if (i < b->range_count)
            at = start + bk_bmap_range_bytes(b, i);
    }
    free(z.zeros);
    job->stats.zeroed_bytes =
        job->stats.zeroed_released + job->stats.zeroed_offloaded + job->stats.zeroed_written;
    if (rc < 0 && err && err->code != BK_E_CANCELLED)
        return bk_error_prefix(err, "making the unmapped ranges of the image read as zeros");
    return rc;
}
