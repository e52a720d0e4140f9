/* SPDX-License-Identifier: MIT */
/*
 * Random access into an xz file through its block index.
 *
 * Multi-threaded xz cuts the image into independent blocks and lists them in an index
 * at the end of each stream. With the index read, the blocks become the pieces of
 * source_pieces.c, which decodes only those that hold mapped data, on several threads.
 *
 * Opening checks what can be checked cheaply: every stream's footer, index (its CRC32,
 * and its size against the footer), header (against the footer's flags) and padding,
 * and that the streams fill the file exactly. A file that fails is refused at once,
 * before anything is written. Block headers and data are checked when a block is
 * decoded: its sizes against the index, its data by its integrity check.
 *
 * Memory: a block's decoder takes its LZMA2 dictionary (1 MiB at xz -1, 8 MiB at -6,
 * 64 MiB at -9) out of the engine's budget of 160 MiB, and XZ_IO_BYTES of input. With
 * xz -6 blocks (24 MiB) two cores decode fully in parallel; at xz -9 (192 MiB blocks,
 * 64 MiB dictionaries) the budget lets a second block run only some 30 MiB ahead. Peak
 * RSS of a copy stays under 256 MiB including the copy's own buffers.
 */
#include "decode/decode.h"
#include "decode/pieces/pieces.h"
#include "decode/pieces/xz_pieces.h"

#include <stdlib.h>

/* A block decoder for the engine; BLOCKS holds what the index says of each piece. */
struct xz_piece_dec {
    struct bk_source *in;
    const struct xz_blk *blocks;
    struct xz_blockdec d;
};

static void *xz_piece_create(struct bk_source *in, void *ctx)
{
    struct xz_piece_dec *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->in = in;
    x->blocks = ctx;
    xz_blockdec_init(&x->d);
    if (!(x->d.inbuf = malloc(XZ_IO_BYTES))) {
        free(x);
        return NULL;
    }
    return x;
}

static void xz_piece_destroy(void *dec)
{
    struct xz_piece_dec *x = dec;
    xz_blockdec_end(&x->d);
    free(x->d.inbuf);
    free(x);
}

static int xz_piece_header(void *dec, const struct piece *p, size_t i, uint64_t *mem,
                           struct bk_error *err)
{
    (void)p;
    struct xz_piece_dec *x = dec;
    return xz_blockdec_header(x->in, &x->d, &x->blocks[i], mem, err);
}

static int xz_piece_start(void *dec, struct bk_error *err)
{
    struct xz_piece_dec *x = dec;
    return xz_blockdec_start(x->in, &x->d, err);
}

static int xz_piece_decode(void *dec, uint8_t *out, size_t len, struct bk_error *err)
{
    struct xz_piece_dec *x = dec;
    return xz_blockdec_decode(x->in, &x->d, out, len, err);
}

static void xz_piece_end(void *dec)
{
    struct xz_piece_dec *x = dec;
    xz_blockdec_end(&x->d);
}

static const struct piece_ops xz_piece_ops = {
    .format = "xz",
    .create = xz_piece_create,
    .destroy = xz_piece_destroy,
    .header = xz_piece_header,
    .start = xz_piece_start,
    .decode = xz_piece_decode,
    .end = xz_piece_end,
    .free_ctx = free,
};

/* The index's non-empty blocks, as pieces and as what the block decoder needs. */
static int xz_index_to_pieces(lzma_index *index, struct piece **pieces, struct xz_blk **blocks,
                              size_t *count, struct bk_error *err)
{
    size_t n = (size_t)lzma_index_block_count(index);
    *pieces = malloc((n ? n : 1) * sizeof **pieces);
    *blocks = malloc((n ? n : 1) * sizeof **blocks);
    if (!*pieces || !*blocks) {
        free(*pieces);
        free(*blocks);
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    lzma_index_iter it;
    lzma_index_iter_init(&it, index);
    *count = 0;
    while (*count < n && !lzma_index_iter_next(&it, LZMA_INDEX_ITER_NONEMPTY_BLOCK)) {
        struct xz_blk *b = &(*blocks)[*count];
        xz_blk_from(&it, b);
        (*pieces)[(*count)++] =
            (struct piece){.coff = b->coff, .csize = b->total, .uoff = b->uoff, .usize = b->usize};
    }
    return 0;
}

struct bk_source *bk_decode_xz_indexed(struct bk_source *in, struct bk_error *err)
{
    if (!in->seekable || in->size < 0) {
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: xz: random access needs a regular file",
                     in->name);
        return NULL;
    }
    lzma_index *index = NULL;
    if (xz_index_read(in, &index, err) < 0)
        return NULL;
    uint32_t checks = lzma_index_checks(index);
    bool checks_ok = true;
    for (unsigned id = 0; id <= LZMA_CHECK_ID_MAX; id++)
        if ((checks >> id & 1) && !lzma_check_is_supported((lzma_check)id))
            checks_ok = false;
    if (lzma_index_block_count(index) < 2 || !checks_ok ||
        lzma_index_uncompressed_size(index) > INT64_MAX) {
        /* One block cannot be split; an unknown check is for the stream decoder. */
        lzma_index_end(index, NULL);
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: xz: no random access into this file", in->name);
        return NULL;
    }
    struct piece *pieces;
    struct xz_blk *blocks;
    size_t count = 0;
    int rc = xz_index_to_pieces(index, &pieces, &blocks, &count, err);
    lzma_index_end(index, NULL);
    if (rc < 0)
        return NULL;
    return pieces_open(in, pieces, count, &xz_piece_ops, blocks, err);
}
