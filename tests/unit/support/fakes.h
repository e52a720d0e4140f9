/* SPDX-License-Identifier: MIT */
/*
 * Test doubles that plug into the library through its operations tables, as any new
 * source or destination would: images and disks in memory, and wrappers that inject
 * faults (errors, short reads, slowness) at a chosen byte or call.
 */
#ifndef BMAPKIT_TEST_FAKES_H
#define BMAPKIT_TEST_FAKES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dest/dest_impl.h"
#include "source/source_impl.h"

/* An image in memory: seekable (size known) or a stream (read only, size unknown). */
struct bk_source *mem_source_new(const uint8_t *data, uint64_t size, bool seekable);

/* Record in LOG the offset of each read of SRC that hands out bytes, at most CAP of
   them; *COUNT counts them all, also past CAP. The copy reads from one thread only. */
void mem_source_log_reads(struct bk_source *src, uint64_t *log, size_t cap, size_t *count);

/* A disk in memory of SIZE bytes, filled with FILL, with the capabilities CAPS. */
struct mem_disk {
    uint8_t *data;
    uint64_t size;
    unsigned writes;  /* write calls */
    unsigned flushes; /* flush calls */
    uint64_t written; /* bytes written */
    bool closed;
    int64_t set_size; /* last set_size, or -1 */
};
struct bk_dest *mem_dest_new(struct mem_disk *disk, uint64_t size, uint8_t fill, unsigned caps);
void mem_disk_free(struct mem_disk *disk);

/* Which operation a fault hits. */
enum fault_op { FAULT_READ, FAULT_PREAD, FAULT_WRITE, FAULT_FLUSH, FAULT_DEST_READ };

/* What happens. */
enum fault_kind {
    FAULT_ERROR,   /* the call fails with errno ERR (EIO, ENOSPC, EINTR, ...) */
    FAULT_SHORT,   /* reads: hand out fewer bytes than asked (legal, must be handled) */
    FAULT_SLOW,    /* every call sleeps DELAY_US microseconds */
    FAULT_CORRUPT, /* dest reads: the byte at AT_BYTE reads back flipped, TIMES times */
    FAULT_VANISH,  /* from the trigger on, every call of any kind fails with ENODEV */
};

struct fault {
    enum fault_op op;
    enum fault_kind kind;
    int err;           /* errno for FAULT_ERROR */
    int64_t at_byte;   /* trigger when the call covers this image byte (-1: not by byte) */
    int64_t at_call;   /* trigger at this call of OP, from 1; 0: every call; -1: not by call */
    unsigned delay_us; /* FAULT_SLOW */
    unsigned times;    /* FAULT_CORRUPT: how many reads are corrupted (0: all) */
    unsigned skip;     /* let this many triggering calls pass before the fault fires */
};

/* IN with FAULT; the wrapper owns IN. */
struct bk_source *fault_source_new(struct bk_source *in, const struct fault *f);
struct bk_dest *fault_dest_new(struct bk_dest *in, const struct fault *f);

/* How many times the fault fired, for the test to check it was reached. */
unsigned fault_fired(const struct bk_source *src_or_null, const struct bk_dest *dest_or_null);

#endif
