/* SPDX-License-Identifier: MIT */
/*
 * lzop files, decoded with liblzo2. A file is a header (magic, versions, method,
 * flags, mode, times, name, header checksum) followed by blocks: the uncompressed
 * and compressed lengths (32-bit big-endian), the checksums the flags ask for, then
 * the data, stored as is when both lengths are equal. A block of uncompressed length
 * 0 ends the file. Like lzop -d, further lzop files may follow (they are decoded in
 * turn), and so may zero bytes up to the end (ignored); anything else is an error.
 */
#include "decode/decode.h"

#include <inttypes.h>
#include <lzo/lzo1x.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MAGIC "\x89LZO\x00\x0d\x0a\x1a\x0a"
#define MAGIC_LEN 9

/* Header flags. */
#define F_ADLER32_D 0x00000001u
#define F_ADLER32_C 0x00000002u
#define F_H_EXTRA_FIELD 0x00000040u
#define F_CRC32_D 0x00000100u
#define F_CRC32_C 0x00000200u
#define F_MULTIPART 0x00000400u
#define F_H_FILTER 0x00000800u
#define F_H_CRC32 0x00001000u
/* Defined flag bits, the operating system (top byte) and character set (bits 20-23). */
#define F_KNOWN (0x00003fffu | 0xff000000u | 0x00f00000u)

/* Methods that are all LZO1X streams, decoded alike. */
#define M_LZO1X_1 1
#define M_LZO1X_1_15 2
#define M_LZO1X_999 3

/* The newest format version this decoder reads (lzop 1.04) and lzop's block limit. */
#define VERSION_MAX 0x1040
#define BLOCK_MAX (64u * 1024 * 1024)
/* lzop writes no extra field; a bound keeps a damaged length from allocating much. */
#define EXTRA_MAX (1u << 20)

#define INPUT_START (512u * 1024)

enum state { IN_HEADER, IN_BLOCKS, AFTER_END, DONE };

struct lzop_source {
    struct bk_source pub;
    struct bk_source *in;
    enum state state;
    uint32_t flags;

    /* Compressed bytes read from IN: ibuf[ipos, ilen) are not consumed yet; ibuf[0] is
       at stream offset ibase. */
    uint8_t *ibuf;
    size_t icap, ipos, ilen;
    uint64_t ibase;
    bool in_eof;

    /* A decoded block not yet handed out, when the caller's buffer was too small. */
    uint8_t *obuf;
    size_t ocap, opos, olen;
};

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t sum_adler32(const uint8_t *p, size_t len)
{
    return (uint32_t)adler32_z(1, p, len);
}

static uint32_t sum_crc32(const uint8_t *p, size_t len)
{
    return (uint32_t)crc32_z(0, p, len);
}

/* Stream offset of the first unconsumed byte. */
static uint64_t offset_at(const struct lzop_source *z, size_t pos)
{
    return z->ibase + pos;
}

static int fail(struct lzop_source *z, uint64_t offset, struct bk_error *err, const char *what)
{
    return bk_error_set(err, BK_E_FORMAT, 0, "%s: lzop: %s at byte %" PRIu64, z->pub.name, what,
                        offset);
}

static int truncated(struct lzop_source *z, struct bk_error *err)
{
    return fail(z, offset_at(z, z->ilen), err, "the stream ends early (truncated)");
}

/*
 * Make at least N unconsumed bytes available, contiguous at ibuf + ipos. Returns 0
 * when they are, 1 when IN ends first (fewer are available), -1 on error.
 */
static int fill(struct lzop_source *z, size_t n, struct bk_error *err)
{
    if (z->ilen - z->ipos >= n)
        return 0;
    if (z->icap - z->ipos < n) {
        /* Move the unconsumed bytes to the front, and grow when that is not enough. */
        memmove(z->ibuf, z->ibuf + z->ipos, z->ilen - z->ipos);
        z->ibase += z->ipos;
        z->ilen -= z->ipos;
        z->ipos = 0;
        if (z->icap < n) {
            uint8_t *b = realloc(z->ibuf, n);
            if (!b)
                return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
            z->ibuf = b;
            z->icap = n;
        }
    }
    while (z->ilen - z->ipos < n) {
        if (z->in_eof)
            return 1;
        size_t got;
        if (bk_source_read(z->in, z->ibuf + z->ilen, z->icap - z->ilen, &got, err) < 0)
            return -1;
        if (got == 0)
            z->in_eof = true;
        z->ilen += got;
    }
    return 0;
}

