/* SPDX-License-Identifier: MIT */
/*
 * The copy pipeline on images and disks in memory, with faults injected at every stage
 * boundary: the source's reads, the destination's writes, flushes and read-back,
 * cancellation at any point, damaged data. Whatever fails, the call fails with the
 * right code and one line, and the image's first MiB never sits complete on the disk.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bmap/bmap_impl.h"
#include "bmapkit/copy.h"
#include "common/cpus.h"
#include "support/fakes.h"

#define BLOCK 4096u
#define HEAD ((uint64_t)BK_COPY_HEAD_BYTES)
#define FILL 0xAA
#define DISK_CAPS (BK_DEST_CAN_READ | BK_DEST_IS_DISK)

struct image {
    uint8_t *data;
    uint64_t size;
    struct bk_bmap *bmap;
};

/* A deterministic, non-repeating byte pattern, so misplaced bytes show. */
static uint8_t pattern(uint64_t i)
{
    uint64_t x = i * 0x9E3779B97F4A7C15ull;
    return (uint8_t)(x >> 56 ^ x >> 13);
}

/* An image of SIZE bytes whose N ranges R (in blocks) hold the pattern, cut at SIZE. */
static void make_image_of(struct image *img, uint64_t size, const struct bk_range *r, size_t n)
{
    struct bk_error err;
    img->size = size;
    img->data = calloc(1, size);
    img->bmap = bk_bmap_new(size, BLOCK, BK_HASH_SHA256, &err);
    assert_non_null(img->bmap);
    struct bk_digest *d = bk_digest_new(BK_HASH_SHA256, &err);
    for (size_t i = 0; i < n; i++) {
        uint64_t start = r[i].first * BLOCK;
        uint64_t end = (r[i].last + 1) * BLOCK < size ? (r[i].last + 1) * BLOCK : size;
        for (uint64_t k = start; k < end; k++)
            img->data[k] = pattern(k);
        uint8_t digest[BK_DIGEST_MAX];
        assert_int_equal(bk_digest_update(d, img->data + start, end - start, &err), 0);
        assert_int_equal(bk_digest_final(d, digest, &err), 0);
        assert_int_equal(bk_bmap_append(img->bmap, r[i].first, r[i].last, digest, &err), 0);
    }
    bk_digest_free(d);
}

/*
 * An image of SIZE bytes: many one-block ranges near the start (the head among them),
 * a few middling ones, a long one over several slots, and a partial last block.
 */
static void make_image(struct image *img, uint64_t size)
{
    uint64_t blocks = (size + BLOCK - 1) / BLOCK;
    struct bk_range r[400];
    size_t n = 0;
    for (uint64_t b = 0; b < 600 && n < 300; b += 2)
        r[n++] = (struct bk_range){b, b};
    r[n++] = (struct bk_range){700, 760};
    r[n++] = (struct bk_range){800, 800 + 3 * 256}; /* about 3 MiB: over several slots */
    r[n++] = (struct bk_range){blocks - 3, blocks - 1};
    make_image_of(img, size, r, n);
}

static void free_image(struct image *img)
{
    free(img->data);
    bk_bmap_free(img->bmap);
}

/* What a run saw, through the callbacks. */
struct seen {
    uint64_t first_done, last_done, last_total;
    unsigned progress_calls;
    bool backwards;
    unsigned verified, mismatches;
    unsigned cancel_calls, cancel_after; /* cancel at call cancel_after (0: never) */
};

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct seen *s = ctx;
    if (s->progress_calls++ == 0)
        s->first_done = done;
    if (done < s->last_done)
        s->backwards = true;
    s->last_done = done;
    s->last_total = total;
}

static void on_verified(void *ctx, size_t index, const struct bk_range *range)
{
    (void)index;
    (void)range;
    ((struct seen *)ctx)->verified++;
}

static void on_mismatch(void *ctx, size_t index, const struct bk_range *range, unsigned attempt)
{
    (void)index;
    (void)range;
    (void)attempt;
    ((struct seen *)ctx)->mismatches++;
}

static bool on_cancel(void *ctx)
{
    struct seen *s = ctx;
    unsigned n = __atomic_add_fetch(&s->cancel_calls, 1, __ATOMIC_RELAXED);
    return s->cancel_after && n >= s->cancel_after;
}

