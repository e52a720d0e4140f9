/* SPDX-License-Identifier: MIT */
/* The order of the reader's pieces, and the hasher of each (lanes.h). */
#include "copy/lanes.h"

#include <string.h>

void lanes_init(struct lanes *l, size_t ranges, unsigned count, unsigned hashers, uint64_t big,
                uint64_t turn, lanes_len_fn len, const void *ctx)
{
    memset(l, 0, sizeof *l);
    l->ranges = ranges;
    l->hashers = hashers ? hashers : 1;
    if (count > LANES_MAX)
        count = LANES_MAX;
    if (count > l->hashers)
        count = l->hashers;
    l->count = count ? count : 1;
    l->big = big;
    l->turn = turn ? turn : 1;
    l->len = len;
    l->ctx = ctx;
}

static bool is_big(const struct lanes *l, uint64_t len)
{
    return l->count > 1 && len >= l->big;
}

/* Lane I takes the next range. */
static void start(struct lanes *l, unsigned i)
{
    struct lane *ln = &l->lane[i];
    ln->busy = true;
    ln->range = l->next++;
    ln->done = 0;
    ln->len = l->len(l->ctx, ln->range);
    ln->big = is_big(l, ln->len);
}

static bool any_big(const struct lanes *l)
{
    for (unsigned i = 0; i < l->count; i++)
        if (l->lane[i].busy && l->lane[i].big)
            return true;
    return false;
}

/*
 * Free lanes take the next ranges while a long range is being read or is next: short
 * ranges then keep a second hasher busy beside the long one. Otherwise lanes stay free,
 * and once all are, the ranges come in order again.
 */
static void refill(struct lanes *l)
{
    for (unsigned i = 0; i < l->count && l->next < l->ranges; i++) {
        if (l->lane[i].busy)
            continue;
        if (!any_big(l) && !is_big(l, l->len(l->ctx, l->next)))
            break;
        start(l, i);
    }
}

static void hand_out(struct lanes *l, unsigned i, uint64_t max, unsigned owner,
                     struct lane_piece *out)
{
    struct lane *ln = &l->lane[i];
    uint64_t n = ln->len - ln->done;
    if (n > max)
        n = max;
    *out = (struct lane_piece){.range = ln->range, .at = ln->done, .len = n, .owner = owner};
    ln->done += n;
    out->range_end = ln->done == ln->len;
    if (out->range_end)
        ln->busy = false;
}

bool lanes_next(struct lanes *l, uint64_t max, struct lane_piece *out)
{
    if (!l->side_by_side && !l->lane[0].busy) {
        if (l->next == l->ranges)
            return false;
        start(l, 0);
        if (l->lane[0].big) {
            l->side_by_side = true;
            l->current = 0;
            l->turn_left = l->turn;
        }
    }
    if (!l->side_by_side) {
        hand_out(l, 0, max, (unsigned)(l->lane[0].range % l->hashers), out);
        return true;
    }
    refill(l);
    /* A short range is never cut by another lane's turn: it then spans no more slots than
       in order, and the writer still sees its verdict before writing any of it. */
    const struct lane *cur = &l->lane[l->current];
    if (!cur->busy || (l->turn_left == 0 && (cur->big || cur->done == 0))) {
        unsigned i = 1;
        while (i <= l->count && !l->lane[(l->current + i) % l->count].busy)
            i++;
        if (i > l->count) {
            /* Every lane is free and no long range is next: in order again. */
            l->side_by_side = false;
            return lanes_next(l, max, out);
        }
        l->current = (l->current + i) % l->count;
        l->turn_left = l->turn;
    }
    struct lane *ln = &l->lane[l->current];
    hand_out(l, l->current, ln->big && l->turn_left < max ? l->turn_left : max, l->current, out);
    l->turn_left -= out->len < l->turn_left ? out->len : l->turn_left;
    /* A turn also ends where the caller's buffer does: turns then line up with slots, one
       read and one hasher per slot. */
    if (ln->big && out->len == max)
        l->turn_left = 0;
    return true;
}

bool lanes_done(const struct lanes *l)
{
    if (l->next < l->ranges)
        return false;
    for (unsigned i = 0; i < l->count; i++)
        if (l->lane[i].busy)
            return false;
    return true;
}
