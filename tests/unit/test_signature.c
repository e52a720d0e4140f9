/* SPDX-License-Identifier: MIT */
/*
 * The text of a clearsigned message, read without a verifier: headers skipped, dash
 * escaping undone, line endings kept, and every malformed message refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bmapkit/signature.h"

#define SIG_BLOCK                                                                                  \
    "-----BEGIN PGP SIGNATURE-----\n"                                                              \
    "\n"                                                                                           \
    "iHUEARYIAB0WIQTkGhbLaiN9XPL9B1HBW8ynTJLriwUCZ1a2AAAKCRDBW8ynTJLr\n"                           \
    "=abcd\n"                                                                                      \
    "-----END PGP SIGNATURE-----\n"

/* Extract MSG's text; returns the bk_signature_clearsigned_text result, text in OUT. */
static int extract(const char *msg, char *out, size_t cap, size_t *len, struct bk_error *err)
{
    bk_error_clear(err);
    memset(out, 0, cap);
    return bk_signature_clearsigned_text(msg, strlen(msg), out, cap, len, err);
}

static void test_detection(void **state)
{
    (void)state;
    const char *m = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n";
    assert_true(bk_signature_is_clearsigned(m, strlen(m)));
    assert_false(bk_signature_is_clearsigned(m, 20));
    assert_false(bk_signature_is_clearsigned("<?xml version=\"1.0\"?>", 21));
    assert_false(bk_signature_is_clearsigned(" -----BEGIN PGP SIGNED MESSAGE-----", 35));
    assert_false(bk_signature_is_clearsigned(NULL, 0));
}

static void test_text_and_dash_escapes(void **state)
{
    (void)state;
    const char *msg = "-----BEGIN PGP SIGNED MESSAGE-----\n"
                      "Hash: SHA256\n"
                      "Hash: SHA512\n"
                      "\n"
                      "<bmap>\n"
                      "- -dash line\n"
                      "- From here\n"
                      "\n"
                      "  indented\r\n"
                      "</bmap>\n" SIG_BLOCK "\n\n";
    char out[1024];
    size_t len = 0;
    struct bk_error err;
    assert_int_equal(extract(msg, out, sizeof out, &len, &err), 0);
    const char *want = "<bmap>\n-dash line\nFrom here\n\n  indented\r\n</bmap>\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
}

static void test_in_place(void **state)
{
    (void)state;
    char msg[] =
        "-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\n- -a\r\nb\r\n" SIG_BLOCK;
    size_t len = 0;
    struct bk_error err;
    bk_error_clear(&err);
    assert_int_equal(bk_signature_clearsigned_text(msg, strlen(msg), msg, sizeof msg, &len, &err),
                     0);
    assert_int_equal(len, 7);
    assert_memory_equal(msg, "-a\r\nb\r\n", 7);
}

/* MSG must be refused with CODE and a message containing WHAT. */
static void refused(const char *msg, enum bk_code code, const char *what)
{
    char out[1024];
    size_t len = 12345;
    struct bk_error err;
    assert_int_equal(extract(msg, out, sizeof out, &len, &err), -1);
    assert_int_equal(err.code, code);
    if (!strstr(err.msg, what))
        fail_msg("'%s' does not say '%s'", err.msg, what);
    assert_int_equal(len, 12345);
}

static void test_malformed(void **state)
{
    (void)state;
    const char *head = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n";
    char msg[2048];
    refused("<bmap/>\n", BK_E_FORMAT, "line 1: not the OpenPGP signed-message header");
    refused("-----BEGIN PGP SIGNED MESSAGE-----x\nHash: SHA256\n\n", BK_E_FORMAT, "line 1");
    refused("-----BEGIN PGP SIGNED MESSAGE-----\nno colon here\n\n", BK_E_FORMAT,
            "line 2: not an armor header");
    refused("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n", BK_E_FORMAT, "has no text");
    snprintf(msg, sizeof msg, "%s<bmap/>\n", head);
    refused(msg, BK_E_FORMAT, "has no signature");
    snprintf(msg, sizeof msg, "%s<bmap/>\n-unescaped\n%s", head, SIG_BLOCK);
    refused(msg, BK_E_FORMAT, "line 5: an unescaped dash line");
    snprintf(msg, sizeof msg, "%s<bmap/>\n-----BEGIN PGP SIGNATURE-----\nabc\n", head);
    refused(msg, BK_E_FORMAT, "no end line");
    snprintf(msg, sizeof msg, "%s<bmap/>\n%s<more/>\n", head, SIG_BLOCK);
    refused(msg, BK_E_FORMAT, "line 10: text after the end of the signature");
    /* A second signed message after the first is text after the end, too. */
    snprintf(msg, sizeof msg, "%s<a/>\n%s%s<b/>\n%s", head, SIG_BLOCK, head, SIG_BLOCK);
    refused(msg, BK_E_FORMAT, "text after the end of the signature");
}

static void test_room(void **state)
{
    (void)state;
    const char *msg = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nx\n" SIG_BLOCK;
    char out[8];
    size_t len;
    struct bk_error err;
    bk_error_clear(&err);
    assert_int_equal(bk_signature_clearsigned_text(msg, strlen(msg), out, sizeof out, &len, &err),
                     -1);
    assert_int_equal(err.code, BK_E_INVALID);
}

/* A check that cannot be done is refused, never passed: bad options, or no verifier. */
static void test_verify_refuses(void **state)
{
    (void)state;
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_signature_options o;
    bk_signature_options_init(&o);
    o.fingerprint = "not hex";
    const char data[] = "data";
    int rc = bk_signature_verify_detached(data, 4, "sig", 3, &o, NULL, &err);
    assert_int_equal(rc, -1);
    if (bk_signature_verifier_available())
        assert_int_equal(err.code, BK_E_INVALID);
    else
        assert_int_equal(err.code, BK_E_UNSUPPORTED);
    o.struct_size = sizeof o + 8; /* built against newer headers */
    o.fingerprint = NULL;
    bk_error_clear(&err);
    rc = bk_signature_verify_detached(data, 4, "sig", 3, &o, NULL, &err);
    assert_int_equal(rc, -1);
    assert_true(err.code == BK_E_INVALID || err.code == BK_E_UNSUPPORTED);
    assert_string_equal(bk_code_name(BK_E_SIGNATURE), "signature");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detection), cmocka_unit_test(test_text_and_dash_escapes),
        cmocka_unit_test(test_in_place),  cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_room),      cmocka_unit_test(test_verify_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
