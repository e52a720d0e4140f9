/* SPDX-License-Identifier: MIT */
/*
 * What every public header shares: the mark of an exported function and the callback
 * types of long operations. The library is built with hidden visibility, so only
 * functions declared with BK_API are part of its ABI (and of its symbol version script).
 */
#ifndef BMAPKIT_API_H
#define BMAPKIT_API_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define BK_API __attribute__((visibility("default")))
#else
#define BK_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Progress report: DONE of TOTAL bytes processed; TOTAL is 0 when unknown. */
typedef void (*bk_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/*
 * Asked now and then by long operations; returning true makes them stop with
 * BK_E_CANCELLED. May be called from the library's worker threads, so it must only
 * read something thread-safe (an atomic flag set by a signal handler, say).
 */
typedef bool (*bk_cancel_fn)(void *ctx);

/* Called with a one-line warning the caller may show. */
typedef void (*bk_warn_fn)(void *ctx, const char *msg);

#ifdef __cplusplus
}
#endif

#endif
