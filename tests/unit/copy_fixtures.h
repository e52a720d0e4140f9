/* SPDX-License-Identifier: MIT */
/*
 * What the copy pipeline's tests share: images with a bmap in memory, a run of a copy
 * job that records what its callbacks saw, and the checks on the disk afterwards.
 *
 * All static inline: a test program compiles in only the helpers it calls.
 */
#ifndef BMAPKIT_TEST_COPY_FIXTURES_H
#define BMAPKIT_TEST_COPY_FIXTURES_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bmap/bmap_impl.h"
#include "bmapkit/copy.h"
#include "support/fakes.h"

#define BLOCK 4096u
#define HEAD ((uint64_t)BK_COPY_HEAD_BYTES)
#define FILL 0xAA
#define DISK_CAPS (BK_DEST_CAN_READ | BK_DEST_IS_DISK)

struct image {
    uint8_t *data;
    uint64_t size;
    struct bk_bmap *bmap;
};

/* A deterministic, non-repeating byte pattern, so misplaced bytes show. */
static inline uint8_t pattern(uint64_t i)
{
    uint64_t x = i * 0x9E3779B97F4A7C15ull;
    return (uint8_t)(x >> 56 ^ x >> 13);
}

/* An image of SIZE bytes whose N ranges R (in blocks) hold the pattern, cut at SIZE. */
static inline void make_image_of(struct image *img, uint64_t size, const struct bk_range *r,
                                 size_t n)
{
    struct bk_error err;
    img->size = size;
    img->data = calloc(1, size);
    img->bmap = bk_bmap_new(size, BLOCK, BK_HASH_SHA256, &err);
    assert_non_null(img->bmap);
    struct bk_digest *d = bk_digest_new(BK_HASH_SHA256, &err);
    for (size_t i = 0; i < n; i++) {
        uint64_t start = r[i].first * BLOCK;
        uint64_t end = (r[i].last + 1) * BLOCK < size ? (r[i].last + 1) * BLOCK : size;
        for (uint64_t k = start; k < end; k++)
            img->data[k] = pattern(k);
        uint8_t digest[BK_DIGEST_MAX];
        assert_int_equal(bk_digest_update(d, img->data + start, end - start, &err), 0);
        assert_int_equal(bk_digest_final(d, digest, &err), 0);
        assert_int_equal(bk_bmap_append(img->bmap, r[i].first, r[i].last, digest, &err), 0);
    }
    bk_digest_free(d);
}

/*
 * An image of SIZE bytes: many one-block ranges near the start (the head among them),
 * a few middling ones, a long one over several slots, and a partial last block.
 */
static inline void make_image(struct image *img, uint64_t size)
{
    uint64_t blocks = (size + BLOCK - 1) / BLOCK;
    struct bk_range r[400];
    size_t n = 0;
    for (uint64_t b = 0; b < 600 && n < 300; b += 2)
        r[n++] = (struct bk_range){b, b};
    r[n++] = (struct bk_range){700, 760};
    r[n++] = (struct bk_range){800, 800 + 3 * 256}; /* about 3 MiB: over several slots */
    r[n++] = (struct bk_range){blocks - 3, blocks - 1};
    make_image_of(img, size, r, n);
}

static inline void free_image(struct image *img)
{
    free(img->data);
    bk_bmap_free(img->bmap);
}

/* What a run saw, through the callbacks. */
struct seen {
    uint64_t first_done, last_done, last_total;
    unsigned progress_calls;
    bool backwards;
    unsigned verified, mismatches;
    unsigned cancel_calls, cancel_after; /* cancel at call cancel_after (0: never) */
};

static inline void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct seen *s = ctx;
    if (s->progress_calls++ == 0)
        s->first_done = done;
    if (done < s->last_done)
        s->backwards = true;
    s->last_done = done;
    s->last_total = total;
}

