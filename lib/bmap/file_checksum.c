/* SPDX-License-Identifier: MIT */
/*
 * The bmap file checksum is taken over the file with the checksum's own value replaced
 * by zeros. The file is streamed once more through a window that keeps the last
 * (value length - 1) bytes back until the next chunk shows whether the value starts
 * there, so a match across a chunk boundary is never missed.
 */
#include "bmap/bmap_input.h"
#include "digest/hex.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

int bk_bmap_input_read(struct bk_bmap_input *src, uint64_t offset, void *buf, size_t cap,
                       size_t *got, struct bk_error *err)
{
    if (src->fd < 0) {
        size_t n = 0;
        if (offset < src->len) {
            n = src->len - (size_t)offset;
            if (n > cap)
                n = cap;
            memcpy(buf, src->data + offset, n);
        }
        *got = n;
        return 0;
    }
    for (;;) {
        ssize_t n = pread(src->fd, buf, cap, (off_t)offset);
        if (n >= 0) {
            *got = (size_t)n;
            return 0;
        }
        if (errno != EINTR)
            return bk_error_set(err, BK_E_IO, errno, "%s: read failed at byte %llu",
                                src->name ? src->name : "bmap", (unsigned long long)offset);
    }
}

int bk_bmap_verify_file_checksum(struct bk_bmap_input *src, const char *name, enum bk_hash hash,
                                 const char *expected_hex, struct bk_error *err)
{
    size_t dsize = bk_hash_size(hash);
    size_t vlen = strlen(expected_hex);
    uint8_t expected[BK_DIGEST_MAX];
    if (vlen != 2 * dsize || bk_hex_decode(expected_hex, dsize, expected) < 0)
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s: bmap file checksum \"%.140s\" is not a %s hex digest", name,
                            expected_hex, bk_hash_name(hash));

    struct bk_digest *d = bk_digest_new(hash, err);
    if (!d)
        return -1;
    uint8_t *buf = malloc(CHUNK + vlen);
    if (!buf) {
        bk_digest_free(d);
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }

    src->name = name;
    int rc = 0;
    bool replaced = false;
    size_t kept = 0;
    uint64_t offset = 0;
    for (;;) {
        size_t got;
        if ((rc = bk_bmap_input_read(src, offset, buf + kept, CHUNK, &got, err)) < 0)
            break;
        offset += got;
        size_t have = kept + got;
        if (!replaced && have >= vlen) {
            uint8_t *hit = memmem(buf, have, expected_hex, vlen);
            if (hit) {
                memset(hit, '0', vlen);
                replaced = true;
            }
        }
        /* Hold back a tail that could be the start of the value, unless at the end. */
        size_t hold = got == 0 || replaced ? 0 : (have < vlen - 1 ? have : vlen - 1);
        if ((rc = bk_digest_update(d, buf, have - hold, err)) < 0)
            break;
        memmove(buf, buf + have - hold, hold);
        kept = hold;
        if (got == 0)
            break;
    }

    uint8_t actual[BK_DIGEST_MAX];
    if (rc == 0)
        rc = bk_digest_final(d, actual, err);
    if (rc == 0 && memcmp(actual, expected, dsize) != 0) {
        char hex[2 * BK_DIGEST_MAX + 1];
        bk_hex_encode(actual, dsize, hex);
        rc = bk_error_set(err, BK_E_CHECKSUM, 0,
                          "%s: the bmap file's own %s checksum does not match (file says "
                          "%s, content gives %s): the bmap was modified or damaged",
                          name, bk_hash_name(hash), expected_hex, hex);
    }
    free(buf);
    bk_digest_free(d);
    return rc;
}