struct run {
    int rc;
    struct bk_error err;
    struct bk_copy_stats stats;
    struct seen seen;
};

static void run_copy(const struct bk_bmap *bmap, struct bk_source *src, struct bk_dest *dest,
                     unsigned readback_retries, bool readback, struct run *out)
{
    struct bk_error err;
    bk_error_clear(&out->err);
    struct bk_copy *job = bk_copy_new(bmap, src, dest, &err);
    assert_non_null(job);
    bk_copy_set_progress_fn(job, on_progress, &out->seen);
    bk_copy_set_verified_fn(job, on_verified, &out->seen);
    bk_copy_set_readback_mismatch_fn(job, on_mismatch, &out->seen);
    bk_copy_set_cancel_fn(job, on_cancel, &out->seen);
    bk_copy_set_readback(job, readback, readback_retries);
    out->rc = bk_copy_run(job, &out->err);
    out->stats = *bk_copy_get_stats(job);
    bk_copy_free(job);
}

/* Every mapped byte of IMG is on DISK, and every unmapped byte kept its old content. */
static void assert_copied(const struct image *img, const struct mem_disk *disk)
{
    const struct bk_bmap *b = img->bmap;
    uint64_t pos = 0;
    for (size_t i = 0; i <= b->range_count; i++) {
        uint64_t start = i < b->range_count ? bk_bmap_range_start(b, i) : img->size;
        for (; pos < start; pos++)
            if (disk->data[pos] != FILL)
                fail_msg("unmapped byte %lu was overwritten", (unsigned long)pos);
        if (i == b->range_count)
            break;
        uint64_t len = bk_bmap_range_bytes(b, i);
        assert_memory_equal(disk->data + start, img->data + start, len);
        pos = start + len;
    }
}

/* The image's first MiB is not on DISK: a failed copy must not look like an image. */
static void assert_no_head(const struct image *img, const struct mem_disk *disk)
{
    assert_true(memcmp(disk->data, img->data, HEAD) != 0);
    /* Its first sector in particular: it is written last of all. */
    assert_true(memcmp(disk->data, img->data, 512) != 0);
}

static void assert_one_line(const struct bk_error *err, enum bk_code code)
{
    if (err->code != code)
        fail_msg("code %d (%s), expected %d: %s", (int)err->code, bk_code_name(err->code),
                 (int)code, err->msg);
    assert_true(err->msg[0] != '\0');
    assert_null(strchr(err->msg, '\n'));
}

static void test_copies_the_mapped_ranges(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 8 << 20);
    for (int seekable = 0; seekable < 2; seekable++) {
        struct mem_disk disk;
        struct bk_dest *dest = mem_dest_new(&disk, img.size, FILL, DISK_CAPS);
        struct bk_source *src = mem_source_new(img.data, img.size, seekable);
        struct run r = {0};
        run_copy(img.bmap, src, dest, 0, true, &r);
        if (r.rc != 0)
            fail_msg("copy failed: %s", r.err.msg);
        assert_copied(&img, &disk);
        uint64_t mapped = bk_bmap_mapped_bytes(img.bmap);
        assert_int_equal(r.stats.bytes_total, mapped);
        assert_int_equal(r.stats.bytes_written, mapped);
        assert_int_equal(r.stats.ranges_verified, img.bmap->range_count);
        assert_int_equal(r.stats.ranges_unchecked, 0);
        assert_int_equal(r.stats.readback_checked, img.bmap->range_count);
        assert_true(r.stats.head_written);
        assert_int_equal(r.seen.verified, img.bmap->range_count);
        /* Progress: 0 first, never backwards, and the total at the end. */
        assert_int_equal(r.seen.first_done, 0);
        assert_false(r.seen.backwards);
        assert_int_equal(r.seen.last_done, mapped);
        assert_int_equal(r.seen.last_total, mapped);
        bk_source_close(src);
        bk_dest_close(dest);
        assert_true(disk.closed);
        mem_disk_free(&disk);
    }
    free_image(&img);
}

