/* SPDX-License-Identifier: MIT */
/*
 * Who uses a disk: sysfs names the disk and its partitions, the mount table and the
 * swap list say whether any of them is in use. Every path goes through a root prefix
 * so tests can point the look-ups at a fake tree.
 */
#include "os/os.h"
#include "os/linux/sysfs.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define MAX_PARTS 256

struct dev_set {
    size_t count;
    dev_t devs[MAX_PARTS + 1];
    char names[MAX_PARTS + 1][64];
};

static void dev_set_add(struct dev_set *s, const char *sysroot, const char *name)
{
    char buf[64];
    unsigned ma, mi;
    if (s->count > MAX_PARTS || bk_disk_read_attr(sysroot, name, "dev", buf, sizeof buf) < 0 ||
        sscanf(buf, "%u:%u", &ma, &mi) != 2)
        return;
    s->devs[s->count] = makedev(ma, mi);
    snprintf(s->names[s->count], sizeof s->names[0], "%s", name);
    s->count++;
}

static int dev_set_find(const struct dev_set *s, dev_t dev, const char *path)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path;
    for (size_t i = 0; i < s->count; i++)
        if (s->devs[i] == dev || (base && strcmp(s->names[i], base) == 0))
            return (int)i;
    return -1;
}

static void collect_partitions(struct dev_set *s, const char *sysroot, const char *disk)
{
    dev_set_add(s, sysroot, disk);
    char path[PATH_MAX];
    bk_root_path(path, sizeof path, sysroot, "/sys/class/block/%s", disk);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, disk, strlen(disk)) != 0)
            continue;
        char part[PATH_MAX];
        bk_root_path(part, sizeof part, sysroot, "/sys/class/block/%s/%s/partition", disk,
                     e->d_name);
        if (access(part, F_OK) == 0)
            dev_set_add(s, sysroot, e->d_name);
    }
    closedir(d);
}

/* Unescape the octal sequences (\040 for space) that mountinfo uses in paths. */
static void unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

/*
 * The mounts of the mount table TABLE (under SYSROOT) on the devices of S. A process in
 * a chroot sees only the mounts below its root in its own table; the table of process
 * 1, readable by root, shows the others (the real "/" among them).
 */
static void check_mount_table(const struct dev_set *s, const char *sysroot, const char *table,
                              struct bk_disk_usage *u)
{
    char path[PATH_MAX];
    bk_root_path(path, sizeof path, sysroot, "%s", table);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        unsigned ma, mi;
        char mnt[1024], source[1024] = "";
        if (sscanf(line, "%*u %*u %u:%u %*s %1023s", &ma, &mi, mnt) != 3)
            continue;
        const char *sep = strstr(line, " - ");
        if (sep)
            sscanf(sep + 3, "%*s %1023s", source);
        unescape(mnt);
        int i = dev_set_find(s, makedev(ma, mi), strncmp(source, "/dev/", 5) == 0 ? source : NULL);
        if (i < 0)
            continue;
        if (!u->mounted)
            snprintf(u->what, sizeof u->what, "/dev/%.60s is mounted on %.400s", s->names[i], mnt);
        u->mounted = true;
        if (strcmp(mnt, "/") == 0 && !u->holds_root) {
            u->holds_root = true;
            snprintf(u->what, sizeof u->what, "/dev/%.60s holds the running system (mounted on /)",
                     s->names[i]);
        }
    }
    fclose(f);
}

/*
 * The device of this process's own root directory: in a chroot whose root is a folder
 * of another file system, no mount table this process can read may name it "/".
 */
static void check_own_root(const struct dev_set *s, const char *sysroot, struct bk_disk_usage *u)
{
    dev_t root;
    if (bk_root_device(sysroot, &root) < 0)
        return;
    int i = dev_set_find(s, root, NULL);
    if (i < 0 || u->holds_root)
        return;
    u->mounted = u->holds_root = true;
    snprintf(u->what, sizeof u->what,
             "/dev/%.60s holds the running system (the root directory of this process)",
             s->names[i]);
}

static void check_mounts(const struct dev_set *s, const char *sysroot, struct bk_disk_usage *u)
{
    check_mount_table(s, sysroot, "/proc/self/mountinfo", u);
    check_mount_table(s, sysroot, "/proc/1/mountinfo", u);
    check_own_root(s, sysroot, u);
}

static void check_swaps(const struct dev_set *s, const char *sysroot, struct bk_disk_usage *u)
{
    char path[PATH_MAX];
    bk_root_path(path, sizeof path, sysroot, "/proc/swaps");
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char dev[512];
        if (sscanf(line, "%511s", dev) != 1 || dev[0] != '/')
            continue;
        struct stat st;
        dev_t rdev = (!sysroot && stat(dev, &st) == 0) ? st.st_rdev : (dev_t)-1;
        int i = dev_set_find(s, rdev, dev);
        if (i >= 0) {
            if (!u->mounted && !u->swap)
                snprintf(u->what, sizeof u->what, "/dev/%.60s is used as swap", s->names[i]);
            u->swap = true;
        }
    }
    fclose(f);
}

static void check_holders(const struct dev_set *s, const char *sysroot, const char *disk,
                          struct bk_disk_usage *u)
{
    for (size_t i = 0; i < s->count; i++) {
        char path[PATH_MAX];
        if (strcmp(s->names[i], disk) == 0)
            bk_root_path(path, sizeof path, sysroot, "/sys/class/block/%s/holders", disk);
        else
            bk_root_path(path, sizeof path, sysroot, "/sys/class/block/%s/%s/holders", disk,
                         s->names[i]);
        DIR *d = opendir(path);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            if (!u->mounted && !u->swap && !u->holders)
                snprintf(u->what, sizeof u->what, "/dev/%.60s is in use by %.200s", s->names[i],
                         e->d_name);
            u->holders = true;
            break;
        }
        closedir(d);
    }
}

int bk_disk_usage(const char *sysroot, const char *disk, struct bk_disk_usage *usage,
                  struct bk_error *err)
{
    memset(usage, 0, sizeof *usage);
    struct dev_set *s = calloc(1, sizeof *s);
    if (!s)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    collect_partitions(s, sysroot, disk);
    if (s->count == 0) {
        free(s);
        return bk_error_set(err, BK_E_IO, 0, "cannot read sysfs entry of disk %s", disk);
    }
    check_mounts(s, sysroot, usage);
    check_swaps(s, sysroot, usage);
    check_holders(s, sysroot, disk, usage);
    free(s);
    return 0;
}

int bk_root_device(const char *sysroot, dev_t *dev)
{
    char path[PATH_MAX];
    /* A fake tree gives its answer in a file; the real one is the root's device. */
    if (sysroot) {
        char line[64];
        unsigned ma, mi;
        bk_root_path(path, sizeof path, sysroot, "/proc/root-device");
        if (bk_read_line(path, line, sizeof line) < 0 || sscanf(line, "%u:%u", &ma, &mi) != 2)
            return -1;
        *dev = makedev(ma, mi);
        return 0;
    }
    struct stat st;
    if (stat("/", &st) < 0 || major(st.st_dev) == 0)
        return -1; /* an overlay, tmpfs or other file system on no block device */
    /* Only a device sysfs knows as a block device can be a disk we list. */
    bk_root_path(path, sizeof path, NULL, "/sys/dev/block/%u:%u", major(st.st_dev),
                 minor(st.st_dev));
    if (access(path, F_OK) < 0)
        return -1;
    *dev = st.st_dev;
    return 0;
}
