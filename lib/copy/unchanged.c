/* SPDX-License-Identifier: MIT */
/*
 * Re-flashing only what changed: the survey of the destination before the copy, and the
 * writes that leave alone the blocks the destination already holds.
 */
#include "copy/unchanged.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Reads of the survey; large, since a slow stick pays for every request. */
#define SURVEY_BYTES (4u << 20)
/* Reads past the page cache need the buffer, offset and length on this boundary. */
#define IO_ALIGN 4096u
/* The unit compared in a range that differs: a filesystem block. */
#define COMPARE_UNIT 4096u
/* Differing blocks this close together go out as one write: a stick pays per request. */
#define MERGE_GAP (64u << 10)
#define PROGRESS_NS (100 * 1000 * 1000)
/* Bytes kept of a block's SHA-256: finding two blocks that share them costs 2^64 work. */
#define PRINT_BYTES 16
/* Memory for the prints of the ranges that differ (16 GiB of them); past it, read again. */
#define PRINTS_MAX ((size_t)64 << 20)

/*
 * The prints of one range that differs: a truncated SHA-256 of each COMPARE_UNIT block
 * of it as the destination held it, clipped to the range. The writer compares the
 * image's blocks with them instead of reading the destination a second time.
 */
struct range_prints {
    uint8_t *prints; /* PRINT_BYTES per unit, from the unit holding the range's start */
};

struct copy_unchanged {
    bool *skip;                  /* per range: already on the destination */
    struct range_prints *prints; /* per range; none for matching or unhashed ranges */
    size_t prints_bytes;         /* memory held by them, within PRINTS_MAX */
    struct bk_digest *unit_digest;
    bool any_change;  /* some range is to be written */
    uint64_t settled; /* mapped bytes of the skipped ranges */
    uint8_t *buf;     /* SURVEY_BYTES, IO_ALIGN-aligned */
    int64_t last_report;
};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int copy_unchanged_check(const struct bk_copy *job, struct bk_error *err)
{
    if (!job->skip_unchanged)
        return 0;
    if (!job->bmap)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "skipping unchanged ranges needs a bmap, and there is none");
    if (!(job->dest->caps & BK_DEST_CAN_READ))
        return bk_error_set(
            err, BK_E_INVALID, 0,
            "%s cannot be read, so its unchanged ranges cannot be found: it is a %s",
            job->dest->name, job->dest->ops->kind);
    return 0;
}

/* Read exactly LEN bytes of the destination at OFFSET into BUF. */
static int read_dest(struct bk_copy *job, uint8_t *buf, size_t len, uint64_t offset,
                     struct bk_error *err)
{
    size_t have = 0;
    while (have < len) {
        size_t n;
        if (bk_dest_read(job->dest, buf + have, len - have, offset + have, &n, err) < 0)
            return -1;
        if (n == 0)
            return bk_error_set(err, BK_E_IO, 0,
                                "%s: reading it to compare ended early at byte %" PRIu64,
                                job->dest->name, offset + have);
        have += n;
    }
    job->stats.bytes_compared += len;
    return 0;
}

/* The end of an aligned read that covers up to END, within the destination. */
static uint64_t aligned_end(const struct bk_copy *job, uint64_t end)
{
    uint64_t e = end + (IO_ALIGN - end % IO_ALIGN) % IO_ALIGN;
    return e <= job->dest->size ? e : end;
}

static void report(struct bk_copy *job, bool force)
{
    struct copy_unchanged *u = job->unchanged;
    int64_t t = now_ns();
    if (!job->progress || (!force && t - u->last_report < PROGRESS_NS))
        return;
    u->last_report = t;
    pthread_mutex_lock(&job->cb_lock);
    job->progress(job->progress_ctx, u->settled, job->stats.bytes_total);
    pthread_mutex_unlock(&job->cb_lock);
}

/* The print of LEN bytes at DATA into OUT. */
static int print_of(struct copy_unchanged *u, const uint8_t *data, size_t len, uint8_t *out,
                    struct bk_error *err)
{
    uint8_t full[BK_DIGEST_MAX];
    if (bk_digest_update(u->unit_digest, data, len, err) < 0 ||
        bk_digest_final(u->unit_digest, full, err) < 0)
        return -1;
    memcpy(out, full, PRINT_BYTES);
    return 0;
}

