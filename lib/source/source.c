/* SPDX-License-Identifier: MIT */
/* What every source answers through its table, and exact reads on top of it. */
#include "source/source_impl.h"

#include <inttypes.h>

const char *bk_source_name(const struct bk_source *src)
{
    return src->name;
}

int64_t bk_source_size(const struct bk_source *src)
{
    return src->size;
}

bool bk_source_seekable(const struct bk_source *src)
{
    return src->seekable;
}

int bk_source_read(struct bk_source *src, void *buf, size_t len, size_t *got, struct bk_error *err)
{
    return src->ops->read(src, buf, len, got, err);
}

int bk_source_pread(struct bk_source *src, void *buf, size_t len, uint64_t offset, size_t *got,
                    struct bk_error *err)
{
    *got = 0;
    if (!src->seekable || !src->ops->pread)
        return bk_error_set(err, BK_E_INVALID, 0, "%s cannot be read at an offset", src->name);
    return src->ops->pread(src, buf, len, offset, got, err);
}

int bk_source_plan(struct bk_source *src, const struct bk_area *areas, size_t count,
                   struct bk_error *err)
{
    return src->ops->plan ? src->ops->plan(src, areas, count, err) : 0;
}

static int ends_early(struct bk_source *src, uint64_t offset, struct bk_error *err)
{
    return bk_error_set(err, BK_E_FORMAT, 0,
                        "%s: image ends at byte %" PRIu64 ", before the data still to copy",
                        src->name, offset);
}

/* Read exactly LEN bytes, at OFFSET (POSITIONAL) or from the current position. */
static int read_exact(struct bk_source *src, void *buf, size_t len, uint64_t offset,
                      bool positional, struct bk_error *err)
{
    uint8_t *p = buf;
    while (len > 0) {
        size_t got;
        int rc = positional ? bk_source_pread(src, p, len, offset, &got, err)
                            : bk_source_read(src, p, len, &got, err);
        if (rc < 0)
            return -1;
        if (got == 0)
            return ends_early(src, offset, err);
        p += got;
        len -= got;
        offset += got;
    }
    return 0;
}

int bk_source_pread_full(struct bk_source *src, void *buf, size_t len, uint64_t offset,
                         struct bk_error *err)
{
    return read_exact(src, buf, len, offset, true, err);
}

int bk_source_read_full(struct bk_source *src, void *buf, size_t len, uint64_t offset,
                        struct bk_error *err)
{
    return read_exact(src, buf, len, offset, false, err);
}

int bk_source_skip_full(struct bk_source *src, uint64_t len, uint64_t offset, void *scratch,
                        size_t cap, struct bk_error *err)
{
    while (len > 0) {
        uint64_t done;
        if (src->ops->skip) {
            if (src->ops->skip(src, len, &done, err) < 0)
                return -1;
        } else {
            size_t got;
            if (bk_source_read(src, scratch, len < cap ? (size_t)len : cap, &got, err) < 0)
                return -1;
            done = got;
        }
        if (done == 0)
            return ends_early(src, offset, err);
        len -= done;
        offset += done;
    }
    return 0;
}

uint64_t bk_source_fetched(const struct bk_source *src)
{
    while (src && src->below)
        src = src->below;
    return src && src->ops->fetched ? src->ops->fetched(src) : 0;
}

void bk_source_interrupt(const struct bk_source *src)
{
    for (; src; src = src->below)
        if (src->ops->interrupt)
            src->ops->interrupt(src);
}

void bk_source_close(struct bk_source *src)
{
    if (src)
        src->ops->close(src);
}
