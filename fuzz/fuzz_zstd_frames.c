/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for random access into zstd files of several frames
 * (bk_decode_zstd_indexed), which walks the frames' headers and block headers without
 * decoding. The walk either declines or refuses the file cleanly, or gives a seekable
 * source of at least two frames' bytes that reads what the stream decoder reads. What
 * the walk refuses as damaged, the stream decoder must refuse too.
 */
#include "fuzz_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bk_error err;
    struct fuzz_out ref;
    /* What the stream decoder makes of the file: the reference. */
    int ref_rc = fuzz_decode(data, size, FUZZ_PIPE, bk_decode_zstd, &ref, &err);

    struct bk_source *file = fuzz_source_new(data, size, FUZZ_FILE);
    bk_error_clear(&err);
    struct bk_source *z = bk_decode_zstd_indexed(file, &err);
    if (!z) {
        fuzz_check_failure(&err, FUZZ_DECODE_ERRORS);
        fuzz_check(err.code != BK_E_FORMAT || ref_rc != 0);
        bk_source_close(file);
    } else {
        /* Two frames or more, none empty: two bytes at least. */
        fuzz_check(z->seekable && z->size >= 2);
        /* The stream decoder checks every frame's content size. */
        fuzz_check(ref_rc != 0 || ref.total == (uint64_t)z->size);
        /* A file the stream decoder reads whole must read at any offset too. */
        fuzz_check(fuzz_preads(z, &ref, FUZZ_DECODE_ERRORS, &err) == 0 || ref_rc != 0);
        bk_source_close(z);
    }
    fuzz_out_free(&ref);
    return 0;
}
