/* SPDX-License-Identifier: MIT */
/*
 * Random access into a zstd file of several frames whose headers give their content
 * size (cat of files that zstd compressed one by one, or parts of an image compressed
 * apart). Frames decode on their own, so with every frame's place in the file and in
 * the image known, they become the pieces of source_pieces.c, which decodes only those
 * that hold mapped data, on several threads.
 *
 * The file has no index, so opening walks it from the start: each frame's header, then
 * its block headers (3 bytes each) to find where the frame ends, then its content
 * checksum when the header announces one; skippable frames are stepped over. This is
 * the whole structure that can be checked without decoding: a file cut short inside a
 * frame, and bytes after the last frame that start no frame, are refused at once, with
 * the stream decoder's messages. The walk reads a few KiB around each block header
 * (blocks are up to 128 KiB apart) rather than the whole file: a single-frame file,
 * the usual kind, then costs the stream decoder a few thousand small reads, not a copy.
 *
 * A file fetched from a network is streamed: the walk would fetch about what streaming
 * does (a window around each block header), and then the frames again.
 *
 * A file with a frame whose header lacks its content size (zstd reading a pipe, pzstd),
 * whose frame needs a dictionary, or with fewer than two frames that hold data has no
 * random access: BK_E_UNSUPPORTED sends it to the stream decoder. Frames of no content
 * hold no image bytes and are not decoded, like skippable frames.
 *
 * Memory: a frame's decoder takes its window (bounded by the frame's content size)
 * and its block buffer out of the engine's budget, and ZSTD_IO_BYTES of input. A
 * context of up to KEEP_DCTX_BYTES stays with its worker between frames.
 */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getFrameHeader, memory estimates */
#include "decode/decode.h"
#include "decode/pieces/pieces.h"

#include <inttypes.h>
#include <stdlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* Compressed bytes a frame decoder reads at a time. */
#define ZSTD_IO_BYTES PIECES_IO_BYTES
/* File bytes the structure walk reads at a time: many block headers per read. */
#define SCAN_BYTES ((size_t)4 << 10)
/* A frame decoder's context kept from one frame to the next (zstd -19 takes 8 MiB). */
#define KEEP_DCTX_BYTES ((size_t)9 << 20)
/* As the stream decoder: every window the zstd command can make (--long=31). */
#define WINDOW_LOG_MAX 31

#define FRAME_MAGIC 0xFD2FB528u
#define SKIPPABLE_MAGIC 0x184D2A50u /* low four bits free */
#define SKIPPABLE_MASK 0xFFFFFFF0u
#define BLOCK_HEADER 3
#define CHECKSUM_BYTES 4

enum block_type { BLOCK_RAW, BLOCK_RLE, BLOCK_COMPRESSED, BLOCK_RESERVED };

/* --- one frame's decoding -------------------------------------------------------- */

struct zstd_piece_dec {
    struct bk_source *in;
    ZSTD_DCtx *dctx;
    uint8_t *inbuf;
    ZSTD_inBuffer zin;
    struct piece p;
    uint64_t cin; /* next compressed byte to read */
    uint64_t out; /* bytes decoded */
};

