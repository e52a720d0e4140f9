/* SPDX-License-Identifier: MIT */
/* Finding the bmap next to an image, by the names bmaptool tries. */
#include "bmapkit/bmap.h"
#include "net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* 0 when the candidate exists, 1 when not, -1 when a URL could not be asked (ERR). */
static int try_candidate(const char *base, size_t len, char *out, size_t cap,
                         const struct bk_net_options *url, struct bk_error *err)
{
    int n = snprintf(out, cap, "%.*s.bmap", (int)len, base);
    if (n <= 0 || (size_t)n >= cap)
        return 1;
    if (url) {
        int there = bk_net_exists(out, url, err);
        return there < 0 ? -1 : !there;
    }
    struct stat st;
    return stat(out, &st) == 0 && S_ISREG(st.st_mode) ? 0 : 1;
}

int bk_bmap_find(const char *image_path, char *out, size_t cap, struct bk_error *err)
{
    return bk_bmap_find_fetch(image_path, NULL, out, cap, err);
}

int bk_bmap_find_fetch(const char *image_path, const struct bk_fetch_options *opts, char *out,
                       size_t cap, struct bk_error *err)
{
    struct bk_net_options no;
    bk_net_options_from(&no, opts);
    /* A file: URL is its local file, and the bmap found is named by its path. */
    char local[4096];
    if (bk_net_file_path(image_path, local, sizeof local))
        image_path = local;
    bool url = bk_net_is_url(image_path);
    size_t len = strlen(image_path);
    /* In a URL, the name starts after the last slash of its path, never in the host. */
    const char *path_part = url ? strchr(strstr(image_path, "://") + 3, '/') : image_path;
    const char *query = url && path_part ? strpbrk(path_part, "?#") : NULL;
    if (query)
        len = (size_t)(query - image_path); /* a query string is not a name */
    const char *slash = NULL;
    for (const char *p = path_part; p && p < image_path + len; p++)
        if (*p == '/')
            slash = p;
    size_t name_start = slash ? (size_t)(slash - image_path) + 1 : len;
    if (!url)
        name_start = slash ? name_start : 0;
    for (;;) {
        int rc = try_candidate(image_path, len, out, cap, url ? &no : NULL, err);
        if (rc == 0)
            return 0;
        if (rc < 0) {
            if (cap > 0)
                out[0] = '\0';
            return -1;
        }
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
    char *shown = strdup(image_path);
    if (shown)
        bk_redact_passwords(shown);
    bk_error_set(err, BK_E_IO, 0,
                 "no bmap found for %s (looked for %s.bmap and names with extensions removed)",
                 shown ? shown : "the image", shown ? shown : "the image");
    free(shown);
    if (err)
        err->sys_errno = ENOENT;
    return -1;
}