static void test_whole_image_of_a_stream(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 8 << 20);
    struct mem_disk disk;
    struct bk_dest *dest = mem_dest_new(&disk, img.size, FILL, DISK_CAPS | BK_DEST_SIZED_BY_IMAGE);
    struct bk_source *src = mem_source_new(img.data, img.size, false);
    struct run r = {0};
    run_copy(NULL, src, dest, 0, false, &r);
    assert_int_equal(r.rc, 0);
    assert_memory_equal(disk.data, img.data, img.size);
    assert_int_equal(r.stats.bytes_written, img.size);
    /* The stream's size is known only at its end, and the file takes it then. */
    assert_int_equal(disk.set_size, (int64_t)img.size);
    bk_source_close(src);
    bk_dest_close(dest);
    mem_disk_free(&disk);
    free_image(&img);
}

/* Run a copy of IMG with fault F on the source or the destination; it must fail. */
static void expect_failure(const struct image *img, const struct fault *f, bool on_source,
                           bool seekable, enum bk_code code)
{
    struct mem_disk disk;
    struct bk_dest *dest = mem_dest_new(&disk, img->size, FILL, DISK_CAPS);
    struct bk_source *src = mem_source_new(img->data, img->size, seekable);
    if (on_source)
        src = fault_source_new(src, f);
    else
        dest = fault_dest_new(dest, f);
    struct run r = {0};
    run_copy(img->bmap, src, dest, 0, f->op == FAULT_DEST_READ, &r);
    if (r.rc == 0)
        fail_msg("a fault at byte %ld, call %ld did not fail the copy", (long)f->at_byte,
                 (long)f->at_call);
    assert_true(fault_fired(on_source ? src : NULL, on_source ? NULL : dest) > 0);
    assert_one_line(&r.err, code);
    assert_false(r.stats.head_written);
    assert_no_head(img, &disk);
    bk_source_close(src);
    bk_dest_close(dest);
    mem_disk_free(&disk);
}

/* Mapped bytes where a fault tells most: the edges of the head, of the slots, of ranges. */
static const int64_t fault_bytes[] = {
    0,
    511,
    2 * 4096,
    254 * 4096 + 4095,
    1 << 20,
    (1 << 20) + 2 * 4096,
    700 * 4096,
    800 * 4096 + 12345,
    (800 + 256) * 4096,
    (800 + 3 * 256) * 4096 + 4095,
};
#define FAULT_BYTES (sizeof fault_bytes / sizeof fault_bytes[0])

static void test_source_errors(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 8 << 20);
    for (size_t i = 0; i < FAULT_BYTES; i++) {
        struct fault f = {FAULT_PREAD, FAULT_ERROR, EIO, fault_bytes[i], -1, 0, 0, 0};
        expect_failure(&img, &f, true, true, BK_E_IO);
        f.op = FAULT_READ;
        expect_failure(&img, &f, true, false, BK_E_IO);
    }
    /* The last mapped byte of the image, read through a stream. */
    struct fault last = {FAULT_READ, FAULT_ERROR, EIO, (int64_t)img.size - 1, -1, 0, 0, 0};
    expect_failure(&img, &last, true, false, BK_E_IO);
    free_image(&img);
}

static void test_destination_errors(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 8 << 20);
    for (size_t i = 0; i < FAULT_BYTES; i++) {
        struct fault f = {FAULT_WRITE, FAULT_ERROR, EIO, fault_bytes[i], -1, 0, 0, 0};
        expect_failure(&img, &f, false, true, BK_E_IO);
        f.err = ENOSPC;
        expect_failure(&img, &f, false, true, BK_E_IO);
        f.kind = FAULT_VANISH;
        expect_failure(&img, &f, false, true, BK_E_IO);
    }
    /* The first write of all (clearing the head)... */
    struct fault first = {FAULT_WRITE, FAULT_ERROR, EIO, -1, 1, 0, 0, 0};
    expect_failure(&img, &first, false, true, BK_E_IO);
    /* ... and the head itself, written last: the second write that covers these bytes. */
    static const int64_t head_bytes[] = {0, 511, 2 * 4096, 100 * 4096, 254 * 4096 + 4095};
    for (size_t i = 0; i < sizeof head_bytes / sizeof head_bytes[0]; i++) {
        struct fault f = {FAULT_WRITE, FAULT_ERROR, EIO, head_bytes[i], -1, 0, 0, 1};
        expect_failure(&img, &f, false, true, BK_E_IO);
    }
    /* Every flush: after clearing the head, before the head, after it. */
    for (int64_t call = 1; call <= 3; call++) {
        struct fault f = {FAULT_FLUSH, FAULT_ERROR, EIO, -1, call, 0, 0, 0};
        struct mem_disk disk;
        struct bk_dest *dest = fault_dest_new(mem_dest_new(&disk, img.size, FILL, DISK_CAPS), &f);
        struct bk_source *src = mem_source_new(img.data, img.size, true);
        struct run r = {0};
        run_copy(img.bmap, src, dest, 0, false, &r);
        assert_int_equal(r.rc, -1);
        assert_one_line(&r.err, BK_E_IO);
        assert_false(r.stats.head_written);
        if (call < 3)
            assert_no_head(&img, &disk);
        bk_source_close(src);
        bk_dest_close(dest);
        mem_disk_free(&disk);
    }
    free_image(&img);
}

