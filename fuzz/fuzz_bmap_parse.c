/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the bmap reader. Any input must either be refused cleanly or
 * give a map that satisfies the documented invariants; an accepted map must survive
 * write -> parse unchanged, and writing the re-read map must give the same bytes.
 * A broken property calls abort() so the fuzzer keeps the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* What the parser promises about a map it accepted. */
static void check_map(const struct bk_bmap *m)
{
    check(m->block_size > 0);
    uint64_t blocks = m->image_size / m->block_size + (m->image_size % m->block_size != 0);
    check(m->blocks_count == blocks);
    uint64_t mapped = 0;
    for (size_t i = 0; i < m->range_count; i++) {
        const struct bk_range *r = &m->ranges[i];
        check(r->first <= r->last && r->last < m->blocks_count);
        check(i == 0 || r->first > m->ranges[i - 1].last);
        mapped += r->last - r->first + 1;
        check(bk_bmap_range_bytes(m, i) <= m->image_size);
        check(!bk_bmap_digest(m, i) || m->hash != BK_HASH_NONE);
    }
    check(mapped == m->mapped_blocks);
    check(bk_bmap_mapped_bytes(m) <= m->image_size);
}

static void check_same(const struct bk_bmap *a, const struct bk_bmap *b)
{
    check(b->version_major == 2 && b->version_minor == 0);
    check(a->image_size == b->image_size && a->block_size == b->block_size);
    check(a->blocks_count == b->blocks_count && a->mapped_blocks == b->mapped_blocks);
    check(b->hash == (a->hash != BK_HASH_NONE ? a->hash : BK_HASH_SHA256));
    check(b->has_file_checksum);
    check(a->range_count == b->range_count);
    for (size_t i = 0; i < a->range_count; i++) {
        check(a->ranges[i].first == b->ranges[i].first);
        check(a->ranges[i].last == b->ranges[i].last);
        const uint8_t *da = bk_bmap_digest(a, i), *db = bk_bmap_digest(b, i);
        check(!da == !db);
        check(!da || memcmp(da, db, bk_hash_size(b->hash)) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bk_bmap m;
    struct bk_error err;
    bk_error_clear(&err);
    if (bk_bmap_parse_buffer(data, size, "fuzz.bmap", &m, &err) != 0) {
        /* A refusal leaves nothing allocated and explains itself on one line. */
        check(err.code != BK_OK && err.msg[0] != '\0' && !strchr(err.msg, '\n'));
        check(m.range_count == 0 && !m.ranges && !m.digests && !m.digest_present);
        return 0;
    }
    check_map(&m);

    struct out first = {0}, second = {0};
    check(bk_bmap_write(&m, out_sink, &first, &err) == 0);

    struct bk_bmap again;
    check(bk_bmap_parse_buffer(first.data, first.len, "rewritten.bmap", &again, &err) == 0);
    check_map(&again);
    check_same(&m, &again);

    check(bk_bmap_write(&again, out_sink, &second, &err) == 0);
    check(first.len == second.len && memcmp(first.data, second.data, first.len) == 0);

    free(first.data);
    free(second.data);
    bk_bmap_free(&again);
    bk_bmap_free(&m);
    return 0;
}
