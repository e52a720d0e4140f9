/* SPDX-License-Identifier: MIT */
/*
 * One copy job writing several destinations in memory: each gets the image and its own
 * result; one that fails (a write error, a vanishing disk, a failed head, read-back that
 * differs) is dropped with its own error while the others finish, and a slow one only
 * sets the pace.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "copy_fixtures.h"

#define MAXD 6

/* Short ranges across the head, a middling one and one over several slots. */
static void make_many_image(struct image *img, uint64_t size)
{
    struct bk_range r[200];
    size_t n = 0;
    for (uint64_t b = 0; b < 400; b += 3)
        r[n++] = (struct bk_range){b, b + 1};
    r[n++] = (struct bk_range){500, 700};
    r[n++] = (struct bk_range){900, 900 + 4 * 256};
    make_image_of(img, size, r, n);
}

/* What the per-destination callbacks saw. */
struct dest_seen {
    unsigned done_calls[MAXD];
    bool done_failed[MAXD];
    unsigned mismatches[MAXD];
};

static void on_dest_done(void *ctx, size_t dest, const struct bk_error *error)
{
    struct dest_seen *s = ctx;
    assert_true(dest < MAXD);
    s->done_calls[dest]++;
    s->done_failed[dest] = error != NULL;
}

static void on_dest_mismatch(void *ctx, size_t dest, size_t index, const struct bk_range *range,
                             unsigned attempt)
{
    (void)index;
    (void)range;
    (void)attempt;
    ((struct dest_seen *)ctx)->mismatches[dest]++;
}

/* N destinations, faults[i] on destination i where given (NULL: none). */
struct many {
    size_t n;
    struct mem_disk disks[MAXD];
    struct bk_dest *dests[MAXD];
    int rc;
    struct bk_error err;
    int results[MAXD];
    struct bk_error errors[MAXD];
    struct bk_copy_stats stats[MAXD];
    struct bk_copy_stats total;
    struct dest_seen seen;
};

static void run_many(const struct image *img, bool seekable, size_t n,
                     const struct fault *const *faults, bool readback, struct many *m)
{
    memset(m, 0, sizeof *m);
    m->n = n;
    struct bk_error err;
    for (size_t i = 0; i < n; i++) {
        m->dests[i] = mem_dest_new(&m->disks[i], img->size, FILL, DISK_CAPS);
        if (faults && faults[i])
            m->dests[i] = fault_dest_new(m->dests[i], faults[i]);
    }
    struct bk_source *src = mem_source_new(img->data, img->size, seekable);
    struct bk_copy *job = bk_copy_new(img->bmap, src, m->dests[0], &err);
    assert_non_null(job);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(bk_copy_add_dest(job, m->dests[i], &err), (int)i);
    assert_int_equal(bk_copy_dest_count(job), n);
    bk_copy_set_readback(job, readback, 0);
    bk_copy_set_dest_done_fn(job, on_dest_done, &m->seen);
    bk_copy_set_dest_mismatch_fn(job, on_dest_mismatch, &m->seen);
    bk_error_clear(&m->err);
    m->rc = bk_copy_run(job, &m->err);
    for (size_t i = 0; i < n; i++) {
        bk_error_clear(&m->errors[i]);
        m->results[i] = bk_copy_get_dest_result(job, i, &m->errors[i]);
        m->stats[i] = *bk_copy_get_dest_stats(job, i);
    }
    assert_null(bk_copy_get_dest_stats(job, n));
    m->total = *bk_copy_get_stats(job);
    bk_copy_free(job);
    bk_source_close(src);
}

static void free_many(struct many *m)
{
    for (size_t i = 0; i < m->n; i++) {
        bk_dest_close(m->dests[i]);
        mem_disk_free(&m->disks[i]);
    }
}

static void test_every_destination_gets_the_image(void **state)
{
    (void)state;
    struct image img;
    make_many_image(&img, 8 << 20);
    uint64_t mapped = bk_bmap_mapped_bytes(img.bmap);
    for (int seekable = 0; seekable < 2; seekable++) {
        struct many m;
        run_many(&img, seekable, 4, NULL, true, &m);
        if (m.rc != 0)
            fail_msg("copy failed: %s", m.err.msg);
        for (size_t i = 0; i < 4; i++) {
            assert_int_equal(m.results[i], 0);
            assert_copied(&img, &m.disks[i]);
            assert_int_equal(m.stats[i].bytes_written, mapped);
            assert_int_equal(m.stats[i].readback_checked, img.bmap->range_count);
            assert_int_equal(m.stats[i].ranges_verified, img.bmap->range_count);
            assert_true(m.stats[i].head_written);
            assert_int_equal(m.seen.done_calls[i], 1);
            assert_false(m.seen.done_failed[i]);
            /* Each destination got its bytes once, after zeros over the head's mapped part. */
            assert_true(m.disks[i].written > mapped && m.disks[i].written <= mapped + HEAD);
        }
        assert_int_equal(m.total.bytes_written, 4 * mapped);
        free_many(&m);
    }
    free_image(&img);
}

