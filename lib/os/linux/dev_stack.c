/* SPDX-License-Identifier: MIT */
/*
 * Which block devices share their bytes with a given one, read from sysfs: a disk's
 * partitions and a partition's disk, the device-mapper and md devices stacked on top
 * (holders) and those below (slaves), and the files behind the loop devices among
 * them. The destination checks use it so a copy never overwrites its own input.
 */
#include "os/os.h"
#include "os/linux/sysfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/*
 * How a device was reached from the one asked about, which decides where the walk goes
 * next: up the stack only from what lies above, down only from what lies below, so two
 * members of one RAID or two partitions of one disk are not taken for each other.
 */
enum reach { START, UP, DOWN, CONTAINER };

struct walk {
    const char *sysroot;
    struct bk_dev_stack *stack;
    enum reach reach[BK_DEV_STACK_MAX];
};

/* Add block device NAME as reached by HOW, once; a full stack keeps what it has. */
static void add(struct walk *w, const char *name, enum reach how)
{
    struct bk_dev_stack *s = w->stack;
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->names[i], name) == 0)
            return;
    char buf[64];
    unsigned ma, mi;
    if (s->count == BK_DEV_STACK_MAX || strlen(name) >= sizeof s->names[0] ||
        bk_disk_read_attr(w->sysroot, name, "dev", buf, sizeof buf) < 0 ||
        sscanf(buf, "%u:%u", &ma, &mi) != 2)
        return;
    s->devs[s->count] = makedev(ma, mi);
    snprintf(s->names[s->count], sizeof s->names[0], "%s", name);
    w->reach[s->count] = how;
    s->count++;
}

/* Add every entry of the sysfs folder NAME/SUB (holders, slaves) as reached by HOW. */
static void add_listed(struct walk *w, const char *name, const char *sub, enum reach how)
{
    char path[PATH_MAX];
    bk_root_path(path, sizeof path, w->sysroot, "/sys/class/block/%s/%s", name, sub);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            add(w, e->d_name, how);
    closedir(d);
}

static void add_partitions(struct walk *w, const char *name)
{
    char path[PATH_MAX];
    bk_root_path(path, sizeof path, w->sysroot, "/sys/class/block/%s", name);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char part[PATH_MAX];
        if (strncmp(e->d_name, name, strlen(name)) != 0)
            continue;
        bk_root_path(part, sizeof part, w->sysroot, "/sys/class/block/%s/%s/partition", name,
                     e->d_name);
        if (access(part, F_OK) == 0)
            add(w, e->d_name, UP);
    }
    closedir(d);
}

/* The disk that holds partition NAME: its sysfs folder is the partition's parent. */
static void add_container(struct walk *w, const char *name)
{
    char path[PATH_MAX], real[PATH_MAX];
    bk_root_path(path, sizeof path, w->sysroot, "/sys/class/block/%s/partition", name);
    if (access(path, F_OK) < 0)
        return;
    bk_root_path(path, sizeof path, w->sysroot, "/sys/class/block/%s/..", name);
    if (!realpath(path, real))
        return;
    const char *base = strrchr(real, '/');
    add(w, base ? base + 1 : real, CONTAINER);
}

/*
 * The file behind loop device NAME. The kernel's own answer (LOOP_GET_STATUS64) holds
 * even for a deleted or renamed file; a fake tree names a file in loop/backing_file.
 */
static void add_backing_file(struct walk *w, size_t i)
{
    struct bk_dev_stack *s = w->stack;
    char dir[PATH_MAX];
    bk_root_path(dir, sizeof dir, w->sysroot, "/sys/class/block/%s/loop", s->names[i]);
    /* Only the loop device itself has the folder; its partitions answer the ioctl too. */
    if (s->n_files == BK_DEV_STACK_MAX || access(dir, F_OK) < 0)
        return;
    struct bk_backing_file *f = &s->files[s->n_files];
    f->partial = s->partial[i];
    if (!w->sysroot) {
        char node[PATH_MAX];
        snprintf(node, sizeof node, "/dev/%s", s->names[i]);
        int fd = open(node, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        struct loop_info64 info;
        if (fd >= 0 && ioctl(fd, LOOP_GET_STATUS64, &info) == 0) {
            f->dev = (dev_t)info.lo_device;
            f->ino = (ino_t)info.lo_inode;
            memcpy(f->loop, s->names[i], sizeof f->loop);
            s->n_files++;
            close(fd);
            return;
        }
        if (fd >= 0)
            close(fd);
    }
    char attr[PATH_MAX], file[PATH_MAX];
    struct stat st;
    bk_root_path(attr, sizeof attr, w->sysroot, "/sys/class/block/%s/loop/backing_file",
                 s->names[i]);
    if (bk_read_line(attr, file, sizeof file) < 0 || stat(file, &st) < 0)
        return;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    memcpy(f->loop, s->names[i], sizeof f->loop);
    s->n_files++;
}

static int walk(const char *sysroot, dev_t dev, bool written, struct bk_dev_stack *s,
                struct bk_error *err)
{
    memset(s, 0, sizeof *s);
    struct walk w = {.sysroot = sysroot, .stack = s};
    char target[PATH_MAX];
    if (bk_sysfs_dev_target(sysroot, dev, target, sizeof target, err) < 0)
        return -1;
    const char *base = strrchr(target, '/');
    add(&w, base ? base + 1 : target, START);
    for (size_t i = 0; i < s->count; i++) {
        enum reach how = w.reach[i];
        s->partial[i] = how == CONTAINER;
        if (how == START || how == DOWN) {
            add_listed(&w, s->names[i], "slaves", DOWN);
            add_container(&w, s->names[i]);
        }
        if (written && how != CONTAINER) {
            add_partitions(&w, s->names[i]);
            if (how != DOWN)
                add_listed(&w, s->names[i], "holders", UP);
        }
        add_backing_file(&w, i);
    }
    return 0;
}

int bk_dev_stack_written(const char *sysroot, dev_t dev, struct bk_dev_stack *stack,
                         struct bk_error *err)
{
    return walk(sysroot, dev, true, stack, err);
}

int bk_dev_stack_storage(const char *sysroot, dev_t dev, struct bk_dev_stack *stack,
                         struct bk_error *err)
{
    return walk(sysroot, dev, false, stack, err);
}
