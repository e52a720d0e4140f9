/* SPDX-License-Identifier: MIT */
/* Where images are written: files, block devices, character devices. */
#ifndef BMAPKIT_DEST_H
#define BMAPKIT_DEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bmapkit/api.h"
#include "bmapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A destination (opaque): the operations a copy needs, whatever is behind them. */
struct bk_dest;

/* What a destination can do, as bits of bk_dest_capabilities. */
enum bk_dest_capability {
    BK_DEST_CAN_READ = 1u << 0,       /* written data can be read back */
    BK_DEST_CAN_DISCARD = 1u << 1,    /* ranges can be discarded (TRIM) */
    BK_DEST_DISCARD_ZEROES = 1u << 2, /* discarded ranges read back as zeros */
    BK_DEST_DIRECT_IO = 1u << 3,      /* reads of aligned ranges bypass every cache */
    BK_DEST_IS_DISK = 1u << 4,        /* a disk or partition: its first bytes are what boots */
    BK_DEST_CAN_ZERO = 1u << 5,       /* ranges can be zeroed without sending the zeros */
    BK_DEST_SIZED_BY_IMAGE = 1u << 6, /* a file that takes the size of the image */
};

/*
 * An input of the copy that the destination must not destroy: the image, the bmap,
 * standard input. Named by PATH, or by the open descriptor FD when PATH is NULL.
 */
struct bk_dest_input {
    const char *what; /* how a refusal names it: "image", "bmap", ... */
    const char *path;
    int fd;
};

/*
 * Options of bk_dest_open. Start from bk_dest_options_init: struct_size tells the
 * library which fields the caller knows, so fields can be added at the end later.
 */
struct bk_dest_options {
    size_t struct_size;
    /* Prefix for /sys, /proc and /dev look-ups; NULL for the real ones. Meant for tests. */
    const char *sysroot;
    bool force;          /* accept a disk whose partitions are mounted or in use */
    bool removable_only; /* accept only a whole disk whose removable flag is set */
    bool no_tune;        /* leave the block device's I/O settings alone */
    bk_warn_fn warn;     /* may be NULL */
    void *warn_ctx;
    /* Inputs the destination must not be, lie under or hold (BK_E_REFUSED, no override). */
    const struct bk_dest_input *inputs;
    size_t n_inputs;
    /* A regular file keeps what it holds (it is still set to the image's size), as a
       re-flash with bk_copy_set_skip_unchanged needs; else it is truncated first. */
    bool keep_content;
};

/* Set O to the defaults: all zero, padding included, and its size. */
static inline void bk_dest_options_init(struct bk_dest_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
}

/*
 * Open PATH to receive an image of IMAGE_SIZE bytes, after the safety checks:
 * symbolic links are followed to their end, and a missing path inside a device-node
 * directory (/dev, not /dev/shm) is refused rather than created; PATH must not destroy
 * one of the INPUTS (BK_E_REFUSED): be the same file, a block device one of them is
 * read from or lies on (through partitions, device-mapper and md devices above or
 * below it), a loop device over one of them, or the file behind a loop device one is
 * read from; a block device must be large enough (BK_E_REFUSED), not hold
 * mounted file systems, swap or device-mapper users on any of its partitions unless
 * force (BK_E_IN_USE), and be a removable whole disk when removable_only
 * (BK_E_NOT_REMOVABLE); it is opened with O_EXCL and, unless no_tune, its dirty-page
 * share is lowered and its scheduler switched off until it is closed. A regular file
 * is created or truncated (unless keep_content) and set to IMAGE_SIZE, keeping unwritten
 * areas as holes.
 * Nothing is written or truncated when a check fails.
 *
 * PATH may also be the URI of an NBD export (nbd://HOST[:PORT]/EXPORT, nbds://... with
 * TLS, nbd+unix:///EXPORT?socket=SOCKET, as libnbd reads them; a file whose name
 * starts so is reached as ./NAME): the export must be writable and at least IMAGE_SIZE
 * bytes; removable_only refuses it (BK_E_NOT_REMOVABLE). Writes go out several at a
 * time without waiting for each reply, and a write the server fails is reported by a
 * later write or the flush. A build without libnbd refuses it (BK_E_UNSUPPORTED).
 * OPTS may be NULL for the defaults. Returns NULL with ERR filled.
 */
