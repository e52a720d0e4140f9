/* SPDX-License-Identifier: MIT */
/*
 * http, https and ftp URLs as sources. When the server honours ranges the source is
 * seekable: a read at an offset asks for exactly the bytes wanted, and small reads share
 * a window of WINDOW bytes (never past the planned area they fall in), so decoders that
 * read headers a few bytes at a time cost one request. Sequential reads ask for growing
 * pieces. A server that ignores ranges gives a stream, read once from its start.
 *
 * Once the copy says which areas it will read (plan), they are fetched ahead by several
 * transfers at once (net/ahead.c) and preads are served from what arrived, from any
 * thread; a read outside them goes the way above.
 */
#include "source/source_impl.h"
#include "common/util.h"
#include "net/net.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum {
    WINDOW = 64 << 10,     /* small reads share this much */
    SEQ_FIRST = 256 << 10, /* the first sequential request */
    SEQ_MAX = 8 << 20,     /* the largest one */
};

struct url_source {
    struct bk_source pub;
    struct bk_net *net;
    pthread_mutex_t lock; /* the decoders' workers read at once; one transfer serves them */
    uint64_t rpos;        /* sequential position */
    uint64_t seq;         /* size of the next sequential request */
    uint8_t *win;
    uint64_t wstart;
    size_t wlen;
    struct bk_area *areas;
    size_t n_areas;
    struct bk_net_ahead *ahead; /* fetching the planned areas, or NULL; set under lock */
    bool interrupted;           /* under lock */
    uint8_t *head;              /* the first request's bytes, kept: formats look there */
    size_t head_len;
};

/* Copy what the first request brought at OFF; 0 when it does not reach there. */
static size_t from_head(const struct url_source *u, void *buf, size_t len, uint64_t off)
{
    if (off >= u->head_len)
        return 0;
    size_t k = (size_t)bk_min_u64(len, u->head_len - off);
    memcpy(buf, u->head + off, k);
    return k;
}

/* Copy from the window what it holds at OFF; 0 when nothing. */
static size_t from_window(struct url_source *u, void *buf, size_t len, uint64_t off)
{
    if (off < u->wstart || off >= u->wstart + u->wlen)
        return 0;
    size_t k = (size_t)bk_min_u64(len, u->wstart + u->wlen - off);
    memcpy(buf, u->win + (off - u->wstart), k);
    return k;
}

/* Where a window that starts at OFF ends: the end of the planned area OFF lies in. */
static uint64_t window_end(const struct url_source *u, uint64_t off, size_t len)
{
    uint64_t end = off + WINDOW;
    for (size_t i = 0; i < u->n_areas; i++)
        if (off >= u->areas[i].start && off < u->areas[i].end) {
            end = bk_min_u64(end, u->areas[i].end);
            break;
        }
    return bk_max_u64(end, off + len);
}

static int fill_window(struct url_source *u, uint64_t off, size_t len, struct bk_error *err)
{
    uint64_t end = window_end(u, off, len);
    u->wlen = 0;
    u->wstart = off;
    if (bk_net_start(u->net, off, end, err) < 0)
        return -1;
    while (u->wlen < WINDOW) {
        size_t got;
        if (bk_net_pull(u->net, u->win + u->wlen, WINDOW - u->wlen, &got, err) < 0)
            return -1;
        if (got == 0)
            break;
        u->wlen += got;
    }
    return 0;
}

static int url_pread_locked(struct url_source *u, void *buf, size_t len, uint64_t off, size_t *got,
                            struct bk_error *err)
{
    *got = from_window(u, buf, len, off);
    if (*got > 0 || (*got = from_head(u, buf, len, off)) > 0)
        return 0;
    if (u->pub.size >= 0 && off >= (uint64_t)u->pub.size)
        return 0;
    /* The running request goes on where this read starts, unless it just ended. */
    if (bk_net_active(u->net) && bk_net_pos(u->net) == off &&
        (bk_net_pull(u->net, buf, len, got, err) < 0 || *got > 0))
        return *got > 0 ? 0 : -1;
    if (len >= WINDOW) {
        if (bk_net_start(u->net, off, off + len, err) < 0)
            return -1;
        return bk_net_pull(u->net, buf, len, got, err);
    }
    if (fill_window(u, off, len, err) < 0)
        return -1;
    *got = from_window(u, buf, len, off);
    return 0;
}

static int url_pread(struct bk_source *src, void *buf, size_t len, uint64_t offset, size_t *got,
                     struct bk_error *err)
{
    struct url_source *u = src->priv;
    if (u->ahead) {
        int rc = bk_net_ahead_read(u->ahead, buf, len, offset, got, err);
        if (rc <= 0)
            return rc;
    }
    pthread_mutex_lock(&u->lock);
    int rc = url_pread_locked(u, buf, len, offset, got, err);
    pthread_mutex_unlock(&u->lock);
    return rc;
}

