/* SPDX-License-Identifier: MIT */
/*
 * Reading sysfs: paths under a root prefix (so tests can point the look-ups at a fake
 * tree), one-line attributes, and the whole disk a device number belongs to.
 */
#include "os/os.h"
#include "os/linux/sysfs.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

void bk_root_path(char *out, size_t cap, const char *sysroot, const char *fmt, ...)
{
    int n = snprintf(out, cap, "%s", sysroot ? sysroot : "");
    if (n < 0 || (size_t)n >= cap)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
}

int bk_read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char *ok = fgets(buf, (int)cap, f);
    fclose(f);
    if (!ok)
        return -1;
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return 0;
}

int bk_disk_read_attr(const char *sysroot, const char *disk, const char *attr, char *buf,
                      size_t cap)
{
    char path[PATH_MAX];
    bk_root_path(path, sizeof path, sysroot, "/sys/class/block/%s/%s", disk, attr);
    return bk_read_line(path, buf, cap);
}

int bk_sysfs_dev_target(const char *sysroot, dev_t dev, char *target, size_t cap,
                        struct bk_error *err)
{
    char link[PATH_MAX];
    bk_root_path(link, sizeof link, sysroot, "/sys/dev/block/%u:%u", major(dev), minor(dev));
    ssize_t n = readlink(link, target, cap - 1);
    if (n < 0)
        return bk_error_set(err, BK_E_IO, errno, "cannot find block device %u:%u in sysfs (%s)",
                            major(dev), minor(dev), link);
    target[n] = '\0';
    return 0;
}

int bk_disk_of_dev(const char *sysroot, dev_t dev, char *disk, size_t disk_cap, bool *is_partition,
                   struct bk_error *err)
{
    char target[PATH_MAX];
    if (bk_sysfs_dev_target(sysroot, dev, target, sizeof target, err) < 0)
        return -1;

    char *name = strrchr(target, '/');
    name = name ? name + 1 : target;
    char attr[PATH_MAX];
    bk_root_path(attr, sizeof attr, sysroot, "/sys/class/block/%s/partition", name);
    *is_partition = access(attr, F_OK) == 0;
    if (*is_partition) {
        /* A partition's sysfs directory sits inside its disk's. */
        name[-1] = '\0';
        char *parent = strrchr(target, '/');
        name = parent ? parent + 1 : target;
    }
    snprintf(disk, disk_cap, "%s", name);
    return 0;
}