static void test_readback_errors(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 8 << 20);
    /* A read error during read-back, and a byte that always reads back wrong. */
    struct fault f = {FAULT_DEST_READ, FAULT_ERROR, EIO, 800 * 4096 + 5, -1, 0, 0, 0};
    expect_failure(&img, &f, false, true, BK_E_IO);
    struct fault bad = {FAULT_DEST_READ, FAULT_CORRUPT, 0, 300 * 4096, -1, 0, 0, 0};
    expect_failure(&img, &bad, false, true, BK_E_VERIFY);

    /* Wrong once, right after the rewrite: the copy succeeds with one mismatch seen. */
    struct fault once = {FAULT_DEST_READ, FAULT_CORRUPT, 0, 300 * 4096, -1, 0, 1, 0};
    struct mem_disk disk;
    struct bk_dest *dest = fault_dest_new(mem_dest_new(&disk, img.size, FILL, DISK_CAPS), &once);
    struct bk_source *src = mem_source_new(img.data, img.size, true);
    struct run r = {0};
    run_copy(img.bmap, src, dest, 2, true, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.seen.mismatches, 1);
    assert_int_equal(r.stats.readback_checked, img.bmap->range_count);
    assert_int_equal(r.stats.readback_failed, 0);
    assert_copied(&img, &disk);
    bk_source_close(src);
    bk_dest_close(dest);
    mem_disk_free(&disk);
    free_image(&img);
}

static void test_damaged_data_is_never_written(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 8 << 20);
    /* Range 150 (block 300) is short: it is checked before any of it is written. */
    uint8_t *bad = malloc(img.size);
    memcpy(bad, img.data, img.size);
    bad[300 * 4096 + 7] ^= 1;
    for (int seekable = 0; seekable < 2; seekable++) {
        struct mem_disk disk;
        struct bk_dest *dest = mem_dest_new(&disk, img.size, FILL, DISK_CAPS);
        struct bk_source *src = mem_source_new(bad, img.size, seekable);
        struct run r = {0};
        run_copy(img.bmap, src, dest, 0, false, &r);
        assert_int_equal(r.rc, -1);
        assert_one_line(&r.err, BK_E_VERIFY);
        assert_non_null(strstr(r.err.msg, "blocks 300-300"));
        for (size_t k = 0; k < BLOCK; k++)
            assert_int_equal(disk.data[300 * 4096 + k], FILL);
        assert_no_head(&img, &disk);
        bk_source_close(src);
        bk_dest_close(dest);
        mem_disk_free(&disk);
    }
    free(bad);
    free_image(&img);
}

/*
 * Long ranges beside each other: A (16 MiB, range 2), then a short range S of 3 MiB
 * (range 4) and B (8 MiB, range 5), C (6 MiB, range 7), small ones between, a partial
 * last block. From a file several hashers check A and what follows it side by side.
 */
#define LONG_A 2
#define LONG_S 4
#define LONG_B 5
static void make_long_image(struct image *img)
{
    const uint64_t size = (40 << 20) - 1000, blocks = (size + BLOCK - 1) / BLOCK;
    const struct bk_range r[] = {
        {0, 0},       {2, 5},       {256, 4351},
        {4400, 4400}, {4410, 5177}, {5300, 7347},
        {7400, 7409}, {7500, 9035}, {blocks - 3, blocks - 1},
    };
    make_image_of(img, size, r, sizeof r / sizeof r[0]);
}

