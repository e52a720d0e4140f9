/* SPDX-License-Identifier: MIT */
/*
 * Internal: random access into a compressed file that is cut into pieces which decode
 * on their own and whose places are known before decoding (xz blocks listed in the
 * index, zstd frames whose headers give their content size). source_pieces.c plans
 * which pieces a copy needs, decodes them on worker threads within a memory budget and
 * serves pread() from their output; a format supplies the table of pieces and a decoder
 * for one piece (decode_xz_indexed.c, decode_zstd_indexed.c).
 */
#ifndef BMAPKIT_PIECES_INTERNAL_H
#define BMAPKIT_PIECES_INTERNAL_H

#include <stdint.h>

#include "common/util.h"
#include "source/source_impl.h"

/* Compressed bytes a piece decoder reads at a time; also the engine's skip buffer. */
#define PIECES_IO_BYTES ((size_t)256 << 10)

/* One piece: its compressed bytes [coff, coff + csize), its image bytes [uoff, uoff + usize). */
struct piece {
    uint64_t coff, csize;
    uint64_t uoff, usize;
};

/*
 * A decoder of one piece at a time, reading the compressed file itself. For each piece
 * the engine calls header, then (once its memory is granted) start, then decode for the
 * piece's bytes in order, then end. end also comes after a failure or to abandon a
 * piece midway, and must do nothing when nothing is held.
 */
struct piece_ops {
    const char *format; /* in messages: "xz", "zstd" */
    /* A decoder reading IN, with nothing started; NULL when out of memory. */
    void *(*create)(struct bk_source *in, void *ctx);
    void (*destroy)(void *dec);
    /* Read and check the header of piece I (at P); *MEM receives what decoding it takes. */
    int (*header)(void *dec, const struct piece *p, size_t i, uint64_t *mem, struct bk_error *err);
    int (*start)(void *dec, struct bk_error *err);
    /*
     * The piece's next LEN bytes (at most what is left) into OUT. Once its last byte is
     * out, the piece's integrity check (and its end) must have been verified.
     */
    int (*decode)(void *dec, uint8_t *out, size_t len, struct bk_error *err);
    /* Free what header and start took. */
    void (*end)(void *dec);
    /* Free the format's context (may be NULL). */
    void (*free_ctx)(void *ctx);
};

/*
 * A seekable source of the image made of COUNT pieces at PIECES (malloc'd), sorted and
 * contiguous from image byte 0, none empty; CTX is handed to OPS->create. Takes
 * PIECES and CTX in any case, and IN when it succeeds.
 */
struct bk_source *pieces_open(struct bk_source *in, struct piece *pieces, size_t count,
                              const struct piece_ops *ops, void *ctx, struct bk_error *err);

/* Read exactly LEN bytes of the compressed file at OFF; running short is "truncated". */
int pieces_read_at(struct bk_source *in, const char *format, void *buf, size_t len, uint64_t off,
                   struct bk_error *err);

#endif
