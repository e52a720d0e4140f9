/* SPDX-License-Identifier: MIT */
/* The block map in memory: ranges, their digests, and the figures of the image. */
#include "bmap/bmap_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct bk_bmap *bk_bmap_alloc(struct bk_error *err)
{
    struct bk_bmap *b = calloc(1, sizeof *b);
    if (!b)
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    return b;
}

struct bk_bmap *bk_bmap_new(uint64_t image_size, uint32_t block_size, enum bk_hash hash,
                            struct bk_error *err)
{
    if (block_size == 0 || block_size > (1u << 30)) {
        bk_error_set(err, BK_E_INVALID, 0, "block size %" PRIu32 " is not between 1 and 1 GiB",
                     block_size);
        return NULL;
    }
    if (hash != BK_HASH_NONE && bk_hash_size(hash) == 0) {
        bk_error_set(err, BK_E_INVALID, 0, "unknown hash algorithm %d", (int)hash);
        return NULL;
    }
    struct bk_bmap *b = bk_bmap_alloc(err);
    if (!b)
        return NULL;
    b->version_major = 2;
    b->image_size = image_size;
    b->block_size = block_size;
    b->blocks_count = image_size / block_size + (image_size % block_size != 0);
    b->hash = hash;
    b->has_file_checksum = true;
    return b;
}

void bk_bmap_free(struct bk_bmap *bmap)
{
    if (!bmap)
        return;
    free(bmap->ranges);
    free(bmap->digests);
    free(bmap->digest_present);
    free(bmap);
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

int bk_bmap_add(struct bk_bmap *bmap, uint64_t first, uint64_t last, const uint8_t *digest,
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

int bk_bmap_append(struct bk_bmap *bmap, uint64_t first, uint64_t last, const uint8_t *digest,
                   struct bk_error *err)
{
    if (first > last || last >= bmap->blocks_count)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "range %" PRIu64 "-%" PRIu64 " is not within the %" PRIu64
                            " blocks of the image",
                            first, last, bmap->blocks_count);
    if (bmap->range_count > 0 && first <= bmap->ranges[bmap->range_count - 1].last)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "range %" PRIu64 "-%" PRIu64 " does not start after the last one",
                            first, last);
    if (digest && bmap->hash == BK_HASH_NONE)
        return bk_error_set(err, BK_E_INVALID, 0, "a digest for a map without a hash algorithm");
    if (bk_bmap_add(bmap, first, last, digest, err) < 0)
        return -1;
    bmap->mapped_blocks += last - first + 1;
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

void bk_bmap_version(const struct bk_bmap *bmap, unsigned *major, unsigned *minor)
{
    if (major)
        *major = bmap->version_major;
    if (minor)
        *minor = bmap->version_minor;
}

uint64_t bk_bmap_image_size(const struct bk_bmap *bmap)
{
    return bmap->image_size;
}

uint32_t bk_bmap_block_size(const struct bk_bmap *bmap)
{
    return bmap->block_size;
}

uint64_t bk_bmap_blocks_count(const struct bk_bmap *bmap)
{
    return bmap->blocks_count;
}

uint64_t bk_bmap_mapped_blocks(const struct bk_bmap *bmap)
{
    return bmap->mapped_blocks;
}

enum bk_hash bk_bmap_hash(const struct bk_bmap *bmap)
{
    return bmap->hash;
}

bool bk_bmap_has_file_checksum(const struct bk_bmap *bmap)
{
    return bmap->has_file_checksum;
}

size_t bk_bmap_range_count(const struct bk_bmap *bmap)
{
    return bmap->range_count;
}

struct bk_range bk_bmap_range(const struct bk_bmap *bmap, size_t i)
{
    return bmap->ranges[i];
}
