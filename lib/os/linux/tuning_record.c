/* SPDX-License-Identifier: MIT */
/*
 * The tuning record: its text, its file, and the process and boot it names. A record
 * makes a later run (as root) write sysfs, so parsing is strict: known settings only,
 * values from a small set of characters, every field exactly once.
 */
#include "os/linux/tuning_record.h"
#include "os/linux/sysfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER "bmapkit-tuning 1"
/* Characters of sysfs disk names ("sda", "mmcblk0", "nvme0n1", "cciss!c0d0"). */
#define DISK_CHARS "_.:!+-"
#define VALUE_CHARS "_.-"

/*
 * What a copy changes: a low share of dirty pages keeps the page cache from filling
 * with gigabytes bound for a slow USB disk, and no scheduler lets the requests go out
 * in the copy's (ascending) order.
 */
static const struct {
    const char *attr;
    const char *value;
} targets[BK_TUNING_MAX_SETTINGS] = {
    {"bdi/max_ratio", "1"},
    {"queue/scheduler", "none"},
};

void bk_tuning_target_at(size_t i, const char **attr, const char **value)
{
    *attr = targets[i].attr;
    *value = targets[i].value;
}

const char *bk_tuning_target(const char *attr)
{
    for (size_t i = 0; i < BK_TUNING_MAX_SETTINGS; i++)
        if (strcmp(targets[i].attr, attr) == 0)
            return targets[i].value;
    return NULL;
}

/* S is not empty, shorter than CAP, and only letters, digits and EXTRA. */
static bool word_ok(const char *s, size_t cap, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return false;
    }
    return true;
}

bool bk_tuning_value_ok(const char *value)
{
    return word_ok(value, sizeof((struct bk_tuning_setting *)0)->original, VALUE_CHARS);
}

/* S is a decimal number of at most MAX, into *OUT. */
static bool number_ok(const char *s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* "MAJ:MIN" as sysfs writes a device number. */
static bool dev_ok(const char *s)
{
    char buf[32];
    unsigned long long v;
    if (strlen(s) >= sizeof buf)
        return false;
    snprintf(buf, sizeof buf, "%s", s);
    char *colon = strchr(buf, ':');
    if (!colon)
        return false;
    *colon = '\0';
    return number_ok(buf, UINT32_MAX, &v) && number_ok(colon + 1, UINT32_MAX, &v);
}

/* Split LINE at spaces into at most MAX words: their count, -1 for more or an empty one. */
static int split_words(char *line, char **w, int max)
{
    int n = 0;
    for (char *p = line;;) {
        if (n == max || !*p || *p == ' ')
            return -1;
        w[n++] = p;
        char *sp = strchr(p, ' ');
        if (!sp)
            return n;
        *sp = '\0';
        p = sp + 1;
    }
}

static const char *parse_setting(struct bk_tuning_record *r, char **w)
{
    if (!bk_tuning_target(w[1]))
        return "unknown setting";
    if (!bk_tuning_value_ok(w[2]) || !bk_tuning_value_ok(w[3]))
        return "bad setting value";
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->set[i].attr, w[1]) == 0)
            return "repeated setting";
    struct bk_tuning_setting *s = &r->set[r->count++];
    snprintf(s->attr, sizeof s->attr, "%s", w[1]);
    snprintf(s->original, sizeof s->original, "%s", w[2]);
    snprintf(s->tuned, sizeof s->tuned, "%s", w[3]);
    return NULL;
}

static const char *const keys[] = {"disk", "dev", "diskseq", "boot", "owner", "set"};
static const int key_words[] = {2, 2, 2, 2, 3, 4};
#define N_KEYS (sizeof keys / sizeof keys[0]) /* the last, "set", may repeat */

