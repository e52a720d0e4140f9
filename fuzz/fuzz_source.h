/* SPDX-License-Identifier: MIT */
/*
 * What the decoder fuzz targets share: the input as a source (a regular file, a pipe,
 * or a pipe that hands out a few bytes at a time), reading a source out under a cap,
 * and the checks every refusal and every read must pass. A broken property calls
 * abort() so that libFuzzer keeps the input.
 */
#ifndef BMAPKIT_FUZZ_SOURCE_H
#define BMAPKIT_FUZZ_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/decode.h"
#include "source/source_impl.h"

/* Image bytes read from one source at most: a small input may expand enormously. */
#define FUZZ_OUTPUT_CAP ((uint64_t)64 << 20)
/* Image bytes kept for comparing two decodings of the same input. */
#define FUZZ_KEEP ((size_t)4 << 20)

/* The failure codes a decoder may give on damaged input (a bit per code). */
#define FUZZ_CODE(c) (1u << (c))
#define FUZZ_DECODE_ERRORS                                                                         \
    (FUZZ_CODE(BK_E_FORMAT) | FUZZ_CODE(BK_E_UNSUPPORTED) | FUZZ_CODE(BK_E_NOMEM))

enum fuzz_kind {
    FUZZ_FILE,    /* seekable, size known */
    FUZZ_PIPE,    /* sequential, size unknown, up to 64 KiB a read */
    FUZZ_TRICKLE, /* the same, 1 to 13 bytes a read */
};

/* The LEN bytes at DATA (which must outlive it) as a source; aborts when out of memory. */
struct bk_source *fuzz_source_new(const uint8_t *data, size_t len, enum fuzz_kind kind);

/* abort() unless OK. */
void fuzz_check(bool ok);

/* A refusal: a code among ALLOWED and a non-empty message of one line. */
void fuzz_check_failure(const struct bk_error *err, unsigned allowed);

/* What a read-out kept: the first FUZZ_KEEP bytes, and how many were read in all. */
struct fuzz_out {
    uint8_t *data;
    size_t len, cap;
    uint64_t total;
    bool ended; /* read to its end without failing */
};

void fuzz_out_free(struct fuzz_out *out);

/* OUT holds the whole image, so other readings of it can be compared with it. */
bool fuzz_out_whole(const struct fuzz_out *out);

/*
 * Read SRC to its end (0) or until CAP bytes are read (1), with read sizes that vary so
 * decoders hand out partial blocks. A failure (-1) is checked against ALLOWED. OUT may
 * be NULL. The bytes read must agree with a known size.
 */
int fuzz_drain(struct bk_source *src, uint64_t cap, struct fuzz_out *out, unsigned allowed,
               struct bk_error *err);

/*
 * Decode the input read as KIND with DECODE and read the result out under
 * FUZZ_OUTPUT_CAP into OUT, as fuzz_drain; the decoder's refusal to start counts as a
 * failure (-1) too. Failures must be FUZZ_DECODE_ERRORS.
 */
int fuzz_decode(const uint8_t *data, size_t len, enum fuzz_kind kind, bk_decode_fn decode,
                struct fuzz_out *out, struct bk_error *err);

/*
 * Read a few ranges of the seekable SRC with pread, out of order and near its ends,
 * then again after planning them (which starts the workers of a piece-wise decoder).
 * Every range must come whole, equal to EXPECT (may be NULL) when that holds the whole
 * image, and nothing past the end. Offsets beyond FUZZ_OUTPUT_CAP are not read, so
 * decoding stays bounded. A failure (-1) is checked against ALLOWED.
 */
int fuzz_preads(struct bk_source *src, const struct fuzz_out *expect, unsigned allowed,
                struct bk_error *err);

#endif
