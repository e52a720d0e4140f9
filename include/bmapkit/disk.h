/* SPDX-License-Identifier: MIT */
/* Disks as the kernel describes them, what uses them, and U-Boot's UMS disks. */
#ifndef BMAPKIT_DISK_H
#define BMAPKIT_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bmapkit/api.h"
#include "bmapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What uses a disk or any of its partitions, as far as sysfs and procfs tell. */
struct bk_disk_usage {
    bool mounted;    /* a file system on it is mounted */
    bool holds_root; /* it holds the running system: mounted on "/", or this process's root */
    bool swap;       /* used as swap */
    bool holders;    /* claimed by device-mapper, md, ... */
    char what[512];  /* first use found, for messages ("/dev/sda1 on /boot") */
};

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

/* A list of block devices, sorted by name (opaque). */
struct bk_disk_list;

/*
 * All block devices under SYSROOT/sys/class/block (SYSROOT NULL for the real ones);
 * those marked hidden only when ALL. Free with bk_disk_list_free. Returns NULL with ERR
 * filled.
 */
BK_API struct bk_disk_list *bk_disk_list_scan(const char *sysroot, bool all, struct bk_error *err);

/* Number of disks in LIST. */
BK_API size_t bk_disk_list_count(const struct bk_disk_list *list);

/*
 * Disk I of LIST (below bk_disk_list_count). The structure belongs to the list, and
 * fields are only ever added at its end: read it through the pointer, or copy it.
 */
BK_API const struct bk_disk_info *bk_disk_list_get(const struct bk_disk_list *list, size_t i);

/*
 * Whether the disk that holds the running system could be told when LIST was made: it
 * then carries holds_root (or, under device-mapper or md, holders). False in a
 * container whose root is on no block device visible here: any disk may then hold the
 * system unseen, and only the exclusive open still guards it.
 */
BK_API bool bk_disk_list_root_known(const struct bk_disk_list *list);

/* Free LIST (NULL is fine). */
BK_API void bk_disk_list_free(struct bk_disk_list *list);

/* U-Boot's USB mass-storage gadget (the "ums" command). */

/*
 * Whether INFO is a UMS disk picked by SELECTOR: NULL or "" picks any; otherwise the
 * LUN number, the serial or the USB port path must equal SELECTOR.
 */
BK_API bool bk_ums_matches(const struct bk_disk_info *info, const char *selector);

/*
 * The whole UMS disks present now that SELECTOR picks, with a non-zero size and a device
 * node that is there to be opened (under a SYSROOT, any file will do). No disk is not
 * an error: the list is then empty. Free with bk_disk_list_free; NULL with ERR filled.
 */
BK_API struct bk_disk_list *bk_ums_find(const char *sysroot, const char *selector,
                                        struct bk_error *err);

/*
 * Put back the I/O settings of block devices that a copy changed and never restored
 * because its process ended first (killed with SIGKILL, crashed). A copy records the
 * old values under SYSROOT/run/bmapkit/tuning (SYSROOT NULL for "/") before it changes
 * them; every record whose process has ended is applied where the disk is still the
 * same device and a setting still has the copy's value, then removed, as are damaged
 * records; records of running copies are left. WARN (may be NULL) is told of each disk
 * put back, each damaged record and each setting that could not be put back (not
 * root). Returns the number of disks whose settings were put back. A copy to a block
 * device does the same itself before it changes any setting.
 */
BK_API int bk_tuning_recover_all(const char *sysroot, bk_warn_fn warn, void *warn_ctx);

#ifdef __cplusplus
}
#endif

#endif
