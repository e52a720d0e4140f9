/* SPDX-License-Identifier: MIT */
/*
 * Forced ranges: image bytes written although the bmap leaves them out. The job copies
 * a bmap that lists them too (without checksums), so the reader takes them in order
 * with the mapped ranges, from a file or a stream alike; a thin source in front of the
 * image notes the digest of each as it is read, and read-back checks them against that.
 */
#include "copy/extras.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* One range the forced ranges add, and its digest as read from the image. */
struct forced_piece {
    size_t index;   /* in the job's bmap */
    uint64_t start; /* bytes of the image, [start, end) */
    uint64_t end;
    uint64_t next; /* next byte the digest expects */
    bool done;
    uint8_t digest[BK_DIGEST_MAX];
};

struct copy_forced {
    struct bk_bmap *bmap; /* the caller's ranges and the forced ones */
    struct forced_piece *pieces;
    size_t n_pieces;
    struct bk_digest *digest; /* of the piece being read; NULL without a hash */
    struct bk_source tap;
    uint64_t pos; /* sequential position of the tapped source */
    uint8_t *scratch;
};

#define TAP_SCRATCH (64u << 10)

struct copy_extras *copy_extras_get(struct bk_copy *job, struct bk_error *err)
{
    if (!job->extras) {
        job->extras = calloc(1, sizeof *job->extras);
        if (!job->extras)
            bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    return job->extras;
}

static void forced_free(struct copy_forced *f)
{
    if (!f)
        return;
    bk_bmap_free(f->bmap);
    bk_digest_free(f->digest);
    free(f->pieces);
    free(f->scratch);
    free(f);
}

void copy_extras_free(struct bk_copy *job)
{
    if (!job->extras)
        return;
    forced_free(job->extras->run);
    free(job->extras->forced);
    free(job->extras);
    job->extras = NULL;
}

int bk_copy_add_forced_range(struct bk_copy *job, uint64_t offset, uint64_t length,
                             struct bk_error *err)
{
    if (length == 0 || offset + length < offset)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "forced range of %" PRIu64 " bytes at byte %" PRIu64 " is empty or "
                            "too long",
                            length, offset);
    if (job->bmap && offset + length > job->bmap->image_size)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "forced range bytes %" PRIu64 "-%" PRIu64
                            " reaches past the end of the image (%" PRIu64 " bytes)",
                            offset, offset + length - 1, job->bmap->image_size);
    struct copy_extras *x = job->extras;
    struct copy_span *n = realloc(x->forced, (x->n_forced + 1) * sizeof *n);
    if (!n)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    x->forced = n;
    x->forced[x->n_forced++] = (struct copy_span){offset, offset + length};
    return 0;
}

