/* SPDX-License-Identifier: MIT */
/*
 * I/O settings of a disk for the time of a copy (what and why: tuning_record.c). Before
 * any change the old values go into a record under SYSROOT/run/bmapkit/tuning; a copy
 * that ends puts them back and removes it. When the process dies first (SIGKILL, a
 * crash), the next run that tunes, or that calls bk_tuning_recover, finds the record
 * of a dead owner and puts the values back. Without a record nothing is changed.
 */
#include "os/os.h"
#include "os/linux/sysfs.h"
#include "os/linux/tuning_record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What this process changed, and the record file that says so. */
struct bk_tuning_change {
    struct bk_tuning_record rec;
    char path[PATH_MAX];
};

static void say(bk_warn_fn fn, void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(bk_warn_fn fn, void *ctx, const char *fmt, ...)
{
    if (!fn)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(ctx, msg);
}

static int write_attr(const char *sysroot, const char *disk, const char *attr, const char *value)
{
    char path[PATH_MAX];
    bk_root_path(path, sizeof path, sysroot, "/sys/class/block/%s/%s", disk, attr);
    /* O_TRUNC is ignored by sysfs and makes a fake tree's plain file hold just VALUE. */
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, value, strlen(value));
    int e = errno;
    close(fd);
    errno = e;
    return n < 0 ? -1 : 0;
}

/* The value of ATTR; of a list ("mq-deadline [none]"), the entry in brackets. */
static int read_setting(const char *sysroot, const char *disk, const char *attr, char *buf,
                        size_t cap)
{
    char raw[256];
    errno = 0;
    if (bk_disk_read_attr(sysroot, disk, attr, raw, sizeof raw) < 0) {
        errno = errno ? errno : EIO;
        return -1;
    }
    char *open_br = strchr(raw, '['), *close_br = open_br ? strchr(open_br, ']') : NULL;
    const char *current = raw;
    if (open_br && close_br) {
        *close_br = '\0';
        current = open_br + 1;
    }
    snprintf(buf, cap, "%s", current);
    return 0;
}

/* DISK's device number and sequence number ("-" where the kernel has none). */
static int device_identity(const char *sysroot, const char *disk, char *dev, size_t dev_cap,
                           char *seq, size_t seq_cap)
{
    if (bk_disk_read_attr(sysroot, disk, "dev", dev, dev_cap) < 0)
        return -1;
    if (bk_disk_read_attr(sysroot, disk, "diskseq", seq, seq_cap) < 0)
        snprintf(seq, seq_cap, "-");
    return 0;
}

/*
 * SYSROOT/run/bmapkit/tuning into DIR, made first when MAKE. -1 with errno when it is
 * not there, or is not a directory that only root or this user can write: a record
 * makes root write sysfs.
 */
static int record_dir(const char *sysroot, bool make, char *dir, size_t cap)
{
    char parent[PATH_MAX];
    bk_root_path(parent, sizeof parent, sysroot, "/run/bmapkit");
    bk_root_path(dir, cap, sysroot, "%s", BK_TUNING_DIR);
    if (make &&
        ((mkdir(parent, 0755) < 0 && errno != EEXIST) || (mkdir(dir, 0755) < 0 && errno != EEXIST)))
        return -1;
    struct stat st;
    if (lstat(dir, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022)) {
        errno = S_ISDIR(st.st_mode) ? EPERM : ENOTDIR;
        return -1;
    }
    return 0;
}

/*
 * Write R's original values back to its disk where they are still what the copy set
 * (a value changed since is someone else's). RES per setting: 1 written back, 0 left,
 * -errno failed. -1 when the disk is gone or its name is now another device's: then
 * nothing is written.
 */
static int put_back(const char *sysroot, const struct bk_tuning_record *r, int *res)
{
    char dev[32], seq[32], current[256];
    if (device_identity(sysroot, r->disk, dev, sizeof dev, seq, sizeof seq) < 0 ||
        strcmp(dev, r->dev) != 0 || strcmp(seq, r->diskseq) != 0)
        return -1;
    for (size_t i = 0; i < r->count; i++) {
        const struct bk_tuning_setting *s = &r->set[i];
        res[i] = 0;
        if (read_setting(sysroot, r->disk, s->attr, current, sizeof current) < 0)
            res[i] = -errno;
        else if (strcmp(current, s->tuned) == 0)
            res[i] = write_attr(sysroot, r->disk, s->attr, s->original) < 0 ? -errno : 1;
    }
    return 0;
}

