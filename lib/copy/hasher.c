/* SPDX-License-Identifier: MIT */
/* The hasher stage: checks every range against its checksum as its pieces pass. */
#include "copy/pipeline.h"

#include <inttypes.h>
#include <string.h>

#include "copy/unchanged.h"
#include "digest/hex.h"

static const uint8_t *expected_digest(const struct bk_copy *job, size_t range)
{
    if (!job->bmap || !job->verify)
        return NULL;
    return bk_bmap_digest(job->bmap, range);
}

static int mismatch(const struct bk_copy *job, size_t range, const uint8_t *want,
                    const uint8_t *got, struct bk_error *err)
{
    const struct bk_bmap *b = job->bmap;
    size_t n = bk_hash_size(b->hash);
    char hw[2 * BK_DIGEST_MAX + 1], hg[2 * BK_DIGEST_MAX + 1];
    bk_hex_encode(want, n, hw);
    bk_hex_encode(got, n, hg);
    uint64_t start = bk_bmap_range_start(b, range);
    return bk_error_set(err, BK_E_VERIFY, 0,
                        "%s: blocks %" PRIu64 "-%" PRIu64 " (bytes %" PRIu64 "-%" PRIu64
                        ") do not match the bmap: %s expected %s, got %s",
                        job->src->name, b->ranges[range].first, b->ranges[range].last, start,
                        start + bk_bmap_range_bytes(b, range) - 1, bk_hash_name(b->hash), hw, hg);
}

static int hash_segment(struct pipeline *p, struct bk_digest *d, const struct segment *g,
                        struct bk_error *err)
{
    struct bk_copy *job = p->job;
    if (copy_unchanged_skips(job, g->range)) { /* the destination matched it already */
        pthread_mutex_lock(&p->lock);
        ring_concluded(&p->state, g->owner, g->range);
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    const uint8_t *want = expected_digest(job, g->range);
    if (want && bk_digest_update(d, g->data, g->len, err) < 0)
        return -1;
    if (!g->range_end)
        return 0;
    if (want) {
        uint8_t got[BK_DIGEST_MAX];
        if (bk_digest_final(d, got, err) < 0)
            return -1;
        if (memcmp(got, want, bk_hash_size(job->bmap->hash)) != 0)
            return mismatch(job, g->range, want, got, err);
        if (job->verified) {
            pthread_mutex_lock(&job->cb_lock);
            job->verified(job->verified_ctx, g->range, &job->bmap->ranges[g->range]);
            pthread_mutex_unlock(&job->cb_lock);
        }
    }
    pthread_mutex_lock(&p->lock);
    if (want)
        job->stats.ranges_verified++;
    else
        job->stats.ranges_unchecked++;
    ring_concluded(&p->state, g->owner, g->range);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void *pipeline_hasher_main(void *arg)
{
    struct pipeline *p = ((struct hasher_arg *)arg)->p;
    unsigned me = ((struct hasher_arg *)arg)->index;
    const struct bk_copy *job = p->job;
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_digest *d = NULL;
    if (job->bmap && job->bmap->hash != BK_HASH_NONE && job->verify) {
        d = bk_digest_new(job->bmap->hash, &err);
        if (!d) {
            pipeline_fail(p, &err);
            return NULL;
        }
    }
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->state.stop && !ring_hasher_may_hash(&p->state, me)) {
            pipeline_wake_locked(p, true);
            pthread_cond_wait(&p->to_hashers, &p->lock);
        }
        bool stop = p->state.stop;
        unsigned slot = ring_slot(&p->state, p->state.hashed[me]);
        /* Once handed on, the slot may be refilled at once: read eof before that. */
        bool eof = p->state.meta[slot].eof;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        const struct slot *s = &p->slots[slot];
        int rc = 0;
        for (size_t i = 0; i < s->nseg && rc == 0; i++)
            if (s->seg[i].owner == me)
                rc = hash_segment(p, d, &s->seg[i], &err);
        if (rc < 0) {
            pipeline_fail(p, &err);
            break;
        }
        pthread_mutex_lock(&p->lock);
        ring_hashed(&p->state, me);
        pipeline_wake_locked(p, eof);
        pthread_mutex_unlock(&p->lock);
        if (eof)
            break;
    }
    bk_digest_free(d);
    return NULL;
}
