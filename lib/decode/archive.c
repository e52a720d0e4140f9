/* SPDX-License-Identifier: MIT */
/*
 * The image inside a tar or zip archive: the first regular file, read with libarchive
 * from a stream (zip in its streamable form, which needs no seeking). Compression
 * around the archive was already undone by our own decoders, so libarchive gets the
 * plain archive bytes. Once the member's data is out, the rest of the archive is read
 * too, and then the rest of the stream, so damage anywhere is reported.
 */
#include "decode/decode.h"

#include "common/dynlib.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define BUF_BYTES (1u << 20)

/* A zip file ends with its end-of-central-directory record: 22 bytes and a comment of
   at most 65535. */
#define EOCD_BYTES 22u
#define TAIL_MAX (EOCD_BYTES + 65535u)

#define LIBARCHIVE_FUNCTIONS(X)                                                                    \
    X(archive_entry_filetype)                                                                      \
    X(archive_entry_hardlink)                                                                      \
    X(archive_entry_is_encrypted)                                                                  \
    X(archive_entry_pathname)                                                                      \
    X(archive_entry_size)                                                                          \
    X(archive_entry_size_is_set)                                                                   \
    X(archive_error_string)                                                                        \
    X(archive_filter_bytes)                                                                        \
    X(archive_read_data)                                                                           \
    X(archive_read_data_skip)                                                                      \
    X(archive_read_free)                                                                           \
    X(archive_read_new)                                                                            \
    X(archive_read_next_header)                                                                    \
    X(archive_read_open)                                                                           \
    X(archive_read_support_filter_none)                                                            \
    X(archive_read_support_format_tar)                                                             \
    X(archive_read_support_format_zip_streamable)                                                  \
    X(archive_set_error)

/* libarchive, loaded when the first archive is met. */
struct libarchive {
    void *handle;
    LIBARCHIVE_FUNCTIONS(BK_DYNLIB_MEMBER)
};

struct archive_source {
    struct bk_source pub;
    struct libarchive la;
    struct bk_source *in;
    struct archive *a;
    const char *kind; /* "tar" or "zip" */
    char *member;     /* path of the image in the archive */

    uint8_t *buf; /* what the read callback hands to libarchive */
    size_t first_len;
    bool first_pending; /* buf holds bytes read before libarchive was opened */
    bool in_eof;
    bool eof_given;    /* libarchive asked for more bytes after the last one */
    uint64_t in_bytes; /* bytes read from IN */
    bool in_failed;    /* IN's error, more precise than libarchive's wrapping */
    struct bk_error in_err;

    /* The last bytes of the stream (zip only), twice TAIL_MAX so moves are rare. */
    uint8_t *tail;
    size_t tail_len;

    uint64_t delivered; /* image bytes handed out */
    bool data_done, done, failed;
    struct bk_error error; /* repeated on every read after a failure */
};

static void tail_add(struct archive_source *s, const uint8_t *p, size_t len)
{
    if (!s->tail)
        return;
    if (len >= TAIL_MAX) {
        memcpy(s->tail, p + len - TAIL_MAX, TAIL_MAX);
        s->tail_len = TAIL_MAX;
        return;
    }
    if (s->tail_len + len > 2 * TAIL_MAX) {
        size_t keep = TAIL_MAX - len;
        memmove(s->tail, s->tail + s->tail_len - keep, keep);
        s->tail_len = keep;
    }
    memcpy(s->tail + s->tail_len, p, len);
    s->tail_len += len;
}

/* One read from IN into buf; *GOT = 0 at its end. */
static int in_read(struct archive_source *s, size_t *got, struct bk_error *err)
{
    *got = 0;
    if (s->in_eof)
        return 0;
    if (bk_source_read(s->in, s->buf, BUF_BYTES, got, err) < 0)
        return -1;
    if (*got == 0)
        s->in_eof = true;
    s->in_bytes += *got;
    tail_add(s, s->buf, *got);
    return 0;
}

static la_ssize_t read_callback(struct archive *a, void *client, const void **out)
{
    struct archive_source *s = client;
    *out = s->buf;
    if (s->first_pending) {
        s->first_pending = false;
        return (la_ssize_t)s->first_len;
    }
    size_t got;
    if (in_read(s, &got, &s->in_err) < 0) {
        s->in_failed = true;
        s->la.archive_set_error(a, EIO, "%s", s->in_err.msg);
        return ARCHIVE_FATAL;
    }
    if (got == 0)
        s->eof_given = true;
    return (la_ssize_t)got;
}

/* Fail with libarchive's message, or IN's error when that is what went wrong. */
static int archive_failed(struct archive_source *s, struct bk_error *err)
{
    if (s->in_failed) {
        *err = s->in_err;
        return -1;
    }
    /* libarchive needed bytes past the end of the input: whatever it says then (a short
       header, zlib's -5 for a cut deflate stream), the archive was cut short there. */
    const char *msg =
        s->eof_given ? "the archive ends early (truncated)" : s->la.archive_error_string(s->a);
    uint64_t at = s->eof_given ? s->in_bytes : (uint64_t)s->la.archive_filter_bytes(s->a, -1);
    return bk_error_set(err, BK_E_FORMAT, 0, "%s: %s: %s%s%s%s at byte %" PRIu64, s->pub.name,
                        s->kind, s->member ? "member " : "", s->member ? s->member : "",
                        s->member ? ": " : "", msg ? msg : "the archive is damaged", at);
}

