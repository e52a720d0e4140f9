/* SPDX-License-Identifier: MIT */
/* A sequential reader over part of a seekable source, which stays its owner's. */
#include "source/source_impl.h"

#include <stdlib.h>

struct view_source {
    struct bk_source pub;
    struct bk_source *in;
    uint64_t at;
};

static int view_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                     struct bk_error *err)
{
    struct view_source *v = src->priv;
    if (bk_source_pread(v->in, buf, len, v->at, got, err) < 0)
        return -1;
    v->at += *got;
    return 0;
}

static void view_close(struct bk_source *src)
{
    free(src->priv);
}

static const struct bk_source_ops view_ops = {
    .read = view_read,
    .close = view_close,
};

struct bk_source *bk_source_view(struct bk_source *in, uint64_t at, struct bk_error *err)
{
    struct view_source *v = calloc(1, sizeof *v);
    if (!v) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    v->in = in;
    v->at = at;
    v->pub =
        (struct bk_source){.ops = &view_ops, .name = in->name, .size = -1, .below = in, .priv = v};
    return &v->pub;
}
