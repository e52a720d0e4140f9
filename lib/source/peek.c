/* SPDX-License-Identifier: MIT */
/* A source whose first bytes can be looked at before they are read (format detection). */
#include "source/source_impl.h"

#include <stdlib.h>
#include <string.h>

struct peek_source {
    struct bk_source pub;
    struct bk_source *in;
    size_t have, pos, cap;
    uint8_t buf[];
};

static int peek_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                     struct bk_error *err)
{
    struct peek_source *p = src->priv;
    if (p->pos < p->have) {
        size_t n = p->have - p->pos < len ? p->have - p->pos : len;
        memcpy(buf, p->buf + p->pos, n);
        p->pos += n;
        *got = n;
        return 0;
    }
    return bk_source_read(p->in, buf, len, got, err);
}

static int peek_pread(struct bk_source *src, void *buf, size_t len, uint64_t offset, size_t *got,
                      struct bk_error *err)
{
    struct peek_source *p = src->priv;
    return bk_source_pread(p->in, buf, len, offset, got, err);
}

/* A plan is about preads, which pass through unchanged. */
static int peek_plan(struct bk_source *src, const struct bk_area *areas, size_t count,
                     struct bk_error *err)
{
    struct peek_source *p = src->priv;
    return bk_source_plan(p->in, areas, count, err);
}

static void peek_close(struct bk_source *src)
{
    struct peek_source *p = src->priv;
    bk_source_close(p->in);
    free(p);
}

/* The inner source's skip would skip the peeked bytes: not here. */
static const struct bk_source_ops peek_ops = {
    .read = peek_read,
    .pread = peek_pread,
    .plan = peek_plan,
    .close = peek_close,
};

struct bk_source *bk_source_peekable(struct bk_source *in, size_t cap, struct bk_error *err)
{
    struct peek_source *p = calloc(1, sizeof *p + cap);
    if (!p) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    p->in = in;
    p->cap = cap;
    p->pub = *in;
    p->pub.priv = p;
    p->pub.ops = &peek_ops;
    p->pub.below = in;
    return &p->pub;
}

int bk_source_peek(struct bk_source *src, const uint8_t **data, size_t want, size_t *got,
                   struct bk_error *err)
{
    struct peek_source *p = src->priv;
    if (want > p->cap)
        want = p->cap;
    /* Fill up to WANT bytes; a short stream just gives fewer. */
    while (p->have < want) {
        size_t n;
        if (bk_source_read(p->in, p->buf + p->have, want - p->have, &n, err) < 0)
            return -1;
        if (n == 0)
            break;
        p->have += n;
    }
    *data = p->buf;
    *got = p->have < want ? p->have : want;
    return 0;
}
