/* SPDX-License-Identifier: MIT */
/* Error values: their codes' names, setting them, and adding context. */
#include "bmapkit/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Messages quote untrusted input (bmap text, file names); keep them on one line and free
   of terminal control sequences. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

const char *bk_code_name(enum bk_code code)
{
    static const char *const names[] = {
        [BK_OK] = "ok",
        [BK_E_IO] = "io",
        [BK_E_FORMAT] = "format",
        [BK_E_CHECKSUM] = "checksum",
        [BK_E_VERIFY] = "verify",
        [BK_E_UNSUPPORTED] = "unsupported",
        [BK_E_INVALID] = "invalid",
        [BK_E_NOMEM] = "nomem",
        [BK_E_CANCELLED] = "cancelled",
        [BK_E_REFUSED] = "refused",
        [BK_E_IN_USE] = "in-use",
        [BK_E_NOT_REMOVABLE] = "not-removable",
        [BK_E_UNVERIFIABLE] = "unverifiable",
        [BK_E_SIGNATURE] = "signature",
    };
    if ((unsigned)code < sizeof names / sizeof names[0] && names[code])
        return names[code];
    return "unknown";
}

void bk_error_clear(struct bk_error *err)
{
    if (!err)
        return;
    err->code = BK_OK;
    err->sys_errno = 0;
    err->msg[0] = '\0';
}

int bk_error_set(struct bk_error *err, enum bk_code code, int errnum, const char *fmt, ...)
{
    if (!err)
        return -1;
    err->code = code;
    err->sys_errno = errnum;

    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);

    if (errnum != 0 && n >= 0 && (size_t)n < sizeof err->msg) {
        char ebuf[128];
        /* The GNU strerror_r (we build with _GNU_SOURCE) is thread-safe and returns the text. */
        const char *text = strerror_r(errnum, ebuf, sizeof ebuf);
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", text);
    }
    one_line(err->msg);
    return -1;
}

int bk_error_prefix(struct bk_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char head[BK_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;

    char old[BK_ERROR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    size_t used = (size_t)n < sizeof err->msg - 3 ? (size_t)n : sizeof err->msg - 3;
    memcpy(err->msg, head, used);
    memcpy(err->msg + used, ": ", 2);
    used += 2;
    size_t olen = strnlen(old, sizeof old - 1);
    if (olen > sizeof err->msg - 1 - used)
        olen = sizeof err->msg - 1 - used;
    memcpy(err->msg + used, old, olen);
    err->msg[used + olen] = '\0';
    one_line(err->msg);
    return -1;
}