/* Like fill, but running short is the truncation error. */
static int need(struct lzop_source *z, size_t n, struct bk_error *err)
{
    int rc = fill(z, n, err);
    return rc > 0 ? truncated(z, err) : rc;
}

static bool header_sum_ok(const struct lzop_source *z, const uint8_t *p, size_t len, uint32_t want)
{
    uint32_t got = z->flags & F_H_CRC32 ? sum_crc32(p, len) : sum_adler32(p, len);
    return got == want;
}

/* Read one file header, magic included, and consume it. */
/* The optional extra field of the header at START, from *AT on; *AT moves past it. */
static int read_extra_field(struct lzop_source *z, uint64_t start, size_t *at, struct bk_error *err)
{
    if (need(z, *at + 4, err) < 0)
        return -1;
    const uint8_t *h = z->ibuf + z->ipos;
    uint32_t extra = be32(h + *at);
    if (extra > EXTRA_MAX)
        return fail(z, start + *at, err, "bad header (extra field too long)");
    /* Its own checksum covers its length and its data. */
    if (need(z, *at + 4 + extra + 4, err) < 0)
        return -1;
    h = z->ibuf + z->ipos;
    if (!header_sum_ok(z, h + *at, 4 + (size_t)extra, be32(h + *at + 4 + extra)))
        return fail(z, start + *at + 4 + extra, err, "extra field checksum mismatch");
    *at += 4 + extra + 4;
    return 0;
}

static int read_header(struct lzop_source *z, struct bk_error *err)
{
    uint64_t start = offset_at(z, z->ipos);
    /* Magic, version, library version: enough to know the layout of the rest. */
    if (need(z, MAGIC_LEN + 4, err) < 0)
        return -1;
    const uint8_t *h = z->ibuf + z->ipos;
    if (memcmp(h, MAGIC, MAGIC_LEN) != 0)
        return fail(z, start, err, "not an lzop file (bad magic)");
    uint32_t version = be16(h + MAGIC_LEN);
    if (version < 0x0900)
        return fail(z, start + MAGIC_LEN, err, "unsupported format version (too old)");
    bool v940 = version >= 0x0940;

    /* Fixed part after the magic: versions, [needed version], method, [level], flags. */
    size_t fixed = 4u + (v940 ? 2u : 0u) + 1u + (v940 ? 1u : 0u) + 4u;
    if (need(z, MAGIC_LEN + fixed, err) < 0)
        return -1;
    h = z->ibuf + z->ipos;
    size_t at = MAGIC_LEN + 4;
    if (v940) {
        uint32_t needed = be16(h + at);
        if (needed > VERSION_MAX)
            return bk_error_set(err, BK_E_UNSUPPORTED, 0,
                                "%s: lzop: the file needs a decoder of format version %x.%03x "
                                "(this one reads up to %x.%03x) at byte %" PRIu64,
                                z->pub.name, needed >> 12, needed & 0xfff, VERSION_MAX >> 12,
                                VERSION_MAX & 0xfff, start + at);
        if (needed < 0x0900)
            return fail(z, start + at, err, "bad header (version needed to extract)");
        at += 2;
    }
    unsigned method = h[at];
    if (method != M_LZO1X_1 && method != M_LZO1X_1_15 && method != M_LZO1X_999)
        return bk_error_set(err, BK_E_UNSUPPORTED, 0,
                            "%s: lzop: compression method %u is not supported at byte %" PRIu64,
                            z->pub.name, method, start + at);
    at += 1u + (v940 ? 1u : 0u);
    z->flags = be32(h + at);
    if (z->flags & ~F_KNOWN)
        return fail(z, start + at, err, "bad header (unknown flags)");
    if (z->flags & F_MULTIPART)
        return bk_error_set(err, BK_E_UNSUPPORTED, 0,
                            "%s: lzop: multipart files are not supported at byte %" PRIu64,
                            z->pub.name, start + at);
    at += 4;

    /* [filter], mode, mtime, [mtime high], name length. */
    size_t rest = (z->flags & F_H_FILTER ? 4u : 0u) + 4u + 4u + (v940 ? 4u : 0u) + 1u;
    if (need(z, at + rest, err) < 0)
        return -1;
    h = z->ibuf + z->ipos;
    if (z->flags & F_H_FILTER) {
        uint32_t filter = be32(h + at);
        if (filter != 0)
            return bk_error_set(err, BK_E_UNSUPPORTED, 0,
                                "%s: lzop: filter %" PRIu32 " is not supported at byte %" PRIu64,
                                z->pub.name, filter, start + at);
    }
    at += rest - 1;
    size_t name_len = h[at];
    at += 1 + name_len;
    if (need(z, at + 4, err) < 0)
        return -1;
    h = z->ibuf + z->ipos;
    /* The checksum covers everything after the magic. */
    if (!header_sum_ok(z, h + MAGIC_LEN, at - MAGIC_LEN, be32(h + at)))
        return fail(z, start + at, err, "header checksum mismatch");
    at += 4;

    if ((z->flags & F_H_EXTRA_FIELD) && read_extra_field(z, start, &at, err) < 0)
        return -1;
    z->ipos += at;
    return 0;
}

