/* SPDX-License-Identifier: MIT */
/*
 * Which block devices share bytes with one, on a fake sysfs tree that has what this
 * machine cannot make: an md RAID over a partition and a whole disk, a device-mapper
 * device on the RAID, and a loop device over a file.
 *
 *   sda (8:0): sda1 (8:1), sda2 (8:2)     sdb (8:16)     sdc (8:32)
 *   md0 (9:0) built on sda2 and sdb;  dm-0 (253:0) built on md0
 *   loop0 (7:0) over the file BACKING
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "os/os.h"

static char root[256];

static void put(const char *path, const char *text)
{
    char full[1024], cmd[1100];
    snprintf(full, sizeof full, "%s/%s", root, path);
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", full);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(full, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void link_to(const char *path, const char *target)
{
    char full[1024], cmd[2200];
    snprintf(full, sizeof full, "%s/%s", root, path);
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\" && ln -sfn '%s' '%s'", full, target,
             full);
    assert_int_equal(system(cmd), 0);
}

/* A block device NAME at sysfs folder DIR (below sys/devices), numbered DEV. */
static void device(const char *name, const char *dir, const char *dev)
{
    char path[512], target[512];
    snprintf(path, sizeof path, "sys/devices/%s/dev", dir);
    put(path, dev);
    snprintf(path, sizeof path, "sys/devices/%s/holders/.keep", dir);
    put(path, "");
    snprintf(path, sizeof path, "sys/devices/%s/slaves/.keep", dir);
    put(path, "");
    snprintf(path, sizeof path, "sys/class/block/%s", name);
    snprintf(target, sizeof target, "../../devices/%s", dir);
    link_to(path, target);
    snprintf(path, sizeof path, "sys/dev/block/%s", dev);
    link_to(path, target);
}

/* FROM is built on ON: FROM/slaves/ON and ON/holders/FROM. */
static void stacked(const char *from, const char *on)
{
    char path[512], target[512];
    snprintf(path, sizeof path, "sys/class/block/%s/slaves/%s", from, on);
    snprintf(target, sizeof target, "../../%s", on);
    link_to(path, target);
    snprintf(path, sizeof path, "sys/class/block/%s/holders/%s", on, from);
    snprintf(target, sizeof target, "../../%s", from);
    link_to(path, target);
}

static char backing[512];

static int make_tree(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/bk-dev-stack-XXXXXX");
    assert_non_null(mkdtemp(root));
    device("sda", "pci0/block/sda", "8:0");
    device("sda1", "pci0/block/sda/sda1", "8:1");
    put("sys/devices/pci0/block/sda/sda1/partition", "1");
    device("sda2", "pci0/block/sda/sda2", "8:2");
    put("sys/devices/pci0/block/sda/sda2/partition", "2");
    device("sdb", "pci1/block/sdb", "8:16");
    device("sdc", "pci2/block/sdc", "8:32");
    device("md0", "virtual/block/md0", "9:0");
    device("dm-0", "virtual/block/dm-0", "253:0");
    stacked("md0", "sda2");
    stacked("md0", "sdb");
    stacked("dm-0", "md0");
    device("loop0", "virtual/block/loop0", "7:0");
    snprintf(backing, sizeof backing, "%s/backing.img", root);
    put("backing.img", "data");
    put("sys/devices/virtual/block/loop0/loop/backing_file", backing);
    return 0;
}

static int remove_tree(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd);
}

/* Index of NAME in S, or -1. */
static int find(const struct bk_dev_stack *s, const char *name)
{
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->names[i], name) == 0)
            return (int)i;
    return -1;
}

