/* SPDX-License-Identifier: MIT */
/*
 * Reading an xz file's index from its end, and checking the file's structure on the
 * way: every stream's footer, index (its CRC32, and its size against the footer),
 * header (against the footer's flags) and padding, and that the streams fill the file
 * exactly. This is all that can be checked without decoding blocks.
 */
#include "decode/pieces/xz_pieces.h"
#include "decode/pieces/pieces.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_READ ((size_t)64 << 10)
#define TAIL_SCAN ((size_t)1 << 20)

/* Read exactly LEN bytes of the compressed file at OFF. */
int xz_read_at(struct bk_source *in, void *buf, size_t len, uint64_t off, struct bk_error *err)
{
    return pieces_read_at(in, "xz", buf, len, off, err);
}

/* --- the index ------------------------------------------------------------------- */

static int index_corrupt(struct bk_source *in, const char *what, uint64_t at, struct bk_error *err)
{
    return bk_error_set(err, BK_E_FORMAT, 0, "%s: xz: %s at byte %" PRIu64, in->name, what, at);
}

/* Move *POS back over zero bytes, four at a time (stream padding); add them to *PAD. */
static int skip_padding(struct bk_source *in, uint64_t *pos, uint64_t *pad, struct bk_error *err)
{
    uint8_t buf[4096];
    while (*pos > 0) {
        size_t n = (size_t)bk_min_u64(*pos, sizeof buf);
        if (xz_read_at(in, buf, n, *pos - n, err) < 0)
            return -1;
        size_t i = n;
        while (i >= 4 && (buf[i - 1] | buf[i - 2] | buf[i - 3] | buf[i - 4]) == 0)
            i -= 4;
        *pad += n - i;
        *pos -= n - i;
        if (i > 0)
            return 0;
    }
    return 0;
}

/* Decode the INDEX_SIZE bytes of index at OFF into *OUT. */
static int read_one_index(struct bk_source *in, uint64_t off, uint64_t index_size, lzma_index **out,
                          struct bk_error *err)
{
    uint8_t *buf = malloc(INDEX_READ);
    lzma_stream s = LZMA_STREAM_INIT;
    /* Each record takes two bytes at least: a damaged count must not reach malloc. */
    uint64_t memlimit = lzma_index_memusage(1, index_size / 2 + 1);
    if (!buf || lzma_index_decoder(&s, out, memlimit) != LZMA_OK) {
        free(buf);
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    uint64_t pos = off, end = off + index_size;
    int rc = 0;
    for (;;) {
        if (s.avail_in == 0 && pos < end) {
            size_t n = (size_t)bk_min_u64(end - pos, INDEX_READ);
            if ((rc = xz_read_at(in, buf, n, pos, err)) < 0)
                break;
            s.next_in = buf;
            s.avail_in = n;
            pos += n;
        }
        lzma_ret r = lzma_code(&s, pos == end ? LZMA_FINISH : LZMA_RUN);
        if (r == LZMA_STREAM_END)
            break;
        if (r == LZMA_MEM_ERROR) {
            rc = bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
            break;
        }
        if (r != LZMA_OK) {
            rc = index_corrupt(in, "the index is corrupt", off + s.total_in, err);
            break;
        }
    }
    /* The index must fill exactly the space the footer gives it. */
    if (rc == 0 && (s.total_in != index_size || s.avail_in != 0))
        rc = index_corrupt(in, "the index does not match its stream footer", off, err);
    lzma_end(&s);
    free(buf);
    if (rc < 0 && *out) {
        lzma_index_end(*out, NULL);
        *out = NULL;
    }
    return rc;
}

/*
 * A stream begins at POS, which is not a multiple of four: name the padding before it
 * when there is a stream footer before that, else the stray bytes.
 */
static int misaligned_stream(struct bk_source *in, uint64_t pos, struct bk_error *err)
{
    uint8_t buf[256];
    size_t n = (size_t)bk_min_u64(pos, sizeof buf);
    if (xz_read_at(in, buf, n, pos - n, err) < 0)
        return -1;
    size_t i = n;
    while (i > 0 && buf[i - 1] == 0)
        i--;
    uint64_t p = pos - (n - i);
    lzma_stream_flags flags;
    if (p % 4 == 0 && i >= LZMA_STREAM_HEADER_SIZE &&
        lzma_stream_footer_decode(&flags, buf + i - LZMA_STREAM_HEADER_SIZE) == LZMA_OK)
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s: xz: stream padding of %" PRIu64
                            " bytes is not a multiple of four, at byte %" PRIu64,
                            in->name, pos - p, p);
    return index_corrupt(in, "unexpected data before a stream", p, err);
}

