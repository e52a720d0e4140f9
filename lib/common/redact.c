/* SPDX-License-Identifier: MIT */
/* Passwords out of URLs before they reach a message. */
#include "bmapkit/error.h"

#include <stdbool.h>
#include <string.h>

/* Whether C may belong to the authority part of a URL written in a text. */
static bool in_authority(char c)
{
    return c && !strchr("/?#\\\"' \t\r\n<>", c);
}

void bk_redact_passwords(char *text)
{
    char *p = text;
    while ((p = strstr(p, "://")) != NULL) {
        char *start = p + 3, *end = start, *at = NULL;
        while (in_authority(*end)) {
            if (*end == '@')
                at = end;
            end++;
        }
        char *colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
        if (colon)
            memmove(colon, at, strlen(at) + 1);
        p = start;
    }
}