struct order {
    unsigned calls;
    unsigned at[16]; /* call number at which range I was verified, from 1 */
};

static void on_verified_order(void *ctx, size_t index, const struct bk_range *range)
{
    (void)range;
    struct order *o = ctx;
    o->calls++;
    if (index < 16)
        o->at[index] = o->calls;
}

static void test_long_ranges_side_by_side(void **state)
{
    (void)state;
    struct image img;
    make_long_image(&img);
    for (int seekable = 0; seekable < 2; seekable++) {
        struct mem_disk disk;
        struct bk_dest *dest = mem_dest_new(&disk, img.size, FILL, DISK_CAPS);
        struct bk_source *src = mem_source_new(img.data, img.size, seekable);
        struct bk_error err;
        struct bk_copy *job = bk_copy_new(img.bmap, src, dest, &err);
        assert_non_null(job);
        struct order o = {0};
        bk_copy_set_verified_fn(job, on_verified_order, &o);
        if (bk_copy_run(job, &err) != 0)
            fail_msg("copy failed: %s", err.msg);
        assert_copied(&img, &disk);
        const struct bk_copy_stats *st = bk_copy_get_stats(job);
        assert_int_equal(st->ranges_verified, img.bmap->range_count);
        assert_int_equal(st->bytes_written, bk_bmap_mapped_bytes(img.bmap));
        assert_true(st->head_written);
        assert_int_equal(o.calls, img.bmap->range_count);
        /* A stream comes in order; a file with several hashers has B, read beside A,
           finished before A. */
        if (seekable && bk_cpu_count() > 1)
            assert_true(o.at[LONG_B] < o.at[LONG_A]);
        else
            assert_true(o.at[LONG_A] < o.at[LONG_B]);
        bk_copy_free(job);
        bk_source_close(src);
        bk_dest_close(dest);
        mem_disk_free(&disk);
    }
    free_image(&img);
}

/*
 * Damage in a range read beside a long one: the copy fails naming it, before the head;
 * the short range S is checked before any of its bytes are written, as in order.
 */
static void test_damage_beside_a_long_range(void **state)
{
    (void)state;
    struct image img;
    make_long_image(&img);
    const struct {
        size_t range;
        uint64_t byte;
        const char *blocks;
    } spots[] = {
        {LONG_S, 4410 * BLOCK + 5, "blocks 4410-5177"},
        {LONG_S, 5177 * BLOCK + 4095, "blocks 4410-5177"},
        {LONG_B, 7347 * BLOCK + 1, "blocks 5300-7347"},
        {LONG_A, 256 * BLOCK, "blocks 256-4351"},
    };
    uint8_t *bad = malloc(img.size);
    for (size_t k = 0; k < sizeof spots / sizeof spots[0]; k++) {
        memcpy(bad, img.data, img.size);
        bad[spots[k].byte] ^= 0x10;
        for (int seekable = 0; seekable < 2; seekable++) {
            struct mem_disk disk;
            struct bk_dest *dest = mem_dest_new(&disk, img.size, FILL, DISK_CAPS);
            struct bk_source *src = mem_source_new(bad, img.size, seekable);
            struct run r = {0};
            run_copy(img.bmap, src, dest, 0, false, &r);
            assert_int_equal(r.rc, -1);
            assert_one_line(&r.err, BK_E_VERIFY);
            if (!strstr(r.err.msg, spots[k].blocks))
                fail_msg("damage at byte %lu: %s", (unsigned long)spots[k].byte, r.err.msg);
            assert_false(r.stats.head_written);
            assert_no_head(&img, &disk);
            if (spots[k].range == LONG_S) {
                uint64_t start = bk_bmap_range_start(img.bmap, LONG_S);
                for (uint64_t b = 0; b < bk_bmap_range_bytes(img.bmap, LONG_S); b++)
                    if (disk.data[start + b] != FILL)
                        fail_msg("byte %lu of the damaged short range was written",
                                 (unsigned long)(start + b));
            }
            bk_source_close(src);
            bk_dest_close(dest);
            mem_disk_free(&disk);
        }
    }
    free(bad);
    free_image(&img);
}

