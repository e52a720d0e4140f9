/* SPDX-License-Identifier: MIT */
/*
 * Internal: the parts of random access into xz files. xz_index.c reads and checks a
 * file's streams and indexes; xz_block.c decodes one block on its own;
 * decode_xz_indexed.c hands the blocks to the engine of source_pieces.c.
 */
#ifndef BMAPKIT_XZ_INTERNAL_H
#define BMAPKIT_XZ_INTERNAL_H

#include <lzma.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "source/source_impl.h"

/* Compressed bytes a block decoder reads at a time. */
#define XZ_IO_BYTES ((size_t)256 << 10)
/* The first read of a block, which may only be looked at. */
#define XZ_FIRST_BYTES ((size_t)32 << 10)

/* One block, as the index describes it. Offsets are in the file and in the image. */
struct xz_blk {
    uint64_t uoff, usize;
    uint64_t coff, total, unpadded;
    lzma_check check;
};

/* The decoding of one block, from its header to its integrity check. */
struct xz_blockdec {
    struct xz_blk b;
    lzma_stream strm;
    lzma_block block;
    lzma_filter filters[LZMA_FILTERS_MAX + 1];
    bool live;
    uint64_t cin; /* next compressed byte to read */
    uint8_t *inbuf;
};

/* Read exactly LEN bytes of the compressed file at OFF; running short is "truncated". */
int xz_read_at(struct bk_source *in, void *buf, size_t len, uint64_t off, struct bk_error *err);

/*
 * Read the index of the whole xz file IN (seekable, size known), checking every
 * stream's footer, index, header and padding and that the streams fill the file
 * exactly. A file that does not end in a stream footer fails with a message telling a
 * truncated file from one with data after its last stream.
 */
int xz_index_read(struct bk_source *in, lzma_index **out, struct bk_error *err);

/* The block the iterator points at. */
void xz_blk_from(const lzma_index_iter *it, struct xz_blk *b);

/* Set up D with nothing allocated; xz_blockdec_end frees what it holds. */
void xz_blockdec_init(struct xz_blockdec *d);
void xz_blockdec_end(struct xz_blockdec *d);

/* Read and check block B's header; *MEM receives the memory its decoder will need. */
int xz_blockdec_header(struct bk_source *in, struct xz_blockdec *d, const struct xz_blk *b,
                       uint64_t *mem, struct bk_error *err);

/* Start decoding the block whose header xz_blockdec_header read. */
int xz_blockdec_start(struct bk_source *in, struct xz_blockdec *d, struct bk_error *err);

/*
 * Decode the block's next LEN bytes into OUT (LEN at most what is left). With the last
 * byte out, the block is read to its end, so that its integrity check is verified.
 */
int xz_blockdec_decode(struct bk_source *in, struct xz_blockdec *d, uint8_t *out, size_t len,
                       struct bk_error *err);

#endif
