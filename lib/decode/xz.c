/* SPDX-License-Identifier: MIT */
/*
 * xz images read as a stream (standard input, single-block files, tar inside), decoded
 * with liblzma's threaded stream decoder.
 *
 * The threaded decoder decodes several blocks at once when their headers carry their
 * sizes, which multi-threaded xz (xz -T) writes. A file from single-threaded xz (one
 * block, no sizes in its header) is decoded by the same decoder in its single-threaded
 * mode, exactly as lzma_stream_decoder would, so nothing is lost by always using it.
 *
 * Streams are chained here rather than with LZMA_CONCATENATED: that flag reports bytes
 * after the last stream as corrupt data, while walking the padding and the next header
 * ourselves tells trailing garbage, bad padding and a cut-off header apart and names the
 * byte where each begins.
 */
#include "decode/decode.h"
#include "common/cpus.h"

#include <inttypes.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>

#define IN_BYTES (1u << 20)

/*
 * Memory the threaded decoder may use before it runs fewer threads: per thread about a
 * block's compressed and uncompressed size plus the dictionary (some 40 MiB for xz -6
 * -T). Files whose blocks need more (xz -9: 192 MiB blocks) are decoded on one thread,
 * in the dictionary's memory alone. Never a reason to refuse a file (no stop limit).
 */
#define MT_MEMLIMIT (160ull << 20)

static const uint8_t xz_magic[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};

enum xz_state {
    XZ_STREAM,  /* inside a stream */
    XZ_BETWEEN, /* after a stream: padding, another stream or the end */
    XZ_DONE,
};

struct xz_source {
    struct bk_source pub;
    struct bk_source *in;
    lzma_stream strm;
    enum xz_state state;
    unsigned threads;
    uint8_t *buf;
    uint64_t buf_off;    /* compressed offset of buf[0] */
    uint64_t stream_off; /* compressed offset where the current stream began */
    uint64_t padding;    /* zero bytes seen after the last stream */
    bool in_end;
    lzma_ret failed; /* held back until the data decoded before it is read */
};

/* Compressed offset of the next unread input byte. */
static uint64_t next_offset(const struct xz_source *x)
{
    return x->buf_off + (uint64_t)(x->strm.next_in - x->buf);
}

/* Keep the unread input and read more after it; sets in_end at the end of IN. */
static int refill(struct xz_source *x, struct bk_error *err)
{
    size_t keep = x->strm.avail_in;
    x->buf_off = next_offset(x);
    memmove(x->buf, x->strm.next_in, keep);
    x->strm.next_in = x->buf;
    size_t got = 0;
    if (bk_source_read(x->in, x->buf + keep, IN_BYTES - keep, &got, err) < 0)
        return -1;
    if (got == 0)
        x->in_end = true;
    x->strm.avail_in = keep + got;
    return 0;
}

static int start_stream(struct xz_source *x, struct bk_error *err)
{
    lzma_mt mt = {
        .threads = x->threads,
        .timeout = 0, /* we run on a thread of our own: blocking is fine */
        .memlimit_threading = MT_MEMLIMIT,
        .memlimit_stop = UINT64_MAX,
    };
    /* Initialising resets the stream's counters but not its input. */
    const uint8_t *next_in = x->strm.next_in;
    size_t avail_in = x->strm.avail_in;
    lzma_ret r = lzma_stream_decoder_mt(&x->strm, &mt);
    x->strm.next_in = next_in;
    x->strm.avail_in = avail_in;
    if (r == LZMA_MEM_ERROR)
        return bk_error_set(err, BK_E_NOMEM, 0, "%s: xz: out of memory", x->in->name);
    if (r != LZMA_OK)
        return bk_error_set(err, BK_E_UNSUPPORTED, 0,
                            "%s: xz: cannot start the decoder (liblzma error %d)", x->in->name,
                            (int)r);
    x->stream_off = next_offset(x);
    x->state = XZ_STREAM;
    return 0;
}

static int stream_error(struct xz_source *x, lzma_ret r, struct bk_error *err)
{
    const char *name = x->in->name;
    uint64_t at = x->stream_off + x->strm.total_in;
    switch (r) {
    case LZMA_BUF_ERROR:
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s: xz: the stream ends early (truncated) at byte %" PRIu64, name, at);
    case LZMA_DATA_ERROR:
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s: xz: compressed data is corrupt at byte %" PRIu64, name, at);
    case LZMA_FORMAT_ERROR:
        return bk_error_set(err, BK_E_FORMAT, 0, "%s: xz: not an xz stream header at byte %" PRIu64,
                            name, at);
    case LZMA_OPTIONS_ERROR:
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s: xz: unsupported options (or a corrupt header) at byte %" PRIu64,
                            name, at);
    case LZMA_MEM_ERROR:
        return bk_error_set(err, BK_E_NOMEM, 0, "%s: xz: out of memory at byte %" PRIu64, name, at);
    case LZMA_MEMLIMIT_ERROR:
        return bk_error_set(err, BK_E_UNSUPPORTED, 0,
                            "%s: xz: the stream needs too much memory, at byte %" PRIu64, name, at);
    default:
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s: xz: decoding failed (liblzma error %d) at byte %" PRIu64, name,
                            (int)r, at);
    }
}

