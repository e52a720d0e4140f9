/* SPDX-License-Identifier: MIT */
/*
 * The copy pipeline on images and disks in memory when nothing goes wrong: what it
 * writes and verifies from a file and from a stream, long ranges checked side by side,
 * short reads and slow disks it must ride out, and what it refuses before writing.
 * Its failures and cancellation are in test_copy_faults.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cpus.h"
#include "copy_fixtures.h"

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

static void on_verified_count(void *ctx, size_t index, const struct bk_range *range)
{
    (void)index;
    (void)range;
    ++*(unsigned *)ctx;
}

/* Where in LOG (N offsets) the first and the last read inside range I of IMG are. */
static void reads_of_range(const struct image *img, size_t i, const uint64_t *log, size_t n,
                           size_t *first, size_t *last)
{
    struct bk_range r = bk_bmap_range(img->bmap, i);
    uint64_t start = r.first * BLOCK, end = (r.last + 1) * BLOCK;
    *first = SIZE_MAX;
    *last = SIZE_MAX;
    for (size_t k = 0; k < n; k++)
        if (log[k] >= start && log[k] < end) {
            if (*first == SIZE_MAX)
                *first = k;
            *last = k;
        }
    if (*first == SIZE_MAX)
        fail_msg("range %zu was never read", i);
}

/*
 * The order of the reader's reads is the pipeline's own decision; the order in which the
 * hashers finish is the scheduler's, so it is not what is checked here.
 */
static void test_long_ranges_side_by_side(void **state)
{
    (void)state;
    struct image img;
    make_long_image(&img);
    enum { LOG_CAP = 4096 };
    uint64_t *log = calloc(LOG_CAP, sizeof *log);
    for (int seekable = 0; seekable < 2; seekable++) {
        struct mem_disk disk;
        struct bk_dest *dest = mem_dest_new(&disk, img.size, FILL, DISK_CAPS);
        struct bk_source *src = mem_source_new(img.data, img.size, seekable);
        size_t reads;
        mem_source_log_reads(src, log, LOG_CAP, &reads);
        struct bk_error err;
        struct bk_copy *job = bk_copy_new(img.bmap, src, dest, &err);
        assert_non_null(job);
        unsigned verified = 0;
        bk_copy_set_verified_fn(job, on_verified_count, &verified);
        if (bk_copy_run(job, &err) != 0)
            fail_msg("copy failed: %s", err.msg);
        assert_copied(&img, &disk);
        const struct bk_copy_stats *st = bk_copy_get_stats(job);
        assert_int_equal(st->ranges_verified, img.bmap->range_count);
        assert_int_equal(st->bytes_written, bk_bmap_mapped_bytes(img.bmap));
        assert_true(st->head_written);
        assert_int_equal(verified, img.bmap->range_count);
        assert_true(reads <= LOG_CAP);
        size_t a_first, a_last, b_first, b_last;
        reads_of_range(&img, LONG_A, log, reads, &a_first, &a_last);
        reads_of_range(&img, LONG_B, log, reads, &b_first, &b_last);
        if (seekable && bk_cpu_count() > 1) {
            /* A file with several hashers: B is read beside A, and its reads end before
               A's do (A is twice as long). */
            assert_true(b_first < a_last);
            assert_true(b_last < a_last);
        } else {
            /* A stream, or a single hasher: in order, every read after the one before. */
            assert_true(a_last < b_first);
            for (size_t k = 1; k < reads; k++)
                assert_true(log[k] > log[k - 1]);
        }
        bk_copy_free(job);
        bk_source_close(src);
        bk_dest_close(dest);
        mem_disk_free(&disk);
    }
    free(log);
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
        cmocka_unit_test(test_long_ranges_side_by_side),
        cmocka_unit_test(test_short_reads_and_slow_disks),
        cmocka_unit_test(test_refusals_before_writing),
        cmocka_unit_test(test_unverifiable_bmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
