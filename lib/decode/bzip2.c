/* SPDX-License-Identifier: MIT */
/*
 * bzip2 images through libbz2. pbzip2 (and cat of several .bz2 files) writes one
 * stream after another; each is decoded in turn, and each stream's block and stream
 * CRCs are checked by the library. Bytes after the last stream that do not start
 * another one are an error: bzip2(1) ignores them with a warning, but a flasher must
 * not call a damaged file good.
 */
#include "decode/decode.h"

#include <bzlib.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Compressed bytes read from IN at a time. */
#define IN_BYTES (512u << 10)
/* libbz2 counts buffer sizes in unsigned int. */
#define OUT_MAX (1u << 30)

static const uint8_t stream_magic[3] = {'B', 'Z', 'h'};

struct bzip2_source {
    struct bk_source pub;
    struct bk_source *in;
    bz_stream bz;
    bool bz_live;    /* bz is initialised */
    bool stream_end; /* the current stream ended (BZ_STREAM_END) */
    uint8_t *buf;    /* compressed bytes; buf[pos, end) are not decoded yet */
    size_t pos, end;
    uint64_t total_in; /* bytes read from IN */
    bool in_eof;
    bool done, failed;
    struct bk_error error;
};

static uint64_t offset_of_pos(const struct bzip2_source *b)
{
    return b->total_in - (b->end - b->pos);
}

static int bz_fail(struct bzip2_source *b, const char *what, uint64_t at, struct bk_error *err)
{
    b->failed = true;
    bk_error_set(&b->error, BK_E_FORMAT, 0, "%s: bzip2: %s at byte %" PRIu64, b->in->name, what,
                 at);
    *err = b->error;
    return -1;
}

static int refill(struct bzip2_source *b, struct bk_error *err)
{
    if (b->pos > 0) {
        memmove(b->buf, b->buf + b->pos, b->end - b->pos);
        b->end -= b->pos;
        b->pos = 0;
    }
    size_t got = 0;
    if (bk_source_read(b->in, b->buf + b->end, IN_BYTES - b->end, &got, err) < 0) {
        b->failed = true;
        b->error = *err;
        return -1;
    }
    if (got == 0)
        b->in_eof = true;
    b->end += got;
    b->total_in += got;
    return 0;
}

static int stream_init(struct bzip2_source *b, struct bk_error *err)
{
    memset(&b->bz, 0, sizeof b->bz);
    int rc = BZ2_bzDecompressInit(&b->bz, 0, 0);
    if (rc != BZ_OK) {
        if (rc == BZ_MEM_ERROR)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return bk_error_set(err, BK_E_IO, 0, "%s: bzip2: cannot start decoding (error %d)",
                            b->in->name, rc);
    }
    b->bz_live = true;
    b->stream_end = false;
    return 0;
}

static void stream_end(struct bzip2_source *b)
{
    if (b->bz_live)
        BZ2_bzDecompressEnd(&b->bz);
    b->bz_live = false;
}

/*
 * A stream has just ended: what follows must be the end of the file or another
 * stream. Returns 1 at the proper end, 0 when the next stream is ready, -1 on error.
 */
static int next_stream(struct bzip2_source *b, struct bk_error *err)
{
    stream_end(b);
    while (b->end - b->pos < sizeof stream_magic && !b->in_eof)
        if (refill(b, err) < 0)
            return -1;
    size_t left = b->end - b->pos;
    if (left == 0)
        return 1;
    size_t n = left < sizeof stream_magic ? left : sizeof stream_magic;
    if (memcmp(b->buf + b->pos, stream_magic, n) != 0)
        return bz_fail(b, "trailing data after the bzip2 stream", offset_of_pos(b), err);
    if (n < sizeof stream_magic)
        return bz_fail(b, "the stream ends early (truncated)", b->total_in, err);
    if (stream_init(b, err) < 0) {
        b->failed = true;
        b->error = *err;
        return -1;
    }
    return 0;
}

static const char *bz_problem(int rc)
{
    switch (rc) {
    case BZ_DATA_ERROR_MAGIC:
        return "compressed data is corrupt (bad stream header)";
    default:
        return "compressed data is corrupt (CRC or block check failed)";
    }
}

static int bzip2_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                      struct bk_error *err)
{
    struct bzip2_source *b = src->priv;
    *got = 0;
    if (b->failed) {
        *err = b->error;
        return -1;
    }
    if (b->done)
        return 0;

    char *out = buf;
    size_t produced = 0;
    while (produced < len) {
        if (b->stream_end) {
            int rc = next_stream(b, err);
            if (rc < 0)
                return -1;
            if (rc > 0) {
                b->done = true;
                break;
            }
        }
        if (b->pos == b->end && !b->in_eof && refill(b, err) < 0)
            return -1;

        size_t room = len - produced < OUT_MAX ? len - produced : OUT_MAX;
        size_t pos_before = b->pos;
        b->bz.next_in = (char *)(b->buf + b->pos);
        b->bz.avail_in = (unsigned)(b->end - b->pos);
        b->bz.next_out = out + produced;
        b->bz.avail_out = (unsigned)room;
        int rc = BZ2_bzDecompress(&b->bz);
        b->pos = (size_t)((uint8_t *)b->bz.next_in - b->buf);
        size_t made = room - b->bz.avail_out;
        produced += made;
        if (rc == BZ_STREAM_END) {
            b->stream_end = true;
            continue;
        }
        if (rc == BZ_MEM_ERROR) {
            b->failed = true;
            bk_error_set(&b->error, BK_E_NOMEM, 0, "%s: bzip2: out of memory", b->in->name);
            *err = b->error;
            return -1;
        }
        if (rc != BZ_OK)
            return bz_fail(b, bz_problem(rc), offset_of_pos(b), err);
        if (b->bz.avail_out == 0)
            continue;
        /* Room is left and the stream is not over: the decoder wants more input. */
        bool progress = made > 0 || b->pos != pos_before;
        if (b->pos < b->end && progress)
            continue;
        if (!b->in_eof) {
            if (b->end - b->pos == IN_BYTES)
                return bz_fail(b, bz_problem(BZ_DATA_ERROR), offset_of_pos(b), err);
            if (refill(b, err) < 0)
                return -1;
            continue;
        }
        if (!progress)
            return bz_fail(b, "the stream ends early (truncated)", b->total_in, err);
    }
    *got = produced;
    return 0;
}

static void bzip2_close(struct bk_source *src)
{
    struct bzip2_source *b = src->priv;
    stream_end(b);
    bk_source_close(b->in);
    free(b->buf);
    free(b);
}

struct bk_source *bk_decode_bzip2(struct bk_source *in, struct bk_error *err)
{
    return bk_decode_bzip2_at(in, 0, err);
}

static const struct bk_source_ops bzip2_ops = {
    .read = bzip2_read,
    .close = bzip2_close,
};

struct bk_source *bk_decode_bzip2_at(struct bk_source *in, uint64_t first, struct bk_error *err)
{
    struct bzip2_source *b = calloc(1, sizeof *b);
    uint8_t *buf = malloc(IN_BYTES);
    if (!b || !buf) {
        free(b);
        free(buf);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    b->in = in;
    b->buf = buf;
    b->total_in = first;
    if (stream_init(b, err) < 0) {
        free(b->buf);
        free(b);
        return NULL;
    }
    bk_source_init_decoder(&b->pub, in, &bzip2_ops, b);
    return &b->pub;
}