static int fail(struct archive_source *s, struct bk_error *err, const char *what)
{
    return bk_error_set(err, BK_E_FORMAT, 0, "%s: %s: %s at byte %" PRIu64, s->pub.name, s->kind,
                        what, s->in_bytes);
}

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

/*
 * A zip ends with its end record and the record's comment, exactly. Otherwise the
 * last record found tells: a comment running past the end was cut short, bytes after
 * it are trailing data. With no record, a cut inside the central directory shows its
 * headers in the tail, and when the tail holds the whole input the record is simply
 * missing; else garbage longer than the tail may hide the record.
 */
static int check_zip_end(struct archive_source *s, struct bk_error *err)
{
    size_t lowest = s->tail_len > TAIL_MAX ? s->tail_len - TAIL_MAX : 0;
    size_t record = SIZE_MAX; /* the last end record's offset in the tail */
    bool directory = false;
    for (size_t i = s->tail_len; i-- > lowest;) {
        const uint8_t *p = s->tail + i;
        size_t after = s->tail_len - i;
        if (after >= 4 && memcmp(p, "PK\x01\x02", 4) == 0)
            directory = true;
        if (after < EOCD_BYTES || memcmp(p, "PK\x05\x06", 4) != 0)
            continue;
        if (EOCD_BYTES + le16(p + 20) == after)
            return 0;
        if (record == SIZE_MAX)
            record = i;
    }
    if (record != SIZE_MAX) {
        size_t after = s->tail_len - record, end = EOCD_BYTES + le16(s->tail + record + 20);
        if (end > after)
            return fail(s, err, "the archive ends early (truncated) in its end record");
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s: zip: trailing data after the end of central directory record "
                            "at byte %" PRIu64,
                            s->pub.name, s->in_bytes - (after - end));
    }
    if (directory || s->tail_len < TAIL_MAX)
        return fail(s, err, "the archive ends early (truncated) in its central directory");
    return fail(s, err,
                "the end of central directory record is missing (the archive is truncated or "
                "has trailing data)");
}

/* After the image: the other members, the archive's end, then the stream's end. */
static int finish(struct archive_source *s, struct bk_error *err)
{
    for (;;) {
        struct archive_entry *e;
        int r = s->la.archive_read_next_header(s->a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN || s->la.archive_read_data_skip(s->a) < ARCHIVE_WARN)
            return archive_failed(s, err);
    }
    /* Bytes after a tar's end blocks are record padding that tar ignores; they are read
       so that a decoder below sees its own end. */
    size_t got;
    do {
        if (in_read(s, &got, err) < 0)
            return -1;
    } while (got > 0);
    if (s->tail && check_zip_end(s, err) < 0)
        return -1;
    return 0;
}

/* Any negative status fails, warnings too: a zip member's bad CRC is a warning. */
static int read_failed(struct archive_source *s, struct bk_error *err)
{
    archive_failed(s, &s->error);
    s->failed = true;
    *err = s->error;
    return -1;
}

/* Record a failure of the member's data; every later read repeats it. */
static int data_failed(struct archive_source *s, const char *what, struct bk_error *err)
{
    fail(s, &s->error, what);
    s->failed = true;
    *err = s->error;
    return -1;
}

/*
 * The member's next bytes, never more than its recorded size: a member shorter than its
 * size is truncated, one longer than it is damaged. Returns -1, 0 for the last bytes
 * (or none), 1 for more to come.
 */
static int read_member(struct archive_source *s, void *buf, size_t len, la_ssize_t *n,
                       struct bk_error *err)
{
    bool sized = s->pub.size >= 0;
    uint64_t left = sized ? (uint64_t)s->pub.size - s->delivered : UINT64_MAX;
    *n = 0;
    if (left > 0) {
        *n = s->la.archive_read_data(s->a, buf, (size_t)bk_min_u64(len, left));
        if (*n < 0)
            return read_failed(s, err);
        s->delivered += (uint64_t)*n;
        if (*n == 0 && sized)
            return data_failed(s, "the member is shorter than its recorded size (truncated)", err);
        if (*n > 0 && (!sized || s->delivered < (uint64_t)s->pub.size))
            return 1;
    }
    if (sized) {
        /* A reader that knows the size stops there; the checks after the data must come
           before its last bytes then. */
        char extra;
        la_ssize_t more = s->la.archive_read_data(s->a, &extra, 1);
        if (more < 0)
            return read_failed(s, err);
        if (more > 0)
            return data_failed(s, "the member holds more data than its recorded size", err);
    }
    return 0;
}

