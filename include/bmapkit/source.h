/* SPDX-License-Identifier: MIT */
#ifndef BMAPKIT_SOURCE_H
#define BMAPKIT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bmapkit/error.h"
#include "bmapkit/format.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A byte area [start, end) of the image. */
struct bk_area {
    uint64_t start;
    uint64_t end;
};

/*
 * Where image bytes come from: a file, standard input, and later decoders and network
 * streams. Every source reads sequentially; a seekable one also reads at any offset,
 * which lets the copy skip holes without reading them.
 */
struct bk_source {
    const char *name; /* for messages */
    int64_t size;     /* image bytes, or -1 when unknown (a pipe) */
    bool seekable;
    /* Reading decodes: the reading thread is busy, and a copy leaves it a CPU. */
    bool decodes;

    /* Read up to LEN bytes at the current position; *GOT = 0 only at the end. */
    int (*read)(struct bk_source *src, void *buf, size_t len, size_t *got, struct bk_error *err);
    /* Read up to LEN bytes at OFFSET (only when seekable); *GOT = 0 only past the end. */
    int (*pread)(struct bk_source *src, void *buf, size_t len, uint64_t offset, size_t *got,
                 struct bk_error *err);
    void (*close)(struct bk_source *src);
    /*
     * Optional (may be NULL): the byte areas [start, end) that will be read with pread,
     * ascending, before the first read, so a source that must decode can work ahead on
     * all CPUs. COUNT areas at AREAS; the source copies what it needs to keep.
     */
    int (*plan)(struct bk_source *src, const struct bk_area *areas, size_t count,
                struct bk_error *err);
    /*
     * Optional (may be NULL): move the sequential position LEN bytes on without handing
     * the bytes out; *SKIPPED is less than LEN only at the end. A source that holds
     * decoded bytes in memory drops them instead of copying them to the caller.
     */
    int (*skip)(struct bk_source *src, uint64_t len, uint64_t *skipped, struct bk_error *err);
    void *priv;
};

/*
 * Open the image file PATH, or standard input when PATH is "-". A regular file is
 * seekable; a pipe or terminal is not. Returns NULL with ERR filled on failure.
 */
struct bk_source *bk_source_open_file(const char *path, struct bk_error *err);

/*
 * Open the image PATH ("-" for standard input) for copying: the format is recognised
 * from the first bytes, whatever the file is called, and compressed images (gzip,
 * bzip2, xz, zstd, lz4, lzop) and archives (tar, also compressed, and zip: the first
 * member) are decoded in the library (pbzip2's files of many streams on every CPU).
 * An xz file of several blocks, or a zstd file of several frames that record their
 * sizes, becomes seekable, so only the blocks or frames holding mapped data are
 * decoded.
 * *FORMAT (may be NULL) receives the outer format. Returns NULL with ERR filled.
 */
struct bk_source *bk_source_open_image(const char *path, enum bk_format *format,
                                       struct bk_error *err);

/* Read exactly LEN bytes at OFFSET from a seekable source; running short is an error. */
int bk_source_pread_full(struct bk_source *src, void *buf, size_t len, uint64_t offset,
                         struct bk_error *err);

/* Read exactly LEN bytes sequentially; running short is an error naming OFFSET. */
int bk_source_read_full(struct bk_source *src, void *buf, size_t len, uint64_t offset,
                        struct bk_error *err);

/* Close SRC and free it (NULL is fine). */
void bk_source_close(struct bk_source *src);

#ifdef __cplusplus
}
#endif

#endif
