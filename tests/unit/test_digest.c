/* SPDX-License-Identifier: MIT */
/* Unit tests of the digest wrapper and the hex helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bmapkit/digest.h"
#include "bmapkit/error.h"
#include "digest/hex.h"

struct kat {
    enum bk_hash hash;
    const char *name;
    size_t size;
    const char *empty; /* digest of "" */
    const char *abc;   /* digest of "abc" */
    const char *two_blocks;
    const char *million_a; /* digest of 1,000,000 'a' */
};

/* Published test vectors (FIPS 180 examples, RFC 1321). */
static const struct kat kats[] = {
    {BK_HASH_SHA1, "sha1", 20, "da39a3ee5e6b4b0d3255bfef95601890afd80709",
     "a9993e364706816aba3e25717850c26c9cd0d89d", "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
     "34aa973cd4c4daa4f61eeb2bdbad27316534016f"},
    {BK_HASH_SHA224, "sha224", 28, "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f",
     "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
     "75388b16512776cc5dba5da1fd890150b0c6455cb4f58b1952522525",
     "20794655980c91d8bbb4c1ea97618a4bf03f42581948b2ee4ee7ad67"},
    {BK_HASH_SHA256, "sha256", 32,
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    {BK_HASH_SHA384, "sha384", 48,
     "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f1489"
     "8b95b",
     "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c"
     "825a7",
     "3391fdddfc8dc7393707a65b1b4709397cf8b1d162af05abfe8f450de5f36bc6b0455a8520bc4e6f5fe95b1fe3c"
     "8452b",
     "9d0e1809716474cb086e834e310a4a1ced149e9c00f248527972cec5704c2a5b07b8b3dc38ecc4ebae97ddd87f3"
     "d8985"},
    {BK_HASH_SHA512, "sha512", 64,
     "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877"
     "eec2f63b931bd47417a81a538327af927da3e",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3f"
     "eebbd454d4423643ce80e2a9ac94fa54ca49f",
     "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c33596fd15c13b1b07f9aa1d3bea577"
     "89ca031ad85c7a71dd70354ec631238ca3445",
     "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce57"
     "7c31beb009c5c2c49aa2e4eadb217ad8cc09b"},
    {BK_HASH_MD5, "md5", 16, "d41d8cd98f00b204e9800998ecf8427e", "900150983cd24fb0d6963f7d28e17f72",
     "8215ef0796a20bcaaae116d3876c664a", "7707d6ae4e027c70eea2a935c2296f21"},
};
#define KAT_COUNT (sizeof kats / sizeof kats[0])

static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

/* Hex digest of LEN bytes at DATA in one update. */
static void one_shot(enum bk_hash hash, const void *data, size_t len, char *hex)
{
    struct bk_error err;
    uint8_t out[BK_DIGEST_MAX];
    struct bk_digest *d = bk_digest_new(hash, &err);
    assert_non_null(d);
    assert_int_equal(bk_digest_update(d, data, len, &err), 0);
    assert_int_equal(bk_digest_final(d, out, &err), 0);
    bk_hex_encode(out, bk_hash_size(hash), hex);
    bk_digest_free(d);
}

static void test_known_answers(void **state)
{
    (void)state;
    char hex[2 * BK_DIGEST_MAX + 1];
    for (size_t i = 0; i < KAT_COUNT; i++) {
        const struct kat *k = &kats[i];
        one_shot(k->hash, "", 0, hex);
        assert_string_equal(hex, k->empty);
        one_shot(k->hash, "abc", 3, hex);
        assert_string_equal(hex, k->abc);
        one_shot(k->hash, two_blocks, strlen(two_blocks), hex);
        assert_string_equal(hex, k->two_blocks);
    }
}

static void test_million_a(void **state)
{
    (void)state;
    const size_t n = 1000000;
    char *a = malloc(n);
    assert_non_null(a);
    memset(a, 'a', n);
    char hex[2 * BK_DIGEST_MAX + 1];
    for (size_t i = 0; i < KAT_COUNT; i++) {
        one_shot(kats[i].hash, a, n, hex);
        assert_string_equal(hex, kats[i].million_a);
    }
    free(a);
}

static void test_names_and_sizes(void **state)
{
    (void)state;
    for (size_t i = 0; i < KAT_COUNT; i++) {
        const struct kat *k = &kats[i];
        assert_string_equal(bk_hash_name(k->hash), k->name);
        assert_int_equal(bk_hash_from_name(k->name), k->hash);
        assert_int_equal(bk_hash_size(k->hash), k->size);
        assert_int_equal(strlen(k->abc), 2 * k->size);
        assert_true(k->size <= BK_DIGEST_MAX);
    }
    assert_string_equal(bk_hash_name(BK_HASH_NONE), "none");
    assert_int_equal(bk_hash_size(BK_HASH_NONE), 0);
    assert_string_equal(bk_hash_name((enum bk_hash)99), "none");
    assert_int_equal(bk_hash_size((enum bk_hash)99), 0);
}

static void test_from_name_rejects(void **state)
{
    (void)state;
    /* Names are exact and lower case, as a bmap writes them. */
    static const char *const bad[] = {"",        "none",    "SHA256",  "Sha1",     "sha-256",
                                      "sha256 ", " sha256", "sha2",    "sha3-256", "crc32",
                                      "md4",     "sha",     "sha2566", "sha25"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bk_hash_from_name(bad[i]), BK_HASH_NONE);
}

static void test_new_without_algorithm(void **state)
{
    (void)state;
    struct bk_error err;
    bk_error_clear(&err);
    assert_null(bk_digest_new(BK_HASH_NONE, &err));
    assert_int_equal(err.code, BK_E_INVALID);
    assert_true(strlen(err.msg) > 0);
    assert_null(bk_digest_new((enum bk_hash)42, &err));
    /* Freeing nothing is allowed. */
    bk_digest_free(NULL);
}

static void test_incremental_equals_one_shot(void **state)
{
    (void)state;
    const size_t n = 3 * 1024 * 1024 + 17;
    uint8_t *data = malloc(n);
    assert_non_null(data);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    struct bk_error err;
    for (size_t k = 0; k < KAT_COUNT; k++) {
        char whole[2 * BK_DIGEST_MAX + 1], pieces[2 * BK_DIGEST_MAX + 1];
        one_shot(kats[k].hash, data, n, whole);

        /* Uneven pieces, including empty updates and ones crossing every block size. */
        struct bk_digest *d = bk_digest_new(kats[k].hash, &err);
        assert_non_null(d);
        size_t off = 0, step = 0;
        while (off < n) {
            size_t len = (step * 7919) % 70001;
            if (len > n - off)
                len = n - off;
            assert_int_equal(bk_digest_update(d, data + off, len, &err), 0);
            off += len;
            step++;
        }
        uint8_t out[BK_DIGEST_MAX];
        assert_int_equal(bk_digest_final(d, out, &err), 0);
        bk_hex_encode(out, kats[k].size, pieces);
        assert_string_equal(pieces, whole);

        /* Byte by byte over a short prefix. */
        for (size_t i = 0; i < 1000; i++)
            assert_int_equal(bk_digest_update(d, data + i, 1, &err), 0);
        assert_int_equal(bk_digest_final(d, out, &err), 0);
        bk_hex_encode(out, kats[k].size, pieces);
        one_shot(kats[k].hash, data, 1000, whole);
        assert_string_equal(pieces, whole);
        bk_digest_free(d);
    }
    free(data);
}

static void test_final_resets(void **state)
{
    (void)state;
    struct bk_error err;
    for (size_t k = 0; k < KAT_COUNT; k++) {
        struct bk_digest *d = bk_digest_new(kats[k].hash, &err);
        assert_non_null(d);
        uint8_t out[BK_DIGEST_MAX];
        char hex[2 * BK_DIGEST_MAX + 1];

        /* Nothing fed: the digest of the empty input. */
        assert_int_equal(bk_digest_final(d, out, &err), 0);
        bk_hex_encode(out, kats[k].size, hex);
        assert_string_equal(hex, kats[k].empty);

        /* The same object, reused twice, gives the same answer each time. */
        for (int round = 0; round < 2; round++) {
            assert_int_equal(bk_digest_update(d, "a", 1, &err), 0);
            assert_int_equal(bk_digest_update(d, "bc", 2, &err), 0);
            assert_int_equal(bk_digest_final(d, out, &err), 0);
            bk_hex_encode(out, kats[k].size, hex);
            assert_string_equal(hex, kats[k].abc);
        }
        assert_int_equal(bk_digest_final(d, out, &err), 0);
        bk_hex_encode(out, kats[k].size, hex);
        assert_string_equal(hex, kats[k].empty);
        bk_digest_free(d);
    }
}

static void test_hex_encode(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff, 0x10};
    char hex[2 * sizeof bytes + 1];
    memset(hex, 'X', sizeof hex);
    bk_hex_encode(bytes, sizeof bytes, hex);
    assert_string_equal(hex, "00017f80abcdefff10");
    /* Zero bytes give an empty, terminated string. */
    hex[0] = 'X';
    bk_hex_encode(bytes, 0, hex);
    assert_string_equal(hex, "");
}