static void test_cancel_at_any_point(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 8 << 20);
    unsigned cancelled = 0, finished = 0;
    for (unsigned after = 1; after < 400; after += after < 20 ? 1 : 37) {
        struct mem_disk disk;
        struct bk_dest *dest = mem_dest_new(&disk, img.size, FILL, DISK_CAPS);
        struct bk_source *src = mem_source_new(img.data, img.size, after % 2);
        struct run r = {.seen = {.cancel_after = after}};
        run_copy(img.bmap, src, dest, 0, after % 3 == 0, &r);
        if (r.rc == 0) {
            /* Asked too late to matter: then the copy is whole. */
            assert_copied(&img, &disk);
            assert_true(r.stats.head_written);
            finished++;
        } else {
            assert_one_line(&r.err, BK_E_CANCELLED);
            assert_false(r.stats.head_written);
            assert_no_head(&img, &disk);
            cancelled++;
        }
        bk_source_close(src);
        bk_dest_close(dest);
        mem_disk_free(&disk);
    }
    assert_true(cancelled > 10);
    free_image(&img);
}

struct canceller {
    struct bk_copy *job;
    unsigned delay_ms;
};

static void *cancel_later(void *arg)
{
    struct canceller *c = arg;
    struct timespec ts = {0, (long)c->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    bk_copy_cancel(c->job);
    return NULL;
}

static void test_cancel_from_another_thread(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 8 << 20);
    /* A slow disk, so that the copy is still running when the other thread asks. */
    struct fault slow = {FAULT_WRITE, FAULT_SLOW, 0, -1, -1, 2000, 0, 0};
    struct mem_disk disk;
    struct bk_dest *dest = fault_dest_new(mem_dest_new(&disk, img.size, FILL, DISK_CAPS), &slow);
    struct bk_source *src = mem_source_new(img.data, img.size, true);
    struct bk_error err;
    struct bk_copy *job = bk_copy_new(img.bmap, src, dest, &err);
    struct canceller c = {job, 50};
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, &c);
    assert_int_equal(bk_copy_run(job, &err), -1);
    pthread_join(t, NULL);
    assert_one_line(&err, BK_E_CANCELLED);
    assert_false(bk_copy_get_stats(job)->head_written);
    assert_no_head(&img, &disk);
    /* A job runs once. */
    assert_int_equal(bk_copy_run(job, &err), -1);
    assert_int_equal(err.code, BK_E_INVALID);
    bk_copy_free(job);
    bk_source_close(src);
    bk_dest_close(dest);
    mem_disk_free(&disk);
    free_image(&img);
}

static void test_short_reads_and_slow_disks(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 8 << 20);
    struct fault faults[] = {
        {FAULT_PREAD, FAULT_SHORT, 0, -1, 0, 0, 0, 0},
        {FAULT_READ, FAULT_SHORT, 0, -1, 0, 0, 0, 0},
        {FAULT_WRITE, FAULT_SLOW, 0, -1, -1, 300, 0, 0},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        struct mem_disk disk;
        struct bk_dest *dest = mem_dest_new(&disk, img.size, FILL, DISK_CAPS);
        struct bk_source *src = mem_source_new(img.data, img.size, faults[i].op != FAULT_READ);
        if (faults[i].op == FAULT_WRITE)
            dest = fault_dest_new(dest, &faults[i]);
        else
            src = fault_source_new(src, &faults[i]);
        struct run r = {0};
        run_copy(img.bmap, src, dest, 0, false, &r);
        if (r.rc != 0)
            fail_msg("fault %zu: %s", i, r.err.msg);
        assert_copied(&img, &disk);
        if (faults[i].op != FAULT_WRITE)
            assert_true(fault_fired(src, NULL) > 100);
        bk_source_close(src);
        bk_dest_close(dest);
        mem_disk_free(&disk);
    }
    free_image(&img);
}

