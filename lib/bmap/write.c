/* SPDX-License-Identifier: MIT */
/*
 * Writer for bmap format 2.0. The text is generated twice from the same data: first
 * into the hash with the checksum value as zeros, then to the sink with the digest in
 * its place. The generator is deterministic, so both passes produce the same bytes.
 */
#include "bmap/bmap_impl.h"
#include "digest/hex.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct out {
    bk_bmap_sink_fn sink;
    void *ctx;
    struct bk_error *err;
    char buf[64 * 1024];
    size_t len;
};

static int out_flush(struct out *o)
{
    if (o->len == 0)
        return 0;
    int rc = o->sink(o->ctx, o->buf, o->len, o->err);
    o->len = 0;
    return rc;
}

__attribute__((format(printf, 2, 3))) static int out_printf(struct out *o, const char *fmt, ...)
{
    /* Every line we format is far shorter than this, so one retry after a flush fits. */
    if (sizeof o->buf - o->len < 512 && out_flush(o) < 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof o->buf - o->len)
        return bk_error_set(o->err, BK_E_INVALID, 0, "bmap line too long to format");
    o->len += (size_t)n;
    return 0;
}

/* "1.5 GiB" style size for the comments. */
static void human_size(uint64_t bytes, char *out, size_t cap)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(out, cap, "%" PRIu64 " bytes", bytes);
    else
        snprintf(out, cap, "%.1f %s", v, units[u]);
}

static int generate(const struct bk_bmap *b, enum bk_hash hash, const char *file_checksum,
                    struct out *o)
{
    char image_h[32], mapped_h[32];
    uint64_t mapped_bytes = b->mapped_blocks * b->block_size;
    human_size(b->image_size, image_h, sizeof image_h);
    human_size(mapped_bytes, mapped_h, sizeof mapped_h);
    double percent =
        b->blocks_count ? 100.0 * (double)b->mapped_blocks / (double)b->blocks_count : 0.0;
    size_t dsize = bk_hash_size(hash);

    if (out_printf(o, "<?xml version=\"1.0\" ?>\n"
                      "<!-- Block map of a disk image, written by bmapkit.\n"
                      "     It lists the blocks of the image that hold data (partition tables,\n"
                      "     file-system metadata, file contents); the other blocks are holes\n"
                      "     whose content does not matter. A flasher writes only the listed\n"
                      "     blocks and checks each range against its checksum, which is much\n"
                      "     faster than copying the whole image.\n"
                      "\n"
                      "     The version attribute is MAJOR.MINOR: a new major number means an\n"
                      "     incompatible change, a new minor number a compatible one. -->\n"
                      "\n"
                      "<bmap version=\"2.0\">\n") < 0)
        return -1;
    if (out_printf(o,
                   "    <!-- Size of the image in bytes: %s -->\n"
                   "    <ImageSize> %" PRIu64 " </ImageSize>\n\n"
                   "    <!-- Size of one block in bytes -->\n"
                   "    <BlockSize> %" PRIu32 " </BlockSize>\n\n"
                   "    <!-- Number of blocks in the image -->\n"
                   "    <BlocksCount> %" PRIu64 " </BlocksCount>\n\n"
                   "    <!-- Number of mapped blocks: %s or %.1f%% -->\n"
                   "    <MappedBlocksCount> %" PRIu64 " </MappedBlocksCount>\n\n"
                   "    <!-- Hash algorithm of every checksum in this file -->\n"
                   "    <ChecksumType> %s </ChecksumType>\n\n",
                   image_h, b->image_size, b->block_size, b->blocks_count, mapped_h, percent,
                   b->mapped_blocks, bk_hash_name(hash)) < 0)
        return -1;
    if (out_printf(o,
                   "    <!-- Checksum of this file, computed with the value below set to\n"
                   "         all \"0\" characters. -->\n"
                   "    <BmapFileChecksum> %s </BmapFileChecksum>\n\n"
                   "    <!-- The mapped blocks: a Range is one block or FIRST-LAST; its\n"
                   "         chksum attribute, when present, is the checksum of those\n"
                   "         blocks' bytes. -->\n"
                   "    <BlockMap>\n",
                   file_checksum) < 0)
        return -1;

    for (size_t i = 0; i < b->range_count; i++) {
        const struct bk_range *r = &b->ranges[i];
        const uint8_t *digest = b->hash == hash ? bk_bmap_digest(b, i) : NULL;
        char attr[2 * BK_DIGEST_MAX + 16] = "";
        if (digest) {
            char hex[2 * BK_DIGEST_MAX + 1];
            bk_hex_encode(digest, dsize, hex);
            snprintf(attr, sizeof attr, " chksum=\"%s\"", hex);
        }
        int rc = r->first == r->last
                     ? out_printf(o, "        <Range%s> %" PRIu64 " </Range>\n", attr, r->first)
                     : out_printf(o, "        <Range%s> %" PRIu64 "-%" PRIu64 " </Range>\n", attr,
                                  r->first, r->last);
        if (rc < 0)
            return -1;
    }
    if (out_printf(o, "    </BlockMap>\n</bmap>\n") < 0)
        return -1;
    return out_flush(o);
}

static int sink_digest(void *ctx, const void *data, size_t len, struct bk_error *err)
{
    return bk_digest_update(ctx, data, len, err);
}

int bk_bmap_write(const struct bk_bmap *bmap, bk_bmap_sink_fn sink, void *ctx, struct bk_error *err)
{
    enum bk_hash hash = bmap->hash != BK_HASH_NONE ? bmap->hash : BK_HASH_SHA256;
    size_t dsize = bk_hash_size(hash);
    char zeros[2 * BK_DIGEST_MAX + 1];
    memset(zeros, '0', 2 * dsize);
    zeros[2 * dsize] = '\0';

    struct bk_digest *d = bk_digest_new(hash, err);
    if (!d)
        return -1;
    /* The output buffer is large; keep it off the caller's stack. */
    struct out *o = malloc(sizeof *o);
    if (!o) {
        bk_digest_free(d);
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }

    *o = (struct out){.sink = sink_digest, .ctx = d, .err = err};
    uint8_t digest[BK_DIGEST_MAX];
    int rc = generate(bmap, hash, zeros, o);
    if (rc == 0)
        rc = bk_digest_final(d, digest, err);
    if (rc == 0) {
        char hex[2 * BK_DIGEST_MAX + 1];
        bk_hex_encode(digest, dsize, hex);
        *o = (struct out){.sink = sink, .ctx = ctx, .err = err};
        rc = generate(bmap, hash, hex, o);
    }
    free(o);
    bk_digest_free(d);
    return rc;
}

struct fd_sink {
    int fd;
    const char *name;
    uint64_t offset;
};

static int sink_fd(void *ctx, const void *data, size_t len, struct bk_error *err)
{
    struct fd_sink *s = ctx;
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(s->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return bk_error_set(err, BK_E_IO, errno, "%s: write failed at byte %" PRIu64, s->name,
                                s->offset);
        }
        p += n;
        len -= (size_t)n;
        s->offset += (uint64_t)n;
    }
    return 0;
}

int bk_bmap_write_fd(const struct bk_bmap *bmap, int fd, const char *name, struct bk_error *err)
{
    struct fd_sink s = {.fd = fd, .name = name};
    return bk_bmap_write(bmap, sink_fd, &s, err);
}
