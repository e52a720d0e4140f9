/* SPDX-License-Identifier: MIT */
/*
 * zstd images through libzstd's streaming decoder. A file may hold several frames
 * (pzstd writes one per chunk, cat joins files) and skippable frames (metadata, seek
 * tables); the library decodes and skips them in turn and checks each frame's content
 * checksum when present.
 *
 * Between frames the next four bytes are checked here, so that bytes which cannot
 * start a frame are reported as trailing data, and a file cut inside those four bytes
 * as truncated, instead of either passing unnoticed.
 *
 * Window size: frames made with --long=N need a 2^N byte window, and libzstd refuses
 * more than 2^27 unless told otherwise. The limit is raised to 2^31, the largest
 * zstd --long accepts, so every image the zstd command can make decodes; the memory
 * taken is what the frame itself declares (8 MiB or less for the usual levels).
 */
#include "decode/decode.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* Compressed bytes read from IN at a time. */
#define IN_BYTES (512u << 10)
#define WINDOW_LOG_MAX 31
/* Input for a frame's first call: its header (at most 18 bytes) and a little more. */
#define HEADER_STEP 32u

#define FRAME_MAGIC 0xFD2FB528u
#define SKIPPABLE_MAGIC 0x184D2A50u /* low four bits free */
#define SKIPPABLE_MASK 0xFFFFFFF0u

struct zstd_source {
    struct bk_source pub;
    struct bk_source *in;
    ZSTD_DCtx *dctx;
    uint8_t *buf; /* compressed bytes; buf[pos, end) are not decoded yet */
    size_t pos, end;
    uint64_t total_in; /* bytes read from IN */
    bool in_eof;
    bool between_frames; /* the last frame is complete (or none started yet) */
    uint64_t frames;     /* frames started */
    size_t hint;         /* input the decoder asked for next, 0 at a frame's start */
    bool done, failed;
    struct bk_error error;
};

static uint64_t offset_of_pos(const struct zstd_source *z)
{
    return z->total_in - (z->end - z->pos);
}

static int zs_fail(struct zstd_source *z, const char *what, const char *detail, uint64_t at,
                   struct bk_error *err)
{
    z->failed = true;
    bk_error_set(&z->error, BK_E_FORMAT, 0, "%s: zstd: %s%s%s%s at byte %" PRIu64, z->in->name,
                 what, detail ? " (" : "", detail ? detail : "", detail ? ")" : "", at);
    *err = z->error;
    return -1;
}

static int refill(struct zstd_source *z, struct bk_error *err)
{
    if (z->pos > 0) {
        memmove(z->buf, z->buf + z->pos, z->end - z->pos);
        z->end -= z->pos;
        z->pos = 0;
    }
    size_t got = 0;
    if (bk_source_read(z->in, z->buf + z->end, IN_BYTES - z->end, &got, err) < 0) {
        z->failed = true;
        z->error = *err;
        return -1;
    }
    if (got == 0)
        z->in_eof = true;
    z->end += got;
    z->total_in += got;
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
static int check_next_frame(struct zstd_source *z, struct bk_error *err)
{
    while (z->end - z->pos < 4 && !z->in_eof)
        if (refill(z, err) < 0)
            return -1;
    size_t left = z->end - z->pos;
    if (left == 0) {
        if (z->frames == 0)
            return zs_fail(z, "the stream ends early (truncated)", NULL, z->total_in, err);
        return 1;
    }
    const uint8_t *p = z->buf + z->pos;
    size_t n = left < 4 ? left : 4;
    bool frame = prefix_of(p, n, FRAME_MAGIC, 0xFFFFFFFFu);
    bool skippable = prefix_of(p, n, SKIPPABLE_MAGIC, SKIPPABLE_MASK);
    if (!frame && !skippable)
        return zs_fail(z,
                       z->frames > 0 ? "trailing data after the zstd stream"
                                     : "not zstd data (bad magic number)",
                       NULL, offset_of_pos(z), err);
    if (n < 4)
        return zs_fail(z, "the stream ends early (truncated)", NULL, z->total_in, err);
    z->between_frames = false;
    z->frames++;
    return 0;
}

static int zstd_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                     struct bk_error *err)
{
    struct zstd_source *z = src->priv;
    *got = 0;
    if (z->failed) {
        *err = z->error;
        return -1;
    }
    if (z->done)
        return 0;

    ZSTD_outBuffer out = {.dst = buf, .size = len, .pos = 0};
    while (out.pos < out.size) {
        if (z->between_frames) {
            int rc = check_next_frame(z, err);
            if (rc < 0)
                return -1;
            if (rc > 0) {
                z->done = true;
                break;
            }
        }
        if (z->pos == z->end && !z->in_eof && refill(z, err) < 0)
            return -1;

        /* The decoder's hint is the rest of the current block: given no more, a failure
           is placed at the block's start (libzstd does not say how far it got). */
        size_t step = z->hint > 0 ? z->hint : HEADER_STEP;
        size_t avail = z->end - z->pos;
        ZSTD_inBuffer in = {.src = z->buf + z->pos, .size = step < avail ? step : avail, .pos = 0};
        size_t out_before = out.pos;
        uint64_t at = offset_of_pos(z);
        size_t rc = ZSTD_decompressStream(z->dctx, &out, &in);
        z->pos += in.pos;
        if (ZSTD_isError(rc))
            return zs_fail(z, "compressed data is corrupt", ZSTD_getErrorName(rc), at, err);
        z->hint = rc;
        if (rc == 0) {
            /* A frame (or a skippable frame) is complete and all its output is out. */
            z->between_frames = true;
            continue;
        }
        if (out.pos == out.size)
            continue;
        /* Room is left and the frame is not over: the decoder wants more input. */
        bool progress = out.pos > out_before || in.pos > 0;
        if (z->pos < z->end && progress)
            continue;
        if (!z->in_eof) {
            if (z->end - z->pos == IN_BYTES)
                return zs_fail(z, "compressed data is corrupt", NULL, offset_of_pos(z), err);
            if (refill(z, err) < 0)
                return -1;
            continue;
        }
        if (!progress)
            return zs_fail(z, "the stream ends early (truncated)", NULL, z->total_in, err);
    }
    *got = out.pos;
    return 0;
}

static void zstd_close(struct bk_source *src)
{
    struct zstd_source *z = src->priv;
    ZSTD_freeDCtx(z->dctx);
    bk_source_close(z->in);
    free(z->buf);
    free(z);
}

static const struct bk_source_ops zstd_ops = {
    .read = zstd_read,
    .close = zstd_close,
};

struct bk_source *bk_decode_zstd(struct bk_source *in, struct bk_error *err)
{
    struct zstd_source *z = calloc(1, sizeof *z);
    uint8_t *buf = malloc(IN_BYTES);
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!z || !buf || !dctx) {
        free(z);
        free(buf);
        ZSTD_freeDCtx(dctx);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    size_t rc = ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, WINDOW_LOG_MAX);
    if (ZSTD_isError(rc)) {
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: zstd: cannot allow %u-bit windows: %s",
                     in->name, WINDOW_LOG_MAX, ZSTD_getErrorName(rc));
        free(z);
        free(buf);
        ZSTD_freeDCtx(dctx);
        return NULL;
    }
    z->in = in;
    z->buf = buf;
    z->dctx = dctx;
    z->between_frames = true;
    bk_source_init_decoder(&z->pub, in, &zstd_ops, z);
    return &z->pub;
}
