/* SPDX-License-Identifier: MIT */
/*
 * The system calls under file sources and destinations, made to misbehave the way the
 * kernel may: short writes and reads, EINTR, EIO, a full disk (pwrite returning 0), a
 * failing fdatasync. The test links with --wrap for pwrite64, pread64, read and
 * fdatasync, so the library's own calls come here first.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "bmapkit/dest.h"
#include "bmapkit/source.h"

ssize_t __real_pwrite64(int fd, const void *buf, size_t len, off_t off);
ssize_t __real_pread64(int fd, void *buf, size_t len, off_t off);
ssize_t __real_read(int fd, void *buf, size_t len);
int __real_fdatasync(int fd);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off);
ssize_t __wrap_pread64(int fd, void *buf, size_t len, off_t off);
ssize_t __wrap_read(int fd, void *buf, size_t len);
int __wrap_fdatasync(int fd);

/* What the next calls do: counted per call; a mode applies from call AT on, TIMES times. */
enum mode { PASS, SHORT, FAIL, ZERO };
struct plan {
    enum mode mode;
    int err;
    unsigned at, times;
    unsigned calls;
};
static struct plan wplan, rplan, splan;
static int watched = -1; /* only the test's own files misbehave */

static bool triggers(struct plan *p)
{
    p->calls++;
    return p->mode != PASS && p->calls >= p->at && p->calls < p->at + p->times;
}

static bool watched_fd(int fd)
{
    /* The library opens its own descriptors of the file: compare what they point at. */
    char a[64], b[64], pa[256], pb[256];
    snprintf(a, sizeof a, "/proc/self/fd/%d", fd);
    snprintf(b, sizeof b, "/proc/self/fd/%d", watched);
    ssize_t na = readlink(a, pa, sizeof pa - 1), nb = readlink(b, pb, sizeof pb - 1);
    return watched >= 0 && na > 0 && na == nb && memcmp(pa, pb, (size_t)na) == 0;
}

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    if (watched_fd(fd) && triggers(&wplan)) {
        if (wplan.mode == SHORT)
            return __real_pwrite64(fd, buf, len > 1 ? len / 2 : len, off);
        if (wplan.mode == ZERO)
            return 0;
        errno = wplan.err;
        return -1;
    }
    return __real_pwrite64(fd, buf, len, off);
}

ssize_t __wrap_pread64(int fd, void *buf, size_t len, off_t off)
{
    if (watched_fd(fd) && triggers(&rplan)) {
        if (rplan.mode == SHORT)
            return __real_pread64(fd, buf, len > 1 ? len / 2 : len, off);
        errno = rplan.err;
        return -1;
    }
    return __real_pread64(fd, buf, len, off);
}

ssize_t __wrap_read(int fd, void *buf, size_t len)
{
    if (watched_fd(fd) && triggers(&rplan)) {
        if (rplan.mode == SHORT)
            return __real_read(fd, buf, len > 1 ? len / 2 : len);
        errno = rplan.err;
        return -1;
    }
    return __real_read(fd, buf, len);
}

int __wrap_fdatasync(int fd)
{
    if (watched_fd(fd) && triggers(&splan)) {
        errno = splan.err;
        return -1;
    }
    return __real_fdatasync(fd);
}

#define SIZE (3u << 20)

static char path[64];
static uint8_t *data;

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/bmapkit-fdio-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    data = malloc(SIZE);
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (uint8_t)(i * 7 + i / 4096);
    wplan = rplan = splan = (struct plan){0};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (watched >= 0)
        close(watched);
    watched = -1;
    unlink(path);
    free(data);
    return 0;
}

/* Open the destination file and watch it. */
static struct bk_dest *open_dest(void)
{
    struct bk_error err;
    struct bk_dest *d = bk_dest_open(path, SIZE, NULL, &err);
    if (!d)
        fail_msg("%s", err.msg);
    watched = open(path, O_RDONLY);
    return d;
}

static void assert_file_holds_data(void)
{
    uint8_t *back = malloc(SIZE);
    int fd = open(path, O_RDONLY);
    assert_int_equal(__real_pread64(fd, back, SIZE, 0), SIZE);
    close(fd);
    assert_memory_equal(back, data, SIZE);
    free(back);
}

