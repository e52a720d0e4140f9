/* SPDX-License-Identifier: MIT */
/*
 * The reader's order (copy/lanes.c), without I/O: long ranges read side by side, each
 * checked by the hasher of its lane, short ranges in order as before, and for every
 * layout each byte handed out once, each range's pieces in order, and each hasher's
 * ranges ending in ascending order (what the ring's verdicts rely on).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "copy/lanes.h"

#define MiB ((uint64_t)1 << 20)
#define BIG (4 * MiB)
#define TURN MiB
#define SLOT MiB

struct layout {
    size_t n;
    uint64_t len[4096];
};

static uint64_t layout_len(const void *ctx, size_t i)
{
    return ((const struct layout *)ctx)->len[i];
}

/* What a run of lanes_next handed out, with the rules every order must keep. */
struct record {
    size_t pieces;
    struct lane_piece piece[65536];
};

/*
 * Hand out every piece as the reader does (slots of SLOT bytes) and check: pieces are
 * no longer than asked, each range's pieces follow each other without gap and end with
 * range_end at its length, a short range's pieces come one after the other, each
 * owner's ranges end in ascending order, at most COUNT ranges are open at once, and
 * every range is handed out.
 */
static void run(const struct layout *lay, unsigned count, unsigned hashers, struct record *rec)
{
    struct lanes l;
    lanes_init(&l, lay->n, count, hashers, BIG, TURN, layout_len, lay);
    uint64_t *done = calloc(lay->n ? lay->n : 1, sizeof *done);
    bool *ended = calloc(lay->n ? lay->n : 1, sizeof *ended);
    size_t last_end[LANES_MAX + 1];
    bool any_end[LANES_MAX + 1] = {false};
    unsigned open = 0;
    uint64_t used = 0;
    bool in_short = false; /* a short range was begun and has not ended */
    size_t short_range = 0;
    rec->pieces = 0;
    assert_true(lay->n > 0 || lanes_done(&l));
    for (;;) {
        uint64_t max = SLOT - used;
        struct lane_piece pc;
        if (lanes_done(&l)) {
            assert_false(lanes_next(&l, max, &pc));
            break;
        }
        assert_true(lanes_next(&l, max, &pc));
        assert_true(rec->pieces < sizeof rec->piece / sizeof rec->piece[0]);
        rec->piece[rec->pieces++] = pc;
        assert_true(pc.range < lay->n);
        assert_true(pc.owner < hashers);
        assert_true(pc.len <= max);
        assert_false(ended[pc.range]);
        assert_int_equal(pc.at, done[pc.range]);
        if (pc.at == 0) {
            open++;
            assert_true(open <= count);
        }
        /* A short range comes whole, so it spans no more slots than in order. */
        if (in_short)
            assert_int_equal(pc.range, short_range);
        in_short = lay->len[pc.range] < BIG && !pc.range_end;
        short_range = pc.range;
        done[pc.range] += pc.len;
        assert_true(done[pc.range] <= lay->len[pc.range]);
        assert_int_equal(pc.range_end, done[pc.range] == lay->len[pc.range]);
        if (pc.range_end) {
            ended[pc.range] = true;
            open--;
            if (any_end[pc.owner])
                assert_true(last_end[pc.owner] < pc.range);
            any_end[pc.owner] = true;
            last_end[pc.owner] = pc.range;
        }
        /* A piece that ends a range is always more than nothing but for an empty range. */
        assert_true(pc.len > 0 || lay->len[pc.range] == 0);
        used = (used + pc.len) % SLOT;
    }
    for (size_t i = 0; i < lay->n; i++)
        assert_true(ended[i]);
    free(done);
    free(ended);
}

static struct record *new_record(void)
{
    struct record *rec = malloc(sizeof *rec);
    assert_non_null(rec);
    return rec;
}

/* Short ranges only: strictly in order, hasher (range % hashers), as before. */
static void test_short_ranges_come_in_order(void **state)
{
    (void)state;
    struct layout lay = {.n = 6, .len = {4096, 3 * MiB, 8192, 2 * MiB + 4096, 4096, 1}};
    struct record *rec = new_record();
    run(&lay, 2, 2, rec);
    size_t range = 0;
    for (size_t i = 0; i < rec->pieces; i++) {
        assert_int_equal(rec->piece[i].range, range);
        assert_int_equal(rec->piece[i].owner, range % 2);
        if (rec->piece[i].range_end)
            range++;
    }
    assert_int_equal(range, lay.n);
    free(rec);
}

