/* SPDX-License-Identifier: MIT */
/*
 * Internal: re-flashing only what changed (bk_copy_set_skip_unchanged). Before the
 * pipeline runs, the survey reads each mapped range from the destination, past its
 * caches, and hashes it: a range that matches its checksum is skipped altogether (the
 * reader hands on an empty piece of it, the hasher concludes it unchecked by the image,
 * read-back leaves it alone). For the ranges that differ, the survey keeps a print (a
 * truncated SHA-256) of each 4 KiB block as the destination held it, and the writer
 * writes only the blocks whose image print differs, without reading the destination
 * again; past 64 MiB of prints, or for a piece not cut on block edges, it reads the
 * destination again and compares the bytes. The rest of copy/ knows only the few calls
 * below.
 */
#ifndef BMAPKIT_COPY_UNCHANGED_H
#define BMAPKIT_COPY_UNCHANGED_H

#include <stdbool.h>
#include <stdint.h>

#include "copy/copy_impl.h"

/* Refuse the option, before anything is read or written, where it cannot work. */
int copy_unchanged_check(const struct bk_copy *job, struct bk_error *err);

/*
 * Read and hash every range with a checksum from the destination and decide which are
 * skipped. HEAD_BYTES is the part written last: when something is to be written to a
 * disk, the ranges in it are not skipped, since the head is cleared first. Fills the
 * statistics of what was skipped. Returns 0, or -1 with ERR filled.
 */
int copy_unchanged_survey(struct bk_copy *job, uint64_t head_bytes, struct bk_error *err);

/* Whether range INDEX is already on the destination (false without the option). */
bool copy_unchanged_skips(const struct bk_copy *job, size_t index);

/* Whether anything at all is to be written (true without the option). */
bool copy_unchanged_any_change(const struct bk_copy *job);

/* Mapped bytes that the survey found on the destination already (0 without the option). */
uint64_t copy_unchanged_settled(const struct bk_copy *job);

/*
 * Write LEN image bytes at OFFSET, but only the blocks where the destination differs;
 * *WROTE says how many bytes were written. Called from one thread at a time.
 */
int copy_unchanged_write(struct bk_copy *job, const uint8_t *data, size_t len, uint64_t offset,
                         uint64_t *wrote, struct bk_error *err);

/* Release what the survey and the writes kept. */
void copy_unchanged_free(struct bk_copy *job);

#endif
