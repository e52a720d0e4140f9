/* SPDX-License-Identifier: MIT */
/*
 * Assemble the source of an image: a raw source (a file, standard input, anything that
 * reads), then whatever decoders its first bytes call for. Formats are told by their
 * magic numbers, so names and standard input need no suffix. A stream decoder runs on
 * the copy's reader thread and decodes straight into the copy's buffers.
 */
#include "decode/decode.h"

#include <string.h>

/* A tar header is 512 bytes; "ustar" at 257 marks the POSIX and GNU variants. */
#define TAR_HEADER 512
#define PEEK_BYTES TAR_HEADER

static bool is_tar(const uint8_t *head, size_t len)
{
    return len >= TAR_HEADER && memcmp(head + 257, "ustar", 5) == 0;
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

/* SRC decoded by DECODE; on failure SRC is closed. */
static struct bk_source *wrap(struct bk_source *src, bk_decode_fn decode, struct bk_error *err)
{
    struct bk_source *d = decode(src, err);
    if (!d)
        bk_source_close(src);
    return d;
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

/*
 * Try an optional decoder: its source, or NULL with *DECLINED set when it does not
 * apply to this file (SRC is then still the caller's), or NULL after a failure (SRC
 * closed).
 */
static struct bk_source *try_optional(bk_decode_fn decode, struct bk_source *src, bool *declined,
                                      struct bk_error *err)
{
    struct bk_error e;
    bk_error_clear(&e);
    struct bk_source *d = decode(src, &e);
    *declined = !d && e.code == BK_E_UNSUPPORTED;
    if (!d && !*declined) {
        if (err)
            *err = e;
        bk_source_close(src);
    }
    return d;
}

/*
 * A seekable image inside a file of independent blocks or frames. A tar inside is read
 * through the same source, sequentially: the reading decodes every piece on all CPUs.
 */
static struct bk_source *open_indexed(struct bk_source *x, struct bk_error *err)
{
    uint8_t inner[TAR_HEADER];
    size_t got = 0;
    if (bk_source_pread(x, inner, sizeof inner, 0, &got, err) < 0) {
        bk_source_close(x);
        return NULL;
    }
    if (!is_tar(inner, got))
        return x;
    return wrap(x, bk_decode_archive, err);
}

/* The name promises a compressed format the content does not have: damaged or misnamed. */
static int check_name(const struct bk_source *src, const char *name_hint, enum bk_format format,
                      struct bk_error *err)
{
    enum bk_format named = name_hint ? bk_format_of_name(name_hint) : BK_FORMAT_RAW;
    if (named == BK_FORMAT_RAW || named == format)
        return 0;
    return bk_error_set(err, BK_E_FORMAT, 0,
                        "%s: the name says %s, but the content is %s (damaged, or misnamed?)",
                        src->name, bk_format_name(named),
                        format == BK_FORMAT_RAW ? "not compressed" : bk_format_name(format));
}

struct bk_source *bk_decode_stack(struct bk_source *raw, const char *name_hint,
                                  enum bk_format *format_out, struct bk_error *err)
{
    const uint8_t *head;
    size_t len;
    struct bk_source *src = peek_head(raw, &head, &len, err);
    if (!src)
        return NULL;
    enum bk_format format = bk_format_detect(head, len);
    if (format_out)
        *format_out = format;
    if (check_name(src, name_hint, format, err) < 0) {
        bk_source_close(src);
        return NULL;
    }
    const struct bk_decoder *dec = bk_decoder_for(format);
    if (!dec)
        return is_tar(head, len) ? wrap(src, bk_decode_archive, err) : src;

    bool declined = true;
    struct bk_source *d = NULL;
    if (dec->indexed && src->seekable) {
        d = try_optional(dec->indexed, src, &declined, err);
        if (d)
            return open_indexed(d, err);
    }
    if (declined && dec->parallel) {
        d = try_optional(dec->parallel, src, &declined, err);
        if (d)
            return after_decoder(d, err);
    }
    if (!declined)
        return NULL;
    if (format == BK_FORMAT_ZIP)
        return wrap(src, dec->stream, err);
    return after_decoder(wrap(src, dec->stream, err), err);
}

struct bk_source *bk_source_open_image(const char *path, enum bk_format *format,
                                       struct bk_error *err)
{
    return bk_source_open_image_fetch(path, NULL, format, err);
}

struct bk_source *bk_source_open_image_fetch(const char *path, const struct bk_fetch_options *opts,
                                             enum bk_format *format, struct bk_error *err)
{
    struct bk_source *src = bk_source_open_file_fetch(path, opts, err);
    if (!src)
        return NULL;
    return bk_decode_stack(src, strcmp(path, "-") == 0 ? NULL : path, format, err);
}

struct bk_source *bk_source_decode(struct bk_source *raw, const char *name_hint,
                                   enum bk_format *format, struct bk_error *err)
{
    if (!raw) {
        bk_error_set(err, BK_E_INVALID, 0, "no source to decode");
        return NULL;
    }
    return bk_decode_stack(raw, name_hint, format, err);
}