/*
 * After a stream: zero bytes of padding (a multiple of four in all), then another
 * stream's magic or the end of the input. Anything else is trailing data.
 */
static int between_streams(struct xz_source *x, struct bk_error *err)
{
    for (;;) {
        while (x->strm.avail_in > 0 && x->strm.next_in[0] == 0) {
            x->strm.next_in++;
            x->strm.avail_in--;
            x->padding++;
        }
        if (x->strm.avail_in < sizeof xz_magic && !x->in_end) {
            if (refill(x, err) < 0)
                return -1;
            continue;
        }
        uint64_t at = next_offset(x);
        if (x->strm.avail_in == 0) {
            if (x->padding % 4 != 0)
                return bk_error_set(err, BK_E_FORMAT, 0,
                                    "%s: xz: trailing data after the stream: %" PRIu64
                                    " zero bytes, not a multiple of four, at byte %" PRIu64,
                                    x->in->name, x->padding, at - x->padding);
            x->state = XZ_DONE;
            return 0;
        }
        size_t n = x->strm.avail_in < sizeof xz_magic ? x->strm.avail_in : sizeof xz_magic;
        if (memcmp(x->strm.next_in, xz_magic, n) != 0)
            return bk_error_set(
                err, BK_E_FORMAT, 0,
                "%s: xz: trailing data after the end of the stream at byte %" PRIu64, x->in->name,
                at);
        if (n < sizeof xz_magic)
            return bk_error_set(err, BK_E_FORMAT, 0,
                                "%s: xz: the stream ends early (truncated) at byte %" PRIu64,
                                x->in->name, at + n);
        if (x->padding % 4 != 0)
            return bk_error_set(err, BK_E_FORMAT, 0,
                                "%s: xz: stream padding of %" PRIu64
                                " bytes is not a multiple of four, at byte %" PRIu64,
                                x->in->name, x->padding, at - x->padding);
        x->padding = 0;
        return start_stream(x, err);
    }
}

static int xz_read(struct bk_source *src, void *buf, size_t len, size_t *got, struct bk_error *err)
{
    struct xz_source *x = src->priv;
    *got = 0;
    if (x->failed != LZMA_OK)
        return stream_error(x, x->failed, err);
    x->strm.next_out = buf;
    x->strm.avail_out = len;
    while (x->state != XZ_DONE && x->strm.avail_out == len) {
        if (x->strm.avail_in == 0 && !x->in_end && refill(x, err) < 0)
            return -1;
        if (x->state == XZ_BETWEEN) {
            if (between_streams(x, err) < 0)
                return -1;
            continue;
        }
        lzma_ret r = lzma_code(&x->strm, x->in_end ? LZMA_FINISH : LZMA_RUN);
        if (r == LZMA_STREAM_END) {
            x->state = XZ_BETWEEN;
        } else if (r != LZMA_OK) {
            /* Data decoded before the failure is handed out first; the error comes next. */
            x->failed = r;
            if (x->strm.avail_out < len)
                break;
            return stream_error(x, r, err);
        }
    }
    *got = len - x->strm.avail_out;
    return 0;
}

static void xz_close(struct bk_source *src)
{
    struct xz_source *x = src->priv;
    lzma_end(&x->strm);
    bk_source_close(x->in);
    free(x->buf);
    free(x);
}

static const struct bk_source_ops xz_ops = {
    .read = xz_read,
    .close = xz_close,
};

struct bk_source *bk_decode_xz(struct bk_source *in, struct bk_error *err)
{
    struct xz_source *x = calloc(1, sizeof *x);
    uint8_t *buf = malloc(IN_BYTES);
    if (!x || !buf) {
        free(x);
        free(buf);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    x->strm = (lzma_stream)LZMA_STREAM_INIT;
    x->failed = LZMA_OK;
    x->in = in;
    x->buf = buf;
    x->strm.next_in = buf;
    x->threads = bk_cpu_count();
    if (start_stream(x, err) < 0) {
        lzma_end(&x->strm);
        free(buf);
        free(x);
        return NULL;
    }
    bk_source_init_decoder(&x->pub, in, &xz_ops, x);
    return &x->pub;
}
