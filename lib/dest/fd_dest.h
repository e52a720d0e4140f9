/* SPDX-License-Identifier: MIT */
/*
 * Internal to dest/: the part that files, block devices and character devices share,
 * a descriptor written with pwrite and a second one that reads back from the medium.
 */
#ifndef BMAPKIT_DEST_FD_DEST_H
#define BMAPKIT_DEST_FD_DEST_H

#include "dest/dest_impl.h"
#include "os/os.h"

/* The alignment O_DIRECT reads need, in offset, length and memory. */
#define FD_DEST_ALIGN 4096u

struct fd_dest {
    int fd;     /* written through */
    int direct; /* the same file opened O_RDONLY | O_DIRECT, or -1 */
    int cached; /* the same file opened O_RDONLY, or -1; opened on first use */
    char *disk; /* a block device's whole disk ("sda"), for its sysfs look-ups */
    char *sysroot;
    struct bk_tuning tuning;
};

/* Allocate the fd_dest of D (priv) with FD; -1 with ERR filled. Takes FD in any case. */
int fd_dest_attach(struct bk_dest *d, int fd, struct bk_error *err);

/* Open the O_DIRECT reader of D; sets BK_DEST_DIRECT_IO when the file system allows it. */
void fd_dest_open_direct(struct bk_dest *d);

int fd_dest_write(struct bk_dest *d, const void *buf, size_t len, uint64_t offset,
                  struct bk_error *err);
int fd_dest_read(struct bk_dest *d, void *buf, size_t len, uint64_t offset, size_t *got,
                 struct bk_error *err);
int fd_dest_flush(struct bk_dest *d, struct bk_error *err);
void fd_dest_close(struct bk_dest *d);
/* Punch a hole, keeping the size (punch.c): zeros on a file, zeroing that may unmap on a disk. */
int fd_dest_punch(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err);

#endif