static void test_short_writes_and_eintr_are_retried(void **state)
{
    (void)state;
    struct bk_error err;
    struct bk_dest *d = open_dest();
    wplan = (struct plan){SHORT, 0, 1, 1000, 0};
    assert_int_equal(bk_dest_write(d, data, SIZE / 2, 0, &err), 0);
    wplan = (struct plan){FAIL, EINTR, 1, 3, 0};
    assert_int_equal(bk_dest_write(d, data + SIZE / 2, SIZE / 2, SIZE / 2, &err), 0);
    assert_true(wplan.calls >= 4);
    splan = (struct plan){FAIL, EINTR, 1, 1, 0};
    assert_int_equal(bk_dest_flush(d, &err), 0);
    assert_int_equal(splan.calls, 2);
    bk_dest_close(d);
    assert_file_holds_data();
}

static void test_write_errors_name_the_offset(void **state)
{
    (void)state;
    struct bk_error err;
    struct bk_dest *d = open_dest();
    wplan = (struct plan){FAIL, EIO, 1, 1, 0};
    assert_int_equal(bk_dest_write(d, data, 4096, 8192, &err), -1);
    assert_int_equal(err.code, BK_E_IO);
    assert_int_equal(err.sys_errno, EIO);
    assert_non_null(strstr(err.msg, "write failed at byte 8192"));
    assert_non_null(strstr(err.msg, "Input/output error"));
    /* A disk that takes nothing more: pwrite returns 0, and that is "no space". */
    wplan = (struct plan){ZERO, 0, 1, 1, 0};
    assert_int_equal(bk_dest_write(d, data, 4096, 12288, &err), -1);
    assert_int_equal(err.sys_errno, ENOSPC);
    assert_non_null(strstr(err.msg, "at byte 12288"));
    /* Half taken, then the rest: all written, in two calls. */
    wplan = (struct plan){SHORT, 0, 1, 1, 0};
    assert_int_equal(bk_dest_write(d, data, 4096, 0, &err), 0);
    assert_int_equal(wplan.calls, 2);
    splan = (struct plan){FAIL, EIO, 1, 1, 0};
    assert_int_equal(bk_dest_flush(d, &err), -1);
    assert_int_equal(err.code, BK_E_IO);
    assert_non_null(strstr(err.msg, "flushing written data failed"));
    bk_dest_close(d);
}

static void test_read_back_retries_and_fails_cleanly(void **state)
{
    (void)state;
    struct bk_error err;
    struct bk_dest *d = open_dest();
    assert_int_equal(bk_dest_write(d, data, SIZE, 0, &err), 0);
    assert_int_equal(bk_dest_flush(d, &err), 0);
    assert_true(bk_dest_capabilities(d) & BK_DEST_CAN_READ);
    uint8_t *buf = aligned_alloc(4096, 1 << 20);
    size_t got;
    rplan = (struct plan){FAIL, EINTR, 1, 2, 0};
    assert_int_equal(bk_dest_read(d, buf, 1 << 20, 1 << 20, &got, &err), 0);
    assert_true(got > 0);
    assert_memory_equal(buf, data + (1 << 20), got);
    rplan = (struct plan){FAIL, EIO, 1, 1, 0};
    assert_int_equal(bk_dest_read(d, buf, 4096, 4096, &got, &err), -1);
    assert_int_equal(err.code, BK_E_IO);
    assert_non_null(strstr(err.msg, "read-back failed at byte 4096"));
    free(buf);
    bk_dest_close(d);
}

static void test_file_source_survives_short_reads_and_eintr(void **state)
{
    (void)state;
    struct bk_error err;
    int fd = open(path, O_WRONLY);
    assert_int_equal(__real_pwrite64(fd, data, SIZE, 0), SIZE);
    close(fd);
    struct bk_source *src = bk_source_open_file(path, &err);
    assert_non_null(src);
    watched = open(path, O_RDONLY);
    uint8_t *buf = malloc(SIZE);
    size_t total = 0, got;
    rplan = (struct plan){SHORT, 0, 1, 50, 0};
    while (total < SIZE) {
        if (rplan.calls == 60)
            rplan = (struct plan){FAIL, EINTR, 1, 3, 60};
        assert_int_equal(bk_source_read(src, buf + total, SIZE - total, &got, &err), 0);
        assert_true(got > 0);
        total += got;
    }
    assert_memory_equal(buf, data, SIZE);
    rplan = (struct plan){FAIL, EIO, 1, 1, 0};
    assert_int_equal(bk_source_pread(src, buf, 4096, 8192, &got, &err), -1);
    assert_int_equal(err.code, BK_E_IO);
    assert_non_null(strstr(err.msg, "read failed at byte 8192"));
    free(buf);
    bk_source_close(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_short_writes_and_eintr_are_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_errors_name_the_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_back_retries_and_fails_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_source_survives_short_reads_and_eintr, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