static int frame_error(const struct zstd_piece_dec *f, const char *detail, struct bk_error *err)
{
    return bk_error_set(
        err, BK_E_FORMAT, 0, "%s: zstd: frame at compressed byte %" PRIu64 " is corrupt%s%s%s",
        f->in->name, f->p.coff, detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
}

static void *zstd_piece_create(struct bk_source *in, void *ctx)
{
    (void)ctx;
    struct zstd_piece_dec *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->in = in;
    if (!(f->inbuf = malloc(ZSTD_IO_BYTES))) {
        free(f);
        return NULL;
    }
    return f;
}

/*
 * A small context is kept for the next frame: made anew, its buffers would be faulted in
 * again for every frame, which costs more than decoding at zstd's speed. A large one
 * (a large window) goes, so that idle workers do not hold memory outside the budget.
 */
static void zstd_piece_end(void *dec)
{
    struct zstd_piece_dec *f = dec;
    if (f->dctx && ZSTD_sizeof_DCtx(f->dctx) > KEEP_DCTX_BYTES) {
        ZSTD_freeDCtx(f->dctx);
        f->dctx = NULL;
    }
}

static void zstd_piece_destroy(void *dec)
{
    struct zstd_piece_dec *f = dec;
    ZSTD_freeDCtx(f->dctx);
    free(f->inbuf);
    free(f);
}

static int zstd_piece_header(void *dec, const struct piece *p, size_t i, uint64_t *mem,
                             struct bk_error *err)
{
    (void)i;
    struct zstd_piece_dec *f = dec;
    f->p = *p;
    f->cin = p->coff;
    f->out = 0;
    f->zin = (ZSTD_inBuffer){.src = f->inbuf, .size = 0, .pos = 0};
    uint8_t hdr[ZSTD_FRAMEHEADERSIZE_MAX];
    size_t n = (size_t)bk_min_u64(sizeof hdr, p->csize);
    if (pieces_read_at(f->in, "zstd", hdr, n, p->coff, err) < 0)
        return -1;
    ZSTD_frameHeader fh;
    size_t rc = ZSTD_getFrameHeader(&fh, hdr, n);
    if (ZSTD_isError(rc))
        return frame_error(f, ZSTD_getErrorName(rc), err);
    /* The walk saw this header when the file was opened; it must not have changed. */
    if (rc != 0 || fh.frameType != ZSTD_frame || fh.frameContentSize != p->usize)
        return frame_error(f, "the header changed", err);
    size_t buffer = ZSTD_decodingBufferSize_min(fh.windowSize, fh.frameContentSize);
    if (ZSTD_isError(buffer))
        return frame_error(f, ZSTD_getErrorName(buffer), err);
    *mem = ZSTD_estimateDCtxSize() + fh.blockSizeMax + buffer;
    return 0;
}

static int zstd_piece_start(void *dec, struct bk_error *err)
{
    struct zstd_piece_dec *f = dec;
    if (f->dctx) {
        /* Whatever the last frame left, even a failure midway, is dropped. */
        ZSTD_DCtx_reset(f->dctx, ZSTD_reset_session_only);
        return 0;
    }
    if (!(f->dctx = ZSTD_createDCtx()))
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    size_t rc = ZSTD_DCtx_setParameter(f->dctx, ZSTD_d_windowLogMax, WINDOW_LOG_MAX);
    if (ZSTD_isError(rc)) {
        ZSTD_freeDCtx(f->dctx);
        f->dctx = NULL;
        return bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: zstd: cannot allow %u-bit windows: %s",
                            f->in->name, WINDOW_LOG_MAX, ZSTD_getErrorName(rc));
    }
    return 0;
}

/*
 * Decode the frame's next LEN bytes into OUT (LEN at most what is left). Once its last
 * byte is out, go on to the frame's end, so that the decoder checks the content size
 * and the checksum, and the frame ends exactly where the walk found its end.
 */
static int zstd_piece_decode(void *dec, uint8_t *out, size_t len, struct bk_error *err)
{
    struct zstd_piece_dec *f = dec;
    const uint64_t cend = f->p.coff + f->p.csize;
    uint8_t spare[1];
    bool verifying = false;
    ZSTD_outBuffer o = {.dst = out, .size = len, .pos = 0};
    for (;;) {
        if (o.pos == o.size) {
            if (verifying)
                return frame_error(f, "more data than its content size", err);
            if (f->out < f->p.usize)
                return 0;
            /* Room for one byte too many, which the frame must not produce. */
            verifying = true;
            o = (ZSTD_outBuffer){.dst = spare, .size = sizeof spare, .pos = 0};
        }
        if (f->zin.pos == f->zin.size && f->cin < cend) {
            size_t n = (size_t)bk_min_u64(cend - f->cin, ZSTD_IO_BYTES);
            if (pieces_read_at(f->in, "zstd", f->inbuf, n, f->cin, err) < 0)
                return -1;
            f->zin = (ZSTD_inBuffer){.src = f->inbuf, .size = n, .pos = 0};
            f->cin += n;
        }
        size_t in_before = f->zin.pos, out_before = o.pos;
        size_t rc = ZSTD_decompressStream(f->dctx, &o, &f->zin);
        if (ZSTD_isError(rc))
            return frame_error(f, ZSTD_getErrorName(rc), err);
        if (!verifying)
            f->out += o.pos - out_before;
        if (rc == 0) {
            /* The frame is complete, its checksum verified. */
            if (f->out != f->p.usize || (verifying && o.pos != 0) || f->zin.pos != f->zin.size ||
                f->cin != cend)
                return frame_error(f, "its size does not match its blocks", err);
            return 0;
        }
        /* Stuck with all of the frame's bytes given: the frame goes on past its end. */
        if (f->zin.pos == in_before && o.pos == out_before && f->zin.pos == f->zin.size &&
            f->cin == cend)
            return frame_error(f, "it ends early", err);
    }
}

