/* SPDX-License-Identifier: MIT */
/*
 * Signature checks through GPGME, which runs gpg. A signature passes only when gpg
 * calls it good and its key is in the keyring (and is the required one); that the key
 * is certified in the web of trust is not asked, as the keyring is the trust.
 */
#include <ctype.h>
#include <gpgme.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmapkit/signature.h"
#include "common/options.h"
#include "signature/tmp_home.h"

bool bk_signature_verifier_available(void)
{
    return true;
}

/* One verification: the GPGME context, and the temporary home when a keyring is given. */
struct check {
    struct bk_signature_options opts;
    char want[BK_SIGNATURE_FPR_MAX]; /* OPTS's fingerprint, upper case, no spaces */
    gpgme_ctx_t ctx;
    char home[PATH_MAX];
};

/* FPR without spaces, in upper case, into OUT; it must be 40 or 64 hex digits. */
static int normalise_fpr(const char *fpr, char *out, struct bk_error *err)
{
    size_t n = 0;
    for (const char *p = fpr; *p; p++) {
        if (*p == ' ')
            continue;
        if (!isxdigit((unsigned char)*p) || n + 1 >= BK_SIGNATURE_FPR_MAX)
            return bk_error_set(err, BK_E_INVALID, 0,
                                "fingerprint '%s' is not 40 or 64 hexadecimal digits", fpr);
        out[n++] = (char)toupper((unsigned char)*p);
    }
    out[n] = '\0';
    if (n != 40 && n != 64)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "fingerprint '%s' is not 40 or 64 hexadecimal digits", fpr);
    return 0;
}

static int gpgme_fail(struct bk_error *err, gpgme_error_t e, const char *what)
{
    return bk_error_set(err, BK_E_IO, 0, "OpenPGP signature: %s: %s", what, gpgme_strerror(e));
}

/* Import the keyring file into the fresh home of C, which then holds only its keys. */
static int import_keyring(struct check *c, struct bk_error *err)
{
    gpgme_data_t keys;
    gpgme_error_t e = gpgme_data_new_from_file(&keys, c->opts.keyring, 1);
    if (e)
        return bk_error_set(err, BK_E_IO, 0, "keyring %s: cannot read it: %s", c->opts.keyring,
                            gpgme_strerror(e));
    e = gpgme_op_import(c->ctx, keys);
    gpgme_data_release(keys);
    gpgme_import_result_t r = e ? NULL : gpgme_op_import_result(c->ctx);
    if (e)
        return bk_error_set(err, BK_E_IO, 0, "keyring %s: cannot import it: %s", c->opts.keyring,
                            gpgme_strerror(e));
    if (!r || r->imported + r->unchanged == 0)
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "keyring %s: no OpenPGP public keys in it (an exported key file, "
                            "binary or armored, is needed)",
                            c->opts.keyring);
    return 0;
}

/* GPGME's one-time set-up (process-wide, repeated calls are cheap), then the context. */
static int check_open(struct check *c, const struct bk_signature_options *opts,
                      struct bk_error *err)
{
    memset(c, 0, sizeof *c);
    if (bk_options_take(&c->opts, sizeof c->opts, opts, "signature options", err) < 0)
        return -1;
    if (c->opts.fingerprint && normalise_fpr(c->opts.fingerprint, c->want, err) < 0)
        return -1;
    if (!gpgme_check_version(NULL))
        return bk_error_set(err, BK_E_UNSUPPORTED, 0, "OpenPGP signature: GPGME is too old");
    gpgme_error_t e = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
    if (e)
        return bk_error_set(err, BK_E_UNSUPPORTED, 0,
                            "OpenPGP signature: no usable gpg to check it: %s", gpgme_strerror(e));
    e = gpgme_new(&c->ctx);
    if (e)
        return gpgme_fail(err, e, "cannot start GPGME");
    gpgme_set_offline(c->ctx, 1); /* never fetch keys from the network */
    if (!c->opts.keyring)
        return 0;
    if (bk_tmp_home_make(c->home, sizeof c->home, err) < 0)
        return -1;
    e = gpgme_ctx_set_engine_info(c->ctx, GPGME_PROTOCOL_OpenPGP, NULL, c->home);
    if (e)
        return gpgme_fail(err, e, "cannot use a temporary GnuPG home");
    return import_keyring(c, err);
}