/* One lane (a stream, a network source): long ranges too come strictly in order. */
static void test_one_lane_keeps_the_order(void **state)
{
    (void)state;
    struct layout lay = {.n = 4, .len = {64 * MiB, 4096, 32 * MiB, 12 * MiB}};
    struct record *rec = new_record();
    run(&lay, 1, 3, rec);
    size_t range = 0;
    for (size_t i = 0; i < rec->pieces; i++) {
        assert_int_equal(rec->piece[i].range, range);
        assert_int_equal(rec->piece[i].owner, range % 3);
        if (rec->piece[i].range_end)
            range++;
    }
    assert_int_equal(range, lay.n);
    free(rec);
}

/* Two long ranges: a turn of each in rotation, each range to a hasher of its own. */
static void test_two_long_ranges_alternate(void **state)
{
    (void)state;
    struct layout lay = {.n = 2, .len = {16 * MiB, 16 * MiB}};
    struct record *rec = new_record();
    run(&lay, 2, 2, rec);
    assert_int_equal(rec->pieces, 32);
    for (size_t i = 0; i < rec->pieces; i++) {
        assert_int_equal(rec->piece[i].range, i % 2);
        assert_int_equal(rec->piece[i].owner, i % 2);
        assert_int_equal(rec->piece[i].len, TURN);
        assert_int_equal(rec->piece[i].at, i / 2 * TURN);
    }
    free(rec);
}

/* Turns end where a slot does: after one short first piece, one lane per slot. */
static void test_turns_line_up_with_slots(void **state)
{
    (void)state;
    struct layout lay = {.n = 3, .len = {4096, 16 * MiB, 16 * MiB}};
    struct record *rec = new_record();
    run(&lay, 2, 2, rec);
    assert_int_equal(rec->piece[0].range, 0);
    assert_int_equal(rec->piece[1].range, 1);
    assert_int_equal(rec->piece[1].len, MiB - 4096);
    for (size_t i = 2; i < rec->pieces - 1; i++) {
        assert_int_equal(rec->piece[i].len, MiB);
        assert_int_equal(rec->piece[i].range, 2 - i % 2);
    }
    assert_int_equal(rec->piece[rec->pieces - 1].len, 4096);
    free(rec);
}

/*
 * A long range, then short ones: the short ones take turns with the long one in the
 * second lane; once the long one has ended, the rest comes in order again.
 */
static void test_short_ranges_beside_a_long_one(void **state)
{
    (void)state;
    struct layout lay = {.n = 23, .len = {16 * MiB, 4096, 3 * MiB}};
    for (size_t i = 3; i < lay.n; i++)
        lay.len[i] = 2 * MiB;
    struct record *rec = new_record();
    run(&lay, 2, 2, rec);
    /* Range 0 in lane 0, the next ones in lane 1, in turns of one MiB. */
    assert_int_equal(rec->piece[0].range, 0);
    assert_int_equal(rec->piece[0].owner, 0);
    assert_int_equal(rec->piece[1].range, 1);
    assert_int_equal(rec->piece[1].owner, 1);
    assert_int_equal(rec->piece[2].range, 2);
    assert_int_equal(rec->piece[2].owner, 1);
    assert_int_equal(rec->piece[2].len, TURN - 4096);
    /* Range 2 is short: it comes whole before range 0's next turn. */
    for (size_t i = 3; i < 6; i++)
        assert_int_equal(rec->piece[i].range, 2);
    assert_true(rec->piece[5].range_end);
    assert_int_equal(rec->piece[6].range, 0);
    size_t end0 = 0;
    uint64_t beside = 0;
    while (!(rec->piece[end0].range == 0 && rec->piece[end0].range_end)) {
        if (rec->piece[end0].range != 0) {
            assert_int_equal(rec->piece[end0].owner, 1);
            beside += rec->piece[end0].len;
        }
        end0++;
    }
    assert_true(beside >= 15 * MiB);
    /* After it: strictly in order; ranges started then are checked as before. */
    size_t open = rec->piece[end0 + 1].range;
    for (size_t i = end0 + 1; i < rec->pieces; i++) {
        assert_true(rec->piece[i].range >= rec->piece[i - 1].range || i == end0 + 1);
        if (rec->piece[i].range > open)
            assert_int_equal(rec->piece[i].owner, rec->piece[i].range % 2);
    }
    assert_int_equal(rec->piece[rec->pieces - 1].range, 22);
    free(rec);
}

/* More long ranges than lanes: a lane that finishes takes the next one. */
static void test_lanes_take_the_next_long_range(void **state)
{
    (void)state;
    struct layout lay = {.n = 5, .len = {8 * MiB, 20 * MiB, 6 * MiB, 5 * MiB, 4 * MiB}};
    struct record *rec = new_record();
    run(&lay, 3, 4, rec);
    size_t start_order[5], started = 0;
    for (size_t i = 0; i < rec->pieces; i++) {
        if (rec->piece[i].at == 0)
            start_order[started++] = rec->piece[i].range;
        /* Three lanes: owners 0 to 2 only, though there are four hashers. */
        assert_true(rec->piece[i].owner < 3);
    }
    assert_int_equal(started, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(start_order[i], i);
    /* Ranges 0, 1, 2 open together; range 2 ends first, so its lane takes range 3, and
       range 4 goes to lane 0 when range 0 ends. */
    assert_int_equal(rec->piece[0].owner, 0);
    assert_int_equal(rec->piece[1].owner, 1);
    assert_int_equal(rec->piece[2].owner, 2);
    for (size_t i = 0; i < rec->pieces; i++) {
        if (rec->piece[i].range == 3)
            assert_int_equal(rec->piece[i].owner, 2);
        if (rec->piece[i].range == 4)
            assert_int_equal(rec->piece[i].owner, 0);
    }
    free(rec);
}

/* Empty ranges come as one empty piece, in either mode. */
static void test_empty_ranges(void **state)
{
    (void)state;
    struct layout lay = {.n = 5, .len = {0, 16 * MiB, 0, 16 * MiB, 0}};
    struct record *rec = new_record();
    run(&lay, 2, 2, rec);
    unsigned empty = 0;
    for (size_t i = 0; i < rec->pieces; i++)
        if (rec->piece[i].len == 0) {
            empty++;
            assert_true(rec->piece[i].range_end);
        }
    assert_int_equal(empty, 3);
    struct layout none = {.n = 0};
    run(&none, 2, 2, rec);
    assert_int_equal(rec->pieces, 0);
    free(rec);
}

/*
 * A wic image's shape (the bench's W1: a FAT partition's small ranges, then a root file
 * system of 20, 95, 254, 254 and 41 MiB extents): two hashers share the long ranges,
 * so that neither checks much more than half of the bytes read side by side.
 */
static void test_wic_layout_keeps_two_hashers_busy(void **state)
{
    (void)state;
    const uint64_t blocks[] = {1,     6,     6,     3,     5053, 383, 1, 2, 657,
                               24329, 65161, 65161, 10560, 2,    2,   1, 1, 1};
    struct layout lay = {.n = sizeof blocks / sizeof blocks[0]};
    for (size_t i = 0; i < lay.n; i++)
        lay.len[i] = blocks[i] * 4096;
    struct record *rec = new_record();
    run(&lay, 2, 2, rec);
    /* Per window of 16 MiB handed out, both hashers get a share while long ranges last. */
    uint64_t window[2] = {0, 0}, total = 0, balanced = 0;
    for (size_t i = 0; i < rec->pieces; i++) {
        window[rec->piece[i].owner] += rec->piece[i].len;
        if (window[0] + window[1] >= 16 * MiB) {
            uint64_t w = window[0] + window[1];
            if (window[0] >= w / 3 && window[1] >= w / 3)
                balanced += w;
            total += w;
            window[0] = window[1] = 0;
        }
    }
    total += window[0] + window[1];
    /* Only the end of the longest lane is read alone: about 8% of the bytes. */
    assert_true(balanced >= total * 85 / 100);
    free(rec);
}

/* Random layouts, lanes and hashers: the rules of run() hold for all of them. */
static void test_random_layouts(void **state)
{
    (void)state;
    struct record *rec = new_record();
    srand(7);
    for (int round = 0; round < 300; round++) {
        struct layout lay = {.n = (size_t)(rand() % 60)};
        for (size_t i = 0; i < lay.n; i++) {
            int kind = rand() % 4;
            lay.len[i] = kind == 0   ? (uint64_t)(rand() % 3) * 4096
                         : kind == 1 ? (uint64_t)(1 + rand() % 16) * 4096
                         : kind == 2
                             ? (uint64_t)(rand() % 6) * MiB + (uint64_t)(rand() % 256) * 4096
                             : (uint64_t)(4 + rand() % 24) * MiB + (uint64_t)(rand() % 7);
        }
        unsigned hashers = 1 + (unsigned)(rand() % LANES_MAX);
        unsigned count = 1 + (unsigned)(rand() % hashers);
        run(&lay, count, hashers, rec);
    }
    free(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_ranges_come_in_order),
        cmocka_unit_test(test_one_lane_keeps_the_order),
        cmocka_unit_test(test_two_long_ranges_alternate),
        cmocka_unit_test(test_turns_line_up_with_slots),
        cmocka_unit_test(test_short_ranges_beside_a_long_one),
        cmocka_unit_test(test_lanes_take_the_next_long_range),
        cmocka_unit_test(test_empty_ranges),
        cmocka_unit_test(test_wic_layout_keeps_two_hashers_busy),
        cmocka_unit_test(test_random_layouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
