/* SPDX-License-Identifier: MIT */
/* Internal: a private, temporary GnuPG home for checking against a given keyring only. */
#ifndef BMAPKIT_SIGNATURE_TMP_HOME_H
#define BMAPKIT_SIGNATURE_TMP_HOME_H

#include <stddef.h>

#include "bmapkit/error.h"

/* Make an empty directory, mode 0700, under TMPDIR (else /tmp) into DIR (CAP bytes). */
int bk_tmp_home_make(char *dir, size_t cap, struct bk_error *err);

/* Remove DIR and everything in it; a failure is only recorded in ERR. */
int bk_tmp_home_remove(const char *dir, struct bk_error *err);

#endif
