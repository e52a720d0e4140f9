/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for format detection (bk_format_detect) and the decoder stack
 * (bk_decode_stack): every stream decoder, the tar reader inside them and, on a file,
 * random access into xz and zstd and parallel bzip2. The input is opened as a pipe,
 * then as a file. Both must see the format its first bytes show and give the same
 * image; only random access may accept more, as it never decodes empty pieces.
 */
#include <string.h>

#include "fuzz_source.h"

/* What bk_decode_stack looks at to choose the decoders. */
#define PEEK_BYTES 512
#define NO_FORMAT ((enum bk_format)99)

struct pass {
    enum bk_format format;
    int rc;
    struct fuzz_out out;
    struct bk_error err;
};

/* Open the input as KIND and read the image; a seekable one is first read at offsets. */
static void run(const uint8_t *data, size_t size, enum fuzz_kind kind, const struct pass *ref,
                struct pass *p)
{
    *p = (struct pass){.format = NO_FORMAT, .rc = -1};
    struct bk_source *in = fuzz_source_new(data, size, kind);
    bk_error_clear(&p->err);
    struct bk_source *src = bk_decode_stack(in, NULL, &p->format, &p->err);
    if (!src) {
        fuzz_check_failure(&p->err, FUZZ_DECODE_ERRORS);
        return;
    }
    /* Only a file can give a seekable image (raw, or random access). */
    fuzz_check(!src->seekable || kind == FUZZ_FILE);
    if (src->seekable &&
        fuzz_preads(src, ref ? &ref->out : NULL, FUZZ_DECODE_ERRORS, &p->err) < 0) {
        /* An image the pipe gave whole must read at any offset. */
        fuzz_check(!ref || ref->rc != 0);
    } else {
        p->rc = fuzz_drain(src, FUZZ_OUTPUT_CAP, &p->out, FUZZ_DECODE_ERRORS, &p->err);
    }
    bk_source_close(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum bk_format whole = bk_format_detect(data, size);
    enum bk_format head = bk_format_detect(data, size < PEEK_BYTES ? size : PEEK_BYTES);
    fuzz_check(whole <= BK_FORMAT_ZIP && head <= BK_FORMAT_ZIP);
    fuzz_check(bk_format_name(head)[0] != '\0');

    struct pass pipe, file;
    run(data, size, FUZZ_PIPE, NULL, &pipe);
    run(data, size, FUZZ_FILE, &pipe, &file);
    fuzz_check(pipe.format == head || pipe.err.code == BK_E_NOMEM);
    fuzz_check(file.format == head || file.err.code == BK_E_NOMEM);

    /* Random access skips empty blocks and frames, so may accept what the stream refuses. */
    bool lenient = head == BK_FORMAT_XZ || head == BK_FORMAT_ZSTD;
    fuzz_check(pipe.rc != 0 || file.rc == 0);
    fuzz_check(file.rc != 0 || pipe.rc == 0 || lenient);
    fuzz_check(pipe.rc >= 0 || file.rc >= 0 || lenient || pipe.err.code == file.err.code);
    if (pipe.rc == 0 && file.rc == 0)
        fuzz_check(pipe.out.total == file.out.total);
    size_t common = pipe.out.len < file.out.len ? pipe.out.len : file.out.len;
    if (pipe.rc >= 0 && file.rc >= 0)
        fuzz_check(common == 0 || memcmp(pipe.out.data, file.out.data, common) == 0);
    fuzz_out_free(&pipe.out);
    fuzz_out_free(&file.out);
    return 0;
}
