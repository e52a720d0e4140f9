/* SPDX-License-Identifier: MIT */
#include "bmapkit/digest.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct bk_digest {
    EVP_MD_CTX *ctx;
    const EVP_MD *md;
};

static const struct {
    enum bk_hash hash;
    const char *name;
    size_t size;
} hash_table[] = {
    {BK_HASH_SHA1, "sha1", 20},     {BK_HASH_SHA224, "sha224", 28}, {BK_HASH_SHA256, "sha256", 32},
    {BK_HASH_SHA384, "sha384", 48}, {BK_HASH_SHA512, "sha512", 64}, {BK_HASH_MD5, "md5", 16},
};

#define HASH_COUNT (sizeof hash_table / sizeof hash_table[0])

const char *bk_hash_name(enum bk_hash hash)
{
    for (size_t i = 0; i < HASH_COUNT; i++)
        if (hash_table[i].hash == hash)
            return hash_table[i].name;
    return "none";
}

enum bk_hash bk_hash_from_name(const char *name)
{
    for (size_t i = 0; i < HASH_COUNT; i++)
        if (strcmp(hash_table[i].name, name) == 0)
            return hash_table[i].hash;
    return BK_HASH_NONE;
}

size_t bk_hash_size(enum bk_hash hash)
{
    for (size_t i = 0; i < HASH_COUNT; i++)
        if (hash_table[i].hash == hash)
            return hash_table[i].size;
    return 0;
}

static const EVP_MD *hash_md(enum bk_hash hash)
{
    switch (hash) {
    case BK_HASH_SHA1:
        return EVP_sha1();
    case BK_HASH_SHA224:
        return EVP_sha224();
    case BK_HASH_SHA256:
        return EVP_sha256();
    case BK_HASH_SHA384:
        return EVP_sha384();
    case BK_HASH_SHA512:
        return EVP_sha512();
    case BK_HASH_MD5:
        return EVP_md5();
    case BK_HASH_NONE:
        break;
    }
    return NULL;
}

struct bk_digest *bk_digest_new(enum bk_hash hash, struct bk_error *err)
{
    const EVP_MD *md = hash_md(hash);
    if (!md) {
        bk_error_set(err, BK_E_INVALID, 0, "no hash algorithm selected");
        return NULL;
    }
    struct bk_digest *d = calloc(1, sizeof *d);
    if (!d) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    d->md = md;
    d->ctx = EVP_MD_CTX_new();
    if (!d->ctx || EVP_DigestInit_ex(d->ctx, md, NULL) != 1) {
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "libcrypto cannot compute %s", bk_hash_name(hash));
        bk_digest_free(d);
        return NULL;
    }
    return d;
}

int bk_digest_update(struct bk_digest *d, const void *data, size_t len, struct bk_error *err)
{
    if (EVP_DigestUpdate(d->ctx, data, len) != 1)
        return bk_error_set(err, BK_E_IO, 0, "libcrypto digest update failed");
    return 0;
}

int bk_digest_final(struct bk_digest *d, uint8_t *out, struct bk_error *err)
{
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(d->ctx, out, &n) != 1 || EVP_DigestInit_ex(d->ctx, d->md, NULL) != 1)
        return bk_error_set(err, BK_E_IO, 0, "libcrypto digest finalisation failed");
    return 0;
}

void bk_digest_free(struct bk_digest *d)
{
    if (!d)
        return;
    EVP_MD_CTX_free(d->ctx);
    free(d);
}
