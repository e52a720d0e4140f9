/* SPDX-License-Identifier: MIT */
/*
 * Decoding one xz block on its own, from its header to its integrity check, given
 * where the index puts it. The block's sizes are checked against the index.
 */
#include "decode/pieces/xz_pieces.h"

#include <inttypes.h>
#include <stdlib.h>

static int block_error(struct bk_source *in, const struct xz_blk *b, lzma_ret r,
                       struct bk_error *err)
{
    if (r == LZMA_MEM_ERROR)
        return bk_error_set(err, BK_E_NOMEM, 0, "%s: xz: out of memory", in->name);
    return bk_error_set(
        err, BK_E_FORMAT, 0, "%s: xz: block at compressed byte %" PRIu64 " is %s", in->name,
        b->coff, r == LZMA_OPTIONS_ERROR ? "corrupt or uses unsupported options" : "corrupt");
}

void xz_blockdec_init(struct xz_blockdec *d)
{
    d->strm = (lzma_stream)LZMA_STREAM_INIT;
    for (size_t i = 0; i <= LZMA_FILTERS_MAX; i++)
        d->filters[i] = (lzma_filter){.id = LZMA_VLI_UNKNOWN, .options = NULL};
    d->live = false;
}

void xz_blockdec_end(struct xz_blockdec *d)
{
    if (d->live)
        lzma_end(&d->strm);
    d->strm = (lzma_stream)LZMA_STREAM_INIT;
    for (size_t i = 0; i <= LZMA_FILTERS_MAX; i++) {
        free(d->filters[i].options);
        d->filters[i] = (lzma_filter){.id = LZMA_VLI_UNKNOWN, .options = NULL};
    }
    d->live = false;
}

/* Read and check block B's header; *MEM receives the memory its decoder will need. */
int xz_blockdec_header(struct bk_source *in, struct xz_blockdec *d, const struct xz_blk *b,
                       uint64_t *mem, struct bk_error *err)
{
    xz_blockdec_end(d);
    d->b = *b;
    uint8_t hdr[LZMA_BLOCK_HEADER_SIZE_MAX];
    if (xz_read_at(in, hdr, 1, b->coff, err) < 0)
        return -1;
    d->block = (lzma_block){.version = 1, .check = b->check, .filters = d->filters};
    d->block.header_size = lzma_block_header_size_decode(hdr[0]);
    if (hdr[0] == 0 || d->block.header_size >= b->total)
        return block_error(in, b, LZMA_DATA_ERROR, err);
    if (xz_read_at(in, hdr + 1, d->block.header_size - 1, b->coff + 1, err) < 0)
        return -1;
    lzma_ret r = lzma_block_header_decode(&d->block, NULL, hdr);
    if (r == LZMA_OK)
        r = lzma_block_compressed_size(&d->block, b->unpadded);
    if (r == LZMA_OK && d->block.uncompressed_size != LZMA_VLI_UNKNOWN &&
        d->block.uncompressed_size != b->usize)
        r = LZMA_DATA_ERROR;
    if (r != LZMA_OK)
        return block_error(in, b, r == LZMA_PROG_ERROR ? LZMA_DATA_ERROR : r, err);
    /* The decoder then checks the size the index gives as well. */
    d->block.uncompressed_size = b->usize;
    *mem = lzma_raw_decoder_memusage(d->filters);
    if (*mem == UINT64_MAX)
        return block_error(in, b, LZMA_OPTIONS_ERROR, err);
    d->cin = b->coff + d->block.header_size;
    return 0;
}

int xz_blockdec_start(struct bk_source *in, struct xz_blockdec *d, struct bk_error *err)
{
    d->live = true;
    lzma_ret r = lzma_block_decoder(&d->strm, &d->block);
    if (r != LZMA_OK)
        return block_error(in, &d->b, r, err);
    return 0;
}

/*
 * Decode the block's next LEN bytes into OUT (LEN at most what is left). Once its last
 * byte is out, go on to the block's end, so that its integrity check is verified.
 */
int xz_blockdec_decode(struct bk_source *in, struct xz_blockdec *d, uint8_t *out, size_t len,
                       struct bk_error *err)
{
    const uint64_t cend = d->b.coff + d->b.total;
    uint8_t spare[1];
    bool verifying = false;
    d->strm.next_out = out;
    d->strm.avail_out = len;
    for (;;) {
        if (d->strm.avail_out == 0 && !verifying) {
            if (d->strm.total_out < d->b.usize)
                return 0;
            /* Room for one byte too many, which the decoder must refuse to produce. */
            verifying = true;
            d->strm.next_out = spare;
            d->strm.avail_out = sizeof spare;
        }
        if (d->strm.avail_in == 0 && d->cin < cend) {
            /*
             * A block's first read is small: a look at its first bytes (the tar check
             * of a new source) then costs a network source no more than its first window.
             */
            size_t io = d->strm.total_in == 0 ? XZ_FIRST_BYTES : XZ_IO_BYTES;
            size_t n = (size_t)bk_min_u64(cend - d->cin, io);
            if (xz_read_at(in, d->inbuf, n, d->cin, err) < 0)
                return -1;
            d->strm.next_in = d->inbuf;
            d->strm.avail_in = n;
            d->cin += n;
        }
        lzma_ret r = lzma_code(&d->strm, d->cin == cend ? LZMA_FINISH : LZMA_RUN);
        if (r == LZMA_STREAM_END) {
            /* The decoder checks the sizes too; this guards what the caller relies on. */
            if (d->strm.total_out != d->b.usize || (verifying && d->strm.avail_out == 0) ||
                d->strm.avail_in != 0 || d->cin != cend)
                return block_error(in, &d->b, LZMA_DATA_ERROR, err);
            return 0;
        }
        if (r != LZMA_OK)
            return block_error(in, &d->b, r, err);
    }
}
