/* SPDX-License-Identifier: MIT */
/* Internal to os/linux: path helpers and the disk list's layout. */
#ifndef BMAPKIT_OS_LINUX_SYSFS_H
#define BMAPKIT_OS_LINUX_SYSFS_H

#include <stddef.h>
#include <sys/types.h>

#include "bmapkit/disk.h"

/* SYSROOT (may be NULL) followed by the formatted path, into OUT. */
void bk_root_path(char *out, size_t cap, const char *sysroot, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Where SYSROOT/sys/dev/block/MAJOR:MINOR of DEV points, into TARGET: its last
 * component is the device's sysfs name.
 */
int bk_sysfs_dev_target(const char *sysroot, dev_t dev, char *target, size_t cap,
                        struct bk_error *err);

/* First line of the file PATH into BUF, without the newline and trailing spaces. */
int bk_read_line(const char *path, char *buf, size_t cap);

struct bk_disk_list {
    size_t count;
    struct bk_disk_info *disks;
    bool root_known; /* the disk that holds the running system could be told */
};

/* Describe the block device NAME (SYSROOT/sys/class/block/NAME) into INFO. */
int bk_disk_describe(const char *sysroot, const char *name, struct bk_disk_info *info,
                     struct bk_error *err);

#endif
