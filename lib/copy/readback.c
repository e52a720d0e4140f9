/* SPDX-License-Identifier: MIT */
/*
 * Read-back verification: after the copy was flushed, read each range from the medium
 * itself (O_DIRECT, or the page cache dropped first where O_DIRECT is not supported)
 * and compare with the bmap. Only the image's real bytes are hashed, so a partial last
 * block is checked correctly however the device rounds its reads.
 */
#include "copy/copy_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RB_BUFFER (4u << 20)
#define RB_ALIGN 4096u

static int open_reader(struct bk_dest *dest, struct bk_error *err)
{
    int fd = open(dest->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    fd = open(dest->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bk_error_set(err, BK_E_IO, errno, "cannot open %s to read it back", dest->path);
    /* No O_DIRECT here (tmpfs, some FUSE): at least drop what the page cache holds. */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    return fd;
}

/* Hash range I as stored on the destination into OUT. */
static int hash_stored_range(int fd, const char *name, const struct bk_bmap *bmap, size_t i,
                             uint8_t *buf, struct bk_digest *d, uint8_t *out, struct bk_error *err)
{
    uint64_t start = bmap->ranges[i].first * bmap->block_size;
    uint64_t end = start + bk_bmap_range_bytes(bmap, i);
    uint64_t pos = start - start % RB_ALIGN;
    while (pos < end) {
        uint64_t want = end - pos;
        want = want + (RB_ALIGN - want % RB_ALIGN) % RB_ALIGN;
        if (want > RB_BUFFER)
            want = RB_BUFFER;
        ssize_t n = pread(fd, buf, (size_t)want, (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return bk_error_set(err, BK_E_IO, errno, "%s: read-back failed at byte %" PRIu64, name,
                                pos);
        if (n == 0)
            return bk_error_set(err, BK_E_IO, 0, "%s: read-back ended early at byte %" PRIu64, name,
                                pos);
        uint64_t lo = pos < start ? start - pos : 0;
        uint64_t hi = (uint64_t)n < end - pos ? (uint64_t)n : end - pos;
        if (hi > lo && bk_digest_update(d, buf + lo, (size_t)(hi - lo), err) < 0)
            return -1;
        pos += (uint64_t)n;
    }
    return bk_digest_final(d, out, err);
}

/* Copy range I from SRC to DEST once more and flush it. */
static int rewrite_range(struct bk_source *src, struct bk_dest *dest, const struct bk_bmap *bmap,
                         size_t i, uint8_t *buf, struct bk_error *err)
{
    uint64_t pos = bmap->ranges[i].first * bmap->block_size;
    uint64_t left = bk_bmap_range_bytes(bmap, i);
    while (left > 0) {
        size_t n = left < RB_BUFFER ? (size_t)left : RB_BUFFER;
        if (bk_source_pread_full(src, buf, n, pos, err) < 0 ||
            bk_dest_write(dest, buf, n, pos, err) < 0)
            return -1;
        pos += n;
        left -= n;
    }
    return bk_dest_flush(dest, err);
}

int bk_readback_check(const struct bk_bmap *bmap, const struct bk_dest *dest, struct bk_error *err)
{
    if (dest->kind == BK_DEST_CHARDEV)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "%s cannot be read back: it is not a file or a block device",
                            dest->path);
    if (!bmap || bmap->hash == BK_HASH_NONE)
        return bk_error_set(err, BK_E_INVALID, 0, "read-back needs range checksums, and %s",
                            bmap ? "this bmap has none" : "there is no bmap");
    return 0;
}

int bk_readback(const struct bk_bmap *bmap, struct bk_source *src, struct bk_dest *dest,
                const struct bk_copy_options *opts, struct bk_copy_stats *stats,
                pthread_mutex_t *cb_lock, struct bk_error *err)
{
    if (bk_readback_check(bmap, dest, err) < 0)
        return -1;
    int fd = open_reader(dest, err);
    if (fd < 0)
        return -1;
    uint8_t *buf = NULL;
    struct bk_digest *d = bk_digest_new(bmap->hash, err);
    if (!d || posix_memalign((void **)&buf, RB_ALIGN, RB_BUFFER) != 0) {
        close(fd);
        bk_digest_free(d);
        return d ? bk_error_set(err, BK_E_NOMEM, 0, "out of memory") : -1;
    }

    int rc = 0;
    size_t first_bad = SIZE_MAX;
    size_t dsize = bk_hash_size(bmap->hash);
    for (size_t i = 0; i < bmap->range_count && rc == 0; i++) {
        const uint8_t *want = bk_bmap_digest(bmap, i);
        if (!want)
            continue;
        for (unsigned attempt = 0;; attempt++) {
            if (opts->cancel && atomic_load(opts->cancel)) {
                rc = bk_error_set(err, BK_E_CANCELLED, 0, "interrupted during read-back");
                break;
            }
            uint8_t got[BK_DIGEST_MAX];
            if ((rc = hash_stored_range(fd, dest->path, bmap, i, buf, d, got, err)) < 0)
                break;
            if (memcmp(got, want, dsize) == 0) {
                stats->readback_checked++;
                break;
            }
            if (opts->cb.readback_mismatch) {
                pthread_mutex_lock(cb_lock);
                opts->cb.readback_mismatch(opts->cb.ctx, i, &bmap->ranges[i], attempt + 1);
                pthread_mutex_unlock(cb_lock);
            }
            if (attempt >= opts->readback_retries || !src->seekable) {
                stats->readback_failed++;
                if (first_bad == SIZE_MAX)
                    first_bad = i;
                break;
            }
            if ((rc = rewrite_range(src, dest, bmap, i, buf, err)) < 0)
                break;
            /* The rewrite went through the page cache; make the next read hit the medium. */
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        }
    }
    if (rc == 0 && stats->readback_failed)
        rc = bk_error_set(err, BK_E_VERIFY, 0,
                          "read-back of %s: %zu range(s) differ from the image (first: blocks "
                          "%" PRIu64 "-%" PRIu64 ")",
                          dest->path, stats->readback_failed, bmap->ranges[first_bad].first,
                          bmap->ranges[first_bad].last);
    free(buf);
    bk_digest_free(d);
    close(fd);
    return rc;
}
