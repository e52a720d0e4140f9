/* SPDX-License-Identifier: MIT */
/*
 * Assemble the source of an image: the file, then whatever decoders its first bytes
 * call for. Formats are told by their magic numbers, so names and standard input need
 * no suffix. A stream decoder runs on the copy's reader thread and decodes straight
 * into the copy's buffers.
 */
#include "decode/decode.h"
#include "source/source_impl.h"

#include <string.h>

/* A tar header is 512 bytes; "ustar" at 257 marks the POSIX and GNU variants. */
#define TAR_HEADER 512
#define PEEK_BYTES TAR_HEADER

static bool is_tar(const uint8_t *head, size_t len)
{
    return len >= TAR_HEADER && memcmp(head + 257, "ustar", 5) == 0;
}

struct bk_source *bk_decode_for(enum bk_format format, struct bk_source *in, struct bk_error *err)
{
    switch (format) {
    case BK_FORMAT_GZIP:
        return bk_decode_gzip(in, err);
    case BK_FORMAT_BZIP2:
        return bk_decode_bzip2(in, err);
    case BK_FORMAT_XZ:
        return bk_decode_xz(in, err);
    case BK_FORMAT_ZSTD:
        return bk_decode_zstd(in, err);
    case BK_FORMAT_LZ4:
        return bk_decode_lz4(in, err);
    case BK_FORMAT_LZOP:
        return bk_decode_lzop(in, err);
    case BK_FORMAT_ZIP:
        return bk_decode_archive(in, err);
    case BK_FORMAT_RAW:
        break;
    }
    bk_error_set(err, BK_E_INVALID, 0, "%s: no decoder for this format", in->name);
    return NULL;
}

/* Peek at SRC (wrapping it); on failure SRC is closed. */
static struct bk_source *peek_head(struct bk_source *src, const uint8_t **head, size_t *len,
                                   struct bk_error *err)
{
    struct bk_source *p = bk_source_peekable(src, PEEK_BYTES, err);
    if (!p) {
        bk_source_close(src);
        return NULL;
    }
    if (bk_source_peek(p, head, PEEK_BYTES, len, err) < 0) {
        bk_source_close(p);
        return NULL;
    }
    return p;
}

/* Wrap SRC with DECODE; on failure SRC is closed. */
static struct bk_source *wrap(struct bk_source *src,
                              struct bk_source *(*decode)(struct bk_source *, struct bk_error *),
                              struct bk_error *err)
{
    struct bk_source *d = decode(src, err);
    if (!d)
        bk_source_close(src);
    return d;
}

static struct bk_source *decode_any(enum bk_format format, struct bk_source *in,
                                    struct bk_error *err)
{
    struct bk_source *d = bk_decode_for(format, in, err);
    if (!d)
        bk_source_close(in);
    return d;
}

/* The format a file name's suffix promises (the suffixes bmaptool knows), or RAW. */
static enum bk_format format_of_name(const char *path)
{
    static const struct {
        const char *suffix;
        enum bk_format format;
    } suffixes[] = {
        {".gz", BK_FORMAT_GZIP},   {".gzip", BK_FORMAT_GZIP}, {".tgz", BK_FORMAT_GZIP},
        {".bz2", BK_FORMAT_BZIP2}, {".tbz", BK_FORMAT_BZIP2}, {".tbz2", BK_FORMAT_BZIP2},
        {".tb2", BK_FORMAT_BZIP2}, {".xz", BK_FORMAT_XZ},     {".txz", BK_FORMAT_XZ},
        {".lzo", BK_FORMAT_LZOP},  {".tzo", BK_FORMAT_LZOP},  {".lz4", BK_FORMAT_LZ4},
        {".tlz4", BK_FORMAT_LZ4},  {".zst", BK_FORMAT_ZSTD},  {".tzst", BK_FORMAT_ZSTD},
        {".zip", BK_FORMAT_ZIP},
    };
    size_t len = strlen(path);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t n = strlen(suffixes[i].suffix);
        if (len > n && strcmp(path + len - n, suffixes[i].suffix) == 0)
            return suffixes[i].format;
    }
    return BK_FORMAT_RAW;
}

/* A decoder's output (NULL after a failure), with a tar archive inside it opened. */
static struct bk_source *after_decoder(struct bk_source *dec, struct bk_error *err)
{
    const uint8_t *head;
    size_t len;
    if (!dec || !(dec = peek_head(dec, &head, &len, err)))
        return NULL;
    if (is_tar(head, len))
        return wrap(dec, bk_decode_archive, err);
    return dec;
}

struct bk_source *bk_source_open_image(const char *path, enum bk_format *format_out,
                                       struct bk_error *err)
{
    struct bk_source *src = bk_source_open_file(path, err);
    if (!src)
        return NULL;
    const uint8_t *head;
    size_t len;
    if (!(src = peek_head(src, &head, &len, err)))
        return NULL;
    enum bk_format format = bk_format_detect(head, len);
    if (format_out)
        *format_out = format;
    /* A compressed file too damaged to show its magic must not pass as a raw image. */
    enum bk_format named = strcmp(path, "-") == 0 ? BK_FORMAT_RAW : format_of_name(path);
    if (named != BK_FORMAT_RAW && named != format) {
        bk_error_set(err, BK_E_FORMAT, 0,
                     "%s: the name says %s, but the content is %s (damaged, or misnamed?)",
                     src->name, bk_format_name(named),
                     format == BK_FORMAT_RAW ? "not compressed" : bk_format_name(format));
        bk_source_close(src);
        return NULL;
    }

    if (format == BK_FORMAT_RAW && !is_tar(head, len))
        return src;
    if (format == BK_FORMAT_RAW || format == BK_FORMAT_ZIP) {
        return wrap(src, bk_decode_archive, err);
    }

    if ((format == BK_FORMAT_XZ || format == BK_FORMAT_ZSTD) && src->seekable) {
        /* Random access when the file is made of several independent blocks or frames. */
        struct bk_source *x = format == BK_FORMAT_XZ ? bk_decode_xz_indexed(src, err)
                                                     : bk_decode_zstd_indexed(src, err);
        if (x) {
            uint8_t inner[TAR_HEADER];
            size_t got = 0;
            if (x->pread(x, inner, sizeof inner, 0, &got, err) < 0) {
                bk_source_close(x);
                return NULL;
            }
            if (!is_tar(inner, got))
                return x;
            /* A tar inside: the archive reader needs the stream. */
            bk_source_close(x);
            if (!(src = bk_source_open_file(path, err)))
                return NULL;
        } else if (err->code != BK_E_UNSUPPORTED) {
            bk_source_close(src);
            return NULL;
        }
        bk_error_clear(err);
    }

    if (format == BK_FORMAT_BZIP2) {
        struct bk_source *par = bk_decode_bzip2_parallel(src, err);
        if (par)
            return after_decoder(par, err);
        if (err->code != BK_E_UNSUPPORTED) {
            bk_source_close(src);
            return NULL;
        }
        bk_error_clear(err);
    }

    return after_decoder(decode_any(format, src, err), err);
}