/* Units of COMPARE_UNIT that [START, END) touches. */
static size_t units_of(uint64_t start, uint64_t end)
{
    return (size_t)((end + COMPARE_UNIT - 1) / COMPARE_UNIT - start / COMPARE_UNIT);
}

/* Prints of the units of [FROM, TO) in BUF (which holds the destination from POS on). */
static int print_units(struct copy_unchanged *u, uint64_t start, const uint8_t *buf, uint64_t pos,
                       uint64_t from, uint64_t to, uint8_t *prints, struct bk_error *err)
{
    for (uint64_t o = from; o < to;) {
        uint64_t unit_end = o - o % COMPARE_UNIT + COMPARE_UNIT;
        if (unit_end > to)
            unit_end = to;
        size_t k = (size_t)(o / COMPARE_UNIT - start / COMPARE_UNIT);
        if (print_of(u, buf + (o - pos), (size_t)(unit_end - o), prints + k * PRINT_BYTES, err) < 0)
            return -1;
        o = unit_end;
    }
    return 0;
}

/* Whether range I may be taken back from the skipped ones (a disk's head, see below). */
static bool in_disk_head(const struct bk_copy *job, size_t i, uint64_t head_bytes)
{
    return (job->dest->caps & BK_DEST_IS_DISK) && bk_bmap_range_start(job->bmap, i) < head_bytes;
}

/*
 * Whether range I as the destination holds it matches its checksum. While reading it,
 * the prints of its blocks are taken, and kept (as memory allows) if it differs or lies
 * in a disk's head, which may have to be written again although it matches.
 */
static int range_matches(struct bk_copy *job, size_t i, uint64_t head_bytes, struct bk_digest *d,
                         bool *match, struct bk_error *err)
{
    struct copy_unchanged *u = job->unchanged;
    uint64_t start = bk_bmap_range_start(job->bmap, i);
    uint64_t end = start + bk_bmap_range_bytes(job->bmap, i);
    size_t units = units_of(start, end);
    uint8_t *prints = NULL;
    if (u->prints_bytes + units * PRINT_BYTES <= PRINTS_MAX)
        prints = malloc(units * PRINT_BYTES); /* without it, the writer reads again */
    int rc = 0;
    uint64_t pos = start - start % IO_ALIGN;
    while (pos < end && rc == 0) {
        if (copy_cancelled(job)) {
            rc = bk_error_set(err, BK_E_CANCELLED, 0, "interrupted");
            break;
        }
        uint64_t stop = aligned_end(job, end - pos > SURVEY_BYTES ? pos + SURVEY_BYTES : end);
        if (stop - pos > SURVEY_BYTES)
            stop = pos + SURVEY_BYTES;
        if (read_dest(job, u->buf, (size_t)(stop - pos), pos, err) < 0) {
            rc = -1;
            break;
        }
        uint64_t lo = pos < start ? start : pos;
        uint64_t hi = stop < end ? stop : end;
        rc = bk_digest_update(d, u->buf + (lo - pos), (size_t)(hi - lo), err);
        if (rc == 0 && prints)
            rc = print_units(u, start, u->buf, pos, lo, hi, prints, err);
        pos = stop;
        report(job, false);
    }
    uint8_t got[BK_DIGEST_MAX];
    if (rc == 0)
        rc = bk_digest_final(d, got, err);
    if (rc == 0)
        *match = memcmp(got, bk_bmap_digest(job->bmap, i), bk_hash_size(job->bmap->hash)) == 0;
    if (rc == 0 && (!*match || in_disk_head(job, i, head_bytes)) && prints) {
        u->prints[i].prints = prints;
        u->prints_bytes += units * PRINT_BYTES;
    } else {
        free(prints);
    }
    return rc;
}

/*
 * Hash the ranges that have a checksum; mark those that match. Progress counts them
 * as they match, except those in a disk's head, which are counted once it is known
 * that they stay skipped, so that progress never goes back.
 */
static int survey_ranges(struct bk_copy *job, uint64_t head_bytes, struct bk_error *err)
{
    struct copy_unchanged *u = job->unchanged;
    const struct bk_bmap *b = job->bmap;
    if (b->hash == BK_HASH_NONE)
        return 0;
    struct bk_digest *d = bk_digest_new(b->hash, err);
    if (!d)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < b->range_count && rc == 0; i++) {
        if (!bk_bmap_digest(b, i))
            continue;
        rc = range_matches(job, i, head_bytes, d, &u->skip[i], err);
        if (rc == 0 && u->skip[i] && !in_disk_head(job, i, head_bytes))
            u->settled += bk_bmap_range_bytes(b, i);
    }
    bk_digest_free(d);
    return rc;
}

