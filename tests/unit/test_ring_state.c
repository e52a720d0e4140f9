/* SPDX-License-Identifier: MIT */
/*
 * The copy pipeline's rules, driven step by step without threads: who may fill, hash
 * and write which slot, when the writer waits for a verdict, whom an event wakes, and
 * that a failure stops everything.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "copy/ring_state.h"

/* A slot with ranges FIRST..LAST, each checked by hasher (range % hashers). */
static void fill(struct ring_state *r, size_t first, size_t last, bool eof)
{
    struct slot_meta m = {.eof = eof};
    for (size_t range = first; range <= last; range++)
        ring_meta_add(&m, (unsigned)(range % r->hashers), range);
    assert_true(ring_reader_may_fill(r));
    ring_filled(r, &m);
}

static void hash_all(struct ring_state *r)
{
    for (unsigned h = 0; h < r->hashers; h++) {
        assert_true(ring_hasher_may_hash(r, h));
        ring_hashed(r, h);
    }
}

static void test_reader_stops_at_a_full_ring(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 8, 1);
    for (int i = 0; i < 8; i++)
        fill(&r, (size_t)i, (size_t)i, false);
    assert_false(ring_reader_may_fill(&r));
    /* Hashing frees nothing: only the writer hands slots back. */
    hash_all(&r);
    assert_false(ring_reader_may_fill(&r));
    ring_concluded(&r, 0, 0);
    assert_true(ring_writer_may_write(&r));
    ring_written(&r, 100);
    assert_true(ring_reader_may_fill(&r));
    assert_int_equal(r.done_bytes, 100);
}

static void test_hashers_follow_the_reader(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 8, 3);
    assert_false(ring_hasher_may_hash(&r, 0));
    fill(&r, 0, 2, false);
    for (unsigned h = 0; h < 3; h++)
        assert_true(ring_hasher_may_hash(&r, h));
    ring_hashed(&r, 0);
    ring_hashed(&r, 2);
    assert_false(ring_hasher_may_hash(&r, 0));
    assert_true(ring_hasher_may_hash(&r, 1));
    /* The writer waits for the slowest hasher. */
    assert_int_equal(ring_hashed_all(&r), 0);
    assert_false(ring_writer_may_write(&r));
    ring_hashed(&r, 1);
    assert_int_equal(ring_hashed_all(&r), 1);
}

static void test_writer_waits_for_the_verdict_of_short_ranges(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 8, 2);
    /* Slot 0 holds ranges 0 and 1, owned by hashers 0 and 1. */
    fill(&r, 0, 1, false);
    hash_all(&r);
    assert_false(ring_writer_may_write(&r));
    ring_concluded(&r, 0, 0);
    assert_false(ring_writer_may_write(&r));
    ring_concluded(&r, 1, 1);
    assert_true(ring_writer_may_write(&r));
}

/*
 * Ranges read side by side: a slot holds pieces of ranges 5 and 9 (hasher 0) and 7
 * (hasher 1). The writer waits until each hasher has judged its highest range there.
 */
static void test_writer_waits_for_every_owner_of_a_slot(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 8, 2);
    struct slot_meta m = {0};
    ring_meta_add(&m, 0, 5);
    ring_meta_add(&m, 1, 7);
    ring_meta_add(&m, 0, 9);
    assert_int_equal(m.owners, 3);
    assert_int_equal(m.last_of[0], 9);
    assert_int_equal(m.last_of[1], 7);
    ring_filled(&r, &m);
    hash_all(&r);
    assert_false(ring_writer_may_write(&r));
    /* Hasher 1 judged a range beyond this slot's: its part is done. */
    ring_concluded(&r, 1, 8);
    assert_false(ring_writer_may_write(&r));
    /* Hasher 0 judged range 5, but range 9 is still open. */
    ring_concluded(&r, 0, 5);
    assert_false(ring_writer_may_write(&r));
    ring_concluded(&r, 0, 9);
    assert_true(ring_writer_may_write(&r));
}

/* A slot whose segments all belong to one hasher does not wait for the others. */
static void test_slot_of_one_owner(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 8, 3);
    struct slot_meta m = {0};
    ring_meta_add(&m, 2, 4);
    ring_filled(&r, &m);
    hash_all(&r);
    assert_false(ring_writer_may_write(&r));
    ring_concluded(&r, 0, 6);
    ring_concluded(&r, 1, 7);
    assert_false(ring_writer_may_write(&r));
    ring_concluded(&r, 2, 4);
    assert_true(ring_writer_may_write(&r));
}

static void test_writer_goes_on_after_write_lag_slots(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 8, 1);
    assert_int_equal(r.write_lag, 4);
    /* One long range over many slots: its verdict comes only at its end. */
    for (int i = 0; i < 3; i++) {
        fill(&r, 0, 0, false);
        hash_all(&r);
        assert_false(ring_writer_may_write(&r));
    }
    fill(&r, 0, 0, false);
    hash_all(&r);
    assert_true(ring_writer_may_write(&r));
    ring_written(&r, 1);
    assert_false(ring_writer_may_write(&r));
}

static void test_last_slot_is_written_without_verdict(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 8, 1);
    fill(&r, 0, 0, true);
    hash_all(&r);
    assert_true(ring_writer_may_write(&r));
    assert_false(r.finished);
    ring_written(&r, 10);
    assert_true(r.finished);
}

