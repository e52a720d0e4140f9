/* SPDX-License-Identifier: MIT */
/*
 * Options and results that start with their own size: a caller built against older
 * (shorter) structures keeps working, one built against newer ones is told so, and
 * results are filled only as far as the caller's structure goes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bmapkit/create.h"
#include "bmapkit/dest.h"
#include "common/options.h"

/* What an older caller knew of the create options: up to the threads field. */
struct old_create_options {
    size_t struct_size;
    enum bk_hash hash;
    bool no_checksum;
    bool detect_zeros;
    unsigned threads;
};

static void test_older_callers_get_defaults_for_the_rest(void **state)
{
    (void)state;
    /* As the old bk_create_options_init made it: zeroed, padding included. */
    struct old_create_options old;
    memset(&old, 0, sizeof old);
    old.struct_size = sizeof old;
    old.hash = BK_HASH_SHA1;
    old.no_checksum = true;
    old.threads = 3;
    struct bk_create_options o;
    memset(&o, 0xff, sizeof o);
    struct bk_error err;
    assert_int_equal(bk_options_take(&o, sizeof o, &old, "create options", &err), 0);
    assert_int_equal(o.hash, BK_HASH_SHA1);
    assert_true(o.no_checksum);
    assert_int_equal(o.threads, 3);
    /* Beyond what the caller knew: zeros, the defaults. */
    assert_int_equal(o.method, BK_MAP_AUTO);
    assert_null(o.progress);
    assert_null(o.cancel);
}

static void test_null_means_all_defaults(void **state)
{
    (void)state;
    struct bk_dest_options o;
    memset(&o, 0xff, sizeof o);
    struct bk_error err;
    assert_int_equal(bk_options_take(&o, sizeof o, NULL, "destination options", &err), 0);
    assert_int_equal(o.struct_size, sizeof o);
    assert_null(o.sysroot);
    assert_false(o.force);
    assert_null(o.warn);
}

static void test_newer_or_broken_sizes_are_refused(void **state)
{
    (void)state;
    struct {
        struct bk_dest_options o;
        char newer_fields[16];
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.o.struct_size = sizeof newer;
    struct bk_dest_options o;
    struct bk_error err;
    assert_int_equal(bk_options_take(&o, sizeof o, &newer, "destination options", &err), -1);
    assert_int_equal(err.code, BK_E_INVALID);
    assert_non_null(strstr(err.msg, "destination options"));
    struct bk_dest_options zero = {0}; /* not initialised with bk_dest_options_init */
    assert_int_equal(bk_options_take(&o, sizeof o, &zero, "destination options", &err), -1);
    assert_non_null(strstr(err.msg, "_init"));
    /* And through the public call: nothing is opened. */
    assert_null(bk_dest_open("/nonexistent/x", 1, &zero, &err));
    assert_int_equal(err.code, BK_E_INVALID);
}

static void test_results_fill_what_the_caller_has(void **state)
{
    (void)state;
    struct bk_create_info full = {sizeof full, BK_MAP_SEEK, 100, 7, 2};
    /* An older caller's structure ends after mapped_bytes. */
    struct {
        size_t struct_size;
        enum bk_map_method method;
        uint64_t mapped_bytes;
        uint64_t guard;
    } old = {offsetof(struct bk_create_info, zero_blocks), 0, 0, 12345};
    bk_results_give(&old, &full, sizeof full);
    assert_int_equal(old.method, BK_MAP_SEEK);
    assert_int_equal(old.mapped_bytes, 100);
    assert_int_equal(old.guard, 12345);
    bk_results_give(NULL, &full, sizeof full);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_older_callers_get_defaults_for_the_rest),
        cmocka_unit_test(test_null_means_all_defaults),
        cmocka_unit_test(test_newer_or_broken_sizes_are_refused),
        cmocka_unit_test(test_results_fill_what_the_caller_has),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