/* The settings of DISK that differ from what a copy wants, into R; their count. */
static size_t plan(const char *sysroot, const char *disk, struct bk_tuning_record *r)
{
    for (size_t i = 0; i < BK_TUNING_MAX_SETTINGS; i++) {
        const char *attr, *value;
        char current[256];
        bk_tuning_target_at(i, &attr, &value);
        /* Some disks lack one (no scheduler); a value no record can hold is left alone. */
        if (read_setting(sysroot, disk, attr, current, sizeof current) < 0 ||
            strcmp(current, value) == 0 || !bk_tuning_value_ok(current))
            continue;
        struct bk_tuning_setting *s = &r->set[r->count++];
        snprintf(s->attr, sizeof s->attr, "%s", attr);
        memcpy(s->original, current, strlen(current) + 1); /* it fits: bk_tuning_value_ok */
        snprintf(s->tuned, sizeof s->tuned, "%s", value);
    }
    return r->count;
}

/* Name DISK, this process and this boot in C's record and write it; -1 after a warning. */
static int record(struct bk_tuning *t, const char *disk, struct bk_tuning_change *c)
{
    struct bk_tuning_record *r = &c->rec;
    char dir[PATH_MAX], name[128];
    const char *why = NULL;
    int e = 0;
    snprintf(r->disk, sizeof r->disk, "%s", disk);
    if (device_identity(t->sysroot, disk, r->dev, sizeof r->dev, r->diskseq, sizeof r->diskseq) < 0)
        why = "its device number cannot be read";
    else if (bk_tuning_self(&r->pid, &r->start) < 0)
        why = "/proc does not tell this process's start time";
    else if (bk_tuning_boot_id(r->boot_id, sizeof r->boot_id) < 0)
        why = "/proc does not tell the boot id";
    else if (record_dir(t->sysroot, true, dir, sizeof dir) < 0)
        e = errno;
    else {
        bk_tuning_record_name(r, name, sizeof name);
        if (snprintf(c->path, sizeof c->path, "%s/%s", dir, name) >= (int)sizeof c->path)
            e = ENAMETOOLONG;
        else if (bk_tuning_record_save(dir, name, r) < 0)
            e = errno;
    }
    if (!why && !e)
        return 0;
    bk_root_path(dir, sizeof dir, t->sysroot, "%s", BK_TUNING_DIR);
    say(t->warn, t->warn_ctx,
        "I/O settings of %s left unchanged: they cannot be recorded in %s for a later run to "
        "put them back if this one dies: %s",
        disk, dir, why ? why : strerror(e));
    return -1;
}

int bk_tuning_apply(struct bk_tuning *t, const char *sysroot, const char *disk, bk_warn_fn fn,
                    void *warn_ctx)
{
    *t = (struct bk_tuning){.warn = fn, .warn_ctx = warn_ctx};
    t->sysroot = sysroot ? strdup(sysroot) : NULL;
    struct bk_tuning_change *c = calloc(1, sizeof *c);
    if ((sysroot && !t->sysroot) || !c) {
        free(c);
        bk_tuning_restore(t);
        return -1;
    }
    /* Dead runs' leftovers first: this very disk may be among them, with its true values. */
    bk_tuning_recover(sysroot, fn, warn_ctx);
    /* Only with a record may anything change: unrecorded, a change can outlive us. */
    if (plan(sysroot, disk, &c->rec) == 0 || record(t, disk, c) < 0) {
        free(c);
        return 0;
    }
    struct bk_tuning_record *r = &c->rec;
    size_t kept = 0;
    for (size_t i = 0; i < r->count; i++) {
        const struct bk_tuning_setting *s = &r->set[i];
        if (write_attr(sysroot, disk, s->attr, s->tuned) < 0)
            say(fn, warn_ctx, "cannot set %s of %s to %s: %s", s->attr, disk, s->tuned,
                strerror(errno));
        else
            r->set[kept++] = *s;
    }
    /* The record may keep a setting that failed: one not at its tuned value is not put back. */
    r->count = kept;
    if (kept == 0) {
        unlink(c->path);
        free(c);
        return 0;
    }
    t->change = c;
    return 0;
}