/* Destination FAILING gets fault F; the others must finish and verify. */
static void expect_one_dropped(const struct image *img, size_t n, size_t failing,
                               const struct fault *f, bool readback, enum bk_code code)
{
    const struct fault *faults[MAXD] = {0};
    faults[failing] = f;
    struct many m;
    run_many(img, true, n, faults, readback, &m);
    if (m.rc != -1)
        fail_msg("fault op %d kind %d at byte %ld call %ld on %zu of %zu did not fail", (int)f->op,
                 (int)f->kind, (long)f->at_byte, (long)f->at_call, failing, n);
    assert_int_equal(m.err.code, code);
    assert_true(fault_fired(NULL, m.dests[failing]) > 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(m.seen.done_calls[i], 1);
        if (i == failing) {
            assert_int_equal(m.results[i], -1);
            assert_int_equal(m.errors[i].code, code);
            assert_null(strchr(m.errors[i].msg, '\n'));
            assert_true(m.seen.done_failed[i]);
            assert_false(m.stats[i].head_written);
            assert_no_head(img, &m.disks[i]);
        } else {
            if (m.results[i] != 0)
                fail_msg("destination %zu failed too: %s", i, m.errors[i].msg);
            assert_false(m.seen.done_failed[i]);
            assert_copied(img, &m.disks[i]);
            assert_true(m.stats[i].head_written);
            assert_int_equal(m.stats[i].bytes_written, bk_bmap_mapped_bytes(img->bmap));
        }
    }
    free_many(&m);
}

static void test_a_failing_destination_is_dropped(void **state)
{
    (void)state;
    struct image img;
    make_many_image(&img, 8 << 20);
    static const int64_t at[] = {0, 6 * 4096, 1 << 20, 600 * 4096, (900 + 700) * 4096};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        struct fault eio = {FAULT_WRITE, FAULT_ERROR, EIO, at[i], -1, 0, 0, 0};
        expect_one_dropped(&img, 3, i % 3, &eio, false, BK_E_IO);
        struct fault gone = {FAULT_WRITE, FAULT_VANISH, 0, at[i], -1, 0, 0, 0};
        expect_one_dropped(&img, 4, 3 - i % 4, &gone, false, BK_E_IO);
    }
    /* Clearing the head (the first write), the head itself, and every flush. */
    struct fault first = {FAULT_WRITE, FAULT_ERROR, EIO, -1, 1, 0, 0, 0};
    expect_one_dropped(&img, 3, 1, &first, false, BK_E_IO);
    struct fault head = {FAULT_WRITE, FAULT_ERROR, EIO, 0, -1, 0, 0, 1};
    expect_one_dropped(&img, 3, 2, &head, false, BK_E_IO);
    for (int64_t call = 1; call <= 2; call++) {
        struct fault flush = {FAULT_FLUSH, FAULT_ERROR, EIO, -1, call, 0, 0, 0};
        expect_one_dropped(&img, 3, 0, &flush, false, BK_E_IO);
    }
    /* Read-back that differs on one disk. */
    struct fault corrupt = {FAULT_DEST_READ, FAULT_CORRUPT, 0, 950 * 4096, -1, 0, 0, 0};
    expect_one_dropped(&img, 3, 1, &corrupt, true, BK_E_VERIFY);
    free_image(&img);
}

static void test_mismatch_names_the_destination(void **state)
{
    (void)state;
    struct image img;
    make_many_image(&img, 8 << 20);
    struct fault corrupt = {FAULT_DEST_READ, FAULT_CORRUPT, 0, 950 * 4096, -1, 0, 0, 0};
    const struct fault *faults[MAXD] = {NULL, NULL, &corrupt};
    struct many m;
    run_many(&img, true, 3, faults, true, &m);
    assert_int_equal(m.seen.mismatches[0], 0);
    assert_int_equal(m.seen.mismatches[1], 0);
    assert_int_equal(m.seen.mismatches[2], 1);
    assert_int_equal(m.stats[2].readback_failed, 1);
    assert_int_equal(m.total.readback_failed, 1);
    free_many(&m);
    free_image(&img);
}

static void test_slow_destination_sets_the_pace(void **state)
{
    (void)state;
    struct image img;
    make_many_image(&img, 8 << 20);
    struct fault slow = {FAULT_WRITE, FAULT_SLOW, 0, -1, 0, 300, 0, 0};
    const struct fault *faults[MAXD] = {NULL, &slow, NULL};
    struct many m;
    run_many(&img, false, 3, faults, false, &m);
    assert_int_equal(m.rc, 0);
    for (size_t i = 0; i < 3; i++)
        assert_copied(&img, &m.disks[i]);
    assert_true(m.stats[1].elapsed_ns >= m.stats[0].elapsed_ns);
    free_many(&m);
    free_image(&img);
}

