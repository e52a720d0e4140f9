/* SPDX-License-Identifier: MIT */
#ifndef BMAPKIT_DEST_H
#define BMAPKIT_DEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bmapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum bk_dest_kind {
    BK_DEST_FILE,     /* regular file: created or truncated, sized to the image */
    BK_DEST_BLOCKDEV, /* disk or partition: opened exclusively, capacity checked */
    BK_DEST_CHARDEV,  /* e.g. /dev/null: written as is, nothing to size or flush */
};

/* Called with a one-line warning the caller may show. */
typedef void (*bk_warn_fn)(void *ctx, const char *msg);

struct bk_dest_options {
    /* Prefix for /sys, /proc and /dev look-ups; NULL for the real ones. Meant for tests. */
    const char *sysroot;
    bool force;          /* accept a disk whose partitions are mounted or in use */
    bool removable_only; /* accept only a whole disk whose removable flag is set */
    bool no_tune;        /* leave the block device's I/O settings alone */
    bk_warn_fn warn;     /* may be NULL */
    void *warn_ctx;
};

struct bk_dest {
    enum bk_dest_kind kind;
    int fd;
    char *path;    /* as given */
    uint64_t size; /* capacity of a block device; the image size for a file */
    char *disk;    /* sysfs name of the whole disk ("sda") for block devices */
    char *sysroot; /* copy of the option, for look-ups while open */
    bk_warn_fn warn;
    void *warn_ctx;
    /* I/O settings changed while copying, restored by bk_dest_close */
    char *saved_scheduler;
    char *saved_max_ratio;
};

/*
 * Open PATH to receive an image of IMAGE_SIZE bytes, after the safety checks:
 * a missing path inside a device-node directory (/dev, not /dev/shm) is refused
 * rather than created; a block device must be large enough, not hold mounted file
 * systems, swap or device-mapper users on any of its partitions (unless force), and be
 * a removable whole disk when removable_only; it is opened with O_EXCL. A regular file
 * is created or truncated and set to IMAGE_SIZE, keeping unwritten areas as holes.
 * Nothing is written or truncated when a check fails. Returns NULL with ERR filled.
 */
struct bk_dest *bk_dest_open(const char *path, uint64_t image_size,
                             const struct bk_dest_options *opts, struct bk_error *err);

/* Write LEN bytes at OFFSET, all of them or fail naming the offset. */
int bk_dest_write(struct bk_dest *dest, const void *buf, size_t len, uint64_t offset,
                  struct bk_error *err);

/* Make written data durable (fdatasync); nothing to do for character devices. */
int bk_dest_flush(struct bk_dest *dest, struct bk_error *err);

/*
 * Lower the block device's dirty-page share and switch its scheduler off for the copy;
 * failures only produce warnings. Restored by bk_dest_close.
 */
void bk_dest_tune(struct bk_dest *dest);

/* Restore settings, close and free DEST (NULL is fine). */
void bk_dest_close(struct bk_dest *dest);

#ifdef __cplusplus
}
#endif

#endif
