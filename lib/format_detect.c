/* SPDX-License-Identifier: MIT */
/* Compression formats by their magic numbers (each format's own specification). */
#include "bmapkit/format.h"

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
    {BK_FORMAT_LZOP, "lzop", "\x89LZO\x00\x0d\x0a\x1a\x0a", 9},
    {BK_FORMAT_ZIP, "zip", "PK\x03\x04", 4},
};

#define FORMAT_COUNT (sizeof formats / sizeof formats[0])

enum bk_format bk_format_detect(const void *head, size_t len)
{
    for (size_t i = 0; i < FORMAT_COUNT; i++)
        if (len >= formats[i].len && memcmp(head, formats[i].magic, formats[i].len) == 0)
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
