/* SPDX-License-Identifier: MIT */
/*
 * OpenPGP signatures of bmaps: a clearsigned bmap (the bmap text inside an OpenPGP
 * cleartext signature) or a detached signature next to it. Reading a clearsigned
 * bmap's text needs nothing; checking a signature needs the verifier (GPGME and gpg),
 * which a build may lack: bk_signature_verifier_available says so.
 */
#ifndef BMAPKIT_SIGNATURE_H
#define BMAPKIT_SIGNATURE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "bmapkit/api.h"
#include "bmapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Room for a fingerprint in hexadecimal (64 digits for the longest keys) and its NUL. */
#define BK_SIGNATURE_FPR_MAX 65
/* Room for a signer's user ID ("Name <mail>"), cut when longer. */
#define BK_SIGNATURE_SIGNER_MAX 256

/*
 * Options of the verify functions. Start from bk_signature_options_init: struct_size
 * tells the library which fields the caller knows, so fields can be added later.
 */
struct bk_signature_options {
    size_t struct_size;
    /*
     * A file of OpenPGP public keys (binary or ASCII-armored, as "gpg --export" writes
     * them): only these keys are trusted, in a temporary GnuPG home made for the call
     * and removed after it; the user's GnuPG home is not used. NULL: the GnuPG home of
     * the process (GNUPGHOME, else ~/.gnupg).
     */
    const char *keyring;
    /* Hexadecimal fingerprint (spaces allowed) the signing key, or its primary key,
     * must have. NULL: any key of the keyring. */
    const char *fingerprint;
};

/* Set O to the defaults: all zero, padding included, and its size. */
static inline void bk_signature_options_init(struct bk_signature_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
}

/* Who made a good signature. Start from bk_signature_result_init. */
struct bk_signature_result {
    size_t struct_size;
    char fingerprint[BK_SIGNATURE_FPR_MAX]; /* of the key that signed, upper-case hex */
    char signer[BK_SIGNATURE_SIGNER_MAX];   /* its first user ID; "" when it has none */
};

/* Set R to empty results and its size. */
static inline void bk_signature_result_init(struct bk_signature_result *r)
{
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
}

/* Whether this build can check signatures (it was built with GPGME). */
BK_API bool bk_signature_verifier_available(void);

/* Whether the LEN bytes at DATA begin with the OpenPGP cleartext signature header. */
BK_API bool bk_signature_is_clearsigned(const void *data, size_t len);

/*
 * The signed text of the clearsigned message at DATA (LEN bytes), without checking
 * the signature: the lines between the armor headers and the signature, each with its
 * line ending, dash-escaping undone. The text is never longer than LEN, so OUT_SIZE
 * >= LEN always suffices; OUT may be DATA itself. The message must begin with the
 * header, have exactly one signature block, and nothing but blank lines after it.
 * Returns 0 with *OUT_LEN set, or -1 with BK_E_FORMAT (malformed) or BK_E_INVALID (OUT
 * too small). Needs no verifier.
 */
BK_API int bk_signature_clearsigned_text(const void *data, size_t len, void *out, size_t out_size,
                                         size_t *out_len, struct bk_error *err);

/*
 * Check the detached signature SIG (SIG_LEN bytes, binary or armored) of the LEN bytes
 * at DATA with OPTS (NULL: defaults). Every signature in SIG must be good, made by a
 * key of the keyring (and by OPTS->fingerprint when given). On success fills RESULT
 * (may be NULL) with the signer and returns 0. Fails with BK_E_SIGNATURE (bad
 * signature, unknown or other key, expired or revoked key, no signature at all),
 * BK_E_UNSUPPORTED (no verifier in this build), BK_E_IO (the keyring or a temporary
 * GnuPG home), BK_E_INVALID.
 *
 * The first call initialises GPGME, which is process-wide (gpgme_check_version);
 * the library does it lazily here and keeps nothing of its own. gpg is run as a
 * child process.
 */
BK_API int bk_signature_verify_detached(const void *data, size_t len, const void *sig,
                                        size_t sig_len, const struct bk_signature_options *opts,
                                        struct bk_signature_result *result, struct bk_error *err);

/*
 * Check the clearsigned message at DATA (LEN bytes) like bk_signature_verify_detached,
 * and put the text that was verified into OUT (OUT_SIZE >= LEN suffices; OUT may be
 * DATA itself), its length into *OUT_LEN. The text is gpg's and must equal
 * bk_signature_clearsigned_text's, so nothing outside the signed part reaches the caller. Fails
 * like the detached check, and with BK_E_FORMAT for a malformed message.
 */
BK_API int bk_signature_verify_clearsigned(const void *data, size_t len,
                                           const struct bk_signature_options *opts,
                                           struct bk_signature_result *result, void *out,
                                           size_t out_size, size_t *out_len, struct bk_error *err);

#ifdef __cplusplus
}
#endif

#endif
