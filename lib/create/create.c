/* SPDX-License-Identifier: MIT */
/*
 * bmap creation: map the image's data areas to block ranges (optionally splitting them
 * at blocks of zeros), then hash the ranges (hash_ranges.c).
 */
#include "create/create_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>

#include "common/options.h"
#include "common/util.h"

/* Collects data areas into maximal block ranges, rounding outward. */
struct range_builder {
    struct bk_bmap *bmap;
    uint64_t block_size;
};

static int add_extent(void *ctx, uint64_t start, uint64_t end, struct bk_error *err)
{
    struct range_builder *rb = ctx;
    struct bk_bmap *b = rb->bmap;
    uint64_t first = start / rb->block_size;
    uint64_t last = (end + rb->block_size - 1) / rb->block_size - 1;
    if (b->range_count > 0) {
        struct bk_range *prev = &b->ranges[b->range_count - 1];
        if (first <= prev->last + 1) {
            if (last > prev->last)
                prev->last = last;
            return 0;
        }
    }
    return bk_bmap_add(b, first, last, NULL, err);
}

int create_read_full(int fd, const char *name, void *buf, size_t len, uint64_t offset,
                     struct bk_error *err)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return bk_error_set(err, BK_E_IO, errno, "%s: read failed at byte %" PRIu64, name,
                                offset);
        }
        if (n == 0)
            return bk_error_set(err, BK_E_IO, 0,
                                "%s: image ended at byte %" PRIu64
                                " while reading it (was it truncated meanwhile?)",
                                name, offset);
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
    /* Compare the buffer with itself shifted by one byte: zero iff first byte is zero. */
    return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/*
 * Split the ranges at blocks that hold only zero bytes. Reads the mapped data once,
 * sequentially; only used on request.
 */
static int drop_zero_blocks(int fd, const char *name, struct bk_bmap *b, uint64_t *dropped,
                            const struct bk_create_options *o, struct bk_error *err)
{
    /* Same header, no ranges yet. */
    struct bk_bmap out = *b;
    out.range_count = out.range_capacity = 0;
    out.ranges = NULL;
    out.digests = out.digest_present = NULL;

    size_t per_buf = CREATE_BUFFER / b->block_size ? CREATE_BUFFER / b->block_size : 1;
    uint8_t *buf = malloc(per_buf * b->block_size);
    if (!buf)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");

    int rc = 0;
    *dropped = 0;
    for (size_t i = 0; i < b->range_count && rc == 0; i++) {
        uint64_t blk = b->ranges[i].first;
        while (blk <= b->ranges[i].last && rc == 0) {
            if (bk_cancelled(o->cancel, o->cancel_ctx)) {
                rc = bk_error_set(err, BK_E_CANCELLED, 0, "cancelled");
                break;
            }
            uint64_t n = b->ranges[i].last - blk + 1;
            if (n > per_buf)
                n = per_buf;
            uint64_t off = blk * b->block_size;
            uint64_t len = n * b->block_size;
            if (off + len > b->image_size)
                len = b->image_size - off;
            if ((rc = create_read_full(fd, name, buf, (size_t)len, off, err)) < 0)
                break;
            for (uint64_t k = 0; k < n && rc == 0; k++) {
                uint64_t boff = k * b->block_size;
                uint64_t blen = len - boff < b->block_size ? len - boff : b->block_size;
                if (all_zero(buf + boff, (size_t)blen)) {
                    (*dropped)++;
                    continue;
                }
                struct range_builder rb = {&out, 1};
                rc = add_extent(&rb, blk + k, blk + k + 1, err);
            }
            blk += n;
        }
    }
    free(buf);
    if (rc < 0) {
        free(out.ranges);
        free(out.digest_present);
        return -1;
    }
    free(b->ranges);
    free(b->digests);
    free(b->digest_present);
    *b = out;
    return 0;
}

static uint32_t file_block_size(int fd, const struct stat *st)
{
    int bs = 0;
    if (ioctl(fd, FIGETBSZ, &bs) == 0 && bs > 0)
        return (uint32_t)bs;
    return st->st_blksize > 0 ? (uint32_t)st->st_blksize : 4096;
}

/* Open PATH as an image to map: a non-empty regular file. Returns the descriptor or -1. */
static int open_image(const char *path, struct stat *st, struct bk_error *err)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer before it is refused. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return bk_error_set(err, BK_E_IO, errno, "cannot open image %s", path);
    int rc = 0;
    if (fstat(fd, st) < 0)
        rc = bk_error_set(err, BK_E_IO, errno, "cannot stat image %s", path);
    else if (S_ISREG(st->st_mode) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        rc = bk_error_set(err, BK_E_IO, errno, "cannot read image %s", path);
    else if (!S_ISREG(st->st_mode))
        rc = bk_error_set(err, BK_E_INVALID, 0,
                          "image %s is not a regular file (a bmap describes an image file)", path);
    else if (st->st_size == 0)
        rc = bk_error_set(err, BK_E_INVALID, 0, "image %s is empty: there is nothing to map", path);
    if (rc < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

struct bk_bmap *bk_create_bmap(const char *path, const struct bk_create_options *opts,
                               struct bk_create_info *info_out, struct bk_error *err)
{
    struct bk_create_options o;
    if (bk_options_take(&o, sizeof o, opts, "create options", err) < 0)
        return NULL;
    struct bk_create_info info = {.struct_size = sizeof info};
    struct stat st;
    int fd = open_image(path, &st, err);
    if (fd < 0)
        return NULL;
    struct bk_bmap *bmap = bk_bmap_new((uint64_t)st.st_size, file_block_size(fd, &st),
                                       o.hash ? o.hash : BK_HASH_SHA256, err);
    if (!bmap) {
        close(fd);
        return NULL;
    }
    struct range_builder rb = {bmap, bmap->block_size};
    int rc = bk_map_file(fd, path, bmap->image_size, o.method, &info.method, add_extent, &rb, err);
    if (rc == 0 && o.detect_zeros)
        rc = drop_zero_blocks(fd, path, bmap, &info.zero_blocks, &o, err);
    if (rc == 0) {
        bmap->mapped_blocks = 0;
        for (size_t i = 0; i < bmap->range_count; i++)
            bmap->mapped_blocks += bmap->ranges[i].last - bmap->ranges[i].first + 1;
        info.mapped_bytes = bk_bmap_mapped_bytes(bmap);
        if (!o.no_checksum)
            rc = create_hash_ranges(fd, path, bmap, &o, &info.threads, err);
    }
    close(fd);
    if (rc < 0) {
        bk_bmap_free(bmap);
        return NULL;
    }
    bk_results_give(info_out, &info, sizeof info);
    return bmap;
}
