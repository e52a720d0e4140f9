/* SPDX-License-Identifier: MIT */
/*
 * gzip images through ISA-L's inflate. A file may hold several members one after the
 * other (cat a.gz b.gz, tools that compress in pieces); each member's header is parsed
 * and its CRC32 and ISIZE are checked by the library (crc_flag ISAL_GZIP).
 *
 * Anything after the last member that is not another member is an error, zero bytes
 * included. gzip(1) skips trailing zeros silently (some tape and block tools pad) and
 * other trailing garbage with a warning, but a flasher cannot tell padding from a
 * damaged or wrongly joined file, and must not report success for either: strip the
 * padding, or pipe gzip -dc into bmapkit, to flash such a file.
 */
#include "decode/decode.h"

#include <inttypes.h>
#include <isa-l/igzip_lib.h>
#include <stdlib.h>
#include <string.h>

/* Compressed bytes read from IN at a time. */
#define IN_BYTES (512u << 10)
/* isal_inflate counts output in 32 bits; ask for less than that per call. */
#define OUT_MAX (1u << 30)

struct gzip_source {
    struct bk_source pub;
    struct bk_source *in;
    struct inflate_state state;
    uint8_t *buf; /* compressed bytes; buf[pos, end) are not decoded yet */
    size_t pos, end;
    uint64_t total_in; /* bytes read from IN */
    bool in_eof;       /* IN returned its end */
    bool member_start; /* a member is to start here (or the file ends) */
    uint64_t members;  /* members started */
    bool done, failed; /* done: the proper end was seen */
    struct bk_error error;
};

/* Offset in the compressed file of the next byte not given to the decoder yet. */
static uint64_t offset_of_pos(const struct gzip_source *g)
{
    return g->total_in - (g->end - g->pos);
}

/* Where the decoder is: it holds up to 8 bytes it has read but not decoded yet. */
static uint64_t decoder_offset(const struct gzip_source *g)
{
    uint64_t at = offset_of_pos(g);
    uint64_t held = (uint64_t)(g->state.read_in_length > 0 ? g->state.read_in_length : 0) / 8;
    return at > held ? at - held : 0;
}

static int gz_fail(struct gzip_source *g, const char *what, uint64_t at, struct bk_error *err)
{
    g->failed = true;
    bk_error_set(&g->error, BK_E_FORMAT, 0, "%s: gzip: %s at byte %" PRIu64, g->in->name, what, at);
    *err = g->error;
    return -1;
}

/* Keep the unread bytes, moved to the front, and read more after them. */
static int refill(struct gzip_source *g, struct bk_error *err)
{
    if (g->pos > 0) {
        memmove(g->buf, g->buf + g->pos, g->end - g->pos);
        g->end -= g->pos;
        g->pos = 0;
    }
    size_t got = 0;
    if (bk_source_read(g->in, g->buf + g->end, IN_BYTES - g->end, &got, err) < 0) {
        g->failed = true;
        g->error = *err;
        return -1;
    }
    if (got == 0)
        g->in_eof = true;
    g->end += got;
    g->total_in += got;
    return 0;
}

static const char *inflate_problem(int rc, bool header_done)
{
    switch (rc) {
    case ISAL_INCORRECT_CHECKSUM:
        return header_done ? "compressed data is corrupt (CRC32 or length check failed)"
                           : "compressed data is corrupt (member header checksum mismatch)";
    case ISAL_INVALID_WRAPPER:
        return "compressed data is corrupt (bad member header)";
    case ISAL_UNSUPPORTED_METHOD:
        return "compressed data is corrupt (unknown compression method)";
    case ISAL_NEED_DICT:
        return "compressed data is corrupt (a preset dictionary is needed)";
    default:
        return "compressed data is corrupt (invalid deflate data)";
    }
}

/* The first four bytes of a member: magic, method (deflate), flags (three reserved). */
#define HEAD_CHECK 4
#define FLAGS_RESERVED 0xe0

/*
 * At the start of the file or after a member: what follows must be the end of the
 * file (after at least one member) or another member. Returns 1 at the proper end, 0
 * when the next member is ready to decode, -1 on error.
 */
