/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the lzop decoder (bk_decode_lzop), reading a pipe. The input is
 * decoded twice, once read in large pieces and once a few bytes at a time: how the
 * compressed bytes arrive must change nothing, neither the image nor the error and
 * the byte its message names.
 */
#include <string.h>

#include "fuzz_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bk_error err, trickle_err;
    struct fuzz_out out, trickle;
    int rc = fuzz_decode(data, size, FUZZ_PIPE, bk_decode_lzop, &out, &err);
    int trickle_rc = fuzz_decode(data, size, FUZZ_TRICKLE, bk_decode_lzop, &trickle, &trickle_err);

    fuzz_check(rc == trickle_rc && out.total == trickle.total && out.len == trickle.len);
    fuzz_check(out.len == 0 || memcmp(out.data, trickle.data, out.len) == 0);
    if (rc < 0)
        fuzz_check(err.code == trickle_err.code && strcmp(err.msg, trickle_err.msg) == 0);
    fuzz_out_free(&out);
    fuzz_out_free(&trickle);
    return 0;
}