static void test_hex_decode(void **state)
{
    (void)state;
    uint8_t out[8];
    const uint8_t want[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
    memset(out, 0x55, sizeof out);
    assert_int_equal(bk_hex_decode("00017f80abcdefff", 8, out), 0);
    assert_memory_equal(out, want, 8);
    /* Upper and mixed case mean the same bytes. */
    memset(out, 0x55, sizeof out);
    assert_int_equal(bk_hex_decode("00017F80ABCDEFFF", 8, out), 0);
    assert_memory_equal(out, want, 8);
    assert_int_equal(bk_hex_decode("00017f80AbCdEfFf", 8, out), 0);
    assert_memory_equal(out, want, 8);
    /* Only LEN bytes are read: what follows does not matter. */
    assert_int_equal(bk_hex_decode("abZZ", 1, out), 0);
    assert_int_equal(out[0], 0xab);
    assert_int_equal(bk_hex_decode("", 0, out), 0);

    /* Round trip through the encoder. */
    uint8_t all[256], back[256];
    char hex[513];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    bk_hex_encode(all, 256, hex);
    assert_int_equal(bk_hex_decode(hex, 256, back), 0);
    assert_memory_equal(all, back, 256);
}

static void test_hex_decode_rejects(void **state)
{
    (void)state;
    uint8_t out[4];
    static const char *const bad[] = {"0g", "g0", "0x", "x0", " 0", "0 ",    "-1",      "+1",
                                      "0:", "/0", "0@", "G0", "0`", "0\xff", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bk_hex_decode(bad[i], 1, out), -1);
    /* A bad character anywhere, not only at the start. */
    assert_int_equal(bk_hex_decode("0011223z", 4, out), -1);
    assert_int_equal(bk_hex_decode("z0112233", 4, out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_names_and_sizes),
        cmocka_unit_test(test_from_name_rejects),
        cmocka_unit_test(test_new_without_algorithm),
        cmocka_unit_test(test_incremental_equals_one_shot),
        cmocka_unit_test(test_final_resets),
        cmocka_unit_test(test_hex_encode),
        cmocka_unit_test(test_hex_decode),
        cmocka_unit_test(test_hex_decode_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