/* S holds exactly the names of WANT (a NULL-ended list), those after "~" partially. */
static void expect(const struct bk_dev_stack *s, const char *const *want)
{
    size_t n = 0;
    bool partial = false;
    for (; *want; want++) {
        if (strcmp(*want, "~") == 0) {
            partial = true;
            continue;
        }
        int i = find(s, *want);
        if (i < 0)
            fail_msg("%s is missing from the stack", *want);
        if (s->partial[i] != partial)
            fail_msg("%s should%s be partial", *want, partial ? "" : " not");
        n++;
    }
    if (s->count != n) {
        for (size_t i = 0; i < s->count; i++)
            print_message("stack has %s\n", s->names[i]);
        fail_msg("stack has %zu devices, expected %zu", s->count, n);
    }
}

static void written(dev_t dev, const char *const *want)
{
    struct bk_dev_stack s;
    struct bk_error err;
    assert_int_equal(bk_dev_stack_written(root, dev, &s, &err), 0);
    expect(&s, want);
}

static void storage(dev_t dev, const char *const *want)
{
    struct bk_dev_stack s;
    struct bk_error err;
    assert_int_equal(bk_dev_stack_storage(root, dev, &s, &err), 0);
    expect(&s, want);
}

/* A partition changes only itself and, partly, its disk: not its sibling, not the RAID. */
static void test_partition(void **state)
{
    (void)state;
    written(makedev(8, 1), (const char *[]){"sda1", "~", "sda", NULL});
    storage(makedev(8, 1), (const char *[]){"sda1", "~", "sda", NULL});
}

/* A whole disk changes its partitions and everything built on them. */
static void test_disk_with_raid_member(void **state)
{
    (void)state;
    written(makedev(8, 0), (const char *[]){"sda", "sda1", "sda2", "md0", "dm-0", NULL});
}

/* One RAID member changes the RAID and what is on it, never the other member. */
static void test_raid_member(void **state)
{
    (void)state;
    written(makedev(8, 16), (const char *[]){"sdb", "md0", "dm-0", NULL});
    written(makedev(8, 2), (const char *[]){"sda2", "md0", "dm-0", "~", "sda", NULL});
}

/* A device-mapper device on the RAID writes through to every member below. */
static void test_dm_on_raid(void **state)
{
    (void)state;
    written(makedev(253, 0), (const char *[]){"dm-0", "md0", "sda2", "sdb", "~", "sda", NULL});
    storage(makedev(253, 0), (const char *[]){"dm-0", "md0", "sda2", "sdb", "~", "sda", NULL});
    storage(makedev(9, 0), (const char *[]){"md0", "sda2", "sdb", "~", "sda", NULL});
}

static void test_unrelated(void **state)
{
    (void)state;
    written(makedev(8, 32), (const char *[]){"sdc", NULL});
}

static void test_loop_backing_file(void **state)
{
    (void)state;
    struct bk_dev_stack s;
    struct bk_error err;
    struct stat st;
    assert_int_equal(stat(backing, &st), 0);
    assert_int_equal(bk_dev_stack_written(root, makedev(7, 0), &s, &err), 0);
    assert_int_equal(s.n_files, 1);
    assert_true(s.files[0].dev == st.st_dev && s.files[0].ino == st.st_ino);
    assert_string_equal(s.files[0].loop, "loop0");
    assert_false(s.files[0].partial);
    /* A disk that is no loop device has no file behind it. */
    assert_int_equal(bk_dev_stack_written(root, makedev(8, 0), &s, &err), 0);
    assert_int_equal(s.n_files, 0);
}

static void test_unknown_device(void **state)
{
    (void)state;
    struct bk_dev_stack s;
    struct bk_error err;
    bk_error_clear(&err);
    assert_int_equal(bk_dev_stack_written(root, makedev(8, 48), &s, &err), -1);
    assert_non_null(strstr(err.msg, "8:48"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition),      cmocka_unit_test(test_disk_with_raid_member),
        cmocka_unit_test(test_raid_member),    cmocka_unit_test(test_dm_on_raid),
        cmocka_unit_test(test_unrelated),      cmocka_unit_test(test_loop_backing_file),
        cmocka_unit_test(test_unknown_device),
    };
    return cmocka_run_group_tests(tests, make_tree, remove_tree);
}