static inline void on_verified(void *ctx, size_t index, const struct bk_range *range)
{
    (void)index;
    (void)range;
    ((struct seen *)ctx)->verified++;
}

static inline void on_mismatch(void *ctx, size_t index, const struct bk_range *range,
                               unsigned attempt)
{
    (void)index;
    (void)range;
    (void)attempt;
    ((struct seen *)ctx)->mismatches++;
}

static inline bool on_cancel(void *ctx)
{
    struct seen *s = ctx;
    unsigned n = __atomic_add_fetch(&s->cancel_calls, 1, __ATOMIC_RELAXED);
    return s->cancel_after && n >= s->cancel_after;
}

struct run {
    int rc;
    struct bk_error err;
    struct bk_copy_stats stats;
    struct seen seen;
};

static inline void run_copy(const struct bk_bmap *bmap, struct bk_source *src, struct bk_dest *dest,
                            unsigned readback_retries, bool readback, struct run *out)
{
    struct bk_error err;
    bk_error_clear(&out->err);
    struct bk_copy *job = bk_copy_new(bmap, src, dest, &err);
    assert_non_null(job);
    bk_copy_set_progress_fn(job, on_progress, &out->seen);
    bk_copy_set_verified_fn(job, on_verified, &out->seen);
    bk_copy_set_readback_mismatch_fn(job, on_mismatch, &out->seen);
    bk_copy_set_cancel_fn(job, on_cancel, &out->seen);
    bk_copy_set_readback(job, readback, readback_retries);
    out->rc = bk_copy_run(job, &out->err);
    out->stats = *bk_copy_get_stats(job);
    bk_copy_free(job);
}

/* Every mapped byte of IMG is on DISK, and every unmapped byte kept its old content. */
static inline void assert_copied(const struct image *img, const struct mem_disk *disk)
{
    const struct bk_bmap *b = img->bmap;
    uint64_t pos = 0;
    for (size_t i = 0; i <= b->range_count; i++) {
        uint64_t start = i < b->range_count ? bk_bmap_range_start(b, i) : img->size;
        for (; pos < start; pos++)
            if (disk->data[pos] != FILL)
                fail_msg("unmapped byte %lu was overwritten", (unsigned long)pos);
        if (i == b->range_count)
            break;
        uint64_t len = bk_bmap_range_bytes(b, i);
        assert_memory_equal(disk->data + start, img->data + start, len);
        pos = start + len;
    }
}

/* The image's first MiB is not on DISK: a failed copy must not look like an image. */
static inline void assert_no_head(const struct image *img, const struct mem_disk *disk)
{
    assert_true(memcmp(disk->data, img->data, HEAD) != 0);
    /* Its first sector in particular: it is written last of all. */
    assert_true(memcmp(disk->data, img->data, 512) != 0);
}

static inline void assert_one_line(const struct bk_error *err, enum bk_code code)
{
    if (err->code != code)
        fail_msg("code %d (%s), expected %d: %s", (int)err->code, bk_code_name(err->code),
                 (int)code, err->msg);
    assert_true(err->msg[0] != '\0');
    assert_null(strchr(err->msg, '\n'));
}

/*
 * Long ranges beside each other: A (16 MiB, range 2), then a short range S of 3 MiB
 * (range 4) and B (8 MiB, range 5), C (6 MiB, range 7), small ones between, a partial
 * last block. From a file several hashers check A and what follows it side by side.
 */
#define LONG_A 2
#define LONG_S 4
#define LONG_B 5
static inline void make_long_image(struct image *img)
{
    const uint64_t size = (40 << 20) - 1000, blocks = (size + BLOCK - 1) / BLOCK;
    const struct bk_range r[] = {
        {0, 0},       {2, 5},       {256, 4351},
        {4400, 4400}, {4410, 5177}, {5300, 7347},
        {7400, 7409}, {7500, 9035}, {blocks - 3, blocks - 1},
    };
    make_image_of(img, size, r, sizeof r / sizeof r[0]);
}

#endif
