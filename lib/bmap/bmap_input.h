/* SPDX-License-Identifier: MIT */
/* Internal: random-access reads of a bmap held in memory or in a seekable file. */
#ifndef BMAPKIT_BMAP_INPUT_H
#define BMAPKIT_BMAP_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "bmapkit/digest.h"
#include "bmapkit/error.h"

struct bk_bmap_input {
    int fd;              /* read with pread when >= 0 */
    const uint8_t *data; /* otherwise these bytes */
    size_t len;
    const char *name; /* for messages */
};

/* Read up to CAP bytes at OFFSET into BUF; *GOT is 0 at the end. */
int bk_bmap_input_read(struct bk_bmap_input *src, uint64_t offset, void *buf, size_t cap,
                       size_t *got, struct bk_error *err);

/*
 * Verify the bmap's own checksum: hash every byte of SRC with the first occurrence of
 * EXPECTED_HEX replaced by as many '0' characters, and compare with EXPECTED_HEX.
 */
int bk_bmap_verify_file_checksum(struct bk_bmap_input *src, const char *name, enum bk_hash hash,
                                 const char *expected_hex, struct bk_error *err);

#endif
