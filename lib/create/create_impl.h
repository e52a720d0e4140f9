/* SPDX-License-Identifier: MIT */
/* Internal: the parts of bmap creation (create.c maps, hash_ranges.c hashes). */
#ifndef BMAPKIT_CREATE_IMPL_H
#define BMAPKIT_CREATE_IMPL_H

#include "bmap/bmap_impl.h"
#include "bmapkit/create.h"

/* Bytes each hashing thread reads at a time. */
#define CREATE_BUFFER (4 * 1024 * 1024)
#define CREATE_MAX_THREADS 64

/* Read exactly LEN bytes of the image file FD at OFFSET; NAME is for messages. */
int create_read_full(int fd, const char *name, void *buf, size_t len, uint64_t offset,
                     struct bk_error *err);

/*
 * Hash every range of B from the image file FD on the threads O asks for, storing the
 * digests in B; *USED_THREADS receives how many ran. Reports progress through O.
 */
int create_hash_ranges(int fd, const char *name, struct bk_bmap *b,
                       const struct bk_create_options *o, unsigned *used_threads,
                       struct bk_error *err);

#endif
