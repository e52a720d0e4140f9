/* SPDX-License-Identifier: MIT */
/*
 * The tuning record's text, strict since a record makes root write sysfs, the names of
 * its files, and how its owner is told alive or gone (a reused pid, a zombie).
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "os/linux/tuning_record.h"

/* ------------------------------------------------------------------ the record's text */

static struct bk_tuning_record sample(void)
{
    struct bk_tuning_record r = {
        .disk = "sdb",
        .dev = "8:16",
        .diskseq = "41",
        .boot_id = "c14e6645-5f71-4719-ba47-1e88f0d2794f",
        .pid = 4242,
        .start = 1380486,
        .count = 2,
        .set = {{"bdi/max_ratio", "100", "1"}, {"queue/scheduler", "mq-deadline", "none"}},
    };
    return r;
}

static const char sample_text[] = "bmapkit-tuning 1\n"
                                  "disk sdb\n"
                                  "dev 8:16\n"
                                  "diskseq 41\n"
                                  "boot c14e6645-5f71-4719-ba47-1e88f0d2794f\n"
                                  "owner 4242 1380486\n"
                                  "set bdi/max_ratio 100 1\n"
                                  "set queue/scheduler mq-deadline none\n"
                                  "end\n";

static void test_format_and_parse_agree(void **state)
{
    (void)state;
    struct bk_tuning_record r = sample(), back;
    char text[BK_TUNING_RECORD_MAX], why[128] = "";
    int n = bk_tuning_record_format(&r, text, sizeof text);
    assert_int_equal(n, (int)strlen(sample_text));
    assert_string_equal(text, sample_text);
    assert_int_equal(bk_tuning_record_parse(text, (size_t)n, &back, why, sizeof why), 0);
    assert_memory_equal(&r, &back, sizeof r);
    /* Fields in another order and a diskseq the kernel does not have are fine. */
    const char *other = "bmapkit-tuning 1\nowner 7 0\nset queue/scheduler bfq none\n"
                        "diskseq -\nboot b\ndev 179:0\ndisk mmcblk0\nend\n";
    assert_int_equal(bk_tuning_record_parse(other, strlen(other), &back, why, sizeof why), 0);
    assert_string_equal(back.disk, "mmcblk0");
    assert_string_equal(back.diskseq, "-");
    assert_int_equal(back.count, 1);
    assert_string_equal(back.set[0].original, "bfq");
    char name[128];
    bk_tuning_record_name(&r, name, sizeof name);
    assert_string_equal(name, "sdb.4242.1380486");
    /* Too small a buffer is refused, not cut. */
    assert_int_equal(bk_tuning_record_format(&r, text, 100), -1);
}

/* SAMPLE_TEXT with the first FROM replaced by TO must be refused, WHY containing WANT. */
static void expect_refused(const char *from, const char *to, const char *want)
{
    char text[4096], why[128] = "";
    const char *at = strstr(sample_text, from);
    assert_non_null(at);
    int n = snprintf(text, sizeof text, "%.*s%s%s", (int)(at - sample_text), sample_text, to,
                     at + strlen(from));
    struct bk_tuning_record r;
    int rc = bk_tuning_record_parse(text, (size_t)n, &r, why, sizeof why);
    if (rc != -1 || !strstr(why, want))
        fail_msg("'%s' -> '%s': rc %d, why '%s', expected '%s'", from, to, rc, why, want);
}