/* Release C; a temporary home that cannot be removed fails the call when it passed. */
static int check_close(struct check *c, int rc, struct bk_error *err)
{
    if (c->ctx)
        gpgme_release(c->ctx);
    if (c->home[0]) {
        struct bk_error rm;
        bk_error_clear(&rm);
        if (bk_tmp_home_remove(c->home, &rm) < 0 && rc == 0) {
            if (err)
                *err = rm;
            rc = -1;
        }
    }
    return rc;
}

/* Whether the signature S was made by the key C wants: its own or its primary's print. */
static bool by_wanted_key(const char *sig_fpr, gpgme_key_t key, const char *want)
{
    if (strcasecmp(sig_fpr, want) == 0)
        return true;
    return key && key->fpr && strcasecmp(key->fpr, want) == 0;
}

/* Why the signature S of KEY (NULL when not in the keyring) does not pass, into ERR. */
static int refuse(gpgme_signature_t s, gpgme_key_t key, struct bk_error *err)
{
    const char *fpr = key && key->fpr ? key->fpr : s->fpr ? s->fpr : "(unknown)";
    const char *uid = key && key->uids && key->uids->uid ? key->uids->uid : NULL;
    char who[BK_SIGNATURE_FPR_MAX + BK_SIGNATURE_SIGNER_MAX + 8];
    snprintf(who, sizeof who, "%s%s%s%s", fpr, uid ? " (" : "", uid ? uid : "", uid ? ")" : "");
    switch (gpg_err_code(s->status)) {
    case GPG_ERR_BAD_SIGNATURE:
        return bk_error_set(err, BK_E_SIGNATURE, 0,
                            "discovered a BAD GPG signature by key %s: the content is not what "
                            "was signed",
                            who);
    case GPG_ERR_NO_PUBKEY:
        return bk_error_set(err, BK_E_SIGNATURE, 0,
                            "signature by key %s, which is not in the keyring", who);
    default:
        return bk_error_set(err, BK_E_SIGNATURE, 0, "signature by key %s is not good: %s", who,
                            gpgme_strerror(s->status));
    }
}

/* One signature of the result: good, by a key of the keyring. */
static int check_one(struct check *c, gpgme_signature_t s, struct bk_signature_result *who,
                     bool *wanted, struct bk_error *err)
{
    const char *fpr = s->fpr ? s->fpr : "";
    gpgme_key_t key = NULL;
    if (!fpr[0] || gpgme_get_key(c->ctx, fpr, &key, 0) != 0)
        key = NULL;
    int rc = 0;
    if (gpg_err_code(s->status) != GPG_ERR_NO_ERROR) {
        rc = refuse(s, key, err);
    } else {
        bool by_wanted = c->want[0] && by_wanted_key(fpr, key, c->want);
        *wanted = *wanted || by_wanted;
        if (!who->fingerprint[0] || by_wanted) {
            const char *shown = key && key->fpr ? key->fpr : fpr;
            snprintf(who->fingerprint, sizeof who->fingerprint, "%s", shown);
            snprintf(who->signer, sizeof who->signer, "%s",
                     key && key->uids && key->uids->uid ? key->uids->uid : "");
        }
    }
    if (key)
        gpgme_key_unref(key);
    return rc;
}

/* Every signature of the last verification must pass; one must be by the wanted key. */
static int check_signatures(struct check *c, struct bk_signature_result *result,
                            struct bk_error *err)
{
    gpgme_verify_result_t r = gpgme_op_verify_result(c->ctx);
    if (!r || !r->signatures)
        return bk_error_set(err, BK_E_SIGNATURE, 0, "no OpenPGP signature found in it");
    struct bk_signature_result who;
    bk_signature_result_init(&who);
    bool wanted = false;
    for (gpgme_signature_t s = r->signatures; s; s = s->next)
        if (check_one(c, s, &who, &wanted, err) < 0)
            return -1;
    if (c->want[0] && !wanted)
        return bk_error_set(err, BK_E_SIGNATURE, 0,
                            "signed by key %s%s%s%s, not by the required key %s", who.fingerprint,
                            who.signer[0] ? " (" : "", who.signer, who.signer[0] ? ")" : "",
                            c->want);
    bk_results_give(result, &who, sizeof who);
    return 0;
}

