/* SPDX-License-Identifier: MIT */
/*
 * bk_source_open_command: a program's output as a source whose end counts only when the
 * program succeeded, with its last error line (password-free) in the message, and the
 * program stopped and waited for when the source is closed early.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bmapkit/bmapkit.h"
#include "source/source_impl.h"

/* Read SRC to its end or first error into BUF; returns the read's result. */
static int drain(struct bk_source *src, char *buf, size_t cap, size_t *total, struct bk_error *err)
{
    *total = 0;
    for (;;) {
        size_t got;
        if (bk_source_read(src, buf + *total, cap - *total, &got, err) < 0)
            return -1;
        if (got == 0)
            return 0;
        *total += got;
        assert_true(*total < cap);
    }
}

static struct bk_source *sh(const char *script, struct bk_error *err)
{
    char *const argv[] = {"sh", "-c", (char *)script, NULL};
    return bk_source_open_command(argv, NULL, "ssh://me:secret@host:img", err);
}

static void test_output_and_success(void **state)
{
    (void)state;
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_source *src = sh("printf 'hello '; echo warning >&2; printf world", &err);
    assert_non_null(src);
    assert_false(bk_source_seekable(src));
    assert_int_equal(bk_source_size(src), -1);
    assert_string_equal(bk_source_name(src), "ssh://me@host:img");
    char buf[256];
    size_t n;
    assert_int_equal(drain(src, buf, sizeof buf, &n, &err), 0);
    assert_int_equal(n, 11);
    assert_memory_equal(buf, "hello world", 11);
    assert_int_equal(bk_source_fetched(src), 11);
    bk_source_close(src);
}

static void test_failure_is_an_error(void **state)
{
    (void)state;
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_source *src =
        sh("printf abc; echo 'first' >&2; echo 'ssh://u:pw@h:x: Connection reset' >&2; "
           "echo >&2; exit 255",
           &err);
    assert_non_null(src);
    char buf[256];
    size_t n;
    assert_int_equal(drain(src, buf, sizeof buf, &n, &err), -1);
    assert_int_equal(n, 3);
    assert_int_equal(err.code, BK_E_IO);
    assert_non_null(strstr(err.msg, "ssh://me@host:img: ssh://u@h:x: Connection reset"));
    assert_non_null(strstr(err.msg, "status 255 after 3 bytes"));
    assert_null(strstr(err.msg, "pw"));
    /* The end stays an error. */
    bk_error_clear(&err);
    size_t got;
    assert_int_equal(bk_source_read(src, buf, sizeof buf, &got, &err), -1);
    assert_int_equal(err.code, BK_E_IO);
    bk_source_close(src);
}

static void test_killed(void **state)
{
    (void)state;
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_source *src = sh("printf x; kill -9 $$", &err);
    assert_non_null(src);
    char buf[64];
    size_t n;
    assert_int_equal(drain(src, buf, sizeof buf, &n, &err), -1);
    assert_non_null(strstr(err.msg, "killed by signal 9"));
    bk_source_close(src);
}

static void test_early_close_stops_it(void **state)
{
    (void)state;
    struct bk_error err;
    bk_error_clear(&err);
    /* A program that ignores SIGTERM and never writes again gets SIGKILL. */
    struct bk_source *src = sh("trap '' TERM; echo $$; exec sleep 30", &err);
    assert_non_null(src);
    char buf[64] = {0};
    size_t got;
    assert_int_equal(bk_source_read(src, buf, sizeof buf - 1, &got, &err), 0);
    pid_t pid = (pid_t)atoi(buf);
    assert_true(pid > 0);
    bk_source_close(src);
    /* Waited for: no such child any more. */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(kill(pid, 0), -1);
}

struct blocked_read {
    struct bk_source *src;
    int rc;
    struct bk_error err;
};

static void *read_once(void *arg)
{
    struct blocked_read *b = arg;
    char buf[16];
    size_t got;
    b->rc = bk_source_read(b->src, buf, sizeof buf, &got, &b->err);
    return NULL;
}

static void test_interrupt_wakes_a_blocked_read(void **state)
{
    (void)state;
    struct bk_error err;
    bk_error_clear(&err);
    /* Nothing comes for 30 s: without the interrupt the read would end at the program's
       end, with success, instead of failing as cancelled. */
    struct bk_source *src = sh("exec sleep 30", &err);
    assert_non_null(src);
    struct blocked_read b = {.src = src};
    bk_error_clear(&b.err);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_once, &b), 0);
    nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
    bk_source_interrupt(src);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(b.rc, -1);
    assert_int_equal(b.err.code, BK_E_CANCELLED);
    assert_non_null(strstr(b.err.msg, "interrupted at byte 0"));
    /* And every read after it. */
    char buf[16];
    size_t got;
    assert_int_equal(bk_source_read(src, buf, sizeof buf, &got, &err), -1);
    assert_int_equal(err.code, BK_E_CANCELLED);
    bk_source_close(src);
}

static void test_missing_program(void **state)
{
    (void)state;
    struct bk_error err;
    bk_error_clear(&err);
    char *const argv[] = {"/nonexistent/program", NULL};
    assert_null(bk_source_open_command(argv, NULL, "x", &err));
    assert_int_equal(err.code, BK_E_IO);
    assert_non_null(strstr(err.msg, "cannot start /nonexistent/program"));
}

static void test_environment_and_decoders(void **state)
{
    (void)state;
    struct bk_error err;
    bk_error_clear(&err);
    char *const argv[] = {"sh", "-c", "printf 'hello' | gzip -c", NULL};
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct bk_source *raw = bk_source_open_command(argv, envp, "cmd", &err);
    assert_non_null(raw);
    enum bk_format format;
    struct bk_source *src = bk_source_decode(raw, "x.gz", &format, &err);
    assert_non_null(src);
    assert_int_equal(format, BK_FORMAT_GZIP);
    char buf[64];
    size_t n;
    assert_int_equal(drain(src, buf, sizeof buf, &n, &err), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "hello", 5);
    bk_source_close(src);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_and_success),
        cmocka_unit_test(test_failure_is_an_error),
        cmocka_unit_test(test_killed),
        cmocka_unit_test(test_early_close_stops_it),
        cmocka_unit_test(test_interrupt_wakes_a_blocked_read),
        cmocka_unit_test(test_missing_program),
        cmocka_unit_test(test_environment_and_decoders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
