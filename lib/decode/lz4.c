/* SPDX-License-Identifier: MIT */
/*
 * lz4 images in the frame format (what lz4(1) writes by default) through liblz4's
 * frame decoder. Several frames may follow one another, skippable frames included;
 * block and content checksums are checked by the library when the frame has them.
 *
 * The legacy format (lz4 -l, magic 02 21 4c 18; still used for some kernels) is not
 * supported: it has no end marker and no checksum, so a truncated file could not be
 * told from a whole one. Format detection only recognises the frame magic anyway; a
 * legacy frame after a regular one is refused with a message that says so.
 *
 * Between frames the next four bytes are checked here, so that bytes which cannot
 * start a frame are reported as trailing data, and a file cut inside those four bytes
 * as truncated.
 *
 * A frame's content checksum (XXH32 of everything it decodes to) is computed here with
 * libxxhash rather than by liblz4, whose build of XXH32 took most of the decoding
 * time. Only frames without block checksums: liblz4 skips both kinds or neither.
 */
#include "decode/decode.h"

#include <inttypes.h>
#include <lz4frame.h>
#include <xxhash.h>
#include <stdlib.h>
#include <string.h>

/* Compressed bytes read from IN at a time. */
#define IN_BYTES (512u << 10)

#define FRAME_MAGIC 0x184D2204u
#define SKIPPABLE_MAGIC 0x184D2A50u /* low four bits free */
#define SKIPPABLE_MASK 0xFFFFFFF0u
#define LEGACY_MAGIC 0x184C2102u
/* Input for a frame's first call: its header (at most 19 bytes) and a little more. */
#define HEADER_STEP 32u

struct lz4_source {
    struct bk_source pub;
    struct bk_source *in;
    LZ4F_dctx *dctx;
    uint8_t *buf; /* compressed bytes; buf[pos, end) are not decoded yet */
    size_t pos, end;
    uint64_t total_in; /* bytes read from IN */
    bool in_eof;
    bool between_frames; /* the last frame is complete (or none started yet) */
    uint64_t frames;     /* frames started */
    size_t hint;         /* input the decoder asked for next, 0 at a frame's start */
    bool header_pending; /* the frame's header is not decoded yet */
    bool own_checksum;   /* the frame's content checksum is computed here */
    XXH32_state_t *xxh;
    uint8_t last_in[4]; /* the last four compressed bytes decoded: at a frame's end, its
                           content checksum */
    bool done, failed;
    struct bk_error error;
};

static uint64_t offset_of_pos(const struct lz4_source *l)
{
    return l->total_in - (l->end - l->pos);
}

static int lz_fail(struct lz4_source *l, const char *what, const char *detail, uint64_t at,
                   struct bk_error *err)
{
    l->failed = true;
    bk_error_set(&l->error, BK_E_FORMAT, 0, "%s: lz4: %s%s%s%s at byte %" PRIu64, l->in->name, what,
                 detail ? " (" : "", detail ? detail : "", detail ? ")" : "", at);
    *err = l->error;
    return -1;
}

static int refill(struct lz4_source *l, struct bk_error *err)
{
    if (l->pos > 0) {
        memmove(l->buf, l->buf + l->pos, l->end - l->pos);
        l->end -= l->pos;
        l->pos = 0;
    }
    size_t got = 0;
    if (bk_source_read(l->in, l->buf + l->end, IN_BYTES - l->end, &got, err) < 0) {
        l->failed = true;
        l->error = *err;
        return -1;
    }
    if (got == 0)
        l->in_eof = true;
    l->end += got;
    l->total_in += got;
    return 0;
}

static bool prefix_of(const uint8_t *p, size_t n, uint32_t magic, uint32_t mask)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t want = (uint8_t)(magic >> (8 * i)), m = (uint8_t)(mask >> (8 * i));
        if ((p[i] & m) != want)
            return false;
    }
    return true;
}

/*
 * Between frames: what follows must be the end of the file (after at least one frame)
 * or a frame's magic number. Returns 1 at the proper end, 0 to go on, -1 on error.
 */
static int check_next_frame(struct lz4_source *l, struct bk_error *err)
{
    while (l->end - l->pos < 4 && !l->in_eof)
        if (refill(l, err) < 0)
            return -1;
    size_t left = l->end - l->pos;
    if (left == 0) {
        if (l->frames == 0)
            return lz_fail(l, "the stream ends early (truncated)", NULL, l->total_in, err);
        return 1;
    }
    const uint8_t *p = l->buf + l->pos;
    size_t n = left < 4 ? left : 4;
    if (n == 4 && prefix_of(p, n, LEGACY_MAGIC, 0xFFFFFFFFu))
        return lz_fail(l, "unsupported frame in the legacy lz4 format (lz4 -l)", NULL,
                       offset_of_pos(l), err);
    bool frame = prefix_of(p, n, FRAME_MAGIC, 0xFFFFFFFFu);
    bool skippable = prefix_of(p, n, SKIPPABLE_MAGIC, SKIPPABLE_MASK);
    if (!frame && !skippable)
        return lz_fail(l,
                       l->frames > 0 ? "trailing data after the lz4 stream"
                                     : "not lz4 data (bad magic number)",
                       NULL, offset_of_pos(l), err);
    if (n < 4)
        return lz_fail(l, "the stream ends early (truncated)", NULL, l->total_in, err);
    l->between_frames = false;
    l->header_pending = true;
    l->frames++;
    return 0;
}

