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

struct copy_unchanged {
    bool *skip;       /* per range: already on the destination */
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

/* Whether range I as the destination holds it matches its checksum. */
static int range_matches(struct bk_copy *job, size_t i, struct bk_digest *d, bool *match,
                         struct bk_error *err)
{
    struct copy_unchanged *u = job->unchanged;
    uint64_t start = bk_bmap_range_start(job->bmap, i);
    uint64_t end = start + bk_bmap_range_bytes(job->bmap, i);
    uint64_t pos = start - start % IO_ALIGN;
    while (pos < end) {
        if (copy_cancelled(job))
            return bk_error_set(err, BK_E_CANCELLED, 0, "interrupted");
        uint64_t stop = aligned_end(job, end - pos > SURVEY_BYTES ? pos + SURVEY_BYTES : end);
        if (stop - pos > SURVEY_BYTES)
            stop = pos + SURVEY_BYTES;
        if (read_dest(job, u->buf, (size_t)(stop - pos), pos, err) < 0)
            return -1;
        uint64_t lo = pos < start ? start - pos : 0;
        uint64_t hi = (stop < end ? stop : end) - pos;
        if (bk_digest_update(d, u->buf + lo, (size_t)(hi - lo), err) < 0)
            return -1;
        pos = stop;
        report(job, false);
    }
    uint8_t got[BK_DIGEST_MAX];
    if (bk_digest_final(d, got, err) < 0)
        return -1;
    *match = memcmp(got, bk_bmap_digest(job->bmap, i), bk_hash_size(job->bmap->hash)) == 0;
    return 0;
}

/* Whether range I may be taken back from the skipped ones (a disk's head, see below). */
static bool in_disk_head(const struct bk_copy *job, size_t i, uint64_t head_bytes)
{
    return (job->dest->caps & BK_DEST_IS_DISK) && bk_bmap_range_start(job->bmap, i) < head_bytes;
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
        rc = range_matches(job, i, d, &u->skip[i], err);
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
    if (!u->skip || posix_memalign((void **)&u->buf, IO_ALIGN, SURVEY_BYTES) != 0) {
        u->buf = NULL;
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
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

int copy_unchanged_write(struct bk_copy *job, const uint8_t *data, size_t len, uint64_t offset,
                         uint64_t *wrote, struct bk_error *err)
{
    struct copy_unchanged *u = job->unchanged;
    *wrote = 0;
    uint64_t end = offset + len;
    uint64_t pos = offset - offset % IO_ALIGN;
    uint64_t stop = aligned_end(job, end);
    /* A piece is at most a slot of the pipeline, far less than the buffer. */
    while (pos < end) {
        uint64_t chunk_end = stop - pos > SURVEY_BYTES ? pos + SURVEY_BYTES : stop;
        if (read_dest(job, u->buf, (size_t)(chunk_end - pos), pos, err) < 0)
            return -1;
        uint64_t upto = chunk_end < end ? chunk_end : end;
        bool open = false;
        uint64_t run_from = 0, run_to = 0;
        for (uint64_t o = pos > offset ? pos : offset; o < upto;) {
            uint64_t unit_end = o - o % COMPARE_UNIT + COMPARE_UNIT;
            if (unit_end > upto)
                unit_end = upto;
            if (memcmp(data + (o - offset), u->buf + (o - pos), (size_t)(unit_end - o)) != 0) {
                if (open && o - run_to > MERGE_GAP) {
                    if (write_run(job, data, offset, run_from, run_to, wrote, err) < 0)
                        return -1;
                    open = false;
                }
                if (!open)
                    run_from = o;
                open = true;
                run_to = unit_end;
            }
            o = unit_end;
        }
        if (open && write_run(job, data, offset, run_from, run_to, wrote, err) < 0)
            return -1;
        pos = chunk_end;
    }
    job->stats.bytes_skipped += len - *wrote;
    return 0;
}

void copy_unchanged_free(struct bk_copy *job)
{
    if (!job->unchanged)
        return;
    free(job->unchanged->skip);
    free(job->unchanged->buf);
    free(job->unchanged);
    job->unchanged = NULL;
}