/* One "KEY VALUE..." line into R; NULL, or what is wrong with it. */
static const char *parse_field(struct bk_tuning_record *r, unsigned *seen, char **w, int n)
{
    size_t k = 0;
    unsigned long long v;
    while (k < N_KEYS && strcmp(w[0], keys[k]) != 0)
        k++;
    if (k == N_KEYS)
        return "unknown field";
    if (n != key_words[k])
        return "wrong number of words";
    if (k < N_KEYS - 1 && (*seen & (1u << k)))
        return "repeated field";
    *seen |= 1u << k;
    switch (k) {
    case 0:
        if (!word_ok(w[1], sizeof r->disk, DISK_CHARS) || strspn(w[1], ".") == strlen(w[1]))
            return "bad disk name";
        snprintf(r->disk, sizeof r->disk, "%s", w[1]);
        return NULL;
    case 1:
        if (!dev_ok(w[1]))
            return "bad device number";
        snprintf(r->dev, sizeof r->dev, "%s", w[1]);
        return NULL;
    case 2:
        if (strcmp(w[1], "-") != 0 && !number_ok(w[1], ULLONG_MAX, &v))
            return "bad diskseq";
        snprintf(r->diskseq, sizeof r->diskseq, "%s", w[1]);
        return NULL;
    case 3:
        if (!word_ok(w[1], sizeof r->boot_id, "-"))
            return "bad boot id";
        snprintf(r->boot_id, sizeof r->boot_id, "%s", w[1]);
        return NULL;
    case 4:
        if (!number_ok(w[1], INT_MAX, &v) || v == 0 || !number_ok(w[2], ULLONG_MAX, &r->start))
            return "bad owner";
        r->pid = (long)v;
        return NULL;
    default:
        return parse_setting(r, w);
    }
}

static int reject(char *why, size_t cap, unsigned line, const char *what)
{
    if (line)
        snprintf(why, cap, "line %u: %s", line, what);
    else
        snprintf(why, cap, "%s", what);
    return -1;
}

int bk_tuning_record_parse(const char *text, size_t len, struct bk_tuning_record *r, char *why,
                           size_t why_cap)
{
    *r = (struct bk_tuning_record){0};
    if (len == 0 || len > BK_TUNING_RECORD_MAX)
        return reject(why, why_cap, 0, len ? "too long for a record" : "empty");
    if (memchr(text, '\0', len))
        return reject(why, why_cap, 0, "holds a NUL byte");
    if (text[len - 1] != '\n')
        return reject(why, why_cap, 0, "cut short: no newline at the end");
    char buf[BK_TUNING_RECORD_MAX + 1];
    memcpy(buf, text, len);
    buf[len] = '\0';
    unsigned line = 0, seen = 0;
    bool ended = false;
    for (char *p = buf, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        *nl = '\0';
        line++;
        char *w[8] = {NULL};
        int n;
        const char *bad = NULL;
        if (ended)
            bad = "text after the end line";
        else if (line == 1)
            bad = strcmp(p, HEADER) == 0 ? NULL : "not a bmapkit tuning record";
        else if (strcmp(p, "end") == 0)
            ended = true;
        else if ((n = split_words(p, w, 8)) < 0)
            bad = "not words separated by single spaces";
        else
            bad = parse_field(r, &seen, w, n);
        if (bad)
            return reject(why, why_cap, line, bad);
    }
    if (!ended)
        return reject(why, why_cap, 0, "cut short: no end line");
    for (size_t k = 0; k < N_KEYS - 1; k++)
        if (!(seen & (1u << k))) {
            snprintf(why, why_cap, "no %s line", keys[k]);
            return -1;
        }
    if (r->count == 0)
        return reject(why, why_cap, 0, "no set line");
    return 0;
}

int bk_tuning_record_format(const struct bk_tuning_record *r, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, HEADER "\ndisk %s\ndev %s\ndiskseq %s\nboot %s\nowner %ld %llu\n",
                     r->disk, r->dev, r->diskseq, r->boot_id, r->pid, r->start);
    size_t used = n < 0 ? cap : (size_t)n;
    for (size_t i = 0; i <= r->count && used < cap; i++) {
        const struct bk_tuning_setting *s = &r->set[i];
        n = i == r->count ? snprintf(buf + used, cap - used, "end\n")
                          : snprintf(buf + used, cap - used, "set %s %s %s\n", s->attr, s->original,
                                     s->tuned);
        used = n < 0 ? cap : used + (size_t)n;
    }
    return used < cap ? (int)used : -1;
}

void bk_tuning_record_name(const struct bk_tuning_record *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.%ld.%llu", r->disk, r->pid, r->start);
}