#define NO_FOOTER (-2)

/*
 * Read the streams that end at byte END backwards, checking each one's footer, index
 * and header, into one index of the file's first END bytes. NO_FOOTER (no error set)
 * when END is not the end of a stream footer (or of padding after one).
 */
/* The stream header at START must be one, and agree with the stream's FOOTER. */
static int check_stream_header(struct bk_source *in, uint64_t start,
                               const lzma_stream_flags *footer, struct bk_error *err)
{
    uint8_t buf[LZMA_STREAM_HEADER_SIZE];
    if (xz_read_at(in, buf, sizeof buf, start, err) < 0)
        return -1;
    lzma_stream_flags header;
    lzma_ret r = lzma_stream_header_decode(&header, buf);
    if (r == LZMA_OK && lzma_stream_flags_compare(&header, footer) != LZMA_OK)
        r = LZMA_DATA_ERROR;
    if (r == LZMA_OK)
        return 0;
    return index_corrupt(in,
                         r == LZMA_FORMAT_ERROR
                             ? "no stream header where the index puts one"
                             : "the stream header is corrupt or does not match its footer",
                         start, err);
}

/*
 * The stream that ends at POS (followed by PAD bytes of padding): its footer, index and
 * header, checked. *IDX receives its index and *START where it begins. LAST is true for
 * the file's last stream, where a missing footer means "not an indexed file".
 */
static int read_stream(struct bk_source *in, uint64_t pos, uint64_t pad, bool last,
                       lzma_index **idx, uint64_t *start, struct bk_error *err)
{
    uint8_t buf[LZMA_STREAM_HEADER_SIZE];
    lzma_stream_flags footer;
    uint64_t footer_at = pos - LZMA_STREAM_HEADER_SIZE;
    if (xz_read_at(in, buf, sizeof buf, footer_at, err) < 0)
        return -1;
    lzma_ret r = lzma_stream_footer_decode(&footer, buf);
    if (r == LZMA_FORMAT_ERROR && last)
        return NO_FOOTER;
    if (r == LZMA_OPTIONS_ERROR) /* newer than this liblzma: the stream decoder decides */
        return bk_error_set(err, BK_E_UNSUPPORTED, 0,
                            "%s: xz: unsupported stream flags at byte %" PRIu64, in->name,
                            footer_at);
    if (r != LZMA_OK)
        return index_corrupt(in,
                             r == LZMA_FORMAT_ERROR ? "no stream footer before a stream"
                                                    : "the stream footer is corrupt",
                             footer_at, err);
    if (footer.backward_size > footer_at - LZMA_STREAM_HEADER_SIZE)
        return index_corrupt(in, "the stream footer gives an impossible index size", footer_at,
                             err);
    uint64_t index_at = footer_at - footer.backward_size;
    if (read_one_index(in, index_at, footer.backward_size, idx, err) < 0)
        return -1;
    uint64_t stream_size = lzma_index_stream_size(*idx);
    int rc = 0;
    if (lzma_index_stream_flags(*idx, &footer) != LZMA_OK ||
        lzma_index_stream_padding(*idx, pad) != LZMA_OK || stream_size > pos)
        rc = index_corrupt(in, "the index does not fit the file", index_at, err);
    else
        rc = check_stream_header(in, pos - stream_size, &footer, err);
    if (rc < 0) {
        lzma_index_end(*idx, NULL);
        *idx = NULL;
        return rc;
    }
    *start = pos - stream_size;
    return 0;
}

