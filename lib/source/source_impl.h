/* SPDX-License-Identifier: MIT */
/* Internal: source wrappers used to assemble an image source. */
#ifndef BMAPKIT_SOURCE_INTERNAL_H
#define BMAPKIT_SOURCE_INTERNAL_H

#include "bmapkit/source.h"

/*
 * Wrap IN so that up to CAP of its first bytes can be peeked at before they are read.
 * Takes ownership of IN. pread and size pass through unchanged.
 */
struct bk_source *bk_source_peekable(struct bk_source *in, size_t cap, struct bk_error *err);

/*
 * Look at the first WANT bytes (at most the wrapper's CAP) of a peekable source
 * without consuming them; *GOT is smaller at the end of a short stream.
 */
int bk_source_peek(struct bk_source *src, const uint8_t **data, size_t want, size_t *got,
                   struct bk_error *err);

/*
 * Move SRC's sequential position LEN bytes on; OFFSET is the position now (for the
 * message). Uses the source's skip when it has one, else reads into the CAP bytes at
 * SCRATCH. Running short is an error, as with bk_source_read_full.
 */
int bk_source_skip_full(struct bk_source *src, uint64_t len, uint64_t offset, void *scratch,
                        size_t cap, struct bk_error *err);

#endif
