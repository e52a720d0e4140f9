/* SPDX-License-Identifier: MIT */
#include "common/options.h"

#include <string.h>

int bk_options_take(void *out, size_t out_size, const void *in, const char *what,
                    struct bk_error *err)
{
    memset(out, 0, out_size);
    if (!in) {
        memcpy(out, &out_size, sizeof out_size);
        return 0;
    }
    size_t size;
    memcpy(&size, in, sizeof size);
    if (size < sizeof size || size > out_size)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "%s: struct_size %zu is not a size this library knows (%zu); "
                            "initialise the options with their _init function",
                            what, size, out_size);
    memcpy(out, in, size);
    return 0;
}

void bk_results_give(void *out, const void *full, size_t full_size)
{
    if (!out)
        return;
    size_t size;
    memcpy(&size, out, sizeof size);
    if (size < sizeof size)
        return;
    size_t n = size < full_size ? size : full_size;
    memcpy((char *)out + sizeof size, (const char *)full + sizeof size, n - sizeof size);
}
