/* SPDX-License-Identifier: MIT */
/*
 * Internal: which requests fetch a list of byte areas. Neighbouring areas share a
 * request when the gap between them costs less than a request of its own; requests are
 * cut to a bounded size, so several run at once and memory stays bounded.
 */
#ifndef BMAPKIT_NET_RUNS_H
#define BMAPKIT_NET_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes [start, end) of a file; USEFUL of them lie in the areas asked for. */
struct net_run {
    uint64_t start, end;
    uint64_t useful;
};

/* Largest gap that two areas ever share a request across. */
#define NET_GAP_MAX ((uint64_t)64 << 10)
/* The gap bytes fetched stay within this fraction (1/N) of the areas' bytes. */
#define NET_WASTE_DIV 256u
/* Largest request, and the smallest cut of a long area. */
#define NET_RUN_MAX ((uint64_t)4 << 20)
#define NET_RUN_MIN ((uint64_t)256 << 10)

/*
 * The requests for COUNT areas [starts[i], ends[i]) (ascending, disjoint, none empty)
 * into *RUNS (malloc'd, *N of them), each at most RUN_MAX long (a longer area is cut),
 * merged across gaps of up to net_runs_gap. -1 when out of memory.
 */
int net_runs(const uint64_t (*areas)[2], size_t count, uint64_t run_max, struct net_run **runs,
             size_t *n);

/* The largest gap worth merging for these areas: NET_GAP_MAX halved until the waste fits. */
uint64_t net_runs_gap(const uint64_t (*areas)[2], size_t count);

#endif
