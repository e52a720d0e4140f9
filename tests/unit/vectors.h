/* SPDX-License-Identifier: MIT */
/*
 * Test helpers that generate bmap documents in memory, in the layout each format version
 * uses, with the file checksum filled in the way a writer must do it (value set to zeros,
 * whole file hashed, digest written over the zeros). Tests then edit the text with the
 * small string helpers below and call vec_fix_checksum again, so every negative case
 * fails for the reason it is about and not because of a stale file checksum.
 *
 * Everything is static inline so each test program takes only what it uses.
 */
#ifndef BMAPKIT_TEST_VECTORS_H
#define BMAPKIT_TEST_VECTORS_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmapkit/bmap.h"
#include "bmapkit/digest.h"
#include "digest/hex.h"

/* A growable byte string; aborts on allocation failure since tests cannot go on then. */
struct vbuf {
    char *data;
    size_t len;
    size_t cap;
};

static inline void vbuf_reserve(struct vbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        abort();
    b->data = p;
    b->cap = cap;
}

static inline void vbuf_add(struct vbuf *b, const void *s, size_t n)
{
    vbuf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void vbuf_puts(struct vbuf *b, const char *s)
{
    vbuf_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static inline void vbuf_printf(struct vbuf *b,
                                                                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    vbuf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static inline void vbuf_free(struct vbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Replace LEN bytes at OFF by the NEW_LEN bytes at REPL. */
static inline void vbuf_splice(struct vbuf *b, size_t off, size_t len, const char *repl,
                               size_t new_len)
{
    if (new_len > len)
        vbuf_reserve(b, new_len - len);
    memmove(b->data + off + new_len, b->data + off + len, b->len - off - len + 1);
    memcpy(b->data + off, repl, new_len);
    b->len = b->len - len + new_len;
}

/* Offset of the first NEEDLE at or after FROM, or SIZE_MAX. */
static inline size_t vbuf_find(const struct vbuf *b, size_t from, const char *needle)
{
    size_t n = strlen(needle);
    if (from > b->len)
        return SIZE_MAX;
    const char *hit = memmem(b->data + from, b->len - from, needle, n);
    return hit ? (size_t)(hit - b->data) : SIZE_MAX;
}

/* Replace the first OLD with NEW; returns false when OLD does not occur. */
static inline bool vec_replace(struct vbuf *b, const char *old, const char *repl)
{
    size_t at = vbuf_find(b, 0, old);
    if (at == SIZE_MAX)
        return false;
    vbuf_splice(b, at, strlen(old), repl, strlen(repl));
    return true;
}

/* Insert TEXT in front of the first NEEDLE; returns false when NEEDLE does not occur. */
static inline bool vec_insert_before(struct vbuf *b, const char *needle, const char *text)
{
    size_t at = vbuf_find(b, 0, needle);
    if (at == SIZE_MAX)
        return false;
    vbuf_splice(b, at, 0, text, strlen(text));
    return true;
}

/* 1-based line number of the first NEEDLE, 0 when it does not occur. */
static inline unsigned long vec_line_of(const struct vbuf *b, const char *needle)
{
    size_t at = vbuf_find(b, 0, needle);
    if (at == SIZE_MAX)
        return 0;
    unsigned long line = 1;
    for (size_t i = 0; i < at; i++)
        line += b->data[i] == '\n';
    return line;
}

/*
 * Find the element NAME: sets *START to its '<' and *END just past its end tag.
 * "<NAME>" and "<NAME " both count, so BlockSize never matches BlocksCount.
 */
static inline bool vec_find_element(const struct vbuf *b, const char *name, size_t *start,
                                    size_t *end)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s", name);
    snprintf(close, sizeof close, "</%s>", name);
    size_t n = strlen(open);
    for (size_t at = vbuf_find(b, 0, open); at != SIZE_MAX; at = vbuf_find(b, at + 1, open)) {
        char next = b->data[at + n];
        if (next != '>' && next != ' ')
            continue;
        size_t e = vbuf_find(b, at, close);
        if (e == SIZE_MAX)
            return false;
        *start = at;
        *end = e + strlen(close);
        return true;
    }
    return false;
}

/* Remove the first element NAME with its line (indentation and newline). */
static inline bool vec_remove_element(struct vbuf *b, const char *name)
{
    size_t s = 0, e = 0;
    if (!vec_find_element(b, name, &s, &e))
        return false;
    while (s > 0 && b->data[s - 1] == ' ')
        s--;
    if (e < b->len && b->data[e] == '\n')
        e++;
    vbuf_splice(b, s, e - s, "", 0);
    return true;
}

/* Copy the first element NAME (with its line) and insert the copy right after it. */
static inline bool vec_duplicate_element(struct vbuf *b, const char *name)
{
    size_t s = 0, e = 0;
    if (!vec_find_element(b, name, &s, &e))
        return false;
    size_t len = e - s;
    char *copy = malloc(len + 2);
    if (!copy)
        abort();
    copy[0] = '\n';
    memcpy(copy + 1, b->data + s, len);
    vbuf_splice(b, e, 0, copy, len + 1);
    free(copy);
    return true;
}

/* Offsets of the text of the first element NAME, between its tags. */
static inline bool vec_element_text(const struct vbuf *b, const char *name, size_t *start,
                                    size_t *end)
{
    size_t s = 0, e = 0;
    if (!vec_find_element(b, name, &s, &e))
        return false;
    size_t gt = vbuf_find(b, s, ">");
    size_t lt = e - strlen(name) - 3;
    *start = gt + 1;
    *end = lt;
    return true;
}

/* Set the text of the first element NAME to TEXT (whitespace included as given). */
static inline bool vec_set_text(struct vbuf *b, const char *name, const char *text)
{
    size_t s = 0, e = 0;
    if (!vec_element_text(b, name, &s, &e))
        return false;
    vbuf_splice(b, s, e - s, text, strlen(text));
    return true;
}

/* Trimmed text of the element NAME: offsets of its first and past its last non-space. */
static inline bool vec_value_span(const struct vbuf *b, const char *name, size_t *start,
                                  size_t *end)
{
    size_t s = 0, e = 0;
    if (!vec_element_text(b, name, &s, &e))
        return false;
    while (s < e && strchr(" \t\r\n", b->data[s]))
        s++;
    while (e > s && strchr(" \t\r\n", b->data[e - 1]))
        e--;
    *start = s;
    *end = e;
    return true;
}

/* One-shot digest through the library; aborts on failure (tests of digests are elsewhere). */
static inline void vec_hash(enum bk_hash hash, const void *data, size_t len, uint8_t *out)
{
    struct bk_error err;
    struct bk_digest *d = bk_digest_new(hash, &err);
    if (!d || bk_digest_update(d, data, len, &err) < 0 || bk_digest_final(d, out, &err) < 0)
        abort();
    bk_digest_free(d);
}

/*
 * Hash algorithm a generated document uses for its file checksum: SHA-1 for
 * BmapFileSHA1, otherwise the ChecksumType (sha256 when absent or unknown, so tests
 * about bad ChecksumType values still get a well-formed document).
 */
static inline enum bk_hash vec_file_hash(const struct vbuf *b, bool *sha1_element)
{
    size_t s = 0, e = 0;
    *sha1_element = vec_find_element(b, "BmapFileSHA1", &s, &e);
    if (*sha1_element)
        return BK_HASH_SHA1;
    enum bk_hash h = BK_HASH_SHA256;
    if (vec_value_span(b, "ChecksumType", &s, &e)) {
        char name[32];
        size_t n = e - s < sizeof name - 1 ? e - s : sizeof name - 1;
        memcpy(name, b->data + s, n);
        name[n] = '\0';
        if (bk_hash_from_name(name) != BK_HASH_NONE)
            h = bk_hash_from_name(name);
    }
    return h;
}

/*
 * The writer's procedure of the spec: set the checksum value to zeros of the digest's
 * length, hash every byte, write the lower-case digest over the zeros. Documents without
 * a checksum element are left alone.
 */
static inline void vec_fix_checksum(struct vbuf *b)
{
    bool sha1_element;
    enum bk_hash h = vec_file_hash(b, &sha1_element);
    const char *el = sha1_element ? "BmapFileSHA1" : "BmapFileChecksum";
    size_t s = 0, e = 0;
    if (!vec_value_span(b, el, &s, &e))
        return;
    size_t dsize = bk_hash_size(h);
    char zeros[2 * BK_DIGEST_MAX + 1];
    memset(zeros, '0', 2 * dsize);
    vbuf_splice(b, s, e - s, zeros, 2 * dsize);

    uint8_t digest[BK_DIGEST_MAX];
    char hex[2 * BK_DIGEST_MAX + 1];
    vec_hash(h, b->data, b->len, digest);
    bk_hex_encode(digest, dsize, hex);
    memcpy(b->data + s, hex, 2 * dsize);
}

/* Deterministic stand-in for the digest of range I. */
static inline void vec_range_digest(enum bk_hash hash, size_t i, uint8_t *out)
{
    char text[64];
    int n = snprintf(text, sizeof text, "bmapkit test range %zu", i);
    vec_hash(hash, text, (size_t)n, out);
}

/* Document layouts, one per group of versions that share one. */
enum vec_layout {
    VEC_LAYOUT_AUTO = 0, /* from the version string */
    VEC_LAYOUT_1_0,      /* no checksums */
    VEC_LAYOUT_1_1,      /* sha1 attributes */
    VEC_LAYOUT_1_2,      /* sha1 attributes, MappedBlocksCount after BlockMap */
    VEC_LAYOUT_1_3,      /* sha1 attributes, BmapFileSHA1 */
    VEC_LAYOUT_2_0,      /* ChecksumType, BmapFileChecksum, chksum attributes (also 1.4) */
};

struct vec_opts {
    const char *version; /* attribute text; "2.0" when NULL */
    enum vec_layout layout;
    uint64_t image_size;
    uint64_t block_size;
    const struct bk_range *ranges;
    size_t range_count;
    enum bk_hash hash; /* 2.0 layout only; sha256 when BK_HASH_NONE */
    bool digests;      /* give each range the digest vec_range_digest makes */
    bool crlf;         /* CR LF line endings (the checksum covers them) */
};

static inline enum vec_layout vec_layout_of(const struct vec_opts *o)
{
    if (o->layout != VEC_LAYOUT_AUTO)
        return o->layout;
    const char *v = o->version ? o->version : "2.0";
    if (strcmp(v, "1.0") == 0)
        return VEC_LAYOUT_1_0;
    if (strcmp(v, "1.1") == 0)
        return VEC_LAYOUT_1_1;
    if (strcmp(v, "1.2") == 0)
        return VEC_LAYOUT_1_2;
    if (strcmp(v, "1.3") == 0)
        return VEC_LAYOUT_1_3;
    return VEC_LAYOUT_2_0;
}

/* Algorithm of the range digests a document generated from O carries. */
static inline enum bk_hash vec_opts_hash(const struct vec_opts *o)
{
    switch (vec_layout_of(o)) {
    case VEC_LAYOUT_1_0:
        return BK_HASH_NONE;
    case VEC_LAYOUT_1_1:
    case VEC_LAYOUT_1_2:
    case VEC_LAYOUT_1_3:
        return BK_HASH_SHA1;
    default:
        return o->hash != BK_HASH_NONE ? o->hash : BK_HASH_SHA256;
    }
}

static inline uint64_t vec_blocks(const struct vec_opts *o)
{
    if (o->block_size == 0)
        return 0;
    return o->image_size / o->block_size + (o->image_size % o->block_size != 0);
}

static inline uint64_t vec_mapped(const struct vec_opts *o)
{
    uint64_t n = 0;
    for (size_t i = 0; i < o->range_count; i++)
        n += o->ranges[i].last - o->ranges[i].first + 1;
    return n;
}

/* Generate the document O describes into OUT (which is reset first). */
static inline void vec_generate(const struct vec_opts *o, struct vbuf *out)
{
    enum vec_layout layout = vec_layout_of(o);
    enum bk_hash hash = vec_opts_hash(o);
    const char *attr = layout == VEC_LAYOUT_2_0 ? "chksum" : "sha1";
    size_t dsize = bk_hash_size(hash);
    struct vbuf b = {0};

    vbuf_puts(&b, "<?xml version=\"1.0\" ?>\n"
                  "<!-- Block map generated by the bmapkit unit tests. -->\n\n");
    vbuf_printf(&b, "<bmap version=\"%s\">\n", o->version ? o->version : "2.0");
    vbuf_printf(&b,
                "    <!-- Image size in bytes -->\n"
                "    <ImageSize> %" PRIu64 " </ImageSize>\n\n"
                "    <!-- Block size in bytes -->\n"
                "    <BlockSize> %" PRIu64 " </BlockSize>\n\n"
                "    <!-- Blocks in the image -->\n"
                "    <BlocksCount> %" PRIu64 " </BlocksCount>\n\n",
                o->image_size, o->block_size, vec_blocks(o));
    if (layout != VEC_LAYOUT_1_2)
        vbuf_printf(&b,
                    "    <!-- Mapped blocks -->\n"
                    "    <MappedBlocksCount> %" PRIu64 " </MappedBlocksCount>\n\n",
                    vec_mapped(o));
    if (layout == VEC_LAYOUT_2_0)
        vbuf_printf(&b,
                    "    <!-- Algorithm of all checksums here -->\n"
                    "    <ChecksumType> %s </ChecksumType>\n\n"
                    "    <!-- Checksum of this file -->\n"
                    "    <BmapFileChecksum> 0 </BmapFileChecksum>\n\n",
                    bk_hash_name(hash));
    if (layout == VEC_LAYOUT_1_3)
        vbuf_puts(&b, "    <!-- SHA-1 of this file -->\n"
                      "    <BmapFileSHA1> 0 </BmapFileSHA1>\n\n");

    vbuf_puts(&b, "    <!-- The mapped ranges -->\n"
                  "    <BlockMap>\n");
    for (size_t i = 0; i < o->range_count; i++) {
        const struct bk_range *r = &o->ranges[i];
        vbuf_puts(&b, "        <Range");
        if (o->digests && dsize) {
            uint8_t d[BK_DIGEST_MAX];
            char hex[2 * BK_DIGEST_MAX + 1];
            vec_range_digest(hash, i, d);
            bk_hex_encode(d, dsize, hex);
            vbuf_printf(&b, " %s=\"%s\"", attr, hex);
        }
        if (r->first == r->last)
            vbuf_printf(&b, "> %" PRIu64 " </Range>\n", r->first);
        else
            vbuf_printf(&b, "> %" PRIu64 "-%" PRIu64 " </Range>\n", r->first, r->last);
    }
    vbuf_puts(&b, "    </BlockMap>\n");
    if (layout == VEC_LAYOUT_1_2)
        vbuf_printf(&b,
                    "\n    <!-- Mapped blocks -->\n"
                    "    <MappedBlocksCount> %" PRIu64 " </MappedBlocksCount>\n",
                    vec_mapped(o));
    vbuf_puts(&b, "</bmap>\n");

    vbuf_free(out);
    if (o->crlf) {
        for (size_t i = 0; i < b.len; i++) {
            if (b.data[i] == '\n')
                vbuf_add(out, "\r\n", 2);
            else
                vbuf_add(out, &b.data[i], 1);
        }
        vbuf_free(&b);
    } else {
        *out = b;
    }
    vec_fix_checksum(out);
}

#endif
