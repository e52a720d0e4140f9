/* SPDX-License-Identifier: MIT */
/* Internal: the block map in memory, shared by the bmap, create and copy layers. */
#ifndef BMAPKIT_BMAP_IMPL_H
#define BMAPKIT_BMAP_IMPL_H

#include "bmapkit/bmap.h"

/*
 * Ranges are ascending and disjoint. Their digests live in one packed array
 * (bk_hash_size(hash) bytes per range) with a bit per range telling whether the bmap
 * gave one.
 */
struct bk_bmap {
    unsigned version_major;
    unsigned version_minor;
    uint64_t image_size;
    uint32_t block_size;
    uint64_t blocks_count;
    uint64_t mapped_blocks;
    enum bk_hash hash;      /* algorithm of range digests and of the file checksum */
    bool has_file_checksum; /* the file carried BmapFileChecksum / BmapFileSHA1 */

    size_t range_count;
    size_t range_capacity;
    struct bk_range *ranges;
    uint8_t *digests;
    uint8_t *digest_present; /* bitmap, one bit per range */
};

/* A zeroed map, or NULL with ERR filled. */
struct bk_bmap *bk_bmap_alloc(struct bk_error *err);

/*
 * Append FIRST..LAST with DIGEST (or NULL) without checking the order: the parser and
 * create validate before adding. Returns 0, or -1 with ERR filled (out of memory).
 */
int bk_bmap_add(struct bk_bmap *bmap, uint64_t first, uint64_t last, const uint8_t *digest,
                struct bk_error *err);

/* Store DIGEST as the digest of range I (the algorithm is bmap->hash). */
void bk_bmap_set_digest(struct bk_bmap *bmap, size_t i, const uint8_t *digest);

/* Byte offset in the image of the first block of range I. */
static inline uint64_t bk_bmap_range_start(const struct bk_bmap *bmap, size_t i)
{
    return bmap->ranges[i].first * bmap->block_size;
}

#endif
