/* SPDX-License-Identifier: MIT */
/* The formats bmapkit decodes: how each is recognised, named and decoded. */
#include "decode/decode.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Magic numbers, each from its format's own specification. */
static const struct {
    enum bk_format format;
    const char *magic;
    size_t len;
} magics[] = {
    {BK_FORMAT_GZIP, "\x1f\x8b", 2},
    {BK_FORMAT_BZIP2, "BZh", 3},
    {BK_FORMAT_XZ,
     "\xfd"
     "7zXZ\x00",
     6},
    {BK_FORMAT_ZSTD, "\x28\xb5\x2f\xfd", 4},
    {BK_FORMAT_LZ4, "\x04\x22\x4d\x18", 4},
    /* Legacy lz4 (lz4 -l): recognised so the decoder can say it is not supported. */
    {BK_FORMAT_LZ4, "\x02\x21\x4c\x18", 4},
    {BK_FORMAT_LZOP, "\x89LZO\x00\x0d\x0a\x1a\x0a", 9},
    {BK_FORMAT_ZIP, "PK\x03\x04", 4},
};

#define MAGIC_COUNT (sizeof magics / sizeof magics[0])

/*
 * The decoders: a new format is a file with its decoder and one line here (and its
 * magic above). Suffixes are the ones bmaptool knows, so that a file named for a format
 * but holding something else is refused rather than copied raw.
 */
static const struct bk_decoder decoders[] = {
    {BK_FORMAT_GZIP, "gzip", {".gz", ".gzip", ".tgz"}, bk_decode_gzip, NULL, NULL},
    {BK_FORMAT_BZIP2,
     "bzip2",
     {".bz2", ".tbz", ".tbz2", ".tb2"},
     bk_decode_bzip2,
     NULL,
     bk_decode_bzip2_parallel},
    {BK_FORMAT_XZ, "xz", {".xz", ".txz"}, bk_decode_xz, bk_decode_xz_indexed, NULL},
    {BK_FORMAT_ZSTD, "zstd", {".zst", ".tzst"}, bk_decode_zstd, bk_decode_zstd_indexed, NULL},
    {BK_FORMAT_LZ4, "lz4", {".lz4", ".tlz4"}, bk_decode_lz4, NULL, NULL},
    {BK_FORMAT_LZOP, "lzop", {".lzo", ".tzo"}, bk_decode_lzop, NULL, NULL},
    {BK_FORMAT_ZIP, "zip", {".zip"}, bk_decode_archive, NULL, NULL},
};

#define DECODER_COUNT (sizeof decoders / sizeof decoders[0])

/* Skippable frames (magic 0x184D2A50 to 0x184D2A5F, little-endian) open zstd and lz4
   files alike; the frame after them tells which it is. */
static bool is_skippable(const uint8_t *p, size_t len)
{
    return len >= 8 && (p[0] & 0xf0) == 0x50 && p[1] == 0x2a && p[2] == 0x4d && p[3] == 0x18;
}

enum bk_format bk_format_detect(const void *head, size_t len)
{
    const uint8_t *p = head;
    while (is_skippable(p, len)) {
        uint64_t size =
            (uint64_t)p[4] | (uint64_t)p[5] << 8 | (uint64_t)p[6] << 16 | (uint64_t)p[7] << 24;
        /* Beyond what we can see: both decoders skip such frames, zstd is likelier. */
        if (size > len - 8)
            return BK_FORMAT_ZSTD;
        p += 8 + size;
        len -= 8 + (size_t)size;
    }
    if (p != (const uint8_t *)head && len < 4)
        return BK_FORMAT_ZSTD;
    for (size_t i = 0; i < MAGIC_COUNT; i++)
        if (len >= magics[i].len && memcmp(p, magics[i].magic, magics[i].len) == 0)
            return magics[i].format;
    return BK_FORMAT_RAW;
}

const struct bk_decoder *bk_decoder_for(enum bk_format format)
{
    for (size_t i = 0; i < DECODER_COUNT; i++)
        if (decoders[i].format == format)
            return &decoders[i];
    return NULL;
}

const char *bk_format_name(enum bk_format format)
{
    const struct bk_decoder *d = bk_decoder_for(format);
    return d ? d->name : "raw";
}

enum bk_format bk_format_of_name(const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < DECODER_COUNT; i++) {
        for (size_t k = 0; k < BK_DECODER_SUFFIXES && decoders[i].suffixes[k]; k++) {
            size_t n = strlen(decoders[i].suffixes[k]);
            if (len > n && strcmp(name + len - n, decoders[i].suffixes[k]) == 0)
                return decoders[i].format;
        }
    }
    return BK_FORMAT_RAW;
}
