/* SPDX-License-Identifier: MIT */
/*
 * Internal: what the library asks of the operating system about disks and block
 * devices. The other layers call only these; os/linux/ implements them with sysfs,
 * procfs and ioctls, so another system would add its own folder.
 */
#ifndef BMAPKIT_OS_H
#define BMAPKIT_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bmapkit/api.h"
#include "bmapkit/disk.h"
#include "bmapkit/error.h"

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

/*
 * The block device that holds this process's root directory (under SYSROOT, a fake
 * tree, the one its proc/root-device file names as MAJOR:MINOR). Returns -1 when the
 * root is on no block device that sysfs knows (an overlay in a container, tmpfs): then
 * which disk holds the running system cannot be told from here.
 */
int bk_root_device(const char *sysroot, dev_t *dev);

/* Block devices that share bytes with one, and the files behind the loop devices among them. */
#define BK_DEV_STACK_MAX 64
struct bk_backing_file {
    dev_t dev;
    ino_t ino;
    char loop[32]; /* the loop device's name */
    bool partial;  /* behind a disk in the stack only partly concerned */
};
struct bk_dev_stack {
    size_t count;
    dev_t devs[BK_DEV_STACK_MAX];
    char names[BK_DEV_STACK_MAX][32];
    /* The whole disk of a partition in the stack: only part of it is concerned. */
    bool partial[BK_DEV_STACK_MAX];
    size_t n_files;
    struct bk_backing_file files[BK_DEV_STACK_MAX];
};

/*
 * The block devices whose content changes when block device DEV is written: DEV, its
 * partitions, the disk it is a partition of (partial), the device-mapper and md
 * devices built on any of these (holders) and those DEV is built on (slaves), with the
 * files behind the loop devices among them. Bounded; SYSROOT prefixes /sys.
 */
int bk_dev_stack_written(const char *sysroot, dev_t dev, struct bk_dev_stack *stack,
                         struct bk_error *err);

/*
 * The block devices that hold the bytes of block device DEV: DEV, the devices it is
 * built on and the disk it is a partition of (partial), with the loop devices' files.
 */
int bk_dev_stack_storage(const char *sysroot, dev_t dev, struct bk_dev_stack *stack,
                         struct bk_error *err);

/*
 * Read the one-line sysfs attribute SYSROOT/sys/class/block/DISK/ATTR into BUF,
 * trimmed. Returns -1 when it cannot be read: many attributes are optional, so the
 * caller decides whether that is a failure.
 */
int bk_disk_read_attr(const char *sysroot, const char *disk, const char *attr, char *buf,
                      size_t cap);

/*
 * Whether DISK's device node SYSROOT/dev/NAME is there to be opened: without a sysroot
 * it must be a block device whose number matches sysfs; under a sysroot (a fake tree)
 * any file will do.
 */
bool bk_disk_node_ready(const char *sysroot, const struct bk_disk_info *disk);

/* Capacity of the open block device FD in bytes. */
int bk_blockdev_size(int fd, const char *name, uint64_t *size, struct bk_error *err);

/* Bytes of a logical sector of the open block device FD (BLKSSZGET); 512 when unknown. */
uint32_t bk_blockdev_logical_block(int fd);

/* Discard (BLKDISCARD) or zero (BLKZEROOUT) LEN bytes at OFFSET of the block device FD. */
int bk_blockdev_discard(int fd, const char *name, uint64_t offset, uint64_t len,
                        struct bk_error *err);
int bk_blockdev_zeroout(int fd, const char *name, uint64_t offset, uint64_t len,
                        struct bk_error *err);

/* Whether DISK discards at all, and whether discarded blocks then read as zeros. */
bool bk_blockdev_can_discard(const char *sysroot, const char *disk);
bool bk_blockdev_discard_zeroes(const char *sysroot, const char *disk);

/*
 * I/O settings of a disk changed for a copy. While they are, a record of the old values
 * in SYSROOT/run/bmapkit/tuning names the disk (device number, diskseq), this process
 * (pid, start time) and the boot, so that a later run puts them back if this one dies.
 */
struct bk_tuning_change;
struct bk_tuning {
    char *sysroot;
    struct bk_tuning_change *change; /* what was changed and its record; NULL when nothing */
    bk_warn_fn warn;
    void *warn_ctx;
};

/*
 * First put back what dead runs left (bk_tuning_recover), then lower DISK's dirty-page
 * share and switch its scheduler off, remembering the old settings in T and in a
 * record. When the record cannot be written (no permission), nothing is changed: that
 * is one warning. Other failures are warnings too. Returns -1 only when out of memory.
 */
int bk_tuning_apply(struct bk_tuning *t, const char *sysroot, const char *disk, bk_warn_fn warn,
                    void *warn_ctx);

/* Put back what bk_tuning_apply changed, remove its record and free T's contents. */
void bk_tuning_restore(struct bk_tuning *t);

/*
 * Put back the settings of every record under SYSROOT/run/bmapkit/tuning whose owner
 * has ended (killed, crashed) without doing so, where the disk is still the same device
 * and the values are still as the copy set them; remove those records, and damaged
 * ones. Each put-back and each damaged record is a warning. Records of live processes
 * are left. Returns the number of disks whose settings were put back.
 */
int bk_tuning_recover(const char *sysroot, bk_warn_fn warn, void *warn_ctx);

#endif
