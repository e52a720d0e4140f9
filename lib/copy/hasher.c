/* SPDX-License-Identifier: MIT */
/* The hasher stage: checks every range against its checksum as its pieces pass. */
#include "copy/pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const uint8_t *expected_digest(const struct pipeline *p, size_t range)
{
    if (!p->bmap || p->opts->no_verify)
        return NULL;
    return bk_bmap_digest(p->bmap, range);
}

/* Slots every hasher has finished. Call with the lock held. */
uint64_t pipeline_hashed_all(const struct pipeline *p)
{
    uint64_t n = p->hashed[0];
    for (unsigned h = 1; h < p->hashers; h++)
        if (p->hashed[h] < n)
            n = p->hashed[h];
    return n;
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
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void *pipeline_hasher_main(void *arg)
{
    struct pipeline *p = ((struct hasher_arg *)arg)->p;
    unsigned me = ((struct hasher_arg *)arg)->index;
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_digest *d = NULL;
    if (p->bmap && p->bmap->hash != BK_HASH_NONE && !p->opts->no_verify) {
        d = bk_digest_new(p->bmap->hash, &err);
        if (!d) {
            pipeline_fail(p, &err);
            return NULL;
        }
    }
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->hashed[me] == p->filled) {
            pipeline_wake_locked(p, true);
            pthread_cond_wait(&p->to_hashers, &p->lock);
        }
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
            pipeline_fail(p, &err);
            break;
        }
        /* Once handed on, the slot may be refilled at once: read eof before that. */
        bool eof = s->eof;
        pthread_mutex_lock(&p->lock);
        p->hashed[me]++;
        pipeline_wake_locked(p, eof);
        pthread_mutex_unlock(&p->lock);
        if (eof)
            break;
    }
    bk_digest_free(d);
    return NULL;
}
