/* SPDX-License-Identifier: MIT */
/*
 * I/O tuning on a fake sysfs tree: a record is written before any change and removed
 * after the restore, nothing is changed without one, and a dead owner's settings come
 * back only on the same device of the same boot, only where they are still what the
 * copy set.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "os/linux/tuning_record.h"
#include "os/os.h"

/* ------------------------------------------------------------------ a fake machine */

struct tree {
    char root[PATH_MAX];
    char dir[PATH_MAX + 32]; /* ROOT/run/bmapkit/tuning */
    char warnings[8][1024];
    int n_warnings;
};

static void on_warn(void *ctx, const char *msg)
{
    struct tree *t = ctx;
    assert_true(t->n_warnings < 8);
    snprintf(t->warnings[t->n_warnings++], sizeof t->warnings[0], "%s", msg);
}

static void mkdirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

/* ROOT/REL holds TEXT (its folders made). */
static void put(const struct tree *t, const char *rel, const char *text)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", t->root, rel);
    *strrchr(path, '/') = '\0';
    mkdirs(path);
    path[strlen(path)] = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* The content of ROOT/REL, "(none)" when it is not there. */
static const char *get(const struct tree *t, const char *rel)
{
    static char buf[512];
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", t->root, rel);
    FILE *f = fopen(path, "r");
    if (!f)
        return "(none)";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The disk NAME (device DEV, diskseq SEQ or none) with its scheduler and max_ratio. */
static void disk(const struct tree *t, const char *name, const char *dev, const char *seq,
                 const char *sched, const char *ratio)
{
    char rel[256];
    snprintf(rel, sizeof rel, "sys/class/block/%s/dev", name);
    put(t, rel, dev);
    if (seq) {
        snprintf(rel, sizeof rel, "sys/class/block/%s/diskseq", name);
        put(t, rel, seq);
    }
    snprintf(rel, sizeof rel, "sys/class/block/%s/queue/scheduler", name);
    put(t, rel, sched);
    snprintf(rel, sizeof rel, "sys/class/block/%s/bdi/max_ratio", name);
    put(t, rel, ratio);
}

static const char *sched_of(const struct tree *t, const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "sys/class/block/%s/queue/scheduler", name);
    return get(t, rel);
}

static const char *ratio_of(const struct tree *t, const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "sys/class/block/%s/bdi/max_ratio", name);
    return get(t, rel);
}

/* The names in the record folder, sorted, joined by spaces; "" when empty or absent. */
static const char *records(const struct tree *t)
{
    static char out[1024];
    struct dirent **names;
    out[0] = '\0';
    int n = scandir(t->dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, ".."))
            snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", out[0] ? " " : "",
                     names[i]->d_name);
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    return out;
}