/* Run gpg on SIG (and SIGNED, or into PLAIN) and judge its signatures. */
static int run_verify(struct check *c, gpgme_data_t sig, gpgme_data_t signed_text,
                      gpgme_data_t plain, struct bk_signature_result *result, struct bk_error *err)
{
    gpgme_error_t e = gpgme_op_verify(c->ctx, sig, signed_text, plain);
    if (gpg_err_code(e) == GPG_ERR_NO_DATA)
        return bk_error_set(err, BK_E_SIGNATURE, 0, "not an OpenPGP signature: %s",
                            gpgme_strerror(e));
    if (e)
        return bk_error_set(err, BK_E_SIGNATURE, 0, "OpenPGP signature cannot be checked: %s",
                            gpgme_strerror(e));
    return check_signatures(c, result, err);
}

int bk_signature_verify_detached(const void *data, size_t len, const void *sig, size_t sig_len,
                                 const struct bk_signature_options *opts,
                                 struct bk_signature_result *result, struct bk_error *err)
{
    if (!data || !sig)
        return bk_error_set(err, BK_E_INVALID, 0, "signature check: NULL argument");
    struct check c;
    int rc = check_open(&c, opts, err);
    gpgme_data_t sd = NULL, td = NULL;
    if (rc == 0 && (gpgme_data_new_from_mem(&sd, sig, sig_len, 0) ||
                    gpgme_data_new_from_mem(&td, data, len, 0)))
        rc = bk_error_set(err, BK_E_NOMEM, 0, "OpenPGP signature: out of memory");
    if (rc == 0)
        rc = run_verify(&c, sd, td, NULL, result, err);
    gpgme_data_release(sd);
    gpgme_data_release(td);
    return check_close(&c, rc, err);
}

/* The text gpg verified (PLAIN, released here) must be the message's one signed part. */
static int same_text(gpgme_data_t plain, const void *data, size_t len, void *out, size_t out_size,
                     size_t *out_len, struct bk_error *err)
{
    size_t n = 0;
    char *got = gpgme_data_release_and_get_mem(plain, &n);
    size_t text_len = 0;
    int rc = bk_signature_clearsigned_text(data, len, out, out_size, &text_len, err);
    if (rc == 0 && (got ? n != text_len || memcmp(got, out, n) != 0 : text_len != 0))
        rc = bk_error_set(err, BK_E_SIGNATURE, 0,
                          "the text gpg verified is not the signed text of the message");
    gpgme_free(got);
    if (rc == 0)
        *out_len = text_len;
    return rc;
}

int bk_signature_verify_clearsigned(const void *data, size_t len,
                                    const struct bk_signature_options *opts,
                                    struct bk_signature_result *result, void *out, size_t out_size,
                                    size_t *out_len, struct bk_error *err)
{
    if (!data || !out || !out_len)
        return bk_error_set(err, BK_E_INVALID, 0, "signature check: NULL argument");
    if (!bk_signature_is_clearsigned(data, len))
        return bk_error_set(err, BK_E_FORMAT, 0, "not an OpenPGP clearsigned message");
    struct check c;
    int rc = check_open(&c, opts, err);
    gpgme_data_t sd = NULL, plain = NULL;
    if (rc == 0 && (gpgme_data_new_from_mem(&sd, data, len, 0) || gpgme_data_new(&plain)))
        rc = bk_error_set(err, BK_E_NOMEM, 0, "OpenPGP signature: out of memory");
    if (rc == 0)
        rc = run_verify(&c, sd, NULL, plain, result, err);
    gpgme_data_release(sd);
    /* Verified first: OUT may be DATA itself, which the extraction overwrites. */
    if (rc == 0)
        rc = same_text(plain, data, len, out, out_size, out_len, err);
    else
        gpgme_data_release(plain);
    return check_close(&c, rc, err);
}
