/* SPDX-License-Identifier: MIT */
/* Copying an image to a destination, only its mapped ranges, verified. */
#ifndef BMAPKIT_COPY_H
#define BMAPKIT_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bmapkit/api.h"
#include "bmapkit/bmap.h"
#include "bmapkit/dest.h"
#include "bmapkit/source.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A copy job (opaque): what to copy where, how, and afterwards what happened. */
struct bk_copy;

/* What the copy found of a GPT on the destination afterwards, and did with it. */
enum bk_copy_gpt {
    BK_COPY_GPT_UNCHECKED = 0, /* not looked at: the image fills the destination, or a
                                  failure came first */
    BK_COPY_GPT_NONE,          /* the image has no GPT */
    BK_COPY_GPT_AT_END,        /* its backup is at the destination's end already */
    BK_COPY_GPT_MOVABLE,       /* valid, its backup at the image's end, before the
                                  destination's */
    BK_COPY_GPT_LEFT_ALONE,    /* cannot be moved: a hybrid MBR, damage, another sector size */
    BK_COPY_GPT_MOVED,         /* its backup now ends the destination */
};

/* What a copy did. Owned by the job; fields are only ever added at the end. */
struct bk_copy_stats {
    uint64_t bytes_total;    /* bytes to copy (mapped bytes, or the image size) */
    uint64_t bytes_written;  /* bytes written to the destination */
    size_t ranges_verified;  /* ranges that matched their checksum */
    size_t ranges_unchecked; /* ranges without a checksum, or all when not verifying */
    size_t readback_checked; /* ranges read back and matched */
    size_t readback_failed;  /* ranges that still differ after the retries */
    bool head_written;       /* the image's first bytes reached (or, after a failure, may
                                be on) the destination */
    bool head_cleared;       /* zeros went to the mapped part of the first bytes before
                                the copy, so that a failure leaves no old boot sector */

    /* Forced ranges, zeroing the unmapped ranges, the GPT (added in 0.3). */
    uint64_t forced_bytes;     /* unmapped image bytes written for the forced ranges */
    size_t ranges_forced;      /* ranges the forced ranges added to the bmap's */
    uint64_t zeroed_bytes;     /* unmapped bytes made to read as zeros: the three below */
    uint64_t zeroed_released;  /* by holes, or zeroing that may unmap the blocks */
    uint64_t zeroed_offloaded; /* by the destination's zero-out command */
    uint64_t zeroed_written;   /* by writing zeros */
    enum bk_copy_gpt gpt;      /* the GPT on the destination */
    char gpt_note[192];        /* why, in words, for a message */

    /* Skipping what the destination holds already (added in 0.3). */
    size_t ranges_skipped;   /* ranges the destination held already, not written at all */
    uint64_t bytes_skipped;  /* mapped bytes not written since the destination held them */
    uint64_t bytes_compared; /* bytes read from the destination to compare */

    /* Several destinations (added in 0.3). */
    uint64_t elapsed_ns; /* from the start of the run until this destination was done
                            (or dropped); for the job, until the last one was */
};

/* Range INDEX of the bmap matched its checksum (before its last bytes are written). */
typedef void (*bk_copy_range_fn)(void *ctx, size_t index, const struct bk_range *range);

/* Read-back of range INDEX did not match; ATTEMPT counts from 1. */
typedef void (*bk_copy_mismatch_fn)(void *ctx, size_t index, const struct bk_range *range,
                                    unsigned attempt);

/* Destination DEST (an index, see bk_copy_add_dest) read back range INDEX wrong. */
typedef void (*bk_copy_dest_mismatch_fn)(void *ctx, size_t dest, size_t index,
                                         const struct bk_range *range, unsigned attempt);

/* Destination DEST is done: ERROR is NULL when it holds the verified image. */
typedef void (*bk_copy_dest_fn)(void *ctx, size_t dest, const struct bk_error *error);

/* Destinations one job can write at once. */
#define BK_COPY_MAX_DESTS 64

/* Bytes of the image's beginning that are written last, unless set otherwise. */
#define BK_COPY_HEAD_BYTES (1024 * 1024)