static int setup(void **state)
{
    struct tree *t = calloc(1, sizeof *t);
    const char *tmp = getenv("TMPDIR");
    snprintf(t->root, sizeof t->root, "%s/bmapkit-tuning.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(t->root))
        return -1;
    snprintf(t->dir, sizeof t->dir, "%s/run/bmapkit/tuning", t->root);
    char run[PATH_MAX + 8];
    snprintf(run, sizeof run, "%s/run", t->root);
    mkdir(run, 0755);
    *state = t;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct tree *t = *state;
    nftw(t->root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    return 0;
}

/* A record NAME of DISK_NAME that says it was 37 and mq-deadline, written as the library would. */
static void record_for(struct tree *t, const char *name, const char *disk_name, const char *dev,
                       const char *seq, long pid, unsigned long long start, const char *boot)
{
    struct bk_tuning_record r = {
        .count = 2,
        .set = {{"bdi/max_ratio", "37", "1"}, {"queue/scheduler", "mq-deadline", "none"}},
    };
    snprintf(r.disk, sizeof r.disk, "%s", disk_name);
    snprintf(r.dev, sizeof r.dev, "%s", dev);
    snprintf(r.diskseq, sizeof r.diskseq, "%s", seq);
    snprintf(r.boot_id, sizeof r.boot_id, "%s", boot);
    r.pid = pid;
    r.start = start;
    mkdirs(t->dir);
    assert_int_equal(bk_tuning_record_save(t->dir, name, &r), 0);
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

static char boot[64];
static long self;
static unsigned long long self_start;

static int group_setup(void **state)
{
    (void)state;
    if (bk_tuning_boot_id(boot, sizeof boot) < 0 || bk_tuning_self(&self, &self_start) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ apply and restore */

static void test_apply_records_first_and_restore_removes(void **state)
{
    struct tree *t = *state;
    disk(t, "sdb", "8:16", "41", "[mq-deadline] none", "37");
    struct bk_tuning tu;
    assert_int_equal(bk_tuning_apply(&tu, t->root, "sdb", on_warn, t), 0);
    assert_int_equal(t->n_warnings, 0);
    assert_string_equal(sched_of(t, "sdb"), "none");
    assert_string_equal(ratio_of(t, "sdb"), "1");
    char name[128], path[PATH_MAX * 2], why[128] = "";
    snprintf(name, sizeof name, "sdb.%ld.%llu", self, self_start);
    assert_string_equal(records(t), name);
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    struct bk_tuning_record r;
    assert_int_equal(bk_tuning_record_load(path, &r, why, sizeof why), 0);
    assert_string_equal(r.disk, "sdb");
    assert_string_equal(r.dev, "8:16");
    assert_string_equal(r.diskseq, "41");
    assert_string_equal(r.boot_id, boot);
    assert_int_equal(r.pid, self);
    assert_int_equal(r.start, self_start);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.set[0].attr, "bdi/max_ratio");
    assert_string_equal(r.set[0].original, "37");
    assert_string_equal(r.set[0].tuned, "1");
    assert_string_equal(r.set[1].attr, "queue/scheduler");
    assert_string_equal(r.set[1].original, "mq-deadline");
    assert_string_equal(r.set[1].tuned, "none");
    /* A recovery meanwhile leaves the record of a live owner alone. */
    assert_int_equal(bk_tuning_recover(t->root, on_warn, t), 0);
    assert_string_equal(records(t), name);
    assert_string_equal(sched_of(t, "sdb"), "none");

    bk_tuning_restore(&tu);
    assert_int_equal(t->n_warnings, 0);
    assert_string_equal(sched_of(t, "sdb"), "mq-deadline");
    assert_string_equal(ratio_of(t, "sdb"), "37");
    assert_string_equal(records(t), "");
    /* A second restore, and one of a tuning never applied, do nothing. */
    bk_tuning_restore(&tu);
    struct bk_tuning none = {0};
    bk_tuning_restore(&none);
    assert_string_equal(ratio_of(t, "sdb"), "37");
}

static void test_nothing_to_change_needs_no_record(void **state)
{
    struct tree *t = *state;
    /* No diskseq (an older kernel), no scheduler file, max_ratio already low. */
    put(t, "sys/class/block/mmcblk0/dev", "179:0");
    put(t, "sys/class/block/mmcblk0/bdi/max_ratio", "1");
    struct bk_tuning tu;
    assert_int_equal(bk_tuning_apply(&tu, t->root, "mmcblk0", on_warn, t), 0);
    assert_int_equal(t->n_warnings, 0);
    assert_string_equal(records(t), "");
    bk_tuning_restore(&tu);
    assert_string_equal(ratio_of(t, "mmcblk0"), "1");
}

static void test_no_record_no_tuning(void **state)
{
    struct tree *t = *state;
    disk(t, "sdb", "8:16", "41", "[mq-deadline] none", "37");
    /* SYSROOT/run/bmapkit cannot be made: it is a file. */
    put(t, "run/bmapkit", "not a folder\n");
    struct bk_tuning tu;
    assert_int_equal(bk_tuning_apply(&tu, t->root, "sdb", on_warn, t), 0);
    assert_int_equal(t->n_warnings, 1);
    assert_non_null(strstr(t->warnings[0], "I/O settings of sdb left unchanged: they cannot be "
                                           "recorded in "));
    assert_non_null(strstr(t->warnings[0], "/run/bmapkit/tuning for a later run to put them "
                                           "back if this one dies: Not a directory"));
    assert_string_equal(sched_of(t, "sdb"), "[mq-deadline] none");
    assert_string_equal(ratio_of(t, "sdb"), "37");
    bk_tuning_restore(&tu);
    assert_string_equal(ratio_of(t, "sdb"), "37");
    assert_int_equal(t->n_warnings, 1);
}

static void test_record_folder_others_can_write_is_not_used(void **state)
{
    struct tree *t = *state;
    disk(t, "sdb", "8:16", "41", "[mq-deadline] none", "37");
    mkdirs(t->dir);
    chmod(t->dir, 0777);
    struct bk_tuning tu;
    assert_int_equal(bk_tuning_apply(&tu, t->root, "sdb", on_warn, t), 0);
    assert_int_equal(t->n_warnings, 1);
    assert_non_null(strstr(t->warnings[0], "left unchanged"));
    assert_string_equal(ratio_of(t, "sdb"), "37");
    assert_string_equal(records(t), "");
    bk_tuning_restore(&tu);
}

/* ------------------------------------------------------------------ recovery */

static void test_dead_owner_is_put_back(void **state)
{
    struct tree *t = *state;
    disk(t, "sdb", "8:16", "41", "none", "1");
    long dead = dead_pid();
    record_for(t, "sdb.x", "sdb", "8:16", "41", dead, 5, boot);
    assert_int_equal(bk_tuning_recover(t->root, on_warn, t), 1);
    assert_string_equal(sched_of(t, "sdb"), "mq-deadline");
    assert_string_equal(ratio_of(t, "sdb"), "37");
    assert_string_equal(records(t), "");
    assert_int_equal(t->n_warnings, 1);
    char want[512];
    snprintf(want, sizeof want,
             "put back the I/O settings of sdb that process %ld changed for a copy and left "
             "behind when it ended: bdi/max_ratio 37, queue/scheduler mq-deadline",
             dead);
    assert_string_equal(t->warnings[0], want);
}

static void test_reused_pid_is_not_the_owner(void **state)
{
    struct tree *t = *state;
    disk(t, "sdb", "8:16", "41", "none", "1");
    /* This process's pid, but another start time: the owner was an earlier process. */
    record_for(t, "sdb.y", "sdb", "8:16", "41", self, self_start + 1, boot);
    assert_int_equal(bk_tuning_recover(t->root, on_warn, t), 1);
    assert_string_equal(ratio_of(t, "sdb"), "37");
    assert_string_equal(records(t), "");
    /* With the right start time the owner is this live process: left alone. */
    disk(t, "sdb", "8:16", "41", "none", "1");
    record_for(t, "sdb.z", "sdb", "8:16", "41", self, self_start, boot);
    assert_int_equal(bk_tuning_recover(t->root, on_warn, t), 0);
    assert_string_equal(ratio_of(t, "sdb"), "1");
    assert_string_equal(records(t), "sdb.z");
    assert_int_equal(t->n_warnings, 1);
}

static void test_another_device_is_not_written(void **state)
{
    struct tree *t = *state;
    long dead = dead_pid();
    disk(t, "sdb", "8:16", "41", "none", "1");
    disk(t, "sdc", "8:32", NULL, "none", "1");
    record_for(t, "a", "sdb", "8:16", "40", dead, 1, boot); /* replugged: new diskseq */
    record_for(t, "b", "sdc", "8:48", "-", dead, 1, boot);  /* another device number */
    record_for(t, "c", "sdd", "8:48", "-", dead, 1, boot);  /* gone */
    record_for(t, "d", "sdb", "8:16", "41", dead, 1, "another-boot");
    assert_string_equal(records(t), "a b c d");
    assert_int_equal(bk_tuning_recover(t->root, on_warn, t), 0);
    assert_string_equal(records(t), "");
    assert_string_equal(sched_of(t, "sdb"), "none");
    assert_string_equal(ratio_of(t, "sdb"), "1");
    assert_string_equal(sched_of(t, "sdc"), "none");
    assert_string_equal(ratio_of(t, "sdc"), "1");
    assert_int_equal(t->n_warnings, 0);
}

static void test_values_changed_since_are_kept(void **state)
{
    struct tree *t = *state;
    /* Someone chose bfq after the copy set none; max_ratio is still the copy's. */
    disk(t, "sdb", "8:16", "41", "[bfq] none", "1");
    record_for(t, "r", "sdb", "8:16", "41", dead_pid(), 1, boot);
    assert_int_equal(bk_tuning_recover(t->root, on_warn, t), 1);
    assert_string_equal(sched_of(t, "sdb"), "[bfq] none");
    assert_string_equal(ratio_of(t, "sdb"), "37");
    assert_int_equal(t->n_warnings, 1);
    assert_non_null(strstr(t->warnings[0], "ended: bdi/max_ratio 37"));
    assert_null(strstr(t->warnings[0], "scheduler"));
    assert_string_equal(records(t), "");
}

static void test_damaged_records_are_removed(void **state)
{
    struct tree *t = *state;
    disk(t, "sdb", "8:16", "41", "none", "1");
    mkdirs(t->dir);
    put(t, "run/bmapkit/tuning/junk", "bmapkit-tuning 1\ndisk sdb\n");
    char link[PATH_MAX + 64];
    snprintf(link, sizeof link, "%s/link", t->dir);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    record_for(t, "live", "sdb", "8:16", "41", self, self_start, boot);
    assert_int_equal(bk_tuning_recover(t->root, on_warn, t), 0);
    assert_string_equal(records(t), "live");
    assert_int_equal(t->n_warnings, 2);
    char want[PATH_MAX * 2];
    for (int i = 0; i < 2; i++) {
        bool junk = strstr(t->warnings[i], "/junk:") != NULL;
        snprintf(want, sizeof want, "removed the damaged I/O tuning record %s/%s: %s", t->dir,
                 junk ? "junk" : "link", junk ? "cut short: no end line" : "a symbolic link");
        assert_string_equal(t->warnings[i], want);
    }
    assert_string_equal(ratio_of(t, "sdb"), "1");
}

static void test_temporaries_of_dead_writers_are_removed(void **state)
{
    struct tree *t = *state;
    char name[128];
    mkdirs(t->dir);
    snprintf(name, sizeof name, "run/bmapkit/tuning/.sdb.%ld.1", dead_pid());
    put(t, name, "bmapkit-tuning 1\n");
    snprintf(name, sizeof name, "run/bmapkit/tuning/.sdb.%ld.%llu", self, self_start);
    put(t, name, "bmapkit-tuning 1\n");
    put(t, "run/bmapkit/tuning/.other", "x");
    assert_int_equal(bk_tuning_recover(t->root, on_warn, t), 0);
    char want[128];
    snprintf(want, sizeof want, ".other .sdb.%ld.%llu", self, self_start);
    assert_string_equal(records(t), want);
    assert_int_equal(t->n_warnings, 0);
}

static void test_apply_recovers_other_disks_first(void **state)
{
    struct tree *t = *state;
    disk(t, "sdb", "8:16", "41", "none", "1");
    disk(t, "sdc", "8:32", "42", "[kyber] none", "100");
    long dead = dead_pid();
    record_for(t, "sdb.old", "sdb", "8:16", "41", dead, 1, boot);
    struct bk_tuning tu;
    assert_int_equal(bk_tuning_apply(&tu, t->root, "sdc", on_warn, t), 0);
    assert_int_equal(t->n_warnings, 1);
    assert_non_null(strstr(t->warnings[0], "settings of sdb that process"));
    assert_string_equal(ratio_of(t, "sdb"), "37");
    assert_string_equal(sched_of(t, "sdb"), "mq-deadline");
    assert_string_equal(ratio_of(t, "sdc"), "1");
    bk_tuning_restore(&tu);
    assert_string_equal(sched_of(t, "sdc"), "kyber");
    assert_string_equal(ratio_of(t, "sdc"), "100");
    assert_string_equal(records(t), "");
    assert_int_equal(t->n_warnings, 1);
}

static void test_same_disk_left_by_a_dead_run(void **state)
{
    struct tree *t = *state;
    /* The dead run left sdb tuned: the new copy must end with the true old values. */
    disk(t, "sdb", "8:16", "41", "none", "1");
    record_for(t, "sdb.old", "sdb", "8:16", "41", dead_pid(), 1, boot);
    struct bk_tuning tu;
    assert_int_equal(bk_tuning_apply(&tu, t->root, "sdb", on_warn, t), 0);
    assert_string_equal(ratio_of(t, "sdb"), "1");
    assert_string_equal(sched_of(t, "sdb"), "none");
    bk_tuning_restore(&tu);
    assert_string_equal(ratio_of(t, "sdb"), "37");
    assert_string_equal(sched_of(t, "sdb"), "mq-deadline");
    assert_string_equal(records(t), "");
    assert_int_equal(t->n_warnings, 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_apply_records_first_and_restore_removes),
        T(test_nothing_to_change_needs_no_record),
        T(test_no_record_no_tuning),
        T(test_record_folder_others_can_write_is_not_used),
        T(test_dead_owner_is_put_back),
        T(test_reused_pid_is_not_the_owner),
        T(test_another_device_is_not_written),
        T(test_values_changed_since_are_kept),
        T(test_damaged_records_are_removed),
        T(test_temporaries_of_dead_writers_are_removed),
        T(test_apply_recovers_other_disks_first),
        T(test_same_disk_left_by_a_dead_run),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
