/* SPDX-License-Identifier: MIT */
/*
 * bmap creation: map the image's data areas to block ranges, then hash the ranges on
 * several threads. A range is hashed by one thread from start to end (a digest is
 * sequential); threads take ranges largest first so one long range does not finish last.
 */
#include "bmapkit/create.h"

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

#include "common/cpus.h"

#define HASH_BUFFER (4 * 1024 * 1024)
#define MAX_THREADS 64

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
    return bk_bmap_append(b, first, last, NULL, err);
}

static int read_full(int fd, const char *name, void *buf, size_t len, uint64_t offset,
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
                            const atomic_int *cancel, struct bk_error *err)
{
    /* Same header, no ranges yet. */
    struct bk_bmap out = *b;
    out.range_count = out.range_capacity = 0;
    out.ranges = NULL;
    out.digests = out.digest_present = NULL;

    size_t per_buf = HASH_BUFFER / b->block_size ? HASH_BUFFER / b->block_size : 1;
    uint8_t *buf = malloc(per_buf * b->block_size);
    if (!buf)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");

    int rc = 0;
    *dropped = 0;
    for (size_t i = 0; i < b->range_count && rc == 0; i++) {
        uint64_t blk = b->ranges[i].first;
        while (blk <= b->ranges[i].last && rc == 0) {
            if (cancel && atomic_load(cancel)) {
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
            if ((rc = read_full(fd, name, buf, (size_t)len, off, err)) < 0)
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
        bk_bmap_free(&out);
        return -1;
    }
    bk_bmap_free(b);
    *b = out;
    return 0;
}

struct sized_range {
    uint64_t bytes;
    size_t index;
};

struct hash_job {
    int fd;
    const char *name;
    struct bk_bmap *bmap;
    struct sized_range *order; /* ranges, largest first */
    const atomic_int *cancel;

    atomic_size_t next;
    atomic_uint_fast64_t done_bytes;
    atomic_int stop;

    pthread_mutex_t lock;
    pthread_cond_t finished;
    unsigned running;
    bool failed;
    struct bk_error first_error;
};

/*
 * Hash N image bytes at OFF, read into BUF. Reading beats mapping the file: hashing
 * mapped page-cache pages costs far more CPU in TLB misses (most of all in a virtual
 * machine) than the kernel's copy into a buffer that stays in the cache.
 */
static int hash_piece(struct hash_job *job, struct bk_digest *d, uint8_t *buf, uint64_t off,
                      size_t n, struct bk_error *err)
{
    if (read_full(job->fd, job->name, buf, n, off, err) < 0)
        return -1;
    return bk_digest_update(d, buf, n, err);
}

static int hash_range(struct hash_job *job, struct bk_digest *d, uint8_t *buf, size_t i,
                      struct bk_error *err)
{
    struct bk_bmap *b = job->bmap;
    uint64_t off = b->ranges[i].first * b->block_size;
    uint64_t left = bk_bmap_range_bytes(b, i);
    while (left > 0) {
        if (atomic_load(&job->stop))
            return 1;
        if (job->cancel && atomic_load(job->cancel))
            return bk_error_set(err, BK_E_CANCELLED, 0, "cancelled");
        size_t n = left < HASH_BUFFER ? (size_t)left : HASH_BUFFER;
        if (hash_piece(job, d, buf, off, n, err) < 0)
            return -1;
        off += n;
        left -= n;
        atomic_fetch_add(&job->done_bytes, n);
    }
    uint8_t digest[BK_DIGEST_MAX];
    if (bk_digest_final(d, digest, err) < 0)
        return -1;
    /* Each range's digest is computed by one thread, but the bits saying which digests
       are present share bytes between neighbouring ranges: set them under the lock. */
    pthread_mutex_lock(&job->lock);
    bk_bmap_set_digest(b, i, digest);
    pthread_mutex_unlock(&job->lock);
    return 0;
}

static void *hash_worker(void *arg)
{
    struct hash_job *job = arg;
    struct bk_error err;
    bk_error_clear(&err);
    int rc = 0;

    struct bk_digest *d = bk_digest_new(job->bmap->hash, &err);
    uint8_t *buf = d ? malloc(HASH_BUFFER) : NULL;
    if (!d)
        rc = -1;
    else if (!buf)
        rc = bk_error_set(&err, BK_E_NOMEM, 0, "out of memory for a hash buffer");

    while (rc == 0) {
        size_t k = atomic_fetch_add(&job->next, 1);
        if (k >= job->bmap->range_count)
            break;
        rc = hash_range(job, d, buf, job->order[k].index, &err);
    }
    free(buf);
    bk_digest_free(d);

    pthread_mutex_lock(&job->lock);
    if (rc < 0 && !job->failed) {
        job->failed = true;
        job->first_error = err;
        atomic_store(&job->stop, 1);
    }
    job->running--;
    pthread_cond_signal(&job->finished);
    pthread_mutex_unlock(&job->lock);
    return NULL;
}

static int by_size_desc(const void *a, const void *b)
{
    const struct sized_range *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static unsigned online_cpus(void)
{
    unsigned n = bk_cpu_count();
    return n > MAX_THREADS ? MAX_THREADS : n;
}

static int hash_ranges(int fd, const char *name, struct bk_bmap *b,
                       const struct bk_create_options *o, unsigned *used_threads,
                       struct bk_error *err)
{
    if (b->range_count == 0)
        return 0;
    struct hash_job job = {.fd = fd, .name = name, .bmap = b, .cancel = o->cancel};
    struct sized_range *sized = malloc(b->range_count * sizeof *sized);
    if (!sized)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < b->range_count; i++)
        sized[i] = (struct sized_range){bk_bmap_range_bytes(b, i), i};
    qsort(sized, b->range_count, sizeof *sized, by_size_desc);
    job.order = sized;

    unsigned threads = o->threads ? o->threads : online_cpus();
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if (threads > b->range_count)
        threads = (unsigned)b->range_count;
    *used_threads = threads;

    pthread_mutex_init(&job.lock, NULL);
    pthread_cond_init(&job.finished, NULL);
    pthread_t tids[MAX_THREADS];
    unsigned started = 0;
    int rc = 0;
    for (; started < threads; started++) {
        pthread_mutex_lock(&job.lock);
        job.running++;
        pthread_mutex_unlock(&job.lock);
        int e = pthread_create(&tids[started], NULL, hash_worker, &job);
        if (e != 0) {
            pthread_mutex_lock(&job.lock);
            job.running--;
            pthread_mutex_unlock(&job.lock);
            if (started == 0)
                rc = bk_error_set(err, BK_E_IO, e, "cannot start a hashing thread");
            break;
        }
    }

    uint64_t total = bk_bmap_mapped_bytes(b);
    pthread_mutex_lock(&job.lock);
    while (job.running > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&job.finished, &job.lock, &until);
        if (o->progress && job.running > 0) {
            pthread_mutex_unlock(&job.lock);
            o->progress(o->progress_ctx, atomic_load(&job.done_bytes), total);
            pthread_mutex_lock(&job.lock);
        }
    }
    pthread_mutex_unlock(&job.lock);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    if (o->progress && !job.failed && rc == 0)
        o->progress(o->progress_ctx, total, total);

    if (job.failed && rc == 0) {
        *err = job.first_error;
        rc = -1;
    }
    pthread_mutex_destroy(&job.lock);
    pthread_cond_destroy(&job.finished);
    free(job.order);
    return rc;
}

static uint32_t file_block_size(int fd, const struct stat *st)
{
    int bs = 0;
    if (ioctl(fd, FIGETBSZ, &bs) == 0 && bs > 0)
        return (uint32_t)bs;
    return st->st_blksize > 0 ? (uint32_t)st->st_blksize : 4096;
}

int bk_create_bmap(const char *path, const struct bk_create_options *opts, struct bk_bmap *bmap,
                   struct bk_create_info *info, struct bk_error *err)
{
    struct bk_create_options defaults = {0};
    const struct bk_create_options *o = opts ? opts : &defaults;
    struct bk_create_info local_info;
    if (!info)
        info = &local_info;
    memset(info, 0, sizeof *info);
    bk_bmap_init(bmap);

    /* O_NONBLOCK: opening a FIFO must not wait for a writer before it is refused. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return bk_error_set(err, BK_E_IO, errno, "cannot open image %s", path);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = bk_error_set(err, BK_E_IO, errno, "cannot stat image %s", path);
    else if (S_ISREG(st.st_mode) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        rc = bk_error_set(err, BK_E_IO, errno, "cannot read image %s", path);
    else if (!S_ISREG(st.st_mode))
        rc = bk_error_set(err, BK_E_INVALID, 0,
                          "image %s is not a regular file (a bmap describes an image file)", path);
    else if (st.st_size == 0)
        rc = bk_error_set(err, BK_E_INVALID, 0, "image %s is empty: there is nothing to map", path);
    if (rc < 0) {
        close(fd);
        return rc;
    }

    bmap->version_major = 2;
    bmap->version_minor = 0;
    bmap->hash = o->hash ? o->hash : BK_HASH_SHA256;
    bmap->image_size = (uint64_t)st.st_size;
    bmap->block_size = file_block_size(fd, &st);
    bmap->blocks_count = (bmap->image_size + bmap->block_size - 1) / bmap->block_size;

    struct range_builder rb = {bmap, bmap->block_size};
    rc = bk_map_file(fd, path, bmap->image_size, o->method, &info->method, add_extent, &rb, err);
    if (rc == 0 && o->detect_zeros)
        rc = drop_zero_blocks(fd, path, bmap, &info->zero_blocks, o->cancel, err);
    if (rc == 0) {
        bmap->mapped_blocks = 0;
        for (size_t i = 0; i < bmap->range_count; i++)
            bmap->mapped_blocks += bmap->ranges[i].last - bmap->ranges[i].first + 1;
        info->mapped_bytes = bk_bmap_mapped_bytes(bmap);
        if (!o->no_checksum)
            rc = hash_ranges(fd, path, bmap, o, &info->threads, err);
    }
    close(fd);
    if (rc < 0)
        bk_bmap_free(bmap);
    return rc;
}
