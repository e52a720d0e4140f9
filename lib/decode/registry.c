/* SPDX-License-Identifier: MIT */
/* Compression formats by their magic numbers (each format's own specification). */
#include "bmapkit/format.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static const struct {
    enum bk_format format;
    const char *name;
    const char *magic;
    size_t len;
} formats[] = {
    {BK_FORMAT_GZIP, "gzip", "\x1f\x8b", 2},
    {BK_FORMAT_BZIP2, "bzip2", "BZh", 3},
    {BK_FORMAT_XZ, "xz",
     "\xfd"
     "7zXZ\x00",
     6},
    {BK_FORMAT_ZSTD, "zstd", "\x28\xb5\x2f\xfd", 4},
    {BK_FORMAT_LZ4, "lz4", "\x04\x22\x4d\x18", 4},
    /* Legacy lz4 (lz4 -l): recognised so the decoder can say it is not supported. */
    {BK_FORMAT_LZ4, "lz4", "\x02\x21\x4c\x18", 4},
    {BK_FORMAT_LZOP, "lzop", "\x89LZO\x00\x0d\x0a\x1a\x0a", 9},
    {BK_FORMAT_ZIP, "zip", "PK\x03\x04", 4},
};

#define FORMAT_COUNT (sizeof formats / sizeof formats[0])

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
    for (size_t i = 0; i < FORMAT_COUNT; i++)
        if (len >= formats[i].len && memcmp(p, formats[i].magic, formats[i].len) == 0)
            return formats[i].format;
    return BK_FORMAT_RAW;
}

const char *bk_format_name(enum bk_format format)
{
    for (size_t i = 0; i < FORMAT_COUNT; i++)
        if (formats[i].format == format)
            return formats[i].name;
    return "raw";
}
