/* SPDX-License-Identifier: MIT */
/* Internal: path and attribute helpers shared by disk.c, disk_list.c and ums.c. */
#ifndef BMAPKIT_DISK_INTERNAL_H
#define BMAPKIT_DISK_INTERNAL_H

#include <stddef.h>

/* SYSROOT (may be NULL) followed by the formatted path, into OUT. */
void bk_root_path(char *out, size_t cap, const char *sysroot, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* First line of the file PATH into BUF, without the newline and trailing spaces. */
int bk_read_line(const char *path, char *buf, size_t cap);

#endif
