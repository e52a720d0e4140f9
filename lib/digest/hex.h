/* SPDX-License-Identifier: MIT */
/* Internal: digests as hex text. */
#ifndef BMAPKIT_DIGEST_HEX_H
#define BMAPKIT_DIGEST_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Write LEN bytes as 2*LEN lower-case hex characters plus a terminating NUL to OUT. */
void bk_hex_encode(const uint8_t *bytes, size_t len, char *out);

/*
 * Decode exactly 2*LEN hex characters (either case) from HEX into OUT.
 * Returns 0, or -1 when a character is not a hex digit (the caller words the message).
 */
int bk_hex_decode(const char *hex, size_t len, uint8_t *out);

#endif