/*
 * Check, before the destination is opened, that SRC can be the image BMAP describes
 * (its size, when known, equals the image size). Returns 0, or -1 with ERR filled.
 */
BK_API int bk_copy_check_source(const struct bk_bmap *bmap, const struct bk_source *src,
                                struct bk_error *err);

/*
 * Check that a copy with BMAP can do what it is asked: with VERIFY, a bmap that has
 * ranges but no range checksum at all is refused (BK_E_UNVERIFIABLE), since such a
 * copy would look the same as one whose checksums were lost to damage; the caller
 * turns verification off to copy it. With READBACK, some range must have a checksum
 * (BK_E_INVALID). bk_copy_run makes the same check; callers can make it before they
 * open the destination. Returns 0, or -1 with ERR filled.
 */
BK_API int bk_copy_check_verifiable(const struct bk_bmap *bmap, bool verify, bool readback,
                                    struct bk_error *err);

/*
 * A job that copies the mapped ranges of BMAP from SRC to DEST, or the whole image
 * when BMAP is NULL. The job borrows all three; they must outlive it. Ranges are
 * verified, nothing is read back, and the first BK_COPY_HEAD_BYTES are written last,
 * until a setter says otherwise. Returns NULL with ERR filled.
 */
BK_API struct bk_copy *bk_copy_new(const struct bk_bmap *bmap, struct bk_source *src,
                                   struct bk_dest *dest, struct bk_error *err);

/*
 * Write the image to DEST too (borrowed, like the first). The image is read, decoded
 * and checked once for all destinations; each has its own writer thread, flushes,
 * head written last, read-back and result. A destination that fails is dropped with
 * its own error and the others go on; the slowest one sets the pace. Returns the
 * destination's index (the one given to bk_copy_new is 0), or -1 with ERR filled: the
 * same destination twice, more than BK_COPY_MAX_DESTS, or a job that already ran.
 */
BK_API int bk_copy_add_dest(struct bk_copy *job, struct bk_dest *dest, struct bk_error *err);

/* The job's destinations, the first included. */
BK_API size_t bk_copy_dest_count(const struct bk_copy *job);

/*
 * What the job did to destination INDEX (valid until bk_copy_free; NULL past the end):
 * its own bytes written, read-back counts, head state and time, with the job's counts of
 * verified ranges.
 */
BK_API const struct bk_copy_stats *bk_copy_get_dest_stats(const struct bk_copy *job, size_t index);

/*
 * After bk_copy_run: 0 when destination INDEX holds the image, verified as asked; else
 * -1 with ERR filled with its own failure.
 */
BK_API int bk_copy_get_dest_result(const struct bk_copy *job, size_t index, struct bk_error *err);

/* Called once per destination as it is done or dropped (serialised with the others). */
BK_API void bk_copy_set_dest_done_fn(struct bk_copy *job, bk_copy_dest_fn fn, void *ctx);

/* As bk_copy_set_readback_mismatch_fn, naming the destination; replaces that one. */
BK_API void bk_copy_set_dest_mismatch_fn(struct bk_copy *job, bk_copy_dest_mismatch_fn fn,
                                         void *ctx);

/* Whether to check each range against its checksum while copying (default true). */
BK_API void bk_copy_set_verify(struct bk_copy *job, bool verify);

/*
 * After writing, read every range back from the destination, bypassing caches where it
 * can, and check it; rewrite a range that reads back wrong up to RETRIES times (needs a
 * seekable source). Needs a bmap with checksums and BK_DEST_CAN_READ.
 */
BK_API void bk_copy_set_readback(struct bk_copy *job, bool readback, unsigned retries);

/*
 * Re-flash only what changed (default false). Before writing, read each mapped range
 * from the destination, bypassing caches where it can, and hash it: a range that
 * matches its checksum is not written (and, from a seekable source, not even read). In
 * the other ranges the destination is read again piece by piece and only the blocks
 * that differ are written. Needs a bmap and BK_DEST_CAN_READ. The head is still written
 * last; on a disk where anything is to be written it is cleared first and written in
 * full. Read-back checks only the ranges that were written.
 */
BK_API void bk_copy_set_skip_unchanged(struct bk_copy *job, bool skip);

