/* SPDX-License-Identifier: MIT */
#ifndef BMAPKIT_DIGEST_H
#define BMAPKIT_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "bmapkit/api.h"
#include "bmapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Hash algorithms a bmap may name in ChecksumType (or imply, for 1.1 to 1.3). */
enum bk_hash {
    BK_HASH_NONE = 0,
    BK_HASH_SHA1,
    BK_HASH_SHA224,
    BK_HASH_SHA256,
    BK_HASH_SHA384,
    BK_HASH_SHA512,
    BK_HASH_MD5,
};

/* Largest digest of any supported algorithm, in bytes. */
#define BK_DIGEST_MAX 64

/* Lower-case name as written in a bmap ("sha256"); "none" for BK_HASH_NONE. */
BK_API const char *bk_hash_name(enum bk_hash hash);

/* Algorithm for a ChecksumType name (exact, lower case); BK_HASH_NONE when unknown. */
BK_API enum bk_hash bk_hash_from_name(const char *name);

/* Digest length in bytes; 0 for BK_HASH_NONE. */
BK_API size_t bk_hash_size(enum bk_hash hash);

/* An incremental hash computation; one per thread. */
struct bk_digest;

/* Start a computation of HASH. Returns NULL and fills ERR on failure. */
BK_API struct bk_digest *bk_digest_new(enum bk_hash hash, struct bk_error *err);

/* Feed LEN bytes. Returns 0, or -1 with ERR filled. */
BK_API int bk_digest_update(struct bk_digest *d, const void *data, size_t len,
                            struct bk_error *err);

/*
 * Write the digest to OUT (bk_hash_size bytes) and make D ready for a new computation
 * of the same algorithm. Returns 0, or -1 with ERR filled.
 */
BK_API int bk_digest_final(struct bk_digest *d, uint8_t *out, struct bk_error *err);

/* Release D (NULL is fine). */
BK_API void bk_digest_free(struct bk_digest *d);

#ifdef __cplusplus
}
#endif

#endif