static int read_index(struct bk_source *in, uint64_t end, lzma_index **out, struct bk_error *err)
{
    uint64_t pos = end;
    lzma_index *all = NULL;
    int rc = 0;

    /* Streams and padding are multiples of four bytes, so every valid file is too. */
    if (end == 0 || end % 4 != 0)
        return NO_FOOTER;
    while (pos > 0 && rc == 0) {
        if (pos % 4 != 0) {
            rc = misaligned_stream(in, pos, err);
            break;
        }
        uint64_t pad = 0;
        if ((rc = skip_padding(in, &pos, &pad, err)) < 0)
            break;
        if (pos < 2 * LZMA_STREAM_HEADER_SIZE) {
            rc = all ? index_corrupt(in, "unexpected data before a stream", pos, err) : NO_FOOTER;
            break;
        }
        lzma_index *idx = NULL;
        uint64_t start = 0;
        if ((rc = read_stream(in, pos, pad, !all, &idx, &start, err)) != 0)
            break;
        if (all && lzma_index_cat(idx, all, NULL) != LZMA_OK) {
            lzma_index_end(idx, NULL);
            rc = bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
            break;
        }
        all = idx;
        pos = start;
    }
    if (rc == 0 && lzma_index_file_size(all) != end)
        rc = index_corrupt(in, "the indexes do not add up to the file", 0, err);
    if (rc != 0) {
        if (all)
            lzma_index_end(all, NULL);
        return rc;
    }
    *out = all;
    return 0;
}

/*
 * The file does not end in a stream footer: tell, as the stream decoder would, whether
 * it was cut short or has something after its last stream. Only the last TAIL_SCAN
 * bytes are searched for the real end; a footer found there counts only if the streams
 * before it check out back to the file's start.
 */
static int tail_error(struct bk_source *in, struct bk_error *err)
{
    static const uint8_t magic[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};
    const uint64_t size = (uint64_t)in->size;
    const uint64_t from = size > TAIL_SCAN ? size - TAIL_SCAN : 0;
    uint8_t *buf = malloc(TAIL_SCAN);
    if (!buf)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    if (xz_read_at(in, buf, (size_t)(size - from), from, err) < 0) {
        free(buf);
        return -1;
    }
    int rc = 1;
    for (uint64_t p = size & ~(uint64_t)3;
         rc > 0 && p >= from + LZMA_STREAM_HEADER_SIZE && p >= 2 * LZMA_STREAM_HEADER_SIZE;
         p -= 4) {
        const uint8_t *f = buf + (p - LZMA_STREAM_HEADER_SIZE - from);
        lzma_stream_flags flags;
        if (f[10] != 'Y' || f[11] != 'Z' || lzma_stream_footer_decode(&flags, f) != LZMA_OK)
            continue;
        lzma_index *idx = NULL;
        struct bk_error ignored;
        if (read_index(in, p, &idx, &ignored) != 0)
            continue;
        lzma_index_end(idx, NULL);
        /* The streams end at P: what follows is padding, then another stream or not. */
        uint64_t q = p;
        while (q < size && buf[q - from] == 0)
            q++;
        size_t n = (size_t)bk_min_u64(size - q, sizeof magic);
        bool next_stream = memcmp(buf + (q - from), magic, n) == 0;
        if (q == size)
            rc = bk_error_set(err, BK_E_FORMAT, 0,
                              "%s: xz: trailing data after the stream: %" PRIu64
                              " zero bytes, not a multiple of four, at byte %" PRIu64,
                              in->name, q - p, p);
        else if (!next_stream)
            rc = bk_error_set(err, BK_E_FORMAT, 0,
                              "%s: xz: trailing data after the end of the stream at byte %" PRIu64,
                              in->name, q);
        else if (n == sizeof magic && (q - p) % 4 != 0)
            rc = bk_error_set(err, BK_E_FORMAT, 0,
                              "%s: xz: stream padding of %" PRIu64
                              " bytes is not a multiple of four, at byte %" PRIu64,
                              in->name, q - p, p);
        else
            rc = 0; /* another stream begins and is cut short */
    }
    free(buf);
    if (rc != -1)
        rc = bk_error_set(err, BK_E_FORMAT, 0,
                          "%s: xz: the stream ends early (truncated) at byte %" PRIu64, in->name,
                          size);
    return rc;
}

void xz_blk_from(const lzma_index_iter *it, struct xz_blk *b)
{
    b->uoff = it->block.uncompressed_file_offset;
    b->usize = it->block.uncompressed_size;
    b->coff = it->block.compressed_file_offset;
    b->total = it->block.total_size;
    b->unpadded = it->block.unpadded_size;
    b->check = it->stream.flags->check;
}

int xz_index_read(struct bk_source *in, lzma_index **out, struct bk_error *err)
{
    int rc = read_index(in, (uint64_t)in->size, out, err);
    if (rc == NO_FOOTER)
        rc = tail_error(in, err);
    return rc < 0 ? -1 : 0;
}