static int ensure_obuf(struct lzop_source *z, size_t n, struct bk_error *err)
{
    if (z->ocap >= n)
        return 0;
    free(z->obuf);
    z->obuf = malloc(n);
    z->ocap = z->obuf ? n : 0;
    if (!z->obuf)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    return 0;
}

/*
 * Decode the next block into BUF (LEN bytes) when it fits, else into obuf. Returns the
 * decoded length in *OUT_LEN (0 at the end block) and sets *IN_OBUF.
 */
static int read_block(struct lzop_source *z, uint8_t *buf, size_t len, size_t *out_len,
                      bool *in_obuf, struct bk_error *err)
{
    uint64_t start = offset_at(z, z->ipos);
    if (need(z, 4, err) < 0)
        return -1;
    uint32_t dst_len = be32(z->ibuf + z->ipos);
    if (dst_len == 0) {
        z->ipos += 4;
        *out_len = 0;
        return 0;
    }
    if (dst_len > BLOCK_MAX)
        return fail(z, start, err, "block larger than the 64 MiB maximum (corrupt data)");

    /* Compressed length and the checksums; those of the compressed bytes are there
       only when the data is compressed. */
    if (need(z, 8, err) < 0)
        return -1;
    uint32_t src_len = be32(z->ibuf + z->ipos + 4);
    if (src_len == 0 || src_len > dst_len)
        return fail(z, start + 4, err, "bad compressed block length (corrupt data)");
    bool stored = src_len == dst_len;
    size_t head = 8u + (z->flags & F_ADLER32_D ? 4u : 0u) + (z->flags & F_CRC32_D ? 4u : 0u);
    if (!stored)
        head += (z->flags & F_ADLER32_C ? 4u : 0u) + (z->flags & F_CRC32_C ? 4u : 0u);
    if (need(z, head + src_len, err) < 0)
        return -1;

    const uint8_t *h = z->ibuf + z->ipos;
    const uint8_t *src = h + head;
    size_t at = 8;
    uint32_t d_adler = 0, d_crc = 0;
    if (z->flags & F_ADLER32_D) {
        d_adler = be32(h + at);
        at += 4;
    }
    if (z->flags & F_CRC32_D) {
        d_crc = be32(h + at);
        at += 4;
    }
    if (!stored) {
        /* Checking the compressed bytes first keeps corrupt input away from the decoder. */
        if ((z->flags & F_ADLER32_C) && sum_adler32(src, src_len) != be32(h + at))
            return fail(z, start, err, "compressed data fails its adler32 check in the block");
        at += z->flags & F_ADLER32_C ? 4u : 0u;
        if ((z->flags & F_CRC32_C) && sum_crc32(src, src_len) != be32(h + at))
            return fail(z, start, err, "compressed data fails its crc32 check in the block");
    }

    /* Straight into the caller's buffer when the whole block fits: no extra copy. */
    uint8_t *dst = buf;
    *in_obuf = len < dst_len;
    if (*in_obuf) {
        if (ensure_obuf(z, dst_len, err) < 0)
            return -1;
        dst = z->obuf;
    }
    if (stored) {
        memcpy(dst, src, dst_len);
    } else {
        lzo_uint n = dst_len;
        int rc = lzo1x_decompress_safe(src, src_len, dst, &n, NULL);
        if (rc != LZO_E_OK || n != dst_len)
            return fail(z, start, err, "compressed data is corrupt in the block");
    }
    if ((z->flags & F_ADLER32_D) && sum_adler32(dst, dst_len) != d_adler)
        return fail(z, start, err, "decompressed data fails its adler32 check in the block");
    if ((z->flags & F_CRC32_D) && sum_crc32(dst, dst_len) != d_crc)
        return fail(z, start, err, "decompressed data fails its crc32 check in the block");
    z->ipos += head + src_len;
    *out_len = dst_len;
    return 0;
}

