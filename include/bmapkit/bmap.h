/* SPDX-License-Identifier: MIT */
/* Block maps: the bmap file format in memory, parsed, built, written and found. */
#ifndef BMAPKIT_BMAP_H
#define BMAPKIT_BMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bmapkit/api.h"
#include "bmapkit/digest.h"
#include "bmapkit/error.h"
#include "bmapkit/fetch.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One run of mapped blocks, FIRST..LAST inclusive. */
struct bk_range {
    uint64_t first;
    uint64_t last;
};

/*
 * A block map in memory (opaque). Ranges are ascending and disjoint; each may carry a
 * digest of the algorithm the map names. A range costs 16 bytes plus its digest.
 */
struct bk_bmap;

/* Limits the parser enforces on untrusted input. */
#define BK_BMAP_MAX_FILE_SIZE ((uint64_t)1 << 30) /* 1 GiB of XML */
#define BK_BMAP_MAX_DEPTH 16

/*
 * An empty map of an image of IMAGE_SIZE bytes in blocks of BLOCK_SIZE bytes (not 0),
 * whose range digests use HASH (BK_HASH_NONE: no digests). It reports format version
 * 2.0. Returns NULL with ERR filled.
 */
BK_API struct bk_bmap *bk_bmap_new(uint64_t image_size, uint32_t block_size, enum bk_hash hash,
                                   struct bk_error *err);

/* Release BMAP (NULL is fine). */
BK_API void bk_bmap_free(struct bk_bmap *bmap);

/*
 * Append the range FIRST..LAST with DIGEST (bk_hash_size(bk_bmap_hash(bmap)) bytes, or
 * NULL for none). The range must start after the last one and lie within the image.
 * Returns 0, or -1 with ERR filled (BK_E_INVALID, BK_E_NOMEM).
 */
BK_API int bk_bmap_append(struct bk_bmap *bmap, uint64_t first, uint64_t last,
                          const uint8_t *digest, struct bk_error *err);

/* Format version of the bmap, as read from its file (2.0 for one built in memory). */
BK_API void bk_bmap_version(const struct bk_bmap *bmap, unsigned *major, unsigned *minor);

/* Size of the image in bytes (ImageSize). */
BK_API uint64_t bk_bmap_image_size(const struct bk_bmap *bmap);

/* Block size in bytes (BlockSize). */
BK_API uint32_t bk_bmap_block_size(const struct bk_bmap *bmap);

/* Blocks of the image, the last one possibly partial (BlocksCount). */
BK_API uint64_t bk_bmap_blocks_count(const struct bk_bmap *bmap);

/* Blocks covered by the ranges (MappedBlocksCount). */
BK_API uint64_t bk_bmap_mapped_blocks(const struct bk_bmap *bmap);

/* Algorithm of the range digests and of the file checksum; BK_HASH_NONE when none. */
BK_API enum bk_hash bk_bmap_hash(const struct bk_bmap *bmap);

/* Whether the file carried a checksum of its own (BmapFileChecksum or BmapFileSHA1). */
BK_API bool bk_bmap_has_file_checksum(const struct bk_bmap *bmap);

/* Number of ranges. */
BK_API size_t bk_bmap_range_count(const struct bk_bmap *bmap);

/* Range I (below bk_bmap_range_count). */
BK_API struct bk_range bk_bmap_range(const struct bk_bmap *bmap, size_t i);

/*
 * Digest of range I, or NULL when the bmap has none for it. When no range has one (every
 * 1.0 bmap; 1.1 to 2.x ones written without range checksums), nothing copied with the
 * map can be verified: a caller should then copy only when its user has explicitly
 * accepted unverified data.
 */
BK_API const uint8_t *bk_bmap_digest(const struct bk_bmap *bmap, size_t i);

/* Number of image bytes covered by range I: the last block counts only up to the image size. */
BK_API uint64_t bk_bmap_range_bytes(const struct bk_bmap *bmap, size_t i);

/* Total bytes covered by all ranges (mapped bytes of the image). */
BK_API uint64_t bk_bmap_mapped_bytes(const struct bk_bmap *bmap);

/*
 * Parse the bmap held in memory (LEN bytes at DATA). NAME is used in messages
 * ("disk.img.bmap:12: ..."). Every format version 1.0 to 2.x is accepted; major 3 and
 * above, DTDs and entities are refused. The structure is validated and the file's own
 * checksum, when the version has one, is verified. A checksum element or Range
 * attribute that the declared version does not have is refused as BK_E_FORMAT, since
 * read the way that version is read it would silently drop checksums: ChecksumType,
 * BmapFileChecksum and chksum belong to 1.4 and 2.x only, BmapFileSHA1 to 1.3 only, and
 * sha1 to 1.1 to 1.3 only (inside elements the format does not define, nothing counts).
 * Returns NULL with ERR saying what and where.
 */
BK_API struct bk_bmap *bk_bmap_parse_buffer(const void *data, size_t len, const char *name,
                                            struct bk_error *err);

/*
 * Same as bk_bmap_parse_buffer, reading the file PATH in bounded chunks (twice: once
 * to parse, once to verify the file checksum).
 */
BK_API struct bk_bmap *bk_bmap_parse_file(const char *path, struct bk_error *err);

/* Same as bk_bmap_parse_file on an open, seekable descriptor; NAME is for messages. */
BK_API struct bk_bmap *bk_bmap_parse_fd(int fd, const char *name, struct bk_error *err);

/* A sink receives the bytes of a written bmap; returns 0, or -1 with ERR filled. */
typedef int (*bk_bmap_sink_fn)(void *ctx, const void *data, size_t len, struct bk_error *err);

/*
 * Write BMAP as format 2.0 to SINK, range digests included when present. The file
 * checksum is computed over the exact bytes written, so the output is generated twice:
 * a first time into the hash, then to SINK. Memory use does not depend on the number
 * of ranges. A map without a hash algorithm is written with SHA-256 as its file checksum.
 */
BK_API int bk_bmap_write(const struct bk_bmap *bmap, bk_bmap_sink_fn sink, void *ctx,
                         struct bk_error *err);

/* bk_bmap_write into the file descriptor FD; NAME is for messages. */
BK_API int bk_bmap_write_fd(const struct bk_bmap *bmap, int fd, const char *name,
                            struct bk_error *err);

/*
 * Find the bmap that belongs to the image IMAGE_PATH the way bmaptool does: try
 * IMAGE_PATH.bmap, then strip one extension at a time and add .bmap
 * ("disk.img.gz" -> "disk.img.gz.bmap", "disk.img.bmap", "disk.bmap"). Writes the first
 * that exists as a regular file to OUT (CAP bytes). Returns 0 when found, or -1 with ERR
 * filled (BK_E_IO with ENOENT when none exists).
 */
BK_API int bk_bmap_find(const char *image_path, char *out, size_t cap, struct bk_error *err);

/* bk_bmap_find, with OPTS for a URL (NULL: the defaults). */
BK_API int bk_bmap_find_fetch(const char *image_path, const struct bk_fetch_options *opts,
                              char *out, size_t cap, struct bk_error *err);

#ifdef __cplusplus
}
#endif

#endif
