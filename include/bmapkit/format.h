/* SPDX-License-Identifier: MIT */
#ifndef BMAPKIT_FORMAT_H
#define BMAPKIT_FORMAT_H

#include <stddef.h>

#include "bmapkit/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Container or compression format of an image, as its first bytes tell. */
enum bk_format {
    BK_FORMAT_RAW = 0, /* none recognised: a plain disk image */
    BK_FORMAT_GZIP,
    BK_FORMAT_BZIP2,
    BK_FORMAT_XZ,
    BK_FORMAT_ZSTD,
    BK_FORMAT_LZ4,
    BK_FORMAT_LZOP,
    BK_FORMAT_ZIP,
};

/* Recognise the format from the first LEN bytes of an image (16 are enough). */
BK_API enum bk_format bk_format_detect(const void *head, size_t len);

/* Short name of FORMAT ("xz", "gzip", "raw"). */
BK_API const char *bk_format_name(enum bk_format format);

#ifdef __cplusplus
}
#endif

#endif