static void test_damaged_records_are_refused(void **state)
{
    (void)state;
    expect_refused("bmapkit-tuning 1", "bmapkit-tuning 2", "line 1: not a bmapkit tuning");
    expect_refused("end\n", "", "no end line");
    expect_refused("end\n", "end", "no newline at the end");
    expect_refused("end\n", "end\nend\n", "line 10: text after the end");
    expect_refused("dev 8:16\n", "", "no dev line");
    expect_refused("disk sdb\n", "disk sdb\ndisk sdc\n", "line 3: repeated field");
    expect_refused("dev 8:16", "dev 8", "line 3: bad device number");
    expect_refused("dev 8:16", "dev 8:16x", "line 3: bad device number");
    expect_refused("dev 8:16", "dev 8:99999999999", "line 3: bad device number");
    expect_refused("disk sdb", "disk ../../../etc", "line 2: bad disk name");
    expect_refused("disk sdb", "disk ..", "line 2: bad disk name");
    expect_refused("diskseq 41", "diskseq 4x", "line 4: bad diskseq");
    expect_refused("owner 4242 1380486", "owner 0 1380486", "line 6: bad owner");
    expect_refused("owner 4242 1380486", "owner 99999999999 1", "line 6: bad owner");
    expect_refused("owner 4242 1380486", "owner 4242", "line 6: wrong number of words");
    expect_refused("owner 4242", "owner  4242", "line 6: not words separated by single");
    expect_refused("set bdi/max_ratio 100 1", "set bdi/../../uevent 100 1",
                   "line 7: unknown setting");
    expect_refused("set bdi/max_ratio 100 1", "set queue/nr_requests 100 1",
                   "line 7: unknown setting");
    expect_refused("set bdi/max_ratio 100 1", "set bdi/max_ratio 1/0 1", "bad setting value");
    expect_refused("set bdi/max_ratio 100 1", "set queue/scheduler bfq none",
                   "line 8: repeated setting");
    expect_refused("set bdi/max_ratio 100 1\nset queue/scheduler mq-deadline none\n", "",
                   "no set line");
    expect_refused("boot c14e", "colour blue\nboot c14e", "line 5: unknown field");
    expect_refused("disk sdb\n", "\n", "line 2: not words");

    struct bk_tuning_record r;
    char why[128];
    assert_int_equal(bk_tuning_record_parse("", 0, &r, why, sizeof why), -1);
    assert_string_equal(why, "empty");
    char nul[sizeof sample_text];
    memcpy(nul, sample_text, sizeof nul);
    nul[20] = '\0';
    assert_int_equal(bk_tuning_record_parse(nul, sizeof nul - 1, &r, why, sizeof why), -1);
    assert_string_equal(why, "holds a NUL byte");
    char big[BK_TUNING_RECORD_MAX + 2];
    memset(big, 'x', sizeof big);
    assert_int_equal(bk_tuning_record_parse(big, sizeof big, &r, why, sizeof why), -1);
    assert_string_equal(why, "too long for a record");
}

static void test_temporary_names(void **state)
{
    (void)state;
    long pid = 0;
    unsigned long long start = 0;
    assert_true(bk_tuning_temp_owner(".sdb.4242.1380486", &pid, &start));
    assert_int_equal(pid, 4242);
    assert_int_equal(start, 1380486);
    assert_true(bk_tuning_temp_owner(".dm.x.7.8", &pid, &start));
    assert_int_equal(pid, 7);
    assert_false(bk_tuning_temp_owner("sdb.4242.1380486", &pid, &start));
    assert_false(bk_tuning_temp_owner(".4242.1380486", &pid, &start));
    assert_false(bk_tuning_temp_owner(".sdb.0.1", &pid, &start));
    assert_false(bk_tuning_temp_owner(".sdb.x.1", &pid, &start));
    assert_false(bk_tuning_temp_owner(".", &pid, &start));
    assert_false(bk_tuning_temp_owner("..", &pid, &start));
}

/* A process that has ended and been reaped. */
static long dead_pid(void)
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0)
        _exit(0);
    assert_int_equal(waitpid(p, NULL, 0), p);
    return (long)p;
}

static void test_owner_states(void **state)
{
    (void)state;
    long self;
    unsigned long long self_start;
    assert_int_equal(bk_tuning_self(&self, &self_start), 0);
    assert_int_equal(bk_tuning_owner(self, self_start), BK_OWNER_ALIVE);
    assert_int_equal(bk_tuning_owner(self, self_start + 1), BK_OWNER_GONE);
    assert_int_equal(bk_tuning_owner(dead_pid(), 1), BK_OWNER_GONE);
    /* A zombie has ended, though its /proc entry is still there. */
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0)
        _exit(0);
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        if (strstr(buf, ") Z "))
            break;
        usleep(2000);
    }
    assert_non_null(strstr(buf, ") Z "));
    unsigned long long start = 0;
    const char *q = strrchr(buf, ')') + 2;
    for (int field = 3; field < 22; field++)
        q = strchr(q, ' ') + 1;
    start = strtoull(q, NULL, 10);
    assert_int_equal(bk_tuning_owner((long)p, start), BK_OWNER_GONE);
    waitpid(p, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_parse_agree),
        cmocka_unit_test(test_damaged_records_are_refused),
        cmocka_unit_test(test_temporary_names),
        cmocka_unit_test(test_owner_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
