/* SPDX-License-Identifier: MIT */
/* The requests that fetch a list of areas: neighbours merged, each of bounded size. */
#include "net/runs.h"

#include <stdlib.h>

uint64_t net_runs_gap(const uint64_t (*areas)[2], size_t count)
{
    uint64_t mapped = 0;
    for (size_t i = 0; i < count; i++)
        mapped += areas[i][1] - areas[i][0];
    uint64_t budget = mapped / NET_WASTE_DIV;
    for (uint64_t gap = NET_GAP_MAX; gap > 0; gap /= 2) {
        uint64_t waste = 0;
        for (size_t i = 1; i < count && waste <= budget; i++) {
            uint64_t g = areas[i][0] - areas[i - 1][1];
            if (g <= gap)
                waste += g;
        }
        if (waste <= budget)
            return gap;
    }
    return 0;
}

/* Append a run to *RUNS, growing it. */
static int add(struct net_run **runs, size_t *n, size_t *cap, struct net_run r)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        struct net_run *bigger = realloc(*runs, c * sizeof *bigger);
        if (!bigger)
            return -1;
        *runs = bigger;
        *cap = c;
    }
    (*runs)[(*n)++] = r;
    return 0;
}

int net_runs(const uint64_t (*areas)[2], size_t count, uint64_t run_max, struct net_run **runs,
             size_t *n)
{
    uint64_t gap = net_runs_gap(areas, count);
    size_t cap = 0;
    struct net_run cur = {0, 0, 0};
    bool have = false;
    *runs = NULL;
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t s = areas[i][0], e = areas[i][1];
        if (have && s - cur.end <= gap && e - cur.start <= run_max) {
            cur.end = e;
            cur.useful += e - s;
            continue;
        }
        if (have && add(runs, n, &cap, cur) < 0)
            goto nomem;
        while (e - s > run_max) {
            if (add(runs, n, &cap, (struct net_run){s, s + run_max, run_max}) < 0)
                goto nomem;
            s += run_max;
        }
        cur = (struct net_run){s, e, e - s};
        have = true;
    }
    if (have && add(runs, n, &cap, cur) < 0)
        goto nomem;
    return 0;
nomem:
    free(*runs);
    *runs = NULL;
    *n = 0;
    return -1;
}