static void test_empty_slot(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 8, 1);
    struct slot_meta m = {.empty = true};
    ring_filled(&r, &m);
    hash_all(&r);
    assert_true(ring_writer_may_write(&r));
}

static void test_first_failure_is_kept(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 8, 1);
    struct bk_error a, b;
    bk_error_set(&a, BK_E_IO, 5, "first");
    bk_error_set(&b, BK_E_VERIFY, 0, "second");
    assert_false(r.stop);
    ring_fail(&r, &a);
    ring_fail(&r, &b);
    assert_true(r.stop && r.failed);
    assert_int_equal(r.error.code, BK_E_IO);
    assert_string_equal(r.error.msg, "first: Input/output error");
}

static void test_wakeups_come_in_batches(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 8, 1);
    /* An empty ring: the reader has room, nobody else has work. */
    assert_int_equal(ring_wakeups(&r, false), RING_WAKE_READER);
    fill(&r, 0, 0, false);
    /* One filled slot wakes the hasher only when the waker is about to wait. */
    assert_int_equal(ring_wakeups(&r, false) & RING_WAKE_HASHERS, 0);
    assert_int_equal(ring_wakeups(&r, true) & RING_WAKE_HASHERS, RING_WAKE_HASHERS);
    fill(&r, 0, 0, false);
    assert_int_equal(ring_wakeups(&r, false) & RING_WAKE_HASHERS, RING_WAKE_HASHERS);
    /* Hashed but not judged, within the lag: the writer has nothing to do. */
    hash_all(&r);
    hash_all(&r);
    assert_int_equal(ring_wakeups(&r, true) & RING_WAKE_WRITER, 0);
    ring_concluded(&r, 0, 0);
    assert_int_equal(ring_wakeups(&r, false) & RING_WAKE_WRITER, RING_WAKE_WRITER);
    /* A full ring does not wake the reader. */
    for (int i = 0; i < 6; i++)
        fill(&r, 1, 1, false);
    assert_int_equal(ring_wakeups(&r, true) & RING_WAKE_READER, 0);
}

static void test_sequence_numbers_wrap_around_the_ring(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 4, 1);
    for (size_t i = 0; i < 100; i++) {
        fill(&r, i, i, i == 99);
        hash_all(&r);
        ring_concluded(&r, 0, i);
        assert_true(ring_writer_may_write(&r));
        ring_written(&r, 1);
    }
    assert_int_equal(ring_slot(&r, r.written), 0);
    assert_true(r.finished);
    assert_int_equal(r.done_bytes, 100);
}

/* Several writers: the slowest live one frees slots; a dropped one holds nothing back. */
static void test_several_writers(void **state)
{
    (void)state;
    struct ring_state r;
    ring_init(&r, 4, 1);
    ring_set_writers(&r, 3);
    for (int i = 0; i < 4; i++)
        fill(&r, (size_t)i, (size_t)i, i == 3);
    hash_all(&r);
    hash_all(&r);
    hash_all(&r);
    hash_all(&r);
    for (size_t range = 0; range < 4; range++)
        ring_concluded(&r, 0, range);
    /* Writer 0 writes everything; the reader still waits for 1 and 2. */
    for (int i = 0; i < 4; i++) {
        assert_true(ring_writer_may_write_by(&r, 0));
        ring_written_by(&r, 0, 10);
    }
    assert_false(ring_writer_may_write_by(&r, 0));
    assert_false(ring_reader_may_fill(&r));
    assert_false(r.finished);
    ring_written_by(&r, 1, 10);
    assert_int_equal(r.written, 0);
    assert_int_equal(r.done_bytes, 0);
    /* Writer 2 is dropped: writer 1 is the slowest now. */
    assert_int_equal(ring_drop_writer(&r, 2), 2);
    assert_false(ring_writer_may_write_by(&r, 2));
    assert_int_equal(r.written, 1);
    assert_int_equal(r.done_bytes, 10);
    assert_true(ring_reader_may_fill(&r));
    assert_true((ring_wakeups(&r, true) & RING_WAKE_WRITER) != 0);
    for (int i = 1; i < 4; i++)
        ring_written_by(&r, 1, 10);
    assert_true(r.finished);
    assert_int_equal(r.done_bytes, 40);
    assert_int_equal(ring_wakeups(&r, true) & RING_WAKE_WRITER, 0);
    assert_int_equal(ring_drop_writer(&r, 1), 1);
    assert_int_equal(ring_drop_writer(&r, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_several_writers),
        cmocka_unit_test(test_reader_stops_at_a_full_ring),
        cmocka_unit_test(test_hashers_follow_the_reader),
        cmocka_unit_test(test_writer_waits_for_the_verdict_of_short_ranges),
        cmocka_unit_test(test_writer_waits_for_every_owner_of_a_slot),
        cmocka_unit_test(test_slot_of_one_owner),
        cmocka_unit_test(test_writer_goes_on_after_write_lag_slots),
        cmocka_unit_test(test_last_slot_is_written_without_verdict),
        cmocka_unit_test(test_empty_slot),
        cmocka_unit_test(test_first_failure_is_kept),
        cmocka_unit_test(test_wakeups_come_in_batches),
        cmocka_unit_test(test_sequence_numbers_wrap_around_the_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