static int archive_source_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                               struct bk_error *err)
{
    struct archive_source *s = src->priv;
    *got = 0;
    if (s->failed) {
        *err = s->error;
        return -1;
    }
    if (s->done || len == 0)
        return 0;
    la_ssize_t n = 0;
    if (!s->data_done) {
        int more = read_member(s, buf, len, &n, err);
        if (more < 0)
            return -1;
        if (more > 0) {
            *got = (size_t)n;
            return 0;
        }
        s->data_done = true;
    }
    if (finish(s, &s->error) < 0) {
        s->failed = true;
        *err = s->error;
        return -1;
    }
    s->done = true;
    *got = (size_t)n;
    return 0;
}

static void archive_source_close(struct bk_source *src)
{
    struct archive_source *s = src->priv;
    if (s->a)
        s->la.archive_read_free(s->a);
    bk_dynlib_close(s->la.handle);
    bk_source_close(s->in);
    free(s->member);
    free(s->buf);
    free(s->tail);
    free(s);
}

/* Open libarchive on the stream and stop at the first regular file. */
static int open_archive(struct archive_source *s, struct bk_error *err)
{
    /* The first bytes choose the reader, so a damaged archive is not taken for some
       other format: zip local headers start with "PK\3\4", anything else is tar. */
    while (s->first_len < 4 && !s->in_eof) {
        size_t got;
        if (bk_source_read(s->in, s->buf + s->first_len, BUF_BYTES - s->first_len, &got, err) < 0)
            return -1;
        if (got == 0)
            s->in_eof = true;
        s->first_len += got;
    }
    s->in_bytes = s->first_len;
    s->first_pending = true;
    bool zip = s->first_len >= 4 && memcmp(s->buf, "PK\x03\x04", 4) == 0;
    s->kind = zip ? "zip" : "tar";
    if (zip) {
        s->tail = malloc(2 * TAIL_MAX);
        if (!s->tail)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        tail_add(s, s->buf, s->first_len);
    }

    s->a = s->la.archive_read_new();
    if (!s->a)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    int r = zip ? s->la.archive_read_support_format_zip_streamable(s->a)
                : s->la.archive_read_support_format_tar(s->a);
    if (r == ARCHIVE_OK)
        r = s->la.archive_read_support_filter_none(s->a);
    if (r == ARCHIVE_OK)
        r = s->la.archive_read_open(s->a, s, NULL, read_callback, NULL);
    if (r != ARCHIVE_OK)
        return archive_failed(s, err);

    for (;;) {
        struct archive_entry *e;
        r = s->la.archive_read_next_header(s->a, &e);
        if (r == ARCHIVE_EOF)
            return fail(s, err, "the archive holds no regular file (no image)");
        if (r < ARCHIVE_WARN)
            return archive_failed(s, err);
        /* Directories, links and devices come before the image in some archives; a
           hard link names an earlier file and carries no data of its own. */
        if (s->la.archive_entry_filetype(e) == AE_IFREG && !s->la.archive_entry_hardlink(e)) {
            const char *path = s->la.archive_entry_pathname(e);
            s->member = strdup(path ? path : "?");
            if (!s->member)
                return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
            if (s->la.archive_entry_is_encrypted(e))
                return bk_error_set(err, BK_E_UNSUPPORTED, 0,
                                    "%s: %s: member %s is encrypted, which is not supported",
                                    s->pub.name, s->kind, s->member);
            s->pub.size = s->la.archive_entry_size_is_set(e) ? s->la.archive_entry_size(e) : -1;
            return 0;
        }
        if (s->la.archive_read_data_skip(s->a) < ARCHIVE_WARN)
            return archive_failed(s, err);
    }
}

static int load_libarchive(struct libarchive *la, struct bk_error *err)
{
#define SYMBOL(fn) {#fn, offsetof(struct libarchive, fn)},
    static const struct bk_dynlib_symbol symbols[] = {LIBARCHIVE_FUNCTIONS(SYMBOL)};
#undef SYMBOL
    return bk_dynlib_open(BK_ARCHIVE_SONAME, "tar and zip images", symbols,
                          sizeof symbols / sizeof *symbols, la, &la->handle, err);
}

static const struct bk_source_ops archive_source_ops = {
    .read = archive_source_read,
    .close = archive_source_close,
};

struct bk_source *bk_decode_archive(struct bk_source *in, struct bk_error *err)
{
    struct archive_source *s = calloc(1, sizeof *s);
    if (!s) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    s->in = in;
    s->kind = "archive";
    bk_source_init_decoder(&s->pub, in, &archive_source_ops, s);
    s->buf = malloc(BUF_BYTES);
    if (!s->buf) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    } else if (load_libarchive(&s->la, err) < 0) {
        bk_error_prefix(err, "%s", s->pub.name);
    } else if (open_archive(s, err) == 0) {
        return &s->pub;
    }
    /* The caller keeps IN on failure. */
    s->in = NULL;
    archive_source_close(&s->pub);
    return NULL;
}