/* After an end block: another lzop file, zero padding up to the end, or the end. */
static int read_after_end(struct lzop_source *z, struct bk_error *err)
{
    int rc = fill(z, 1, err);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        z->state = DONE;
        return 0;
    }
    if (z->ibuf[z->ipos] == 0) {
        /* lzop -d accepts zeros after the end (padding), but only up to the end. */
        for (;;) {
            while (z->ipos < z->ilen && z->ibuf[z->ipos] == 0)
                z->ipos++;
            if (z->ipos < z->ilen)
                return fail(z, offset_at(z, z->ipos), err,
                            "trailing garbage after the end of the compressed data");
            /* All consumed: fill reads afresh into the whole buffer. */
            rc = fill(z, 1, err);
            if (rc < 0)
                return -1;
            if (rc > 0) {
                z->state = DONE;
                return 0;
            }
        }
    }
    rc = fill(z, MAGIC_LEN, err);
    if (rc < 0)
        return -1;
    size_t have = z->ilen - z->ipos < MAGIC_LEN ? z->ilen - z->ipos : MAGIC_LEN;
    if (memcmp(z->ibuf + z->ipos, MAGIC, have) != 0)
        return fail(z, offset_at(z, z->ipos), err,
                    "trailing garbage after the end of the compressed data");
    if (rc > 0)
        return truncated(z, err);
    z->state = IN_HEADER;
    return 0;
}

static int lzop_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                     struct bk_error *err)
{
    struct lzop_source *z = src->priv;
    *got = 0;
    if (len == 0)
        return 0;
    if (z->opos < z->olen) {
        size_t n = z->olen - z->opos < len ? z->olen - z->opos : len;
        memcpy(buf, z->obuf + z->opos, n);
        z->opos += n;
        *got = n;
        return 0;
    }
    for (;;) {
        switch (z->state) {
        case IN_HEADER:
            if (read_header(z, err) < 0)
                return -1;
            z->state = IN_BLOCKS;
            break;
        case IN_BLOCKS: {
            size_t n = 0;
            bool in_obuf = false;
            if (read_block(z, buf, len, &n, &in_obuf, err) < 0)
                return -1;
            if (n == 0) {
                z->state = AFTER_END;
                break;
            }
            if (!in_obuf) {
                *got = n;
                return 0;
            }
            z->olen = n;
            z->opos = len;
            memcpy(buf, z->obuf, len);
            *got = len;
            return 0;
        }
        case AFTER_END:
            if (read_after_end(z, err) < 0)
                return -1;
            break;
        case DONE:
            return 0;
        }
    }
}

static void lzop_close(struct bk_source *src)
{
    struct lzop_source *z = src->priv;
    bk_source_close(z->in);
    free(z->ibuf);
    free(z->obuf);
    free(z);
}

static const struct bk_source_ops lzop_ops = {
    .read = lzop_read,
    .close = lzop_close,
};

struct bk_source *bk_decode_lzop(struct bk_source *in, struct bk_error *err)
{
    if (lzo_init() != LZO_E_OK) {
        bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: lzop: the LZO library does not initialise",
                     in->name);
        return NULL;
    }
    struct lzop_source *z = calloc(1, sizeof *z);
    uint8_t *ibuf = malloc(INPUT_START);
    if (!z || !ibuf) {
        free(z);
        free(ibuf);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    z->in = in;
    z->ibuf = ibuf;
    z->icap = INPUT_START;
    z->state = IN_HEADER;
    bk_source_init_decoder(&z->pub, in, &lzop_ops, z);
    return &z->pub;
}