static int url_read(struct bk_source *src, void *buf, size_t len, size_t *got, struct bk_error *err)
{
    struct url_source *u = src->priv;
    pthread_mutex_lock(&u->lock);
    int rc = 0;
    *got = from_head(u, buf, len, u->rpos);
    if (*got == 0)
        *got = from_window(u, buf, len, u->rpos);
    if (*got == 0 && bk_net_active(u->net) && bk_net_pos(u->net) == u->rpos)
        rc = bk_net_pull(u->net, buf, len, got, err);
    /* A request ended: ask for the next piece, larger each time. */
    if (rc == 0 && *got == 0 && bk_net_ranges(u->net) &&
        (u->pub.size < 0 || u->rpos < (uint64_t)u->pub.size)) {
        rc = bk_net_start(u->net, u->rpos, u->rpos + u->seq, err);
        u->seq = bk_min_u64(u->seq * 2, SEQ_MAX);
        if (rc == 0)
            rc = bk_net_pull(u->net, buf, len, got, err);
    }
    if (rc == 0)
        u->rpos += *got;
    pthread_mutex_unlock(&u->lock);
    return rc;
}

/* AREAS clipped to the file, without empty ones, touching or overlapping ones joined. */
static size_t tidy_areas(const struct url_source *u, const struct bk_area *areas, size_t count,
                         struct bk_area *out)
{
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        /* The first request's bytes are kept: not fetched again. */
        uint64_t s = bk_max_u64(areas[i].start, u->head_len);
        uint64_t e = bk_min_u64(areas[i].end, (uint64_t)u->pub.size);
        if (s >= e)
            continue;
        /* Out of order: joined to the one before, or left to the reads themselves. */
        if (n > 0 && s <= out[n - 1].end)
            out[n - 1].end = bk_max_u64(out[n - 1].end, e);
        else
            out[n++] = (struct bk_area){s, e};
    }
    return n;
}

static int url_plan(struct bk_source *src, const struct bk_area *areas, size_t count,
                    struct bk_error *err)
{
    struct url_source *u = src->priv;
    struct bk_area *copy = count ? malloc(count * sizeof *copy) : NULL;
    if (count && !copy)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    count = count ? tidy_areas(u, areas, count, copy) : 0;
    pthread_mutex_lock(&u->lock);
    struct bk_net_ahead *old = u->ahead;
    u->ahead = NULL;
    pthread_mutex_unlock(&u->lock);
    bk_net_ahead_stop(old);
    pthread_mutex_lock(&u->lock);
    free(u->areas);
    u->areas = copy;
    u->n_areas = count;
    pthread_mutex_unlock(&u->lock);
    if (count == 0 || !u->pub.seekable)
        return 0;
    uint64_t(*pairs)[2] = malloc(count * sizeof *pairs);
    if (!pairs)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < count; i++) {
        pairs[i][0] = copy[i].start;
        pairs[i][1] = copy[i].end;
    }
    struct bk_net_ahead *a = bk_net_ahead_start(u->net, (const uint64_t(*)[2])pairs, count, err);
    free(pairs);
    pthread_mutex_lock(&u->lock);
    u->ahead = a;
    if (a && u->interrupted)
        bk_net_ahead_interrupt(a);
    pthread_mutex_unlock(&u->lock);
    return a ? 0 : -1;
}

/* A copy that stops wakes a read waiting for a server that may never answer. */
static void url_interrupt(const struct bk_source *src)
{
    struct url_source *u = src->priv;
    bk_net_interrupt(u->net);
    pthread_mutex_lock(&u->lock);
    u->interrupted = true;
    if (u->ahead)
        bk_net_ahead_interrupt(u->ahead);
    pthread_mutex_unlock(&u->lock);
}

static void url_close(struct bk_source *src)
{
    struct url_source *u = src->priv;
    bk_net_ahead_stop(u->ahead);
    bk_net_close(u->net);
    pthread_mutex_destroy(&u->lock);
    free(u->areas);
    free(u->win);
    free(u->head);
    free(u);
}

static uint64_t url_fetched(const struct bk_source *src)
{
    const struct url_source *u = src->priv;
    return bk_net_received(u->net);
}

static const struct bk_source_ops url_ops = {
    .read = url_read,
    .pread = url_pread,
    .plan = url_plan,
    .fetched = url_fetched,
    .interrupt = url_interrupt,
    .close = url_close,
};

/* Take all of the first request's bytes (at most WINDOW): they are read more than once. */
static int keep_head(struct url_source *u, struct bk_error *err)
{
    if (!(u->head = malloc(WINDOW)))
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    while (u->head_len < WINDOW && bk_net_active(u->net) && bk_net_pos(u->net) == u->head_len) {
        size_t got;
        if (bk_net_pull(u->net, u->head + u->head_len, WINDOW - u->head_len, &got, err) < 0)
            return -1;
        if (got == 0)
            break;
        u->head_len += got;
    }
    return 0;
}

struct bk_source *bk_source_open_url(const char *url, const struct bk_fetch_options *opts,
                                     struct bk_error *err)
{
    struct url_source *u = calloc(1, sizeof *u);
    if (u)
        u->win = malloc(WINDOW);
    if (!u || !u->win) {
        if (u)
            free(u);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    struct bk_net_options no;
    bk_net_options_from(&no, opts);
    u->net = bk_net_open(url, &no, WINDOW, err);
    if (!u->net) {
        free(u->win);
        free(u);
        return NULL;
    }
    pthread_mutex_init(&u->lock, NULL);
    u->seq = SEQ_FIRST;
    u->pub.ops = &url_ops;
    u->pub.priv = u;
    u->pub.name = bk_net_name(u->net);
    u->pub.size = bk_net_size(u->net);
    u->pub.seekable = bk_net_ranges(u->net) && u->pub.size >= 0;
    u->pub.remote = true;
    if (u->pub.seekable && keep_head(u, err) < 0) {
        url_close(&u->pub);
        return NULL;
    }
    return &u->pub;
}
