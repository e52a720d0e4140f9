/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the tar and zip reader (bk_decode_archive): the choice of the
 * member (the first regular file) and the checks after its data, over a pipe. The
 * input is read twice, in large pieces and a few bytes at a time: how the archive's
 * bytes arrive must not change the member's bytes, nor whether and how reading fails.
 * A member that gives its size must hand out exactly that (fuzz_drain checks).
 */
#include <string.h>

#include "fuzz_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bk_error err, trickle_err;
    struct fuzz_out out, trickle;
    int rc = fuzz_decode(data, size, FUZZ_PIPE, bk_decode_archive, &out, &err);
    int trickle_rc =
        fuzz_decode(data, size, FUZZ_TRICKLE, bk_decode_archive, &trickle, &trickle_err);

    /* Messages name libarchive's position, which depends on the reads: codes only. */
    fuzz_check(rc == trickle_rc && (rc >= 0 || err.code == trickle_err.code));
    /* Before a failure, libarchive's pieces of data depend on the reads too. */
    fuzz_check(rc < 0 || out.total == trickle.total);
    size_t common = out.len < trickle.len ? out.len : trickle.len;
    fuzz_check(common == 0 || memcmp(out.data, trickle.data, common) == 0);
    fuzz_out_free(&out);
    fuzz_out_free(&trickle);
    return 0;
}
