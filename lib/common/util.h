/* SPDX-License-Identifier: MIT */
/* Internal: small helpers every layer may use. */
#ifndef BMAPKIT_COMMON_UTIL_H
#define BMAPKIT_COMMON_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "bmapkit/api.h"

static inline uint64_t bk_min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static inline uint64_t bk_max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* The little-endian 32-bit number at P (zstd and lz4 store theirs so). */
static inline uint32_t bk_load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* *SUM = A + B; false when that overflows (untrusted sizes and offsets). */
static inline bool bk_add_u64(uint64_t a, uint64_t b, uint64_t *sum)
{
    return !__builtin_add_overflow(a, b, sum);
}

/* Whether a caller's cancellation hook asks to stop. */
static inline bool bk_cancelled(bk_cancel_fn fn, void *ctx)
{
    return fn && fn(ctx);
}

#endif