static int span_cmp(const void *a, const void *b)
{
    const struct copy_span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* The forced ranges in whole blocks, sorted and merged: [first, last] pairs. */
static size_t forced_blocks(struct copy_extras *x, uint32_t bs, struct bk_range *out)
{
    qsort(x->forced, x->n_forced, sizeof *x->forced, span_cmp);
    size_t n = 0;
    for (size_t i = 0; i < x->n_forced; i++) {
        struct bk_range r = {x->forced[i].start / bs, (x->forced[i].end - 1) / bs};
        if (n > 0 && r.first <= out[n - 1].last + 1) {
            if (r.last > out[n - 1].last)
                out[n - 1].last = r.last;
        } else
            out[n++] = r;
    }
    return n;
}

static int add_piece(struct copy_forced *f, uint64_t first, uint64_t last, struct bk_error *err)
{
    struct bk_bmap *b = f->bmap;
    if (bk_bmap_add(b, first, last, NULL, err) < 0)
        return -1;
    size_t i = b->range_count - 1;
    uint64_t start = bk_bmap_range_start(b, i);
    f->pieces[f->n_pieces++] = (struct forced_piece){
        .index = i, .start = start, .end = start + bk_bmap_range_bytes(b, i), .next = start};
    return 0;
}

/* The caller's ranges with the parts of WANT they leave out between them, in order. */
static int merge_ranges(struct copy_forced *f, const struct bk_bmap *orig,
                        const struct bk_range *want, size_t n_want, struct bk_error *err)
{
    size_t w = 0;
    uint64_t from = n_want ? want[0].first : 0; /* the part of want[w] not yet placed */
    for (size_t i = 0; i <= orig->range_count; i++) {
        uint64_t next = i < orig->range_count ? orig->ranges[i].first : UINT64_MAX;
        /* The forced blocks before range i. */
        while (w < n_want && from < next) {
            uint64_t last = want[w].last < next ? want[w].last : next - 1;
            if (add_piece(f, from, last, err) < 0)
                return -1;
            if (last == want[w].last) {
                if (++w < n_want)
                    from = want[w].first;
            } else
                from = next;
        }
        if (i == orig->range_count)
            break;
        const struct bk_range *r = &orig->ranges[i];
        if (bk_bmap_add(f->bmap, r->first, r->last, bk_bmap_digest(orig, i), err) < 0)
            return -1;
        /* Whatever the forced ranges share with range i is written anyway. */
        while (w < n_want && want[w].last <= r->last)
            if (++w < n_want)
                from = want[w].first;
        if (w < n_want && from <= r->last)
            from = r->last + 1;
    }
    return 0;
}

static struct copy_forced *forced_new(const struct bk_bmap *orig, struct copy_extras *x,
                                      struct bk_error *err)
{
    struct copy_forced *f = calloc(1, sizeof *f);
    struct bk_range *want = malloc(x->n_forced * sizeof *want);
    if (f)
        f->pieces = malloc((x->n_forced + orig->range_count) * sizeof *f->pieces);
    if (f)
        f->bmap = bk_bmap_alloc(err);
    if (!f || !want || !f->pieces || !f->bmap) {
        free(want);
        forced_free(f);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    struct bk_bmap *b = f->bmap;
    b->version_major = orig->version_major;
    b->version_minor = orig->version_minor;
    b->image_size = orig->image_size;
    b->block_size = orig->block_size;
    b->blocks_count = orig->blocks_count;
    b->hash = orig->hash;
    b->has_file_checksum = orig->has_file_checksum;
    size_t n_want = forced_blocks(x, orig->block_size, want);
    int rc = merge_ranges(f, orig, want, n_want, err);
    free(want);
    if (rc == 0 && orig->hash != BK_HASH_NONE && f->n_pieces > 0) {
        f->digest = bk_digest_new(orig->hash, err);
        rc = f->digest ? 0 : -1;
    }
    if (rc < 0) {
        forced_free(f);
        return NULL;
    }
    for (size_t i = 0; i < b->range_count; i++)
        b->mapped_blocks += b->ranges[i].last - b->ranges[i].first + 1;
    return f;
}

/*
 * The bytes [AT, AT + LEN) went by: feed the digest of the piece they continue. A piece
 * read twice (a read-back rewrite) keeps the digest of its first reading.
 */
static void tap_note(struct copy_forced *f, const uint8_t *data, size_t len, uint64_t at)
{
    if (!f->digest)
        return;
    for (size_t i = 0; i < f->n_pieces; i++) {
        struct forced_piece *p = &f->pieces[i];
        if (p->done || at > p->next || at + len <= p->next)
            continue;
        uint64_t to = at + len < p->end ? at + len : p->end;
        struct bk_error ignored;
        if (bk_digest_update(f->digest, data + (p->next - at), (size_t)(to - p->next), &ignored) <
            0)
            continue; /* never finished: read-back then finds no digest and says so */
        p->next = to;
        if (p->next == p->end && bk_digest_final(f->digest, p->digest, &ignored) == 0)
            p->done = true;
    }
}

static int tap_read(struct bk_source *src, void *buf, size_t len, size_t *got, struct bk_error *err)
{
    struct copy_forced *f = src->priv;
    struct bk_source *in = (struct bk_source *)src->below;
    if (in->ops->read(in, buf, len, got, err) < 0)
        return -1;
    tap_note(f, buf, *got, f->pos);
    f->pos += *got;
    return 0;
}

static int tap_pread(struct bk_source *src, void *buf, size_t len, uint64_t offset, size_t *got,
                     struct bk_error *err)
{
    struct copy_forced *f = src->priv;
    struct bk_source *in = (struct bk_source *)src->below;
    if (in->ops->pread(in, buf, len, offset, got, err) < 0)
        return -1;
    tap_note(f, buf, *got, offset);
    return 0;
}

static int tap_skip(struct bk_source *src, uint64_t len, uint64_t *skipped, struct bk_error *err)
{
    struct copy_forced *f = src->priv;
    struct bk_source *in = (struct bk_source *)src->below;
    /* Skipped bytes are never part of a forced range: the reader reads those. */
    if (bk_source_skip_full(in, len, f->pos, f->scratch, TAP_SCRATCH, err) < 0)
        return -1;
    *skipped = len;
    f->pos += len;
    return 0;
}

static int tap_plan(struct bk_source *src, const struct bk_area *areas, size_t count,
                    struct bk_error *err)
{
    return bk_source_plan((struct bk_source *)src->below, areas, count, err);
}

static void tap_close(struct bk_source *src)
{
    (void)src; /* the image stays the caller's */
}

static const struct bk_source_ops tap_ops = {
    .read = tap_read,
    .pread = tap_pread,
    .skip = tap_skip,
    .plan = tap_plan,
    .close = tap_close,
};

int copy_extras_begin(struct bk_copy *job, struct bk_error *err)
{
    struct copy_extras *x = job->extras;
    if (copy_gpt_precheck(job, err) < 0)
        return -1;
    if (x->n_forced == 0 || !job->bmap)
        return 0;
    struct copy_forced *f = forced_new(job->bmap, x, err);
    if (!f)
        return -1;
    f->scratch = malloc(TAP_SCRATCH);
    if (!f->scratch) {
        forced_free(f);
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    f->tap = *job->src;
    f->tap.ops = &tap_ops;
    f->tap.below = job->src;
    f->tap.priv = f;
    x->run = f;
    x->saved_bmap = job->bmap;
    x->saved_src = job->src;
    job->bmap = f->bmap;
    job->src = &f->tap;
    for (size_t i = 0; i < f->n_pieces; i++)
        job->stats.forced_bytes += f->pieces[i].end - f->pieces[i].start;
    job->stats.ranges_forced = f->n_pieces;
    return 0;
}

void copy_forced_finish(struct bk_copy *job)
{
    struct copy_forced *f = job->extras ? job->extras->run : NULL;
    if (!f)
        return;
    for (size_t i = 0; i < f->n_pieces; i++)
        if (f->pieces[i].done)
            bk_bmap_set_digest(f->bmap, f->pieces[i].index, f->pieces[i].digest);
    /* They had no checksum to be verified against while copying; they are counted apart. */
    if (job->verify && f->bmap->hash != BK_HASH_NONE && job->stats.ranges_unchecked >= f->n_pieces)
        job->stats.ranges_unchecked -= f->n_pieces;
}

void copy_extras_end(struct bk_copy *job)
{
    struct copy_extras *x = job->extras;
    if (!x || !x->run)
        return;
    job->bmap = x->saved_bmap;
    job->src = x->saved_src;
}

int copy_extras_after_data(struct bk_copy *job, struct bk_error *err)
{
    copy_forced_finish(job);
    return copy_zero_unmapped(job, err);
}

void bk_copy_set_zero_unmapped(struct bk_copy *job, bool zero)
{
    job->extras->zero_unmapped = zero;
}

void bk_copy_set_relocate_gpt(struct bk_copy *job, bool relocate)
{
    job->extras->relocate_gpt = relocate;
}
