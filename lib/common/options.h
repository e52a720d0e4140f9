/* SPDX-License-Identifier: MIT */
/*
 * Internal: option and result structures that start with their own size, so a caller
 * built against older headers (a shorter structure) keeps working.
 */
#ifndef BMAPKIT_COMMON_OPTIONS_H
#define BMAPKIT_COMMON_OPTIONS_H

#include <stddef.h>

#include "bmapkit/error.h"

/*
 * Copy the caller's options IN (whose first member, a size_t, says how many bytes the
 * caller knows) into OUT (OUT_SIZE bytes, the library's own structure), zeroing what
 * the caller does not know. IN NULL gives all defaults (zeros) with OUT's own size.
 * A size smaller than the size field or larger than OUT_SIZE (built against newer
 * headers) fails with BK_E_INVALID naming WHAT.
 */
int bk_options_take(void *out, size_t out_size, const void *in, const char *what,
                    struct bk_error *err);

/*
 * Fill the caller's result structure OUT (whose first member says how many bytes it
 * has) from the library's FULL (FULL_SIZE bytes), as far as both go; OUT may be NULL.
 */
void bk_results_give(void *out, const void *full, size_t full_size);

#endif
