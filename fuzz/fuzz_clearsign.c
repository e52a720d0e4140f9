/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the reader of clearsigned bmaps, which sees untrusted bytes
 * before any signature is checked. Any input must be refused cleanly or give a text
 * no longer than the input; reading in place must give the same text, and a buffer
 * one byte too small must be refused. A broken property calls abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bmapkit/signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = malloc(size + 1), *inplace = malloc(size + 1);
    if (!out || !inplace)
        abort();
    memcpy(inplace, data, size);
    struct bk_error err;
    size_t len = 0, len2 = 0;
    bool clear = bk_signature_is_clearsigned(data, size);
    int rc = bk_signature_clearsigned_text(data, size, out, size + 1, &len, &err);
    if (rc == 0) {
        if (!clear || len > size)
            abort();
        if (bk_signature_clearsigned_text(inplace, size, inplace, size, &len2, &err) != 0 ||
            len2 != len || memcmp(inplace, out, len) != 0)
            abort();
        if (len > 0 && bk_signature_clearsigned_text(data, size, out, len - 1, &len2, &err) == 0)
            abort();
    } else if (err.code != BK_E_FORMAT || err.msg[0] == '\0') {
        abort();
    }
    free(out);
    free(inplace);
    return 0;
}