void bk_tuning_restore(struct bk_tuning *t)
{
    struct bk_tuning_change *c = t->change;
    if (c) {
        const struct bk_tuning_record *r = &c->rec;
        int res[BK_TUNING_MAX_SETTINGS];
        /* A disk gone or replaced took the settings with it: nothing to put back. */
        if (put_back(t->sysroot, r, res) == 0)
            for (size_t i = 0; i < r->count; i++)
                if (res[i] < 0)
                    say(t->warn, t->warn_ctx, "cannot restore %s of %s to %s: %s", r->set[i].attr,
                        r->disk, r->set[i].original, strerror(-res[i]));
        /* Removed after the values: dying in between leaves a record with nothing to do. */
        unlink(c->path);
        free(c);
    }
    free(t->sysroot);
    *t = (struct bk_tuning){0};
}

/* Tell what was put back of R, or could not be; whether R is still worth keeping. */
static bool report(const struct bk_tuning_record *r, const int *res, bk_warn_fn fn, void *ctx)
{
    char done[256] = "";
    size_t used = 0;
    bool keep = false;
    for (size_t i = 0; i < r->count; i++) {
        const struct bk_tuning_setting *s = &r->set[i];
        if (res[i] > 0) {
            int n = snprintf(done + used, sizeof done - used, "%s%s %s", used ? ", " : "", s->attr,
                             s->original);
            used = n < 0 || (size_t)n >= sizeof done - used ? sizeof done - 1 : used + (size_t)n;
        } else if (res[i] < 0) {
            say(fn, ctx,
                "cannot put back %s %s on %s, left by process %ld when it ended during a "
                "copy: %s",
                s->attr, s->original, r->disk, r->pid, strerror(-res[i]));
            /* Someone with the rights (root) can still do it later. */
            keep = keep || res[i] == -EACCES || res[i] == -EPERM;
        }
    }
    if (used)
        say(fn, ctx,
            "put back the I/O settings of %s that process %ld changed for a copy and left "
            "behind when it ended: %s",
            r->disk, r->pid, done);
    return keep;
}

/* The record DIR/NAME: put back and removed when its owner is dead; 1 when put back. */
static int recover_one(const char *sysroot, const char *dir, const char *name, const char *boot,
                       bk_warn_fn fn, void *ctx)
{
    char path[PATH_MAX], why[128];
    struct bk_tuning_record r;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return 0;
    int rc = bk_tuning_record_load(path, &r, why, sizeof why);
    if (rc == -1) /* removed by another run meanwhile, or not readable here */
        return 0;
    if (rc < 0) {
        if (unlink(path) == 0)
            say(fn, ctx, "removed the damaged I/O tuning record %s: %s", path, why);
        else
            say(fn, ctx, "cannot remove the damaged I/O tuning record %s (%s): %s", path, why,
                strerror(errno));
        return 0;
    }
    /* An earlier boot reset the settings, and its device numbers mean nothing now. */
    bool earlier_boot = strcmp(r.boot_id, boot) != 0;
    if (!earlier_boot && bk_tuning_owner(r.pid, r.start) != BK_OWNER_GONE)
        return 0;
    int res[BK_TUNING_MAX_SETTINGS] = {0}, restored = 0;
    bool keep = false;
    /* Another device under the name, or none: the settings went with the old one. */
    if (!earlier_boot && put_back(sysroot, &r, res) == 0) {
        keep = report(&r, res, fn, ctx);
        for (size_t i = 0; i < r.count; i++)
            restored = restored || res[i] > 0;
    }
    if (!keep)
        unlink(path);
    return restored;
}

int bk_tuning_recover(const char *sysroot, bk_warn_fn warn, void *warn_ctx)
{
    char dir[PATH_MAX], boot[48];
    unsigned long long owner_start;
    /* Without /proc neither a record's boot nor its owner can be told: all are left. */
    if (bk_tuning_boot_id(boot, sizeof boot) < 0 || record_dir(sysroot, false, dir, sizeof dir) < 0)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int restored = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long owner;
        /* A temporary is a record never put in place: its owner changed nothing yet. */
        if (e->d_name[0] == '.') {
            if (bk_tuning_temp_owner(e->d_name, &owner, &owner_start) &&
                bk_tuning_owner(owner, owner_start) == BK_OWNER_GONE)
                unlinkat(dirfd(d), e->d_name, 0);
            continue;
        }
        restored += recover_one(sysroot, dir, e->d_name, boot, warn, warn_ctx);
    }
    closedir(d);
    return restored;
}

int bk_tuning_recover_all(const char *sysroot, bk_warn_fn warn, void *warn_ctx)
{
    return bk_tuning_recover(sysroot, warn, warn_ctx);
}