static void remember_input(struct lz4_source *l, const uint8_t *in, size_t used)
{
    if (used >= 4) {
        memcpy(l->last_in, in + used - 4, 4);
    } else if (used > 0) {
        memmove(l->last_in, l->last_in + used, 4 - used);
        memcpy(l->last_in + 4 - used, in, used);
    }
}

/* Once the frame's header is decoded: take over its content checksum if liblz4 can
   leave it to us. OUT holds what the frame has decoded to so far. */
static void choose_checksum(struct lz4_source *l, const uint8_t *out, size_t len)
{
    LZ4F_frameInfo_t fi;
    size_t none = 0;
    if (LZ4F_isError(LZ4F_getFrameInfo(l->dctx, &fi, NULL, &none)))
        return; /* the header is not complete yet */
    l->header_pending = false;
    l->own_checksum = fi.frameType == LZ4F_frame &&
                      fi.contentChecksumFlag == LZ4F_contentChecksumEnabled &&
                      fi.blockChecksumFlag == LZ4F_noBlockChecksum;
    if (l->own_checksum) {
        XXH32_reset(l->xxh, 0);
        XXH32_update(l->xxh, out, len);
    }
}

static int check_content(struct lz4_source *l, struct bk_error *err)
{
    l->own_checksum = false;
    if (XXH32_digest(l->xxh) != bk_load_le32(l->last_in))
        return lz_fail(l, "compressed data is corrupt", "content checksum mismatch",
                       offset_of_pos(l) - 4, err);
    return 0;
}

static int lz4_read(struct bk_source *src, void *buf, size_t len, size_t *got, struct bk_error *err)
{
    struct lz4_source *l = src->priv;
    *got = 0;
    if (l->failed) {
        *err = l->error;
        return -1;
    }
    if (l->done)
        return 0;

    uint8_t *out = buf;
    size_t produced = 0;
    while (produced < len) {
        if (l->between_frames) {
            int rc = check_next_frame(l, err);
            if (rc < 0)
                return -1;
            if (rc > 0) {
                l->done = true;
                break;
            }
        }
        if (l->pos == l->end && !l->in_eof && refill(l, err) < 0)
            return -1;

        /* The decoder's hint is the rest of the current block and the next block's
           header: given no more, a failure is placed at the block's start (liblz4 does
           not say how far it got). */
        size_t step = l->hint > 0 ? l->hint : HEADER_STEP;
        size_t avail = l->end - l->pos;
        size_t room = len - produced;
        size_t used = step < avail ? step : avail;
        uint64_t at = offset_of_pos(l);
        LZ4F_decompressOptions_t opts = {.skipChecksums = l->own_checksum};
        size_t hint =
            LZ4F_decompress(l->dctx, out + produced, &room, l->buf + l->pos, &used, &opts);
        if (LZ4F_isError(hint))
            return lz_fail(l, "compressed data is corrupt", LZ4F_getErrorName(hint), at, err);
        remember_input(l, l->buf + l->pos, used);
        l->pos += used;
        if (l->own_checksum)
            XXH32_update(l->xxh, out + produced, room);
        else if (l->header_pending && hint != 0)
            choose_checksum(l, out + produced, room);
        produced += room;
        l->hint = hint;
        if (hint == 0) {
            l->header_pending = false;
            if (l->own_checksum && check_content(l, err) < 0)
                return -1;
            /* A frame (or a skippable frame) is complete and all its output is out. */
            l->between_frames = true;
            continue;
        }
        if (produced == len)
            continue;
        /* Room is left and the frame is not over: the decoder wants more input. */
        bool progress = room > 0 || used > 0;
        if (l->pos < l->end && progress)
            continue;
        if (!l->in_eof) {
            if (l->end - l->pos == IN_BYTES)
                return lz_fail(l, "compressed data is corrupt", NULL, offset_of_pos(l), err);
            if (refill(l, err) < 0)
                return -1;
            continue;
        }
        if (!progress)
            return lz_fail(l, "the stream ends early (truncated)", NULL, l->total_in, err);
    }
    *got = produced;
    return 0;
}

static void lz4_close(struct bk_source *src)
{
    struct lz4_source *l = src->priv;
    LZ4F_freeDecompressionContext(l->dctx);
    XXH32_freeState(l->xxh);
    bk_source_close(l->in);
    free(l->buf);
    free(l);
}

static const struct bk_source_ops lz4_ops = {
    .read = lz4_read,
    .close = lz4_close,
};

struct bk_source *bk_decode_lz4(struct bk_source *in, struct bk_error *err)
{
    struct lz4_source *l = calloc(1, sizeof *l);
    uint8_t *buf = malloc(IN_BYTES);
    LZ4F_dctx *dctx = NULL;
    XXH32_state_t *xxh = XXH32_createState();
    if (!l || !buf || !xxh || LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
        free(l);
        free(buf);
        XXH32_freeState(xxh);
        if (dctx)
            LZ4F_freeDecompressionContext(dctx);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    l->in = in;
    l->buf = buf;
    l->dctx = dctx;
    l->xxh = xxh;
    l->between_frames = true;
    bk_source_init_decoder(&l->pub, in, &lz4_ops, l);
    return &l->pub;
}
