/* SPDX-License-Identifier: MIT */
/*
 * Internal: the destination operations table. A destination is an implementation of
 * these operations plus its name, capacity and capabilities; the copy pipeline and
 * read-back use only the table, so adding a destination (a file, a block device, a
 * network export, a test double) never touches them.
 */
#ifndef BMAPKIT_DEST_IMPL_H
#define BMAPKIT_DEST_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include <sys/stat.h>
#include <sys/types.h>

#include "bmapkit/dest.h"

struct bk_dest;

struct bk_dest_ops {
    const char *kind; /* "file", "block device", ... */
    /* Write all LEN bytes at OFFSET. */
    int (*write)(struct bk_dest *d, const void *buf, size_t len, uint64_t offset,
                 struct bk_error *err);
    /* Read up to LEN bytes at OFFSET from the medium; NULL when it cannot read back. */
    int (*read)(struct bk_dest *d, void *buf, size_t len, uint64_t offset, size_t *got,
                struct bk_error *err);
    /* Make everything written durable. */
    int (*flush)(struct bk_dest *d, struct bk_error *err);
    /* Optional: zero a range without sending zeros (else zeros are written). */
    int (*zero)(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err);
    /* Optional: discard a range (else unsupported). */
    int (*discard)(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err);
    /* Optional: set the size, once a stream's length is known (a file). */
    int (*set_size)(struct bk_dest *d, uint64_t size, struct bk_error *err);
    /* Optional: start writing back what is dirty, so a slow disk never collects gigabytes. */
    void (*start_writeback)(struct bk_dest *d);
    /* Release what the implementation holds (not the bk_dest itself). */
    void (*close)(struct bk_dest *d);
    /* Optional: make a range read as zeros, releasing its storage where the medium can (a
       hole, unmapped blocks); BK_E_UNSUPPORTED where it cannot promise zeros that way. */
    int (*punch)(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err);
};

struct bk_dest {
    const struct bk_dest_ops *ops;
    char *name;
    uint64_t size; /* capacity; UINT64_MAX when unlimited */
    unsigned caps; /* enum bk_dest_capability bits */
    void *priv;
    uint32_t logical_block; /* bytes of the device's sectors; 0 when it has none (512) */
};

/*
 * A destination of OPS named NAME (copied), with nothing opened yet: the caller sets
 * size, caps and priv. Closing it calls OPS->close once priv is set. NULL with ERR
 * filled when out of memory.
 */
struct bk_dest *bk_dest_new(const struct bk_dest_ops *ops, const char *name, struct bk_error *err);

/* Set the size of a destination that can change it (a file); others ignore it. */
int bk_dest_set_size(struct bk_dest *d, uint64_t size, struct bk_error *err);

/* Start the write-back of dirty data where the destination has any. */
void bk_dest_start_writeback(struct bk_dest *d);

/* Open a regular file, a block device, a character device (file.c, blockdev.c, chardev.c). */
/*
 * Refuse (BK_E_REFUSED) a destination PATH, described by DEST, that would destroy one
 * of O's inputs; see bk_dest_open.
 */
int bk_dest_check_inputs(const char *path, const struct stat *dest, const struct bk_dest_options *o,
                         struct bk_error *err);

struct bk_dest *bk_dest_open_file(const char *path, uint64_t image_size, bool keep_content,
                                  struct bk_error *err);
struct bk_dest *bk_dest_open_blockdev(const char *path, dev_t rdev, uint64_t image_size,
                                      const struct bk_dest_options *o, struct bk_error *err);
struct bk_dest *bk_dest_open_chardev(const char *path, struct bk_error *err);

/*
 * Connect to the NBD export of URI (nbd.c, or nbd_none.c without libnbd); O is already
 * taken (bk_options_take).
 */
struct bk_dest *bk_dest_open_nbd_uri(const char *uri, uint64_t image_size,
                                     const struct bk_dest_options *o, struct bk_error *err);

#endif
