/* SPDX-License-Identifier: MIT */
#ifndef BMAPKIT_BMAP_H
#define BMAPKIT_BMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bmapkit/digest.h"
#include "bmapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One run of mapped blocks, FIRST..LAST inclusive. */
struct bk_range {
    uint64_t first;
    uint64_t last;
};

/*
 * A block map in memory. Ranges are ascending and disjoint. Their digests live in one
 * packed array (bk_hash_size(hash) bytes per range) with a bit per range telling
 * whether the bmap gave one, so a range costs 16 bytes plus its digest.
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

/* Initialise an empty map (all zero). */
void bk_bmap_init(struct bk_bmap *bmap);

/* Release the memory held by BMAP and leave it empty. */
void bk_bmap_free(struct bk_bmap *bmap);

/*
 * Append the range FIRST..LAST with DIGEST (bk_hash_size(bmap->hash) bytes, or NULL for
 * none). No ordering check: the parser and create validate before appending.
 * Returns 0, or -1 with ERR filled (out of memory).
 */
int bk_bmap_append(struct bk_bmap *bmap, uint64_t first, uint64_t last, const uint8_t *digest,
                   struct bk_error *err);

/* Digest of range I, or NULL when the bmap has none for it. */
const uint8_t *bk_bmap_digest(const struct bk_bmap *bmap, size_t i);

/* Store DIGEST as the digest of range I (the algorithm is bmap->hash). */
void bk_bmap_set_digest(struct bk_bmap *bmap, size_t i, const uint8_t *digest);

/* Number of image bytes covered by range I: the last block counts only up to image_size. */
uint64_t bk_bmap_range_bytes(const struct bk_bmap *bmap, size_t i);

/* Total bytes covered by all ranges (mapped bytes of the image). */
uint64_t bk_bmap_mapped_bytes(const struct bk_bmap *bmap);

/* Byte offset in the image of block BLOCK. */
static inline uint64_t bk_bmap_block_offset(const struct bk_bmap *bmap, uint64_t block)
{
    return block * bmap->block_size;
}

/* Limits the parser enforces on untrusted input. */
#define BK_BMAP_MAX_FILE_SIZE ((uint64_t)1 << 30) /* 1 GiB of XML */
#define BK_BMAP_MAX_DEPTH 16

/*
 * Parse the bmap held in memory (LEN bytes at DATA) into BMAP (initialised by the
 * caller). NAME is used in messages ("disk.img.bmap:12: ..."). Every format version
 * 1.0 to 2.x is accepted; major 3 and above, DTDs and entities are refused. The
 * structure is validated and the file's own checksum, when the version has one, is
 * verified. On failure BMAP is left empty and ERR says what and where.
 */
int bk_bmap_parse_buffer(const void *data, size_t len, const char *name, struct bk_bmap *bmap,
                         struct bk_error *err);

/*
 * Same as bk_bmap_parse_buffer, reading the file PATH in bounded chunks (twice: once
 * to parse, once to verify the file checksum).
 */
int bk_bmap_parse_file(const char *path, struct bk_bmap *bmap, struct bk_error *err);

/* Same as bk_bmap_parse_file on an open, seekable descriptor; NAME is for messages. */
int bk_bmap_parse_fd(int fd, const char *name, struct bk_bmap *bmap, struct bk_error *err);

/*
 * A sink receives the bytes of a written bmap; returns 0, or -1 with ERR filled.
 */
typedef int (*bk_bmap_sink_fn)(void *ctx, const void *data, size_t len, struct bk_error *err);

/*
 * Write BMAP as format 2.0 to SINK. The hash algorithm is bmap->hash (BK_HASH_SHA256
 * when unset); range digests are written when present. The file checksum is computed
 * over the exact bytes written, so the output is generated twice: a first time into the
 * hash, then to SINK. Memory use does not depend on the number of ranges.
 */
int bk_bmap_write(const struct bk_bmap *bmap, bk_bmap_sink_fn sink, void *ctx,
                  struct bk_error *err);

/* bk_bmap_write into the file descriptor FD; NAME is for messages. */
int bk_bmap_write_fd(const struct bk_bmap *bmap, int fd, const char *name, struct bk_error *err);

/*
 * Find the bmap that belongs to the image IMAGE_PATH the way bmaptool does: try
 * IMAGE_PATH.bmap, then strip one extension at a time and add .bmap
 * ("disk.img.gz" -> "disk.img.gz.bmap", "disk.img.bmap", "disk.bmap"). Writes the first
 * that exists as a regular file to OUT. Returns 0 when found, -1 otherwise.
 */
int bk_bmap_find(const char *image_path, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
