/* SPDX-License-Identifier: MIT */
/* How every fallible call of the library reports a failure. */
#ifndef BMAPKIT_ERROR_H
#define BMAPKIT_ERROR_H

#include <stddef.h>

#include "bmapkit/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Broad class of a failure; the message says the rest. The values are part of the ABI:
 * they are never renumbered or reused, and new ones are only added at the end.
 */
enum bk_code {
    BK_OK = 0,
    BK_E_IO = 1,             /* a system call failed (open, read, write, ioctl, ...) */
    BK_E_FORMAT = 2,         /* input does not follow its format (bmap, stream) */
    BK_E_CHECKSUM = 3,       /* the bmap file's own checksum does not match */
    BK_E_VERIFY = 4,         /* image data does not match the checksum of its range */
    BK_E_UNSUPPORTED = 5,    /* valid input the library cannot handle (e.g. bmap major 3) */
    BK_E_INVALID = 6,        /* bad argument from the caller */
    BK_E_NOMEM = 7,          /* allocation failed */
    BK_E_CANCELLED = 8,      /* the caller asked to stop */
    BK_E_REFUSED = 9,        /* a safety check refused the operation */
    BK_E_IN_USE = 10,        /* refused: the destination is mounted, swap, or claimed */
    BK_E_NOT_REMOVABLE = 11, /* refused: only a removable whole disk was to be accepted */
    BK_E_UNVERIFIABLE = 12,  /* refused: verification asked for, and nothing can be verified */
    BK_E_SIGNATURE = 13,     /* refused: an OpenPGP signature is bad or not by a trusted key */
};

/* Stable lower-case name of CODE ("io", "format", "in-use"); "unknown" for others. */
BK_API const char *bk_code_name(enum bk_code code);

/* Room for one message line with its context chain. */
#define BK_ERROR_MSG_MAX 1024

/*
 * The error value every fallible library call fills in when it fails; such calls take
 * it as their last argument, which must not be NULL. The message is one line that
 * names what failed and where (file, line, offset, range); it never ends in a newline
 * and never names an option of the bmapkit command.
 */
struct bk_error {
    enum bk_code code;
    int sys_errno; /* errno of the failing call, 0 when none */
    char msg[BK_ERROR_MSG_MAX];
};

/* Reset ERR to "no error" (ERR may be NULL). */
BK_API void bk_error_clear(struct bk_error *err);

/*
 * Record a failure of class CODE. When ERRNUM is not zero, ": strerror(ERRNUM)" is
 * appended. ERR may be NULL (the failure is then only signalled by the return value).
 * Always returns -1 so that callers can write "return bk_error_set(...)".
 */
BK_API int bk_error_set(struct bk_error *err, enum bk_code code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Put context in front of an existing message: "CONTEXT: old message". Keeps code and
 * errno. Returns -1 like bk_error_set.
 */
BK_API int bk_error_prefix(struct bk_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Remove the password of every URL in TEXT, in place: "scheme://user:password@host/..."
 * becomes "scheme://user@host/...". The library's own messages never hold one; this is
 * for text a program builds itself from what its user gave.
 */
BK_API void bk_redact_passwords(char *text);

#ifdef __cplusplus
}
#endif

#endif