static const struct piece_ops zstd_piece_ops = {
    .format = "zstd",
    .create = zstd_piece_create,
    .destroy = zstd_piece_destroy,
    .header = zstd_piece_header,
    .start = zstd_piece_start,
    .decode = zstd_piece_decode,
    .end = zstd_piece_end,
    .free_ctx = NULL,
};

/* --- the walk over the file's structure ------------------------------------------ */

struct zstd_scan {
    struct bk_source *in;
    uint64_t size; /* of the file */
    uint8_t *buf;  /* file bytes [at, at + len) */
    uint64_t at;
    size_t len;
    uint64_t seen; /* frames and skippable frames */
    struct piece *frames;
    size_t nframes, cap;
    uint64_t image; /* image bytes in the frames so far */
};

static int scan_truncated(const struct zstd_scan *s, struct bk_error *err)
{
    return bk_error_set(err, BK_E_FORMAT, 0,
                        "%s: zstd: the stream ends early (truncated) at byte %" PRIu64, s->in->name,
                        s->size);
}

static int scan_corrupt(const struct zstd_scan *s, const char *detail, uint64_t at,
                        struct bk_error *err)
{
    return bk_error_set(err, BK_E_FORMAT, 0,
                        "%s: zstd: compressed data is corrupt (%s) at byte %" PRIu64, s->in->name,
                        detail, at);
}

static int scan_unsupported(const struct zstd_scan *s, const char *why, struct bk_error *err)
{
    return bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: zstd: no random access: %s", s->in->name,
                        why);
}

/* Point *P at N file bytes from OFF (at most the file's size); *GOT is fewer at its end. */
static int scan_view(struct zstd_scan *s, uint64_t off, size_t n, const uint8_t **p, size_t *got,
                     struct bk_error *err)
{
    n = (size_t)bk_min_u64(n, s->size - off);
    if (off < s->at || off + n > s->at + s->len) {
        size_t want = (size_t)bk_min_u64(SCAN_BYTES, s->size - off);
        if (pieces_read_at(s->in, "zstd", s->buf, want, off, err) < 0)
            return -1;
        s->at = off;
        s->len = want;
    }
    *p = s->buf + (off - s->at);
    *got = n;
    return 0;
}

static bool prefix_of(const uint8_t *p, size_t n, uint32_t magic, uint32_t mask)
{
    for (size_t i = 0; i < n; i++)
        if ((p[i] & (uint8_t)(mask >> (8 * i))) != (uint8_t)(magic >> (8 * i)))
            return false;
    return true;
}

static int scan_add_frame(struct zstd_scan *s, uint64_t start, uint64_t end, uint64_t usize,
                          struct bk_error *err)
{
    if (usize > (uint64_t)INT64_MAX - s->image)
        return scan_unsupported(s, "the image is too large", err);
    if (s->nframes == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct piece *nf = realloc(s->frames, cap * sizeof *nf);
        if (!nf)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        s->frames = nf;
        s->cap = cap;
    }
    s->frames[s->nframes++] =
        (struct piece){.coff = start, .csize = end - start, .uoff = s->image, .usize = usize};
    s->image += usize;
    return 0;
}

