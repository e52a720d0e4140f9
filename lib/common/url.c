/* SPDX-License-Identifier: MIT */
/* Which strings are URLs, and the path a file: URL names; no libcurl needed. */
#include "common/url.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

bool bk_net_is_url(const char *s)
{
    static const char *const schemes[] = {"http://", "https://", "ftp://", "ftps://"};
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++)
        if (strncasecmp(s, schemes[i], strlen(schemes[i])) == 0)
            return true;
    return false;
}

static int hex(char c)
{
    return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

const char *bk_net_file_path(const char *s, char *out, size_t cap)
{
    if (strncasecmp(s, "file:", 5) != 0)
        return NULL;
    const char *p = s + 5;
    if (strncmp(p, "//", 2) == 0) {
        p += 2;
        /* Only this machine: "file:///abs" or "file://localhost/abs". */
        if (strncasecmp(p, "localhost/", 10) == 0)
            p += 9;
        else if (*p != '/')
            return NULL;
    }
    if (*p != '/')
        return NULL;
    size_t n = 0;
    for (; *p && *p != '?' && *p != '#'; p++) {
        char c = *p;
        if (c == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            c = (char)(hex(p[1]) * 16 + hex(p[2]));
            p += 2;
        }
        if (c == '\0' || n + 1 >= cap)
            return NULL;
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
}