BK_API struct bk_dest *bk_dest_open(const char *path, uint64_t image_size,
                                    const struct bk_dest_options *opts, struct bk_error *err);

/*
 * Refuse (BK_E_REFUSED) two destinations of one copy, A and B, when writing one
 * changes bytes of the other: the same file or device under two names, a disk and one
 * of its partitions, a device-mapper or md device and a device it is built on, a loop
 * device and the file behind it (or a file on a file system there). SYSROOT as in
 * struct bk_dest_options. A path that does not exist yet, or is no local path (an NBD
 * URI), shares nothing. Call it for every pair before opening any of them. Returns 0,
 * or -1 with ERR filled.
 */
BK_API int bk_dest_check_apart(const char *a, const char *b, const char *sysroot,
                               struct bk_error *err);

/*
 * Open the NBD export served on the standard input and output of the program ARGV
 * (NULL-terminated; argv[0] is looked up in PATH), for example ssh HOST nbdkit -s file
 * /dev/sdX: the program is started, and stopped when DEST is closed. NAME names the
 * destination in messages. Otherwise as bk_dest_open with an NBD URI; none of its
 * checks of local files apply, the program's side must make its own.
 */
BK_API struct bk_dest *bk_dest_open_nbd_command(char *const *argv, const char *name,
                                                uint64_t image_size,
                                                const struct bk_dest_options *opts,
                                                struct bk_error *err);

/* Name of DEST for messages (the path it was opened with). */
BK_API const char *bk_dest_name(const struct bk_dest *dest);

/* What DEST is, in words: "file", "block device", "character device", ... */
BK_API const char *bk_dest_kind(const struct bk_dest *dest);

/* Capacity in bytes (the image size for a file; UINT64_MAX when unlimited). */
BK_API uint64_t bk_dest_size(const struct bk_dest *dest);

/* The bk_dest_capability bits of DEST. */
BK_API unsigned bk_dest_capabilities(const struct bk_dest *dest);

/* Write LEN bytes at OFFSET, all of them or fail naming the offset. */
BK_API int bk_dest_write(struct bk_dest *dest, const void *buf, size_t len, uint64_t offset,
                         struct bk_error *err);

/*
 * Read up to LEN bytes at OFFSET from the medium, not from a cache where DEST can
 * avoid it (BK_DEST_DIRECT_IO: when OFFSET, LEN and BUF are multiples of 4096; other
 * reads drop the cached pages first). *GOT is 0 only past the end. Fails with
 * BK_E_UNSUPPORTED without BK_DEST_CAN_READ.
 */
BK_API int bk_dest_read(struct bk_dest *dest, void *buf, size_t len, uint64_t offset, size_t *got,
                        struct bk_error *err);

/* Make written data durable. */
BK_API int bk_dest_flush(struct bk_dest *dest, struct bk_error *err);

/* Make LEN bytes at OFFSET read as zeros (without sending zeros where BK_DEST_CAN_ZERO). */
BK_API int bk_dest_zero(struct bk_dest *dest, uint64_t offset, uint64_t len, struct bk_error *err);

/*
 * Discard LEN bytes at OFFSET (their content is then undefined, or zeros with
 * BK_DEST_DISCARD_ZEROES). Fails with BK_E_UNSUPPORTED without BK_DEST_CAN_DISCARD.
 */
BK_API int bk_dest_discard(struct bk_dest *dest, uint64_t offset, uint64_t len,
                           struct bk_error *err);

/* Restore the settings changed at open, close and free DEST (NULL is fine). */
BK_API void bk_dest_close(struct bk_dest *dest);

#ifdef __cplusplus
}
#endif

#endif
