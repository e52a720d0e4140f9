/* SPDX-License-Identifier: MIT */
/* Signature checks in a build without GPGME: every check is refused, never passed. */
#include "bmapkit/signature.h"

bool bk_signature_verifier_available(void)
{
    return false;
}

static int no_verifier(struct bk_error *err)
{
    return bk_error_set(err, BK_E_UNSUPPORTED, 0,
                        "cannot check the OpenPGP signature: this build of bmapkit has no "
                        "signature verifier (it was built without GPGME)");
}

int bk_signature_verify_detached(const void *data, size_t len, const void *sig, size_t sig_len,
                                 const struct bk_signature_options *opts,
                                 struct bk_signature_result *result, struct bk_error *err)
{
    (void)data, (void)len, (void)sig, (void)sig_len, (void)opts, (void)result;
    return no_verifier(err);
}

int bk_signature_verify_clearsigned(const void *data, size_t len,
                                    const struct bk_signature_options *opts,
                                    struct bk_signature_result *result, void *out, size_t out_size,
                                    size_t *out_len, struct bk_error *err)
{
    (void)data, (void)len, (void)opts, (void)result, (void)out, (void)out_size, (void)out_len;
    return no_verifier(err);
}
