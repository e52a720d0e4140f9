/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for random access into xz files: the index read from the file's end
 * (xz_index_read) and the seekable source built on it (bk_decode_xz_indexed). An
 * accepted index lists blocks that lie in the file one after the other and fill the
 * image from byte 0; the source reads what the stream decoder reads. What the index
 * reader refuses as damaged, the stream decoder must refuse too.
 */
#include "decode/pieces/xz_pieces.h"
#include "fuzz_source.h"

/* The blocks follow one another in the file and in the image, and add up to both. */
static void check_index(lzma_index *idx, uint64_t file_size)
{
    fuzz_check(lzma_index_file_size(idx) == file_size);
    lzma_index_iter it;
    lzma_index_iter_init(&it, idx);
    uint64_t cnext = 0, unext = 0, blocks = 0;
    while (!lzma_index_iter_next(&it, LZMA_INDEX_ITER_BLOCK)) {
        uint64_t coff = it.block.compressed_file_offset, total = it.block.total_size;
        fuzz_check(coff >= cnext && coff <= file_size && total <= file_size - coff);
        fuzz_check(it.block.unpadded_size <= total && total % 4 == 0);
        fuzz_check(it.block.uncompressed_file_offset == unext);
        cnext = coff + total;
        unext += it.block.uncompressed_size;
        blocks++;
    }
    fuzz_check(blocks == lzma_index_block_count(idx));
    fuzz_check(unext == lzma_index_uncompressed_size(idx));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bk_error err;
    struct fuzz_out ref;
    /* What the stream decoder makes of the file: the reference. */
    int ref_rc = fuzz_decode(data, size, FUZZ_PIPE, bk_decode_xz, &ref, &err);

    struct bk_source *file = fuzz_source_new(data, size, FUZZ_FILE);
    lzma_index *idx = NULL;
    bk_error_clear(&err);
    int rc = xz_index_read(file, &idx, &err);
    enum bk_code index_code = err.code;
    uint64_t usize = 0;
    if (rc < 0) {
        fuzz_check_failure(&err, FUZZ_DECODE_ERRORS);
        fuzz_check(idx == NULL);
        fuzz_check(err.code != BK_E_FORMAT || ref_rc != 0);
    } else {
        fuzz_check(idx != NULL);
        check_index(idx, size);
        usize = lzma_index_uncompressed_size(idx);
        /* The stream decoder checks the index against the blocks it decodes. */
        fuzz_check(ref_rc != 0 || ref.total == usize);
        lzma_index_end(idx, NULL);
    }

    bk_error_clear(&err);
    struct bk_source *x = bk_decode_xz_indexed(file, &err);
    if (!x) {
        fuzz_check_failure(&err, FUZZ_DECODE_ERRORS);
        /* The same index again: refused the same way, or only declined (one block). */
        fuzz_check(rc < 0 ? err.code == index_code : err.code != BK_E_FORMAT);
        bk_source_close(file);
    } else {
        fuzz_check(rc == 0 && x->seekable && x->size >= 0 && (uint64_t)x->size == usize);
        /* A file the stream decoder reads whole must read at any offset too. */
        fuzz_check(fuzz_preads(x, &ref, FUZZ_DECODE_ERRORS, &err) == 0 || ref_rc != 0);
        bk_source_close(x);
    }
    fuzz_out_free(&ref);
    return 0;
}
