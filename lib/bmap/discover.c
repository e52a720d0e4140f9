/* SPDX-License-Identifier: MIT */
/* Finding the bmap next to an image, by the names bmaptool tries. */
#include "bmapkit/bmap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int try_candidate(const char *base, size_t len, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%.*s.bmap", (int)len, base);
    struct stat st;
    return n > 0 && (size_t)n < cap && stat(out, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
}

int bk_bmap_find(const char *image_path, char *out, size_t cap, struct bk_error *err)
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
            break;
        len = dot - 1;
    }
    if (cap > 0)
        out[0] = '\0';
    bk_error_set(err, BK_E_IO, 0,
                 "no bmap found for %s (looked for %s.bmap and names with extensions removed)",
                 image_path, image_path);
    if (err)
        err->sys_errno = ENOENT;
    return -1;
}
