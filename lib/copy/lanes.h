/* SPDX-License-Identifier: MIT */
/*
 * Internal: the order in which the reader hands out the pieces of the bmap's ranges, and
 * which hasher checks each. A range's digest is one sequence only one thread can compute,
 * so while a long range is read the other hashers would idle; here long ranges are read
 * side by side, each in a lane of its own, a turn of each in rotation, and each lane's
 * ranges go to the hasher of that lane. Short ranges between them take turns in a free
 * lane, each whole in one turn; with no long range in reach the ranges come strictly in
 * order, each checked by hasher (range % hashers), as before. No I/O and no threads: a
 * test can drive it.
 *
 * Every hasher is handed its ranges in ascending order and each range's pieces in order,
 * so it judges them in ascending order: what ring_state relies on.
 */
#ifndef BMAPKIT_COPY_LANES_H
#define BMAPKIT_COPY_LANES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LANES_MAX 8u

/* The length in bytes of range I, from whatever CTX describes. */
typedef uint64_t (*lanes_len_fn)(const void *ctx, size_t i);

struct lane {
    bool busy;
    bool big; /* its range is long enough to be read side by side */
    size_t range;
    uint64_t done, len;
};

struct lanes {
    size_t ranges, next; /* ranges in all; the first not yet started */
    unsigned count;      /* lanes that may be read side by side (1: strictly in order) */
    unsigned hashers;
    uint64_t big;  /* ranges this long or longer are read side by side */
    uint64_t turn; /* bytes of a long range handed out before the next lane's turn */
    bool side_by_side;
    unsigned current; /* lane whose turn it is */
    uint64_t turn_left;
    struct lane lane[LANES_MAX];
    lanes_len_fn len;
    const void *ctx;
};

/* One piece to read: AT bytes into RANGE, LEN bytes, checked by hasher OWNER. */
struct lane_piece {
    size_t range;
    uint64_t at, len;
    unsigned owner;
    bool range_end; /* the last piece of its range */
};

/*
 * RANGES ranges whose lengths LEN gives; up to COUNT read side by side (capped at
 * LANES_MAX and at HASHERS), HASHERS hashers (at least 1), ranges of BIG bytes or more
 * read side by side, TURN bytes (more than 0) of a long range at a time.
 */
void lanes_init(struct lanes *l, size_t ranges, unsigned count, unsigned hashers, uint64_t big,
                uint64_t turn, lanes_len_fn len, const void *ctx);

/*
 * The next piece, at most MAX bytes (more than 0: what is left of the caller's buffer);
 * a long range's turn ends after TURN bytes or where a piece fills MAX. A range of 0
 * bytes comes as one piece of 0 bytes. False once every range was handed out.
 */
bool lanes_next(struct lanes *l, uint64_t max, struct lane_piece *out);

/* Every range was handed out: lanes_next would return false. */
bool lanes_done(const struct lanes *l);

#endif
