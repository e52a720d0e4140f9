/* SPDX-License-Identifier: MIT */
#ifndef BMAPKIT_DISK_H
#define BMAPKIT_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "bmapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What uses a disk or any of its partitions, as far as sysfs and procfs tell. */
struct bk_disk_usage {
    bool mounted;    /* a file system on it is mounted */
    bool holds_root; /* one of those is mounted on "/" */
    bool swap;       /* used as swap */
    bool holders;    /* claimed by device-mapper, md, ... */
    char what[512];  /* first use found, for messages ("/dev/sda1 on /boot") */
};

/*
 * Find the whole disk that the block device DEV belongs to: its sysfs name (DISK, e.g.
 * "sda") and whether DEV is a partition. SYSROOT prefixes /sys (NULL for "/").
 */
int bk_disk_of_dev(const char *sysroot, dev_t dev, char *disk, size_t disk_cap, bool *is_partition,
                   struct bk_error *err);

/*
 * Check the disk named DISK and all its partitions against the mount table
 * (SYSROOT/proc/self/mountinfo), swaps and sysfs holders. Fills USAGE.
 */
int bk_disk_usage(const char *sysroot, const char *disk, struct bk_disk_usage *usage,
                  struct bk_error *err);

/* Read a one-line sysfs attribute SYSROOT/sys/block/DISK/ATTR into BUF, trimmed. */
int bk_disk_read_attr(const char *sysroot, const char *disk, const char *attr, char *buf,
                      size_t cap);

#ifdef __cplusplus
}
#endif

#endif
