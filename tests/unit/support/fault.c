/* SPDX-License-Identifier: MIT */
/* Wrappers that pass every call through, but for the fault they were given. */
#include "fakes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct faulty {
    struct fault f;
    unsigned calls;   /* calls of the faulty operation so far */
    unsigned fired;   /* times the fault took effect */
    unsigned skipped; /* triggering calls let through */
    bool vanished;
    uint64_t pos; /* sequential read position of a source */
    union {
        struct bk_source *src;
        struct bk_dest *dest;
    } in;
    struct bk_source spub;
};

static void nap(unsigned us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Whether the fault hits this call of OP over [OFFSET, OFFSET + LEN). */
static bool hits(struct faulty *w, enum fault_op op, uint64_t offset, uint64_t len)
{
    if (w->vanished)
        return true;
    if (w->f.op != op)
        return false;
    w->calls++;
    if (w->f.kind == FAULT_SLOW) {
        nap(w->f.delay_us);
        return false;
    }
    bool by_call = w->f.at_call == 0 || (w->f.at_call > 0 && w->calls == (uint64_t)w->f.at_call);
    bool by_byte = w->f.at_byte >= 0 && (uint64_t)w->f.at_byte >= offset &&
                   (uint64_t)w->f.at_byte < offset + len;
    if (!by_call && !by_byte)
        return false;
    if (w->f.kind == FAULT_CORRUPT && w->f.times && w->fired >= w->f.times)
        return false;
    if (w->skipped < w->f.skip) {
        w->skipped++;
        return false;
    }
    w->fired++;
    if (w->f.kind == FAULT_VANISH)
        w->vanished = true;
    return true;
}

static int fail(struct faulty *w, const char *what, uint64_t offset, struct bk_error *err)
{
    int e = w->vanished ? ENODEV : w->f.err;
    return bk_error_set(err, BK_E_IO, e, "injected: %s failed at byte %" PRIu64, what, offset);
}

/* ---- sources ----------------------------------------------------------------------- */

static int fs_read(struct bk_source *src, void *buf, size_t len, size_t *got, struct bk_error *err)
{
    struct faulty *w = src->priv;
    if (hits(w, FAULT_READ, w->pos, len)) {
        if (w->f.kind == FAULT_SHORT)
            len = len > 1 ? len / 2 : len;
        else
            return fail(w, "read", w->pos, err);
    }
    if (bk_source_read(w->in.src, buf, len, got, err) < 0)
        return -1;
    w->pos += *got;
    return 0;
}

static int fs_pread(struct bk_source *src, void *buf, size_t len, uint64_t offset, size_t *got,
                    struct bk_error *err)
{
    struct faulty *w = src->priv;
    if (hits(w, FAULT_PREAD, offset, len)) {
        if (w->f.kind == FAULT_SHORT)
            len = len > 1 ? len / 2 : len;
        else
            return fail(w, "pread", offset, err);
    }
    return bk_source_pread(w->in.src, buf, len, offset, got, err);
}

static void fs_close(struct bk_source *src)
{
    struct faulty *w = src->priv;
    bk_source_close(w->in.src);
    free(w);
}

static const struct bk_source_ops fault_source_ops = {
    .read = fs_read,
    .pread = fs_pread,
    .close = fs_close,
};

struct bk_source *fault_source_new(struct bk_source *in, const struct fault *f)
{
    struct faulty *w = calloc(1, sizeof *w);
    w->f = *f;
    w->in.src = in;
    w->spub = *in;
    w->spub.ops = &fault_source_ops;
    w->spub.priv = w;
    return &w->spub;
}

/* ---- destinations ------------------------------------------------------------------ */

static int fd_write_op(struct bk_dest *d, const void *buf, size_t len, uint64_t offset,
                       struct bk_error *err)
{
    struct faulty *w = d->priv;
    if (hits(w, FAULT_WRITE, offset, len)) {
        /* A disk that fills up takes the bytes before the failing one. */
        if (!w->vanished && w->f.at_byte >= 0 && (uint64_t)w->f.at_byte > offset)
            bk_dest_write(w->in.dest, buf, (size_t)((uint64_t)w->f.at_byte - offset), offset, err);
        return fail(w, "write", offset, err);
    }
    return bk_dest_write(w->in.dest, buf, len, offset, err);
}

static int fd_read_op(struct bk_dest *d, void *buf, size_t len, uint64_t offset, size_t *got,
                      struct bk_error *err)
{
    struct faulty *w = d->priv;
    bool hit = hits(w, FAULT_DEST_READ, offset, len);
    if (hit && w->f.kind != FAULT_CORRUPT)
        return fail(w, "read-back", offset, err);
    if (bk_dest_read(w->in.dest, buf, len, offset, got, err) < 0)
        return -1;
    if (hit && (uint64_t)w->f.at_byte - offset < *got)
        ((uint8_t *)buf)[(uint64_t)w->f.at_byte - offset] ^= 0xff;
    return 0;
}

static int fd_flush_op(struct bk_dest *d, struct bk_error *err)
{
    struct faulty *w = d->priv;
    if (hits(w, FAULT_FLUSH, 0, 0))
        return fail(w, "flush", 0, err);
    return bk_dest_flush(w->in.dest, err);
}

static int fd_set_size_op(struct bk_dest *d, uint64_t size, struct bk_error *err)
{
    struct faulty *w = d->priv;
    return bk_dest_set_size(w->in.dest, size, err);
}

static void fd_close_op(struct bk_dest *d)
{
    struct faulty *w = d->priv;
    bk_dest_close(w->in.dest);
    free(w);
}

static const struct bk_dest_ops fault_dest_ops = {
    .kind = "faulty disk",
    .write = fd_write_op,
    .read = fd_read_op,
    .flush = fd_flush_op,
    .set_size = fd_set_size_op,
    .close = fd_close_op,
};

struct bk_dest *fault_dest_new(struct bk_dest *in, const struct fault *f)
{
    struct faulty *w = calloc(1, sizeof *w);
    w->f = *f;
    w->in.dest = in;
    struct bk_error err;
    struct bk_dest *d = bk_dest_new(&fault_dest_ops, in->name, &err);
    d->size = in->size;
    d->caps = in->caps;
    d->priv = w;
    return d;
}

unsigned fault_fired(const struct bk_source *src, const struct bk_dest *dest)
{
    const struct faulty *w = src ? src->priv : dest->priv;
    return w->fired;
}
