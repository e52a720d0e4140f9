/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the bmap reader. Any input must either be refused cleanly or
 * give a map that satisfies the documented invariants; an accepted map must survive
 * write -> parse unchanged, and writing the re-read map must give the same bytes. The
 * public builder (bk_bmap_new, bk_bmap_append) must accept every map the parser accepts
 * and the rebuilt map must write the same bytes too.
 * A broken property calls abort() so the fuzzer keeps the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bmap/bmap_impl.h"
#include "bmapkit/bmap.h"

struct out {
    uint8_t *data;
    size_t len;
    size_t cap;
};

static int out_sink(void *ctx, const void *data, size_t len, struct bk_error *err)
{
    struct out *o = ctx;
    if (o->len + len > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + len)
            cap *= 2;
        uint8_t *p = realloc(o->data, cap);
        if (!p)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        o->data = p;
        o->cap = cap;
    }
    memcpy(o->data + o->len, data, len);
    o->len += len;
    return 0;
}

static void check(int ok)
{
    if (!ok)
        abort();
}

/* The public accessors report what the map holds. */
static void check_accessors(const struct bk_bmap *m)
{
    unsigned major = 0, minor = 0;
    bk_bmap_version(m, &major, &minor);
    check(major == m->version_major && minor == m->version_minor);
    check(bk_bmap_image_size(m) == m->image_size);
    check(bk_bmap_block_size(m) == m->block_size);
    check(bk_bmap_blocks_count(m) == m->blocks_count);
    check(bk_bmap_mapped_blocks(m) == m->mapped_blocks);
    check(bk_bmap_hash(m) == m->hash);
    check(bk_bmap_has_file_checksum(m) == m->has_file_checksum);
    check(bk_bmap_range_count(m) == m->range_count);
    for (size_t i = 0; i < m->range_count; i++) {
        struct bk_range r = bk_bmap_range(m, i);
        check(r.first == m->ranges[i].first && r.last == m->ranges[i].last);
        check(bk_bmap_range_start(m, i) == m->ranges[i].first * m->block_size);
    }
}

/* What the parser promises about a map it accepted. */
static void check_map(const struct bk_bmap *m)
{
    check_accessors(m);
    unsigned major = 0, minor = 0;
    bk_bmap_version(m, &major, &minor);
    /* Versions 1.0 to 1.4 and 2.x only; 1.3 and later carry a file checksum. */
    check((major == 1 && minor <= 4) || major == 2);
    check(bk_bmap_has_file_checksum(m) == (major == 2 || minor >= 3));

    uint64_t image_size = bk_bmap_image_size(m);
    uint32_t block_size = bk_bmap_block_size(m);
    uint64_t blocks_count = bk_bmap_blocks_count(m);
    enum bk_hash hash = bk_bmap_hash(m);
    check(block_size > 0);
    uint64_t blocks = image_size / block_size + (image_size % block_size != 0);
    check(blocks_count == blocks);
    uint64_t mapped = 0;
    for (size_t i = 0; i < bk_bmap_range_count(m); i++) {
        struct bk_range r = bk_bmap_range(m, i);
        check(r.first <= r.last && r.last < blocks_count);
        check(i == 0 || r.first > bk_bmap_range(m, i - 1).last);
        mapped += r.last - r.first + 1;
        check(bk_bmap_range_bytes(m, i) <= image_size);
        check(!bk_bmap_digest(m, i) || hash != BK_HASH_NONE);
    }
    check(mapped == bk_bmap_mapped_blocks(m));
    check(bk_bmap_mapped_bytes(m) <= image_size);
}

static void check_same(const struct bk_bmap *a, const struct bk_bmap *b)
{
    unsigned major = 0, minor = 0;
    bk_bmap_version(b, &major, &minor);
    check(major == 2 && minor == 0);
    check(bk_bmap_image_size(a) == bk_bmap_image_size(b));
    check(bk_bmap_block_size(a) == bk_bmap_block_size(b));
    check(bk_bmap_blocks_count(a) == bk_bmap_blocks_count(b));
    check(bk_bmap_mapped_blocks(a) == bk_bmap_mapped_blocks(b));
    enum bk_hash ha = bk_bmap_hash(a), hb = bk_bmap_hash(b);
    check(hb == (ha != BK_HASH_NONE ? ha : BK_HASH_SHA256));
    check(bk_bmap_has_file_checksum(b));
    check(bk_bmap_range_count(a) == bk_bmap_range_count(b));
    for (size_t i = 0; i < bk_bmap_range_count(a); i++) {
        struct bk_range ra = bk_bmap_range(a, i), rb = bk_bmap_range(b, i);
        check(ra.first == rb.first && ra.last == rb.last);
        const uint8_t *da = bk_bmap_digest(a, i), *db = bk_bmap_digest(b, i);
        check(!da == !db);
        check(!da || memcmp(da, db, bk_hash_size(hb)) == 0);
    }
}

/* The same map built through the public builder; it must take everything M holds. */
static struct bk_bmap *rebuild(const struct bk_bmap *m, struct bk_error *err)
{
    struct bk_bmap *r =
        bk_bmap_new(bk_bmap_image_size(m), bk_bmap_block_size(m), bk_bmap_hash(m), err);
    check(r != NULL);
    check(bk_bmap_blocks_count(r) == bk_bmap_blocks_count(m));
    for (size_t i = 0; i < bk_bmap_range_count(m); i++) {
        struct bk_range g = bk_bmap_range(m, i);
        check(bk_bmap_append(r, g.first, g.last, bk_bmap_digest(m, i), err) == 0);
    }
    check(bk_bmap_mapped_blocks(r) == bk_bmap_mapped_blocks(m));
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_bmap *m = bk_bmap_parse_buffer(data, size, "fuzz.bmap", &err);
    if (!m) {
        /* A refusal returns no map and explains itself on one line. */
        check(err.code != BK_OK && err.msg[0] != '\0' && !strchr(err.msg, '\n'));
        return 0;
    }
    check_map(m);

    struct out first = {0}, second = {0}, third = {0};
    check(bk_bmap_write(m, out_sink, &first, &err) == 0);

    struct bk_bmap *again = bk_bmap_parse_buffer(first.data, first.len, "rewritten.bmap", &err);
    check(again != NULL);
    check_map(again);
    check_same(m, again);

    check(bk_bmap_write(again, out_sink, &second, &err) == 0);
    check(first.len == second.len && memcmp(first.data, second.data, first.len) == 0);

    struct bk_bmap *built = rebuild(m, &err);
    check_map(built);
    check(bk_bmap_write(built, out_sink, &third, &err) == 0);
    check(first.len == third.len && memcmp(first.data, third.data, first.len) == 0);

    free(first.data);
    free(second.data);
    free(third.data);
    bk_bmap_free(built);
    bk_bmap_free(again);
    bk_bmap_free(m);
    return 0;
}
