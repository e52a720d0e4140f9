/* SPDX-License-Identifier: MIT */
/*
 * Forced ranges and zeroing the unmapped ranges, on images and disks in memory: what
 * lands where, from a seekable source and from a stream, read-back of forced ranges
 * against what was read, the ways of zeroing and their order, failures on the way.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bmap/bmap_impl.h"
#include "bmapkit/copy.h"
#include "support/fakes.h"

#define BLOCK 4096u
#define FILL 0xAA
#define DISK_CAPS (BK_DEST_CAN_READ | BK_DEST_IS_DISK)
#define SIZE ((uint64_t)(4 << 20) + 1000)

/* Every byte of the image has data, also where the bmap leaves it out. */
static uint8_t *image;
static struct bk_bmap *bmap;
static const struct bk_range mapped[] = {{0, 3}, {100, 109}, {500, 520}};

static uint8_t pattern(uint64_t i)
{
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull;
    return (uint8_t)(x >> 56 ^ x >> 13) | 1; /* never 0: zeros show */
}

static int setup(void **state)
{
    (void)state;
    struct bk_error err;
    image = malloc(SIZE);
    for (uint64_t i = 0; i < SIZE; i++)
        image[i] = pattern(i);
    bmap = bk_bmap_new(SIZE, BLOCK, BK_HASH_SHA256, &err);
    struct bk_digest *d = bk_digest_new(BK_HASH_SHA256, &err);
    for (size_t i = 0; i < sizeof mapped / sizeof *mapped; i++) {
        uint8_t digest[BK_DIGEST_MAX];
        uint64_t start = mapped[i].first * BLOCK, end = (mapped[i].last + 1) * BLOCK;
        bk_digest_update(d, image + start, end - start, &err);
        bk_digest_final(d, digest, &err);
        bk_bmap_append(bmap, mapped[i].first, mapped[i].last, digest, &err);
    }
    bk_digest_free(d);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(image);
    bk_bmap_free(bmap);
    return 0;
}

static bool block_in(uint64_t block, const struct bk_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (block >= r[i].first && block <= r[i].last)
            return true;
    return false;
}

/* The disk holds the image in the mapped and WRITTEN blocks, and OTHER elsewhere. */
static void assert_disk(const struct mem_disk *disk, const struct bk_range *written, size_t n,
                        int other)
{
    for (uint64_t i = 0; i < SIZE; i++) {
        uint64_t b = i / BLOCK;
        bool in = block_in(b, mapped, 3) || block_in(b, written, n);
        int want = in ? image[i] : other;
        if (disk->data[i] != want)
            fail_msg("byte %lu (block %lu) is %d, expected %d", (unsigned long)i, (unsigned long)b,
                     disk->data[i], want);
    }
}

struct job_setup {
    bool seekable, readback, zero;
    unsigned retries;
    const uint64_t (*forced)[2]; /* offset, length */
    size_t n_forced;
};

static int run(const struct job_setup *s, struct bk_dest *dest, struct bk_copy_stats *stats,
               struct bk_error *err)
{
    struct bk_source *src = mem_source_new(image, SIZE, s->seekable);
    struct bk_copy *job = bk_copy_new(bmap, src, dest, err);
    assert_non_null(job);
    for (size_t i = 0; i < s->n_forced; i++)
        assert_int_equal(bk_copy_add_forced_range(job, s->forced[i][0], s->forced[i][1], err), 0);
    bk_copy_set_readback(job, s->readback, s->retries);
    bk_copy_set_zero_unmapped(job, s->zero);
    bk_error_clear(err);
    int rc = bk_copy_run(job, err);
    *stats = *bk_copy_get_stats(job);
    bk_copy_free(job);
    bk_source_close(src);
    return rc;
}

/* Within a block, overlapping a mapped range at its end and at its start, the last block. */
static const uint64_t forced[][2] = {
    {50 * BLOCK + 10, 10 * BLOCK - 15},
    {105 * BLOCK, 10 * BLOCK},
    {520 * BLOCK, 180 * BLOCK},
    {1024 * BLOCK, 1000},
    {55 * BLOCK, 2 * BLOCK}, /* inside the first: merged */
};
static const struct bk_range forced_blocks[] = {{50, 59}, {110, 114}, {521, 699}, {1024, 1024}};

