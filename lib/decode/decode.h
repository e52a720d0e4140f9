/* SPDX-License-Identifier: MIT */
/*
 * Internal: decoders. Each wraps a source of compressed bytes into a source of image
 * bytes and takes ownership of IN (closing the decoder closes IN). The result is not
 * seekable and its size is unknown (-1), unless the decoder says otherwise.
 *
 * Every decoder holds the same contract, which is what makes a damaged input always
 * fail:
 *  - read() returns *got = 0 only after the format's proper end was seen and IN is
 *    exhausted. Whatever the format allows after one stream (further gzip members,
 *    bzip2 streams, zstd and lz4 frames, zstd skippable frames, xz stream padding and
 *    further streams) is decoded or skipped as the format says.
 *  - A corrupt stream, one that ends early (truncated) and bytes after the end that
 *    the format does not allow (trailing garbage) fail with BK_E_FORMAT and a message
 *    "NAME: FORMAT: what is wrong at compressed byte OFFSET", e.g.
 *    "disk.img.xz: xz: compressed data is corrupt at byte 1048576" or
 *    "disk.img.gz: gzip: the stream ends early (truncated) at byte 52428800".
 *  - Memory stays bounded whatever the image size: a few MiB, plus the window or
 *    dictionary the stream declares (xz up to 1.5 GiB, zstd up to 2 GiB, as their
 *    tools allow), which is address space until the data fills it.
 */
#ifndef BMAPKIT_DECODE_H
#define BMAPKIT_DECODE_H

#include "bmapkit/format.h"
#include "common/util.h"
#include "source/source_impl.h"

/*
 * Fill PUB, a decoder's public half, for reading the image decoded from IN: named
 * after IN, of unknown size, sequential, decoding on the thread that reads it.
 */
void bk_source_init_decoder(struct bk_source *pub, const struct bk_source *in,
                            const struct bk_source_ops *ops, void *priv);

struct bk_source *bk_decode_gzip(struct bk_source *in, struct bk_error *err);
struct bk_source *bk_decode_bzip2(struct bk_source *in, struct bk_error *err);
struct bk_source *bk_decode_xz(struct bk_source *in, struct bk_error *err);

/* bzip2 whose compressed bytes, read from IN, start at byte FIRST of the file (messages). */
struct bk_source *bk_decode_bzip2_at(struct bk_source *in, uint64_t first, struct bk_error *err);

/*
 * bzip2 of several streams (pbzip2) from the seekable file IN, decoded on every CPU,
 * with the same results and errors as bk_decode_bzip2. Returns NULL with ERR code
 * BK_E_UNSUPPORTED when that does not apply (one stream, one CPU, not seekable): the
 * caller keeps IN and decodes it with bk_decode_bzip2.
 */
struct bk_source *bk_decode_bzip2_parallel(struct bk_source *in, struct bk_error *err);
struct bk_source *bk_decode_zstd(struct bk_source *in, struct bk_error *err);
struct bk_source *bk_decode_lz4(struct bk_source *in, struct bk_error *err);
struct bk_source *bk_decode_lzop(struct bk_source *in, struct bk_error *err);

/*
 * The first member of a tar or zip archive, read with libarchive from IN (which may
 * itself be a decoder's output). Errors name the archive format and member.
 */
struct bk_source *bk_decode_archive(struct bk_source *in, struct bk_error *err);

/*
 * A seekable source of the image inside the xz file IN (a seekable file), built on the
 * file's block index: pread() decodes only the blocks that hold the requested bytes.
 * Returns NULL with ERR code BK_E_UNSUPPORTED when the file has a single block (no
 * random access is possible): the caller then falls back to bk_decode_xz.
 */
struct bk_source *bk_decode_xz_indexed(struct bk_source *in, struct bk_error *err);

/*
 * The same for the zstd file IN, when it holds two frames or more with data, all of
 * which give their content size: the file's structure is walked and checked, then
 * pread() decodes only the frames that hold the requested bytes. Returns NULL with ERR
 * code BK_E_UNSUPPORTED otherwise: the caller then falls back to bk_decode_zstd.
 */
struct bk_source *bk_decode_zstd_indexed(struct bk_source *in, struct bk_error *err);

/* A decoder's constructor: takes IN on success; on failure IN stays the caller's. */
typedef struct bk_source *(*bk_decode_fn)(struct bk_source *in, struct bk_error *err);

#define BK_DECODER_SUFFIXES 4

/* One format of the registry (registry.c). */
struct bk_decoder {
    enum bk_format format;
    const char *name;                          /* "xz", also in messages */
    const char *suffixes[BK_DECODER_SUFFIXES]; /* file name endings that promise it */
    bk_decode_fn stream;                       /* decodes any source, in order */
    /* Optional: random access into a seekable file, or BK_E_UNSUPPORTED for this file. */
    bk_decode_fn indexed;
    /* Optional: the stream decoded on every CPU, or BK_E_UNSUPPORTED for this file. */
    bk_decode_fn parallel;
};

/* The registry's entry for FORMAT, or NULL (raw). */
const struct bk_decoder *bk_decoder_for(enum bk_format format);

/* The format a file name's suffix promises, or BK_FORMAT_RAW. */
enum bk_format bk_format_of_name(const char *name);

/*
 * Stack on RAW (taking it in any case) the decoders its first bytes call for, and a tar
 * or zip reader when an archive is inside. NAME_HINT, when not NULL, is a file name
 * whose suffix must agree with the content. *FORMAT (may be NULL) receives the outer
 * format. Returns the image source, or NULL with ERR filled.
 */
struct bk_source *bk_decode_stack(struct bk_source *raw, const char *name_hint,
                                  enum bk_format *format, struct bk_error *err);

#endif