/* The frame at *POS: its header, its blocks, its checksum; *POS moves to its end. */
static int scan_frame(struct zstd_scan *s, uint64_t *pos, struct bk_error *err)
{
    const uint64_t start = *pos;
    const uint8_t *p;
    size_t got;
    if (scan_view(s, start, ZSTD_FRAMEHEADERSIZE_MAX, &p, &got, err) < 0)
        return -1;
    ZSTD_frameHeader fh;
    size_t rc = ZSTD_getFrameHeader(&fh, p, got);
    if (ZSTD_isError(rc))
        return scan_corrupt(s, ZSTD_getErrorName(rc), start, err);
    if (rc > 0)
        return scan_truncated(s, err);
    if (fh.windowSize > (uint64_t)1 << WINDOW_LOG_MAX)
        return scan_corrupt(s, ZSTD_getErrorString(ZSTD_error_frameParameter_windowTooLarge), start,
                            err);
    if (fh.frameContentSize == ZSTD_CONTENTSIZE_UNKNOWN)
        return scan_unsupported(s, "a frame does not record its size", err);
    if (fh.dictID != 0)
        return scan_unsupported(s, "a frame needs a dictionary", err);

    /* Raw and RLE blocks give their decoded size, compressed ones at most blockSizeMax. */
    uint64_t at = start + fh.headerSize, fixed = 0, compressed = 0;
    for (bool last = false; !last;) {
        if (scan_view(s, at, BLOCK_HEADER, &p, &got, err) < 0)
            return -1;
        if (got < BLOCK_HEADER)
            return scan_truncated(s, err);
        uint32_t h = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
        enum block_type type = (enum block_type)(h >> 1 & 3);
        uint32_t size = h >> 3;
        last = h & 1;
        if (type == BLOCK_RESERVED ||
            size > (type == BLOCK_COMPRESSED ? ZSTD_BLOCKSIZE_MAX : fh.blockSizeMax))
            return scan_corrupt(s, ZSTD_getErrorString(ZSTD_error_corruption_detected), at, err);
        at += BLOCK_HEADER + (type == BLOCK_RLE ? 1 : size);
        if (at > s->size)
            return scan_truncated(s, err);
        if (type == BLOCK_COMPRESSED)
            compressed++;
        else
            fixed += size;
    }
    if (fh.checksumFlag)
        at += CHECKSUM_BYTES;
    if (at > s->size)
        return scan_truncated(s, err);
    /* A damaged content size would otherwise misplace every later frame's bytes. */
    uint64_t rest = fh.frameContentSize - fixed;
    if (fh.frameContentSize < fixed ||
        (rest > 0 && (fh.blockSizeMax == 0 || (rest - 1) / fh.blockSizeMax >= compressed)))
        return scan_corrupt(s, "the content size does not match the blocks", start, err);
    *pos = at;
    return fh.frameContentSize > 0 ? scan_add_frame(s, start, at, fh.frameContentSize, err) : 0;
}

/* Walk the whole file; its frames holding data go to S->frames. */
static int scan_file(struct zstd_scan *s, struct bk_error *err)
{
    uint64_t pos = 0;
    while (pos < s->size) {
        const uint8_t *p;
        size_t got;
        if (scan_view(s, pos, 8, &p, &got, err) < 0)
            return -1;
        size_t n = got < 4 ? got : 4;
        bool frame = prefix_of(p, n, FRAME_MAGIC, 0xFFFFFFFFu);
        bool skippable = prefix_of(p, n, SKIPPABLE_MAGIC, SKIPPABLE_MASK);
        if (!frame && !skippable)
            return bk_error_set(err, BK_E_FORMAT, 0, "%s: zstd: %s at byte %" PRIu64, s->in->name,
                                s->seen > 0 ? "trailing data after the zstd stream"
                                            : "not zstd data (bad magic number)",
                                pos);
        s->seen++;
        if (frame && n == 4) {
            if (scan_frame(s, &pos, err) < 0)
                return -1;
            continue;
        }
        if (got < 8)
            return scan_truncated(s, err);
        pos += 8 + (uint64_t)bk_load_le32(p + 4);
        if (pos > s->size)
            return scan_truncated(s, err);
    }
    return s->seen > 0 ? 0 : scan_truncated(s, err);
}

struct bk_source *bk_decode_zstd_indexed(struct bk_source *in, struct bk_error *err)
{
    if (!in->seekable || in->size < 0) {
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: zstd: random access needs a regular file",
                     in->name);
        return NULL;
    }
    /*
     * Without an index, finding the frames reads a window around every block header: over
     * a network that fetches about what streaming the file does, before a single frame.
     */
    if (in->remote) {
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: zstd: streamed from the network", in->name);
        return NULL;
    }
    struct zstd_scan s = {.in = in, .size = (uint64_t)in->size, .buf = malloc(SCAN_BYTES)};
    if (!s.buf) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    int rc = scan_file(&s, err);
    free(s.buf);
    if (rc == 0 && s.nframes < 2)
        rc = scan_unsupported(&s, "fewer than two frames hold data", err);
    if (rc < 0) {
        free(s.frames);
        return NULL;
    }
    return pieces_open(in, s.frames, s.nframes, &zstd_piece_ops, NULL, err);
}
