/* SPDX-License-Identifier: MIT */
#ifndef BMAPKIT_DISK_H
#define BMAPKIT_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

/* One block device as sysfs describes it, with what uses it. */
struct bk_disk_info {
    char name[64];      /* sysfs name: "sda", "mmcblk0", "sda1" */
    char path[80];      /* device node: "/dev/NAME" (not prefixed with the sysroot) */
    char disk[64];      /* whole disk it belongs to: NAME itself unless a partition */
    uint64_t size;      /* bytes */
    char vendor[64];    /* SCSI vendor, padding removed; "" when unknown */
    char model[128];    /* model name, padding removed */
    char serial[128];   /* the device's or its USB device's serial; "" when none */
    char transport[16]; /* "usb", "mmc", "nvme", "sata", "virtio", "loop", "scsi", ... */
    char usb_port[64];  /* USB port path ("1-2.3") for a USB disk, else "" */
    char backing[256];  /* backing file of a loop device, else "" */
    bool partition;     /* a partition rather than a whole disk */
    bool removable;     /* the removable flag */
    bool read_only;     /* the kernel's ro flag */
    bool hidden;        /* not a disk to flash: partition, ram, zram, dm, md, unused loop */
    int ums_lun;        /* LUN of a U-Boot UMS gadget disk ("Linux", "UMS disk N"), or -1 */
    struct bk_disk_usage usage;
};

/* A list of block devices, sorted by name. */
struct bk_disk_list {
    size_t count;
    struct bk_disk_info *disks;
};

/*
 * Describe the block device NAME (SYSROOT/sys/class/block/NAME). Fails when it has no
 * sysfs entry.
 */
int bk_disk_info(const char *sysroot, const char *name, struct bk_disk_info *info,
                 struct bk_error *err);

/*
 * All block devices under SYSROOT/sys/class/block; those marked hidden only when ALL.
 * Free with bk_disk_list_free.
 */
int bk_disk_list(const char *sysroot, bool all, struct bk_disk_list *list, struct bk_error *err);

void bk_disk_list_free(struct bk_disk_list *list);

/*
 * Whether DISK's device node SYSROOT/dev/NAME is there to be opened: without a sysroot
 * it must be a block device whose number matches sysfs; under a sysroot (a fake tree)
 * any file will do.
 */
bool bk_disk_node_ready(const char *sysroot, const struct bk_disk_info *disk);

/* U-Boot's USB mass-storage gadget (the "ums" command). */

/*
 * Whether INFO is a UMS disk picked by SELECTOR: NULL or "" picks any; otherwise the
 * LUN number, the serial or the USB port path must equal SELECTOR.
 */
bool bk_ums_matches(const struct bk_disk_info *info, const char *selector);

/*
 * The whole UMS disks present now that SELECTOR picks, with a non-zero size and a device
 * node that is ready (bk_disk_node_ready), into LIST (free with bk_disk_list_free). No disk is not
 * an error: LIST is then empty.
 */
int bk_ums_find(const char *sysroot, const char *selector, struct bk_disk_list *list,
                struct bk_error *err);

#ifdef __cplusplus
}
#endif

#endif