int copy_unchanged_survey(struct bk_copy *job, uint64_t head_bytes, struct bk_error *err)
{
    if (!job->skip_unchanged || !job->bmap)
        return 0;
    const struct bk_bmap *b = job->bmap;
    struct copy_unchanged *u = calloc(1, sizeof *u);
    if (!u)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    job->unchanged = u;
    u->skip = calloc(b->range_count ? b->range_count : 1, sizeof *u->skip);
    u->prints = calloc(b->range_count ? b->range_count : 1, sizeof *u->prints);
    if (!u->skip || !u->prints || posix_memalign((void **)&u->buf, IO_ALIGN, SURVEY_BYTES) != 0) {
        u->buf = NULL;
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    u->unit_digest = bk_digest_new(BK_HASH_SHA256, err);
    if (!u->unit_digest)
        return -1;
    report(job, true);
    if (survey_ranges(job, head_bytes, err) < 0)
        return -1;
    for (size_t i = 0; i < b->range_count; i++)
        u->any_change |= !u->skip[i];
    /* A disk's head is cleared before anything is written, so it must be written again
       in full: its ranges are not skipped then. */
    for (size_t i = 0; i < b->range_count && in_disk_head(job, i, head_bytes); i++) {
        if (u->any_change)
            u->skip[i] = false;
        else if (u->skip[i])
            u->settled += bk_bmap_range_bytes(b, i);
    }
    for (size_t i = 0; i < b->range_count; i++) {
        if (!u->skip[i])
            continue;
        job->stats.ranges_skipped++;
        job->stats.bytes_skipped += bk_bmap_range_bytes(b, i);
        /* What the destination holds matched the checksum: verified, and more directly. */
        job->stats.ranges_verified++;
        if (job->verified) {
            pthread_mutex_lock(&job->cb_lock);
            job->verified(job->verified_ctx, i, &b->ranges[i]);
            pthread_mutex_unlock(&job->cb_lock);
        }
    }
    report(job, true);
    return 0;
}

bool copy_unchanged_skips(const struct bk_copy *job, size_t index)
{
    return job->unchanged && job->unchanged->skip[index];
}

bool copy_unchanged_any_change(const struct bk_copy *job)
{
    return !job->unchanged || job->unchanged->any_change;
}

uint64_t copy_unchanged_settled(const struct bk_copy *job)
{
    return job->unchanged ? job->unchanged->settled : 0;
}

/* Write the image bytes [FROM, TO) of the piece DATA that starts at OFFSET. */
static int write_run(struct bk_copy *job, const uint8_t *data, uint64_t offset, uint64_t from,
                     uint64_t to, uint64_t *wrote, struct bk_error *err)
{
    if (bk_dest_write(job->dest, data + (from - offset), (size_t)(to - from), from, err) < 0)
        return -1;
    *wrote += to - from;
    return 0;
}

/* Image bytes on their way to [offset, end) of the destination. */
struct piece {
    const uint8_t *data;
    uint64_t offset, end;
};

/* Add the unit [O, UNIT_END), which differs, to the open run; a run too far behind is
   written first, since nearby units go out as one write. */
static int run_add(struct bk_copy *job, const struct piece *pc, bool *open, uint64_t *run_from,
                   uint64_t *run_to, uint64_t o, uint64_t unit_end, uint64_t *wrote,
                   struct bk_error *err)
{
    if (*open && o - *run_to > MERGE_GAP) {
        if (write_run(job, pc->data, pc->offset, *run_from, *run_to, wrote, err) < 0)
            return -1;
        *open = false;
    }
    if (!*open)
        *run_from = o;
    *open = true;
    *run_to = unit_end;
    return 0;
}

/* The prints of the range holding all of the piece, when its edges are those of units
   or of the range, so that each of its units is one that was printed; else NULL. */
static const struct range_prints *prints_for(const struct bk_copy *job, const struct piece *pc,
                                             uint64_t *range_start)
{
    const struct bk_bmap *b = job->bmap;
    size_t lo = 0, hi = b->range_count;
    while (lo < hi) { /* the first range that ends past the piece's start */
        size_t mid = lo + (hi - lo) / 2;
        if (bk_bmap_range_start(b, mid) + bk_bmap_range_bytes(b, mid) <= pc->offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == b->range_count || !job->unchanged->prints[lo].prints)
        return NULL;
    uint64_t start = bk_bmap_range_start(b, lo), end = start + bk_bmap_range_bytes(b, lo);
    if (pc->offset < start || pc->end > end)
        return NULL;
    if ((pc->offset % COMPARE_UNIT && pc->offset != start) ||
        (pc->end % COMPARE_UNIT && pc->end != end))
        return NULL;
    *range_start = start;
    return &job->unchanged->prints[lo];
}

/* Compare the piece's units with the prints the survey took; write those that differ. */
static int write_by_prints(struct bk_copy *job, const struct piece *pc,
                           const struct range_prints *rp, uint64_t range_start, uint64_t *wrote,
                           struct bk_error *err)
{
    bool open = false;
    uint64_t run_from = 0, run_to = 0;
    for (uint64_t o = pc->offset; o < pc->end;) {
        uint64_t unit_end = o - o % COMPARE_UNIT + COMPARE_UNIT;
        if (unit_end > pc->end)
            unit_end = pc->end;
        size_t k = (size_t)(o / COMPARE_UNIT - range_start / COMPARE_UNIT);
        uint8_t print[PRINT_BYTES];
        if (print_of(job->unchanged, pc->data + (o - pc->offset), (size_t)(unit_end - o), print,
                     err) < 0)
            return -1;
        if (memcmp(print, rp->prints + k * PRINT_BYTES, PRINT_BYTES) != 0 &&
            run_add(job, pc, &open, &run_from, &run_to, o, unit_end, wrote, err) < 0)
            return -1;
        o = unit_end;
    }
    return open ? write_run(job, pc->data, pc->offset, run_from, run_to, wrote, err) : 0;
}

/* Read the destination under the piece again and write the units that differ from it. */
static int write_by_reading(struct bk_copy *job, const struct piece *pc, uint64_t *wrote,
                            struct bk_error *err)
{
    struct copy_unchanged *u = job->unchanged;
    uint64_t pos = pc->offset - pc->offset % IO_ALIGN;
    uint64_t stop = aligned_end(job, pc->end);
    while (pos < pc->end) {
        uint64_t chunk_end = stop - pos > SURVEY_BYTES ? pos + SURVEY_BYTES : stop;
        if (read_dest(job, u->buf, (size_t)(chunk_end - pos), pos, err) < 0)
            return -1;
        uint64_t upto = chunk_end < pc->end ? chunk_end : pc->end;
        bool open = false;
        uint64_t run_from = 0, run_to = 0;
        for (uint64_t o = pos > pc->offset ? pos : pc->offset; o < upto;) {
            uint64_t unit_end = o - o % COMPARE_UNIT + COMPARE_UNIT;
            if (unit_end > upto)
                unit_end = upto;
            if (memcmp(pc->data + (o - pc->offset), u->buf + (o - pos), (size_t)(unit_end - o)) !=
                    0 &&
                run_add(job, pc, &open, &run_from, &run_to, o, unit_end, wrote, err) < 0)
                return -1;
            o = unit_end;
        }
        if (open && write_run(job, pc->data, pc->offset, run_from, run_to, wrote, err) < 0)
            return -1;
        pos = chunk_end;
    }
    return 0;
}

int copy_unchanged_write(struct bk_copy *job, const uint8_t *data, size_t len, uint64_t offset,
                         uint64_t *wrote, struct bk_error *err)
{
    *wrote = 0;
    struct piece pc = {data, offset, offset + len};
    uint64_t range_start = 0;
    const struct range_prints *rp = prints_for(job, &pc, &range_start);
    int rc = rp ? write_by_prints(job, &pc, rp, range_start, wrote, err)
                : write_by_reading(job, &pc, wrote, err);
    if (rc < 0)
        return -1;
    job->stats.bytes_skipped += len - *wrote;
    return 0;
}

void copy_unchanged_free(struct bk_copy *job)
{
    if (!job->unchanged)
        return;
    struct copy_unchanged *u = job->unchanged;
    for (size_t i = 0; u->prints && i < job->bmap->range_count; i++)
        free(u->prints[i].prints);
    free(u->prints);
    bk_digest_free(u->unit_digest);
    free(u->skip);
    free(u->buf);
    free(job->unchanged);
    job->unchanged = NULL;
}
