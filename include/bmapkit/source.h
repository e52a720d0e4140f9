/* SPDX-License-Identifier: MIT */
/* Where image bytes come from: files, standard input, and the decoders stacked on them. */
#ifndef BMAPKIT_SOURCE_H
#define BMAPKIT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bmapkit/api.h"
#include "bmapkit/error.h"
#include "bmapkit/fetch.h"
#include "bmapkit/format.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A source of image bytes (opaque). Every source reads sequentially; a seekable one
 * also reads at any offset, which lets a copy skip holes without reading them.
 */
struct bk_source;

/*
 * Open the file PATH as it is, or standard input when PATH is "-". A regular file is
 * seekable; a pipe or terminal is not. Returns NULL with ERR filled.
 */
BK_API struct bk_source *bk_source_open_file(const char *path, struct bk_error *err);

/*
 * Open the image PATH ("-" for standard input) for copying: the format is recognised
 * from the first bytes, whatever the file is called, and compressed images (gzip,
 * bzip2, xz, zstd, lz4, lzop) and archives (tar, also compressed, and zip: the first
 * member) are decoded in the library (pbzip2's files of many streams on every CPU).
 * An xz file of several blocks, or a zstd file of several frames that record their
 * sizes, becomes seekable, so only the blocks or frames holding mapped data are
 * decoded. A name whose suffix promises a format the content does not have is refused.
 * *FORMAT (may be NULL) receives the outer format. Returns NULL with ERR filled.
 */
BK_API struct bk_source *bk_source_open_image(const char *path, enum bk_format *format,
                                              struct bk_error *err);

/* Name of SRC for messages ("disk.img.xz", "standard input"). */
BK_API const char *bk_source_name(const struct bk_source *src);

/* Image bytes SRC holds, or -1 when unknown until the end (a pipe, a stream decoder). */
BK_API int64_t bk_source_size(const struct bk_source *src);

/* Whether SRC can read at any offset (bk_source_pread). */
BK_API bool bk_source_seekable(const struct bk_source *src);

/* Read up to LEN bytes at the current position; *GOT is 0 only at the end. */
BK_API int bk_source_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                          struct bk_error *err);

/*
 * Read up to LEN bytes at OFFSET of a seekable source; *GOT is 0 only past the end.
 * Fails with BK_E_INVALID when SRC is not seekable.
 */
BK_API int bk_source_pread(struct bk_source *src, void *buf, size_t len, uint64_t offset,
                           size_t *got, struct bk_error *err);

/* Close SRC and free it (NULL is fine). */
BK_API void bk_source_close(struct bk_source *src);

/*
 * bk_source_open_file, with OPTS for a URL (NULL: the defaults). A local path ignores
 * OPTS.
 */
BK_API struct bk_source *bk_source_open_file_fetch(const char *path,
                                                   const struct bk_fetch_options *opts,
                                                   struct bk_error *err);

/* bk_source_open_image, with OPTS for a URL (NULL: the defaults). */
BK_API struct bk_source *bk_source_open_image_fetch(const char *path,
                                                    const struct bk_fetch_options *opts,
                                                    enum bk_format *format, struct bk_error *err);

/*
 * Bytes SRC (or the source it decodes, down the stack) has received from the network so
 * far, retries included; 0 for a local file or standard input. Safe to call from another
 * thread while a copy reads SRC.
 */
BK_API uint64_t bk_source_fetched(const struct bk_source *src);

/*
 * The standard output of the program ARGV (NULL-terminated; argv[0] is looked up in
 * PATH), started now with standard input from /dev/null, as a sequential source of
 * unknown size; for example ssh HOST cat FILE. ENVP is its environment (NULL: this
 * process's). NAME names the source in messages, without any password. The end of
 * the output is the end of the source only when the program exits with status 0;
 * otherwise reading it fails with BK_E_IO and the last line of the program's error
 * output, so a connection that drops never looks like a short image. Closing the
 * source before the end stops the program (SIGTERM, then SIGKILL after two seconds)
 * and waits for it. bk_source_fetched counts the bytes read from it. Returns NULL
 * with ERR filled when the program cannot be started.
 */
BK_API struct bk_source *bk_source_open_command(char *const *argv, char *const *envp,
                                                const char *name, struct bk_error *err);

/*
 * Stack on RAW (any source, taken in every case, also on failure) the decoders its
 * first bytes call for, as bk_source_open_image does for a file: compressed formats,
 * tar and zip archives. NAME_HINT (may be NULL) is a file name whose suffix must
 * agree with the content. *FORMAT (may be NULL) receives the outer format. Returns the
 * source of the image, or NULL with ERR filled.
 */
BK_API struct bk_source *bk_source_decode(struct bk_source *raw, const char *name_hint,
                                          enum bk_format *format, struct bk_error *err);

#ifdef __cplusplus
}
#endif

#endif