static void test_all_failing_stops_the_copy(void **state)
{
    (void)state;
    struct image img;
    make_many_image(&img, 8 << 20);
    struct fault a = {FAULT_WRITE, FAULT_ERROR, EIO, 600 * 4096, -1, 0, 0, 0};
    struct fault b = {FAULT_WRITE, FAULT_ERROR, ENOSPC, 1 << 20, -1, 0, 0, 0};
    const struct fault *faults[MAXD] = {&a, &b};
    struct many m;
    run_many(&img, false, 2, faults, false, &m);
    assert_int_equal(m.rc, -1);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(m.results[i], -1);
        assert_no_head(&img, &m.disks[i]);
        assert_int_equal(m.seen.done_calls[i], 1);
    }
    free_many(&m);
    free_image(&img);
}

/* Damage in the image is everyone's failure: nothing of it is written anywhere. */
static void test_damaged_image_fails_every_destination(void **state)
{
    (void)state;
    struct image img;
    make_many_image(&img, 8 << 20);
    img.data[3 * 4096 + 10] ^= 1;
    struct many m;
    run_many(&img, true, 3, NULL, false, &m);
    assert_int_equal(m.rc, -1);
    assert_int_equal(m.err.code, BK_E_VERIFY);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(m.results[i], -1);
        assert_int_equal(m.errors[i].code, BK_E_VERIFY);
        assert_false(m.stats[i].head_written);
    }
    free_many(&m);
    free_image(&img);
}

static void test_add_dest_refusals(void **state)
{
    (void)state;
    struct image img;
    make_many_image(&img, 8 << 20);
    struct mem_disk d0, d1;
    struct bk_dest *a = mem_dest_new(&d0, img.size, FILL, DISK_CAPS);
    struct bk_dest *b = mem_dest_new(&d1, img.size, FILL, DISK_CAPS);
    struct bk_source *src = mem_source_new(img.data, img.size, true);
    struct bk_error err;
    struct bk_copy *job = bk_copy_new(img.bmap, src, a, &err);
    assert_non_null(job);
    assert_int_equal(bk_copy_add_dest(job, a, &err), -1);
    assert_int_equal(err.code, BK_E_INVALID);
    assert_int_equal(bk_copy_add_dest(job, NULL, &err), -1);
    assert_int_equal(bk_copy_get_dest_result(job, 0, &err), -1);
    assert_int_equal(bk_copy_add_dest(job, b, &err), 1);
    assert_int_equal(bk_copy_add_dest(job, b, &err), -1);
    assert_int_equal(bk_copy_run(job, &err), 0);
    assert_int_equal(bk_copy_add_dest(job, b, &err), -1);
    assert_int_equal(bk_copy_get_dest_result(job, 2, &err), -1);
    assert_int_equal(bk_copy_get_dest_result(job, 1, &err), 0);
    bk_copy_free(job);
    bk_source_close(src);
    bk_dest_close(a);
    bk_dest_close(b);
    mem_disk_free(&d0);
    mem_disk_free(&d1);
    free_image(&img);
}

/* Without a bmap, from a stream: each file takes the stream's size at its end. */
static void test_whole_stream_to_several(void **state)
{
    (void)state;
    struct image img;
    make_many_image(&img, 8 << 20);
    struct mem_disk disks[2];
    struct bk_dest *d[2];
    for (int i = 0; i < 2; i++)
        d[i] = mem_dest_new(&disks[i], img.size, FILL, DISK_CAPS | BK_DEST_SIZED_BY_IMAGE);
    struct bk_source *src = mem_source_new(img.data, img.size, false);
    struct bk_error err;
    struct bk_copy *job = bk_copy_new(NULL, src, d[0], &err);
    assert_int_equal(bk_copy_add_dest(job, d[1], &err), 1);
    assert_int_equal(bk_copy_run(job, &err), 0);
    for (int i = 0; i < 2; i++) {
        assert_memory_equal(disks[i].data, img.data, img.size);
        assert_int_equal(disks[i].set_size, (int64_t)img.size);
        bk_dest_close(d[i]);
        mem_disk_free(&disks[i]);
    }
    bk_copy_free(job);
    bk_source_close(src);
    free_image(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_destination_gets_the_image),
        cmocka_unit_test(test_a_failing_destination_is_dropped),
        cmocka_unit_test(test_mismatch_names_the_destination),
        cmocka_unit_test(test_slow_destination_sets_the_pace),
        cmocka_unit_test(test_all_failing_stops_the_copy),
        cmocka_unit_test(test_damaged_image_fails_every_destination),
        cmocka_unit_test(test_add_dest_refusals),
        cmocka_unit_test(test_whole_stream_to_several),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
