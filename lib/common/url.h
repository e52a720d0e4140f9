/* SPDX-License-Identifier: MIT */
/*
 * Internal: which strings are network URLs, and the local path a file: URL names. In
 * common, below every layer, so that the destination guard sees through file: URLs too.
 */
#ifndef BMAPKIT_COMMON_URL_H
#define BMAPKIT_COMMON_URL_H

#include <stdbool.h>
#include <stddef.h>

/* Whether S is an http://, https://, ftp:// or ftps:// URL (scheme in any case). */
bool bk_net_is_url(const char *s);

/*
 * The local path of a file: URL ("file:/abs", "file:///abs", "file://localhost/abs",
 * %XX decoded) into OUT; NULL when S is no file: URL or the path does not fit.
 */
const char *bk_net_file_path(const char *s, char *out, size_t cap);

#endif
