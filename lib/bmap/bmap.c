/* SPDX-License-Identifier: MIT */
#include "bmapkit/bmap.h"

#include <stdlib.h>
#include <string.h>

void bk_bmap_init(struct bk_bmap *bmap)
{
    memset(bmap, 0, sizeof *bmap);
}

void bk_bmap_free(struct bk_bmap *bmap)
{
    free(bmap->ranges);
    free(bmap->digests);
    free(bmap->digest_present);
    bk_bmap_init(bmap);
}

static int bmap_grow(struct bk_bmap *bmap, struct bk_error *err)
{
    size_t cap = bmap->range_capacity ? bmap->range_capacity * 2 : 64;
    size_t dsize = bk_hash_size(bmap->hash);

    struct bk_range *r = realloc(bmap->ranges, cap * sizeof *r);
    if (!r)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory for %zu ranges", cap);
    bmap->ranges = r;

    if (dsize) {
        uint8_t *d = realloc(bmap->digests, cap * dsize);
        if (!d)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory for %zu digests", cap);
        bmap->digests = d;
    }
    uint8_t *p = realloc(bmap->digest_present, cap / 8);
    if (!p)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory for %zu ranges", cap);
    memset(p + bmap->range_capacity / 8, 0, (cap - bmap->range_capacity) / 8);
    bmap->digest_present = p;
    bmap->range_capacity = cap;
    return 0;
}

int bk_bmap_append(struct bk_bmap *bmap, uint64_t first, uint64_t last, const uint8_t *digest,
                   struct bk_error *err)
{
    if (bmap->range_count == bmap->range_capacity && bmap_grow(bmap, err) < 0)
        return -1;
    if (digest && !bmap->digests) {
        /* The parser may learn the algorithm only after the first ranges were added. */
        size_t dsize = bk_hash_size(bmap->hash);
        bmap->digests = calloc(bmap->range_capacity, dsize ? dsize : 1);
        if (!bmap->digests)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory for range digests");
    }
    size_t i = bmap->range_count++;
    bmap->ranges[i].first = first;
    bmap->ranges[i].last = last;
    if (digest)
        bk_bmap_set_digest(bmap, i, digest);
    return 0;
}

const uint8_t *bk_bmap_digest(const struct bk_bmap *bmap, size_t i)
{
    if (!bmap->digests || !(bmap->digest_present[i / 8] & (1u << (i % 8))))
        return NULL;
    return bmap->digests + i * bk_hash_size(bmap->hash);
}

void bk_bmap_set_digest(struct bk_bmap *bmap, size_t i, const uint8_t *digest)
{
    size_t dsize = bk_hash_size(bmap->hash);
    if (!dsize || !bmap->digests)
        return;
    memcpy(bmap->digests + i * dsize, digest, dsize);
    bmap->digest_present[i / 8] |= (uint8_t)(1u << (i % 8));
}

uint64_t bk_bmap_range_bytes(const struct bk_bmap *bmap, size_t i)
{
    /* Compare in blocks: (last + 1) * block_size wraps for a range ending at 2^64. */
    uint64_t bs = bmap->block_size;
    uint64_t start = bmap->ranges[i].first * bs;
    if (bs == 0 || start >= bmap->image_size)
        return 0;
    uint64_t avail = bmap->image_size - start;
    uint64_t blocks = bmap->ranges[i].last - bmap->ranges[i].first + 1;
    return blocks <= avail / bs ? blocks * bs : avail;
}

uint64_t bk_bmap_mapped_bytes(const struct bk_bmap *bmap)
{
    uint64_t total = 0;
    for (size_t i = 0; i < bmap->range_count; i++)
        total += bk_bmap_range_bytes(bmap, i);
    return total;
}