static int next_member(struct gzip_source *g, struct bk_error *err)
{
    while (g->end - g->pos < HEAD_CHECK && !g->in_eof)
        if (refill(g, err) < 0)
            return -1;
    size_t left = g->end - g->pos;
    if (left == 0 && g->members > 0)
        return 1;
    const uint8_t *p = g->buf + g->pos;
    if ((left >= 1 && p[0] != 0x1f) || (left >= 2 && p[1] != 0x8b))
        return gz_fail(g,
                       g->members > 0 ? "trailing data after the gzip stream"
                                      : "not gzip data (bad magic number)",
                       offset_of_pos(g), err);
    if (left < HEAD_CHECK)
        return gz_fail(g, "the stream ends early (truncated)", g->total_in, err);
    /* RFC 1952 asks decoders to refuse reserved flags; ISA-L does not look at them. */
    if (p[3] & FLAGS_RESERVED)
        return gz_fail(g, "compressed data is corrupt (reserved header flags set)",
                       offset_of_pos(g) + 3, err);
    if (g->members > 0)
        isal_inflate_reset(&g->state);
    g->members++;
    g->member_start = false;
    return 0;
}

static int gzip_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                     struct bk_error *err)
{
    struct gzip_source *g = src->priv;
    *got = 0;
    if (g->failed) {
        *err = g->error;
        return -1;
    }
    if (g->done)
        return 0;

    uint8_t *out = buf;
    size_t produced = 0;
    while (produced < len) {
        struct inflate_state *s = &g->state;
        if (g->member_start) {
            int rc = next_member(g, err);
            if (rc < 0)
                return -1;
            if (rc > 0) {
                g->done = true;
                break;
            }
        }
        if (g->pos == g->end && !g->in_eof && refill(g, err) < 0)
            return -1;

        size_t room = len - produced < OUT_MAX ? len - produced : OUT_MAX;
        size_t pos_before = g->pos;
        enum isal_block_state state_before = s->block_state;
        s->next_in = g->buf + g->pos;
        s->avail_in = (uint32_t)(g->end - g->pos);
        s->next_out = out + produced;
        s->avail_out = (uint32_t)room;
        int rc = isal_inflate(s);
        g->pos = (size_t)(s->next_in - g->buf);
        size_t made = room - s->avail_out;
        produced += made;
        if (rc < 0) {
            /* A failed check of the trailer (CRC32, ISIZE) names where the trailer
               starts; one of the header (FHCRC) the decoder's position. */
            uint64_t at = decoder_offset(g);
            bool header_done = g->state.wrapper_flag != 0;
            if (rc == ISAL_INCORRECT_CHECKSUM && header_done && at >= 8)
                at -= 8;
            return gz_fail(g, inflate_problem(rc, header_done), at, err);
        }
        if (s->block_state == ISAL_BLOCK_FINISH) {
            g->member_start = true;
            continue;
        }
        if (s->avail_out == 0)
            continue;
        /* Room is left and the member is not over: the decoder wants more input. */
        bool progress = made > 0 || g->pos != pos_before || s->block_state != state_before;
        if (g->pos < g->end && progress)
            continue;
        if (!g->in_eof) {
            if (g->end - g->pos == IN_BYTES)
                return gz_fail(g, inflate_problem(0, true), decoder_offset(g), err);
            if (refill(g, err) < 0)
                return -1;
            continue;
        }
        /* At the end of IN, call again until nothing more comes out. */
        if (!progress)
            return gz_fail(g, "the stream ends early (truncated)", g->total_in, err);
    }
    *got = produced;
    return 0;
}

static void gzip_close(struct bk_source *src)
{
    struct gzip_source *g = src->priv;
    bk_source_close(g->in);
    free(g->buf);
    free(g);
}

static const struct bk_source_ops gzip_ops = {
    .read = gzip_read,
    .close = gzip_close,
};

struct bk_source *bk_decode_gzip(struct bk_source *in, struct bk_error *err)
{
    struct gzip_source *g = calloc(1, sizeof *g);
    uint8_t *buf = malloc(IN_BYTES);
    if (!g || !buf) {
        free(g);
        free(buf);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    g->in = in;
    g->buf = buf;
    isal_inflate_init(&g->state);
    /* Parse each member's header and check its CRC32 and ISIZE trailer. */
    g->state.crc_flag = ISAL_GZIP;
    g->member_start = true;
    bk_source_init_decoder(&g->pub, in, &gzip_ops, g);
    return &g->pub;
}
