/* SPDX-License-Identifier: MIT */
/* Showing disks (list, copy) and finding the board's U-Boot UMS disk for copy. */
#ifndef BMAPKIT_DISK_SELECT_H
#define BMAPKIT_DISK_SELECT_H

#include <stddef.h>

#include "bmapkit/disk.h"

/* The marks of D, space-separated ("ums:0 mounted"), into BUF. */
void disk_marks(const struct bk_disk_info *d, char *buf, size_t cap);

/* D as one JSON object (the fields documented in bmapkit(1) under list), into BUF. */
void disk_json(const struct bk_disk_info *d, char *buf, size_t cap);

/* "/dev/sdb: Linux UMS disk 0, 7.3 GiB, USB port 1-2, serial X" into BUF. */
void disk_identity(const struct bk_disk_info *d, char *buf, size_t cap);

/*
 * Wait up to TIMEOUT seconds, polling every half second, until exactly one U-Boot UMS disk
 * that SELECTOR picks (NULL: any) is present, and describe it in *OUT. Shows a countdown
 * on a terminal, plain lines otherwise, nothing with -q. Several matching disks are
 * refused with a list of them. Returns EXIT_OK, or the exit status after printing the
 * error.
 */
int ums_wait(const char *sysroot, const char *selector, unsigned timeout, struct bk_disk_info *out);

/*
 * ums:all: wait up to TIMEOUT seconds until WANT U-Boot UMS disks are present (WANT 0:
 * at least one), polling like ums_wait, then hand every one present in *OUT (freed with
 * bk_disk_list_free). Returns EXIT_OK, or the exit status after printing the error.
 */
int ums_wait_all(const char *sysroot, unsigned want, unsigned timeout, struct bk_disk_list **out);

/* The list subcommand (cmd_list.c). */
int cmd_list(int argc, char **argv);

#endif
