/* SPDX-License-Identifier: MIT */
/*
 * Read-back verification: after the copy was flushed, read each range from the medium
 * itself (the destination reads past its caches where it can) and compare with the
 * bmap. Only the image's real bytes are hashed, so a partial last block is checked
 * correctly however the device rounds its reads.
 */
#include "copy/copy_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "copy/unchanged.h"

#define RB_BUFFER (4u << 20)
#define RB_ALIGN 4096u

/* Hash range I as stored on the destination into OUT. */
static int hash_stored_range(struct bk_copy *job, struct bk_dest *dest, size_t i, uint8_t *buf,
                             struct bk_digest *d, uint8_t *out, struct bk_error *err)
{
    const struct bk_bmap *bmap = job->bmap;
    uint64_t start = bk_bmap_range_start(bmap, i);
    uint64_t end = start + bk_bmap_range_bytes(bmap, i);
    uint64_t pos = start - start % RB_ALIGN;
    while (pos < end) {
        uint64_t want = end - pos;
        want = want + (RB_ALIGN - want % RB_ALIGN) % RB_ALIGN;
        if (want > RB_BUFFER)
            want = RB_BUFFER;
        size_t n;
        if (bk_dest_read(dest, buf, (size_t)want, pos, &n, err) < 0)
            return -1;
        if (n == 0)
            return bk_error_set(err, BK_E_IO, 0, "%s: read-back ended early at byte %" PRIu64,
                                dest->name, pos);
        uint64_t lo = pos < start ? start - pos : 0;
        uint64_t hi = (uint64_t)n < end - pos ? (uint64_t)n : end - pos;
        if (hi > lo && bk_digest_update(d, buf + lo, (size_t)(hi - lo), err) < 0)
            return -1;
        pos += (uint64_t)n;
    }
    return bk_digest_final(d, out, err);
}

/* Copy range I from the source to the destination once more and flush it. */
static int rewrite_range(struct bk_copy *job, struct bk_dest *dest, size_t i, uint8_t *buf,
                         struct bk_error *err)
{
    uint64_t pos = bk_bmap_range_start(job->bmap, i);
    uint64_t left = bk_bmap_range_bytes(job->bmap, i);
    while (left > 0) {
        size_t n = left < RB_BUFFER ? (size_t)left : RB_BUFFER;
        /* Other destinations may be reading back, and rewriting, at the same time. */
        pthread_mutex_lock(&job->src_lock);
        int rc = bk_source_pread_full(job->src, buf, n, pos, err);
        pthread_mutex_unlock(&job->src_lock);
        if (rc < 0 || bk_dest_write(dest, buf, n, pos, err) < 0)
            return -1;
        pos += n;
        left -= n;
    }
    return bk_dest_flush(dest, err);
}

int copy_readback_check(const struct bk_copy *job, const struct bk_dest *dest, struct bk_error *err)
{
    if (!(dest->caps & BK_DEST_CAN_READ))
        return bk_error_set(err, BK_E_INVALID, 0, "%s cannot be read back: it is a %s", dest->name,
                            dest->ops->kind);
    if (!job->bmap || job->bmap->hash == BK_HASH_NONE)
        return bk_error_set(err, BK_E_INVALID, 0, "read-back needs range checksums, and %s",
                            job->bmap ? "this bmap has none" : "there is no bmap");
    return 0;
}

/* Check range I, rewriting it while it reads back wrong; *BAD is set when it stays so. */
static int check_range(struct bk_copy *job, struct copy_dest *cd, size_t i, uint8_t *buf,
                       struct bk_digest *d, bool *bad, struct bk_error *err)
{
    const uint8_t *want = bk_bmap_digest(job->bmap, i);
    *bad = false;
    for (unsigned attempt = 0;; attempt++) {
        if (copy_cancelled(job))
            return bk_error_set(err, BK_E_CANCELLED, 0, "interrupted during read-back");
        uint8_t got[BK_DIGEST_MAX];
        if (hash_stored_range(job, cd->dest, i, buf, d, got, err) < 0)
            return -1;
        if (memcmp(got, want, bk_hash_size(job->bmap->hash)) == 0) {
            cd->stats.readback_checked++;
            return 0;
        }
        pthread_mutex_lock(&job->cb_lock);
        if (job->dest_mismatch)
            job->dest_mismatch(job->dest_mismatch_ctx, (size_t)(cd - job->dests), i,
                               &job->bmap->ranges[i], attempt + 1);
        else if (job->mismatch)
            job->mismatch(job->mismatch_ctx, i, &job->bmap->ranges[i], attempt + 1);
        pthread_mutex_unlock(&job->cb_lock);
        if (attempt >= job->readback_retries || !job->src->seekable) {
            cd->stats.readback_failed++;
            *bad = true;
            return 0;
        }
        if (rewrite_range(job, cd->dest, i, buf, err) < 0)
            return -1;
    }
}

int copy_readback(struct bk_copy *job, struct copy_dest *cd, struct bk_error *err)
{
    if (copy_readback_check(job, cd->dest, err) < 0)
        return -1;
    uint8_t *buf = NULL;
    struct bk_digest *d = bk_digest_new(job->bmap->hash, err);
    if (!d)
        return -1;
    if (posix_memalign((void **)&buf, RB_ALIGN, RB_BUFFER) != 0) {
        bk_digest_free(d);
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    int rc = 0;
    size_t first_bad = SIZE_MAX;
    for (size_t i = 0; i < job->bmap->range_count && rc == 0; i++) {
        bool bad = false;
        /* A range left as it was was read from the medium and matched just before. */
        if (bk_bmap_digest(job->bmap, i) && !copy_unchanged_skips(job, i))
            rc = check_range(job, cd, i, buf, d, &bad, err);
        if (bad && first_bad == SIZE_MAX)
            first_bad = i;
    }
    if (rc == 0 && cd->stats.readback_failed)
        rc = bk_error_set(err, BK_E_VERIFY, 0,
                          "read-back of %s: %zu range(s) differ from the image (first: blocks "
                          "%" PRIu64 "-%" PRIu64 ")",
                          cd->dest->name, cd->stats.readback_failed,
                          job->bmap->ranges[first_bad].first, job->bmap->ranges[first_bad].last);
    free(buf);
    bk_digest_free(d);
    return rc;
}
