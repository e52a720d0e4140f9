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

#include "copy_fixtures.h"

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

/* Mapped bytes where a fault tells most: the edges of the head, of 1 and 4 MiB pieces (the
   head's size and the slots'), of ranges. */
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
    4 << 20,
    (4 << 20) + 4095,
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_errors),
        cmocka_unit_test(test_destination_errors),
        cmocka_unit_test(test_readback_errors),
        cmocka_unit_test(test_damaged_data_is_never_written),
        cmocka_unit_test(test_damage_beside_a_long_range),
        cmocka_unit_test(test_cancel_at_any_point),
        cmocka_unit_test(test_cancel_from_another_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