static void test_forced_ranges(void **state)
{
    (void)state;
    for (int seekable = 0; seekable < 2; seekable++) {
        struct mem_disk disk;
        struct bk_dest *dest = mem_dest_new(&disk, SIZE, FILL, DISK_CAPS);
        struct job_setup s = {
            .seekable = seekable, .readback = true, .forced = forced, .n_forced = 5};
        struct bk_copy_stats st;
        struct bk_error err;
        if (run(&s, dest, &st, &err) != 0)
            fail_msg("%s", err.msg);
        assert_disk(&disk, forced_blocks, 4, FILL);
        assert_int_equal(st.ranges_forced, 4);
        assert_int_equal(st.forced_bytes, (10 + 5 + 179) * BLOCK + 1000);
        assert_int_equal(st.ranges_unchecked, 0);
        assert_int_equal(st.ranges_verified, 3);
        assert_int_equal(st.readback_checked, 7);
        bk_dest_close(dest);
        mem_disk_free(&disk);
    }
}

static void test_forced_ranges_read_back(void **state)
{
    (void)state;
    for (int seekable = 0; seekable < 2; seekable++) {
        /* A byte of a forced range that always reads back wrong. */
        struct fault bad = {FAULT_DEST_READ, FAULT_CORRUPT, 0, 55 * BLOCK + 7, -1, 0, 0, 0};
        struct mem_disk disk;
        struct bk_dest *dest = fault_dest_new(mem_dest_new(&disk, SIZE, FILL, DISK_CAPS), &bad);
        struct job_setup s = {
            .seekable = seekable, .readback = true, .retries = 1, .forced = forced, .n_forced = 1};
        struct bk_copy_stats st;
        struct bk_error err;
        assert_int_equal(run(&s, dest, &st, &err), -1);
        assert_int_equal(err.code, BK_E_VERIFY);
        assert_true(memcmp(disk.data, image, 512) != 0);
        assert_false(st.head_written);
        bk_dest_close(dest);
        mem_disk_free(&disk);
    }
    /* Wrong once: rewritten from a seekable image and then right. */
    struct fault once = {FAULT_DEST_READ, FAULT_CORRUPT, 0, 55 * BLOCK + 7, -1, 0, 1, 0};
    struct mem_disk disk;
    struct bk_dest *dest = fault_dest_new(mem_dest_new(&disk, SIZE, FILL, DISK_CAPS), &once);
    struct job_setup s = {
        .seekable = true, .readback = true, .retries = 1, .forced = forced, .n_forced = 1};
    struct bk_copy_stats st;
    struct bk_error err;
    if (run(&s, dest, &st, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(st.readback_checked, 4);
    assert_int_equal(fault_fired(NULL, dest), 1);
    bk_dest_close(dest);
    mem_disk_free(&disk);
}

static void test_forced_range_refusals(void **state)
{
    (void)state;
    struct mem_disk disk;
    struct bk_dest *dest = mem_dest_new(&disk, SIZE, FILL, DISK_CAPS);
    struct bk_source *src = mem_source_new(image, SIZE, true);
    struct bk_error err;
    struct bk_copy *job = bk_copy_new(bmap, src, dest, &err);
    assert_int_equal(bk_copy_add_forced_range(job, 0, 0, &err), -1);
    assert_int_equal(err.code, BK_E_INVALID);
    assert_int_equal(bk_copy_add_forced_range(job, SIZE - 10, 11, &err), -1);
    assert_int_equal(err.code, BK_E_INVALID);
    assert_non_null(strstr(err.msg, "past the end of the image"));
    assert_int_equal(bk_copy_add_forced_range(job, UINT64_MAX, 2, &err), -1);
    assert_int_equal(bk_copy_add_forced_range(job, SIZE - 10, 10, &err), 0);
    bk_copy_free(job);
    bk_source_close(src);
    bk_dest_close(dest);
    mem_disk_free(&disk);
}

/* A disk with the fast ways: punch and zero set zeros and count, or refuse. */
static struct {
    unsigned punches, zeros;
    bool refuse_punch;
} fast;

static int fast_punch(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err)
{
    struct mem_disk *m = d->priv;
    fast.punches++;
    if (fast.refuse_punch)
        return bk_error_set(err, BK_E_UNSUPPORTED, 0, "no punching here");
    assert_int_equal(offset % 4096, 0);
    assert_int_equal(len % 4096, 0);
    memset(m->data + offset, 0, len);
    return 0;
}

static int fast_zero(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err)
{
    (void)err;
    struct mem_disk *m = d->priv;
    fast.zeros++;
    memset(m->data + offset, 0, len);
    return 0;
}

static struct bk_dest_ops fast_ops;

static struct bk_dest *fast_dest_new(struct mem_disk *disk)
{
    struct bk_dest *d = mem_dest_new(disk, SIZE + 8192, FILL, DISK_CAPS | BK_DEST_CAN_ZERO);
    fast_ops = *d->ops;
    fast_ops.punch = fast_punch;
    fast_ops.zero = fast_zero;
    d->ops = &fast_ops;
    memset(&fast, 0, sizeof fast);
    return d;
}

static void test_zero_unmapped(void **state)
{
    (void)state;
    const uint64_t unmapped = SIZE - (4 + 10 + 21) * BLOCK;
    /* Written zeros where the disk has no faster way, with forced ranges, from a stream. */
    struct mem_disk disk;
    struct bk_dest *dest = mem_dest_new(&disk, SIZE, FILL, DISK_CAPS);
    struct job_setup s = {.zero = true, .forced = forced, .n_forced = 4};
    struct bk_copy_stats st;
    struct bk_error err;
    if (run(&s, dest, &st, &err) != 0)
        fail_msg("%s", err.msg);
    assert_disk(&disk, forced_blocks, 4, 0);
    assert_int_equal(st.zeroed_bytes, unmapped - st.forced_bytes);
    assert_int_equal(st.zeroed_written, st.zeroed_bytes);
    bk_dest_close(dest);
    mem_disk_free(&disk);

    /* Punching the aligned part, the unaligned end written; past the image untouched. */
    dest = fast_dest_new(&disk);
    s = (struct job_setup){.seekable = true, .zero = true};
    if (run(&s, dest, &st, &err) != 0)
        fail_msg("%s", err.msg);
    assert_disk(&disk, NULL, 0, 0);
    for (uint64_t i = SIZE; i < SIZE + 8192; i++)
        assert_int_equal(disk.data[i], FILL);
    assert_int_equal(st.zeroed_bytes, unmapped);
    assert_int_equal(st.zeroed_written, 1000);
    assert_int_equal(st.zeroed_released, unmapped - 1000);
    assert_int_equal(fast.punches, 3);
    bk_dest_close(dest);
    mem_disk_free(&disk);

    /* Punching refused once: not asked again, the zero command does the rest. */
    dest = fast_dest_new(&disk);
    fast.refuse_punch = true;
    if (run(&s, dest, &st, &err) != 0)
        fail_msg("%s", err.msg);
    assert_disk(&disk, NULL, 0, 0);
    assert_int_equal(fast.punches, 1);
    assert_int_equal(fast.zeros, 3);
    assert_int_equal(st.zeroed_offloaded, unmapped - 1000);
    bk_dest_close(dest);
    mem_disk_free(&disk);
}

static void test_zeroing_fails(void **state)
{
    (void)state;
    /* A write of zeros fails: one line, and the head was never written. */
    struct fault f = {FAULT_WRITE, FAULT_ERROR, EIO, 300 * BLOCK, -1, 0, 0, 0};
    struct mem_disk disk;
    struct bk_dest *dest = fault_dest_new(mem_dest_new(&disk, SIZE, FILL, DISK_CAPS), &f);
    struct job_setup s = {.seekable = true, .zero = true};
    struct bk_copy_stats st;
    struct bk_error err;
    assert_int_equal(run(&s, dest, &st, &err), -1);
    assert_int_equal(err.code, BK_E_IO);
    assert_non_null(strstr(err.msg, "unmapped ranges"));
    assert_null(strchr(err.msg, '\n'));
    assert_false(st.head_written);
    assert_true(memcmp(disk.data, image, 4 * BLOCK) != 0);
    assert_int_equal(fault_fired(NULL, dest), 1);
    bk_dest_close(dest);
    mem_disk_free(&disk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forced_ranges),
        cmocka_unit_test(test_forced_ranges_read_back),
        cmocka_unit_test(test_forced_range_refusals),
        cmocka_unit_test(test_zero_unmapped),
        cmocka_unit_test(test_zeroing_fails),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