/* Image bytes written last (0: BK_COPY_HEAD_BYTES). */
BK_API void bk_copy_set_head_bytes(struct bk_copy *job, uint64_t bytes);

/*
 * Write LENGTH bytes of the image at OFFSET even where the bmap leaves them out (a
 * boot loader's environment the image holds as zeros), rounded out to whole blocks;
 * may be called several times. They are read with the mapped ranges in order, so a
 * stream works too; having no checksum, they are verified only by read-back, against
 * the digest of what was read from the image. Without a bmap every byte is written
 * anyway. Fails with BK_E_INVALID when the range is empty or reaches past the image.
 */
BK_API int bk_copy_add_forced_range(struct bk_copy *job, uint64_t offset, uint64_t length,
                                    struct bk_error *err);

/*
 * Once the mapped data is written, verified and flushed, and before the head, make
 * every unmapped range of the image read as zeros: a hole on a file, zeroing that may
 * unmap on a block device (a plain discard only where the device says discarded blocks
 * read as zeros), the destination's zero command, else written zeros. Bytes past the
 * image's end are left alone. The statistics say how much went which way.
 */
BK_API void bk_copy_set_zero_unmapped(struct bk_copy *job, bool zero);

/*
 * After the copy and its read-back, when the image has a GPT whose backup is at the
 * image's end and the destination is larger: write the backup table and header to the
 * destination's last sectors, point the primary header (and a protective MBR that
 * covered the whole image) at them, flush and read them back. A hybrid MBR, a damaged
 * GPT or one laid out for another sector size is left alone (no GPT either); from a
 * seekable source that is checked first, and bk_copy_run fails with BK_E_UNSUPPORTED
 * before writing anything. The statistics (gpt, gpt_note) say what was found, also
 * without this setting.
 */
BK_API void bk_copy_set_relocate_gpt(struct bk_copy *job, bool relocate);

/*
 * Progress: FN(CTX, done, total) with the bytes verified and written, on the thread
 * that runs the job: once at 0, then ten times a second and at the end.
 */
BK_API void bk_copy_set_progress_fn(struct bk_copy *job, bk_progress_fn fn, void *ctx);

/* Called as each range matches its checksum (from a worker thread, never concurrently). */
BK_API void bk_copy_set_verified_fn(struct bk_copy *job, bk_copy_range_fn fn, void *ctx);

/* Called when a range reads back wrong (on the thread reading that destination back,
   serialised with the other callbacks). */
BK_API void bk_copy_set_readback_mismatch_fn(struct bk_copy *job, bk_copy_mismatch_fn fn,
                                             void *ctx);

/* Asked at every step whether to stop (from any of the job's threads). */
BK_API void bk_copy_set_cancel_fn(struct bk_copy *job, bk_cancel_fn fn, void *ctx);

/*
 * Ask the running job to stop with BK_E_CANCELLED. Safe from any thread and from a
 * signal handler.
 */
BK_API void bk_copy_cancel(struct bk_copy *job);

/*
 * Run the job (once). Reading, hashing and writing run on separate threads through a
 * ring of 8 buffers of 1 MiB; holes of a seekable source are not read. Each range is
 * hashed and compared with its checksum; ranges short enough to fit in half the ring
 * are checked before any of their bytes are written. On a disk the head's mapped bytes
 * are first overwritten with zeros; the head itself is written only after everything
 * else was written, verified and flushed, so a failed or interrupted copy never looks
 * like a complete image. Returns 0 only when every range with a checksum matched (and,
 * with read-back, read back correctly) on every destination; else -1 with ERR filled
 * (with several destinations, the failure of the first one that failed, by index). The
 * statistics are filled in either case.
 */
BK_API int bk_copy_run(struct bk_copy *job, struct bk_error *err);

/*
 * What the job did so far (valid until bk_copy_free). With several destinations, the
 * bytes written and read-back counts are their sums, and head_written and head_cleared
 * are true when they are for any of them.
 */
BK_API const struct bk_copy_stats *bk_copy_get_stats(const struct bk_copy *job);

/* Free JOB (NULL is fine); the bmap, source and destination stay open. */
BK_API void bk_copy_free(struct bk_copy *job);

#ifdef __cplusplus
}
#endif

#endif
