/* SPDX-License-Identifier: MIT */
#ifndef BMAPKIT_ERROR_H
#define BMAPKIT_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Broad class of a failure; the message says the rest. */
enum bk_code {
    BK_OK = 0,
    BK_E_IO,          /* a system call failed (open, read, write, ioctl, ...) */
    BK_E_FORMAT,      /* input does not follow its format (bmap, stream) */
    BK_E_CHECKSUM,    /* the bmap file's own checksum does not match */
    BK_E_VERIFY,      /* image data does not match the checksum of its range */
    BK_E_UNSUPPORTED, /* valid input the library cannot handle (e.g. bmap major 3) */
    BK_E_INVALID,     /* bad argument from the caller */
    BK_E_NOMEM,       /* allocation failed */
    BK_E_CANCELLED,   /* the caller asked to stop */
    BK_E_REFUSED,     /* a safety check refused the operation */
};

/* Room for one message line with its context chain. */
#define BK_ERROR_MSG_MAX 1024

/*
 * The error value every fallible library call fills in. The message is one line that
 * names what failed and where (file, line, offset, range); it never ends in a newline.
 */
struct bk_error {
    enum bk_code code;
    int sys_errno; /* errno of the failing call, 0 when none */
    char msg[BK_ERROR_MSG_MAX];
};

/* Reset ERR to "no error". */
void bk_error_clear(struct bk_error *err);

/*
 * Record a failure of class CODE. When ERRNUM is not zero, ": strerror(ERRNUM)" is
 * appended. ERR may be NULL (the failure is then only signalled by the return value).
 * Always returns -1 so that callers can write "return bk_error_set(...)".
 */
int bk_error_set(struct bk_error *err, enum bk_code code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Put context in front of an existing message: "CONTEXT: old message". Keeps code and
 * errno. Returns -1 like bk_error_set.
 */
int bk_error_prefix(struct bk_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif
