/* SPDX-License-Identifier: MIT */
/*
 * Which requests fetch a list of areas (net/runs.c): neighbours merged across small
 * gaps while the waste stays within 1/NET_WASTE_DIV of the areas, long areas cut, no
 * request longer than asked, every area covered exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "net/runs.h"

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)

/* Every area lies in exactly one run, runs ascend, none longer than MAX, useful right. */
static void check_cover(const uint64_t (*areas)[2], size_t count, const struct net_run *runs,
                        size_t n, uint64_t max)
{
    size_t a = 0;
    uint64_t covered = 0, useful = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(runs[i].start < runs[i].end);
        assert_true(runs[i].end - runs[i].start <= max);
        if (i > 0)
            assert_true(runs[i - 1].end <= runs[i].start);
        useful += runs[i].useful;
        uint64_t in = 0;
        for (; a < count && areas[a][0] < runs[i].end; a++) {
            uint64_t s = areas[a][0] > runs[i].start ? areas[a][0] : runs[i].start;
            uint64_t e = areas[a][1] < runs[i].end ? areas[a][1] : runs[i].end;
            assert_true(s < e);
            in += e - s;
            if (areas[a][1] > runs[i].end)
                break; /* cut: the rest is in the next run */
        }
        assert_int_equal(in, runs[i].useful);
        covered += in;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += areas[i][1] - areas[i][0];
    assert_int_equal(covered, total);
    assert_int_equal(useful, total);
}

static void test_small_gaps_merge(void **state)
{
    (void)state;
    /* 1 MiB areas 4 KiB apart: 12 KiB of gaps for 4 MiB, within 1/256. */
    const uint64_t areas[][2] = {{0, MiB},
                                 {MiB + 4 * KiB, 2 * MiB},
                                 {2 * MiB + 4 * KiB, 3 * MiB},
                                 {3 * MiB + 4 * KiB, 4 * MiB}};
    struct net_run *runs;
    size_t n;
    assert_int_equal(net_runs(areas, 4, 8 * MiB, &runs, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(runs[0].start, 0);
    assert_int_equal(runs[0].end, 4 * MiB);
    assert_int_equal(runs[0].useful, 4 * MiB - 12 * KiB);
    check_cover(areas, 4, runs, n, 8 * MiB);
    free(runs);
}

static void test_waste_bounded(void **state)
{
    (void)state;
    /* 4 KiB areas 60 KiB apart: merging would fetch 16 times the areas. */
    uint64_t areas[64][2];
    for (size_t i = 0; i < 64; i++) {
        areas[i][0] = i * 64 * KiB;
        areas[i][1] = areas[i][0] + 4 * KiB;
    }
    assert_true(net_runs_gap((const uint64_t(*)[2])areas, 64) < 60 * KiB);
    struct net_run *runs;
    size_t n;
    assert_int_equal(net_runs((const uint64_t(*)[2])areas, 64, 4 * MiB, &runs, &n), 0);
    assert_int_equal(n, 64);
    check_cover((const uint64_t(*)[2])areas, 64, runs, n, 4 * MiB);
    free(runs);
}

static void test_gap_shrinks_to_fit(void **state)
{
    (void)state;
    /* 1 MiB areas: four 2 KiB gaps and one 40 KiB gap. Budget 5 MiB / 256 = 20 KiB. */
    const uint64_t areas[][2] = {
        {0, MiB},
        {MiB + 2 * KiB, 2 * MiB},
        {2 * MiB + 2 * KiB, 3 * MiB},
        {3 * MiB + 40 * KiB, 4 * MiB},
        {4 * MiB + 2 * KiB, 5 * MiB},
        {5 * MiB + 2 * KiB, 6 * MiB},
    };
    uint64_t gap = net_runs_gap(areas, 6);
    assert_true(gap >= 2 * KiB && gap < 40 * KiB);
    struct net_run *runs;
    size_t n;
    assert_int_equal(net_runs(areas, 6, 64 * MiB, &runs, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(runs[0].end, 3 * MiB);
    assert_int_equal(runs[1].start, 3 * MiB + 40 * KiB);
    check_cover(areas, 6, runs, n, 64 * MiB);
    free(runs);
}

static void test_long_area_cut(void **state)
{
    (void)state;
    const uint64_t areas[][2] = {{100, 100 + 10 * MiB + 5}, {11 * MiB, 11 * MiB + 10}};
    struct net_run *runs;
    size_t n;
    assert_int_equal(net_runs(areas, 2, 4 * MiB, &runs, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(runs[0].start, 100);
    assert_int_equal(runs[0].end, 100 + 4 * MiB);
    assert_int_equal(runs[2].end, 100 + 10 * MiB + 5);
    check_cover(areas, 2, runs, n, 4 * MiB);
    free(runs);
}

static void test_a_merge_never_exceeds_the_limit(void **state)
{
    (void)state;
    /* Touching areas (gap 0) longer together than the limit: cut where the limit says. */
    uint64_t areas[40][2];
    for (size_t i = 0; i < 40; i++) {
        areas[i][0] = i * 300 * KiB;
        areas[i][1] = (i + 1) * 300 * KiB;
    }
    struct net_run *runs;
    size_t n;
    assert_int_equal(net_runs((const uint64_t(*)[2])areas, 40, MiB, &runs, &n), 0);
    assert_true(n >= 12);
    check_cover((const uint64_t(*)[2])areas, 40, runs, n, MiB);
    free(runs);
}

static void test_nothing(void **state)
{
    (void)state;
    struct net_run *runs = (struct net_run *)1;
    size_t n = 7;
    assert_int_equal(net_runs(NULL, 0, MiB, &runs, &n), 0);
    assert_int_equal(n, 0);
    assert_null(runs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_gaps_merge),
        cmocka_unit_test(test_waste_bounded),
        cmocka_unit_test(test_gap_shrinks_to_fit),
        cmocka_unit_test(test_long_area_cut),
        cmocka_unit_test(test_a_merge_never_exceeds_the_limit),
        cmocka_unit_test(test_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