static void test_refusals_before_writing(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 8 << 20);
    struct mem_disk disk;
    struct bk_error err;
    /* A source of another size than the bmap says. */
    struct bk_dest *dest = mem_dest_new(&disk, img.size, FILL, DISK_CAPS);
    struct bk_source *src = mem_source_new(img.data, img.size - 1, true);
    struct run r = {0};
    run_copy(img.bmap, src, dest, 0, false, &r);
    assert_one_line(&r.err, BK_E_FORMAT);
    assert_int_equal(disk.writes, 0);
    bk_source_close(src);
    bk_dest_close(dest);
    mem_disk_free(&disk);
    /* Read-back where the destination cannot read. */
    dest = mem_dest_new(&disk, img.size, FILL, BK_DEST_IS_DISK);
    src = mem_source_new(img.data, img.size, true);
    run_copy(img.bmap, src, dest, 0, true, &r);
    assert_one_line(&r.err, BK_E_INVALID);
    assert_int_equal(disk.writes, 0);
    /* No source or destination. */
    assert_null(bk_copy_new(img.bmap, NULL, dest, &err));
    assert_one_line(&err, BK_E_INVALID);
    bk_source_close(src);
    bk_dest_close(dest);
    mem_disk_free(&disk);
    free_image(&img);
}

/* A bmap without any range checksum: refused while verifying, copied when told not to. */
static void test_unverifiable_bmap(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 8 << 20);
    struct bk_error err;
    struct bk_bmap *bare = bk_bmap_new(img.size, BLOCK, BK_HASH_NONE, &err);
    assert_non_null(bare);
    assert_int_equal(bk_bmap_append(bare, 0, 9, NULL, &err), 0);
    assert_int_equal(bk_bmap_append(bare, 100, 120, NULL, &err), 0);
    assert_int_equal(BK_E_UNVERIFIABLE, 12); /* pinned: part of the ABI */
    assert_string_equal(bk_code_name(BK_E_UNVERIFIABLE), "unverifiable");

    assert_int_equal(bk_copy_check_verifiable(bare, true, false, &err), -1);
    assert_one_line(&err, BK_E_UNVERIFIABLE);
    assert_int_equal(bk_copy_check_verifiable(bare, false, true, &err), -1);
    assert_one_line(&err, BK_E_INVALID);
    assert_int_equal(bk_copy_check_verifiable(bare, false, false, &err), 0);
    assert_int_equal(bk_copy_check_verifiable(img.bmap, true, true, &err), 0);

    struct mem_disk disk;
    struct bk_dest *dest = mem_dest_new(&disk, img.size, FILL, DISK_CAPS);
    struct bk_source *src = mem_source_new(img.data, img.size, true);
    struct run r = {0};
    run_copy(bare, src, dest, 0, false, &r);
    assert_int_equal(r.rc, -1);
    assert_one_line(&r.err, BK_E_UNVERIFIABLE);
    assert_int_equal(disk.writes, 0);
    bk_source_close(src);

    src = mem_source_new(img.data, img.size, true);
    struct bk_copy *job = bk_copy_new(bare, src, dest, &err);
    assert_non_null(job);
    bk_copy_set_verify(job, false);
    bk_error_clear(&err);
    assert_int_equal(bk_copy_run(job, &err), 0);
    assert_int_equal(bk_copy_get_stats(job)->ranges_verified, 0);
    assert_int_equal(bk_copy_get_stats(job)->ranges_unchecked, 2);
    assert_memory_equal(disk.data + 100 * BLOCK, img.data + 100 * BLOCK, 21 * BLOCK);
    bk_copy_free(job);
    bk_source_close(src);
    bk_dest_close(dest);
    mem_disk_free(&disk);
    bk_bmap_free(bare);
    free_image(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copies_the_mapped_ranges),
        cmocka_unit_test(test_whole_image_of_a_stream),
        cmocka_unit_test(test_source_errors),
        cmocka_unit_test(test_destination_errors),
        cmocka_unit_test(test_readback_errors),
        cmocka_unit_test(test_damaged_data_is_never_written),
        cmocka_unit_test(test_long_ranges_side_by_side),
        cmocka_unit_test(test_damage_beside_a_long_range),
        cmocka_unit_test(test_cancel_at_any_point),
        cmocka_unit_test(test_cancel_from_another_thread),
        cmocka_unit_test(test_short_reads_and_slow_disks),
        cmocka_unit_test(test_refusals_before_writing),
        cmocka_unit_test(test_unverifiable_bmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