bool bk_tuning_temp_owner(const char *name, long *pid, unsigned long long *start)
{
    char buf[256];
    unsigned long long p;
    if (name[0] != '.' || strlen(name) >= sizeof buf)
        return false;
    snprintf(buf, sizeof buf, "%s", name + 1);
    char *dot2 = strrchr(buf, '.');
    if (!dot2)
        return false;
    *dot2 = '\0';
    char *dot1 = strrchr(buf, '.');
    if (!dot1 || dot1 == buf || !number_ok(dot1 + 1, INT_MAX, &p) || p == 0 ||
        !number_ok(dot2 + 1, ULLONG_MAX, start))
        return false;
    *pid = (long)p;
    return true;
}

static bool write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

int bk_tuning_record_save(const char *dir, const char *name, const struct bk_tuning_record *r)
{
    char text[BK_TUNING_RECORD_MAX], tmp[PATH_MAX], path[PATH_MAX];
    int len = bk_tuning_record_format(r, text, sizeof text);
    int t = snprintf(tmp, sizeof tmp, "%s/.%s", dir, name);
    int p = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (len < 0 || t < 0 || (size_t)t >= sizeof tmp || p < 0 || (size_t)p >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    bool ok = write_all(fd, text, (size_t)len);
    int e = errno;
    if (close(fd) < 0 && ok) {
        ok = false;
        e = errno;
    }
    /* No fsync: a power loss resets the settings themselves, and the record is then stale. */
    if (ok && rename(tmp, path) == 0)
        return 0;
    if (ok)
        e = errno;
    unlink(tmp);
    errno = e;
    return -1;
}

int bk_tuning_record_load(const char *path, struct bk_tuning_record *r, char *why, size_t why_cap)
{
    /* Not following links, nor waiting on a FIFO: only a plain file can be a record. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ELOOP) {
        snprintf(why, why_cap, "a symbolic link");
        return -2;
    }
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(why, why_cap, "not a regular file");
        return -2;
    }
    char text[BK_TUNING_RECORD_MAX + 1];
    size_t len = 0;
    ssize_t n = 0;
    while (len < sizeof text && (n = read(fd, text + len, sizeof text - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        len += (size_t)n;
    }
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return -1;
    }
    return bk_tuning_record_parse(text, len, r, why, why_cap) < 0 ? -2 : 0;
}

static int invalid(void)
{
    errno = EINVAL;
    return -1;
}

/*
 * The state letter and start time of process PID. From the real /proc even under a
 * sysroot: a sysroot fakes the disks, never the processes that run.
 */
static int proc_stat(long pid, char *state, unsigned long long *start)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    errno = 0;
    if (bk_read_line(path, buf, sizeof buf) < 0) {
        errno = errno ? errno : EIO;
        return -1;
    }
    /* The name in parentheses may hold spaces and parentheses: count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return invalid();
    p += 2;
    *state = *p;
    /* The state is field 3, the start time field 22. */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return invalid();
        p++;
    }
    char *end;
    errno = 0;
    *start = strtoull(p, &end, 10);
    if (end == p || (*end != ' ' && *end != '\0') || errno)
        return invalid();
    return 0;
}

int bk_tuning_self(long *pid, unsigned long long *start)
{
    char state;
    *pid = (long)getpid();
    return proc_stat(*pid, &state, start);
}

enum bk_tuning_owner_state bk_tuning_owner(long pid, unsigned long long start)
{
    char state;
    unsigned long long now;
    if (proc_stat(pid, &state, &now) == 0)
        return now == start && state != 'Z' && state != 'X' ? BK_OWNER_ALIVE : BK_OWNER_GONE;
    if (errno != ENOENT && errno != ESRCH)
        return BK_OWNER_UNKNOWN;
    /* /proc mounted with hidepid hides other users' processes: ask the kernel too. */
    if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
        return BK_OWNER_UNKNOWN;
    return BK_OWNER_GONE;
}

int bk_tuning_boot_id(char *buf, size_t cap)
{
    if (bk_read_line("/proc/sys/kernel/random/boot_id", buf, cap) < 0 || !word_ok(buf, cap, "-"))
        return -1;
    return 0;
}
