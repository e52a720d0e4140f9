/* SPDX-License-Identifier: MIT */
/* Internal: the block-device half of the destination code (dest_blockdev.c). */
#ifndef BMAPKIT_DEST_INTERNAL_H
#define BMAPKIT_DEST_INTERNAL_H

#include <sys/stat.h>

#include "bmapkit/dest.h"

/* Checks and opens the block device D->path (stat in ST) for an image of IMAGE_SIZE. */
int bk_dest_open_blockdev(struct bk_dest *d, const struct stat *st, uint64_t image_size,
                          const struct bk_dest_options *o, struct bk_error *err);

/* Put back what bk_dest_tune changed. */
void bk_dest_restore_tuning(struct bk_dest *d);

#endif
