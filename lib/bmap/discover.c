/* SPDX-License-Identifier: MIT */
#include "bmapkit/bmap.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int try_candidate(const char *base, size_t len, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%.*s.bmap", (int)len, base);
    struct stat st;
    return n > 0 && (size_t)n < cap && stat(out, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
}

int bk_bmap_find(const char *image_path, char *out, size_t cap)
{
    size_t len = strlen(image_path);
    const char *slash = strrchr(image_path, '/');
    size_t name_start = slash ? (size_t)(slash - image_path) + 1 : 0;
    for (;;) {
        if (try_candidate(image_path, len, out, cap) == 0)
            return 0;
        /* Strip one extension of the file name (never a directory's, never all of it). */
        size_t dot = len;
        while (dot > name_start && image_path[dot - 1] != '.')
            dot--;
        if (dot <= name_start + 1)
            return -1;
        len = dot - 1;
    }
}
