/* SPDX-License-Identifier: MIT */
/*
 * Libraries loaded when first needed: a missing library and a missing function each
 * give one message naming what needs it and what is missing, and leave no handle; a
 * found one fills the caller's table with working functions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/dynlib.h"

#define LIBC_FUNCTIONS(X) X(strlen) X(strchr)

struct libc_table {
    void *handle;
    LIBC_FUNCTIONS(BK_DYNLIB_MEMBER)
};

#define SYMBOL(fn) {#fn, offsetof(struct libc_table, fn)},
static const struct bk_dynlib_symbol libc_symbols[] = {LIBC_FUNCTIONS(SYMBOL)};
#undef SYMBOL

static void test_a_found_library_fills_the_table(void **state)
{
    (void)state;
    struct libc_table t;
    memset(&t, 0, sizeof t);
    struct bk_error err;
    bk_error_clear(&err);
    assert_int_equal(bk_dynlib_open("libc.so.6", "tests", libc_symbols, 2, &t, &t.handle, &err), 0);
    assert_non_null(t.handle);
    assert_int_equal(t.strlen("bmapkit"), 7);
    const char *text = "a:b";
    assert_ptr_equal(t.strchr(text, ':'), text + 1);
    bk_dynlib_close(t.handle);
}

static void test_a_missing_library_says_what_needs_it(void **state)
{
    (void)state;
    struct libc_table t;
    memset(&t, 0, sizeof t);
    void *handle = &t;
    struct bk_error err;
    bk_error_clear(&err);
    assert_int_equal(bk_dynlib_open("libbmapkit-test-absent.so.9", "tar and zip images",
                                    libc_symbols, 2, &t, &handle, &err),
                     -1);
    assert_null(handle);
    assert_int_equal(err.code, BK_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "tar and zip images need libbmapkit-test-absent.so.9, which "
                                    "cannot be loaded: "));
    assert_null(strchr(err.msg, '\n'));
    assert_null(t.strlen);
}

static void test_a_missing_function_is_named(void **state)
{
    (void)state;
    static const struct bk_dynlib_symbol symbols[] = {
        {"strlen", offsetof(struct libc_table, strlen)},
        {"bk_no_such_function", offsetof(struct libc_table, strchr)},
    };
    struct libc_table t;
    memset(&t, 0, sizeof t);
    void *handle = &t;
    struct bk_error err;
    bk_error_clear(&err);
    assert_int_equal(bk_dynlib_open("libc.so.6", "URLs", symbols, 2, &t, &handle, &err), -1);
    assert_null(handle);
    assert_int_equal(err.code, BK_E_UNSUPPORTED);
    assert_string_equal(err.msg,
                        "URLs need libc.so.6, and the one found has no bk_no_such_function");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_found_library_fills_the_table),
        cmocka_unit_test(test_a_missing_library_says_what_needs_it),
        cmocka_unit_test(test_a_missing_function_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
