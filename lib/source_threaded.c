/* SPDX-License-Identifier: MIT */
/*
 * Runs a (decoding) source on its own thread: it fills a small ring of chunks ahead
 * of the reader, so decompression overlaps hashing and writing.
 */
#include "source_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (1u << 20)
#define CHUNK_COUNT 4u

struct chunk {
    uint8_t *data;
    size_t len;
};

struct threaded_source {
    struct bk_source pub;
    struct bk_source *in;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct chunk chunks[CHUNK_COUNT];
    uint64_t produced, consumed; /* chunk sequence numbers */
    size_t pos;                  /* read position in the chunk being consumed */
    bool end, failed, stop;
    struct bk_error error;
};

static void *producer(void *arg)
{
    struct threaded_source *t = arg;
    for (;;) {
        pthread_mutex_lock(&t->lock);
        while (!t->stop && t->produced - t->consumed >= CHUNK_COUNT)
            pthread_cond_wait(&t->changed, &t->lock);
        bool stop = t->stop;
        pthread_mutex_unlock(&t->lock);
        if (stop)
            return NULL;

        struct chunk *c = &t->chunks[t->produced % CHUNK_COUNT];
        struct bk_error err;
        bk_error_clear(&err);
        size_t got = 0;
        int rc = t->in->read(t->in, c->data, CHUNK_BYTES, &got, &err);
        pthread_mutex_lock(&t->lock);
        if (rc < 0) {
            t->failed = true;
            t->error = err;
        } else if (got == 0) {
            t->end = true;
        } else {
            c->len = got;
            t->produced++;
        }
        pthread_cond_broadcast(&t->changed);
        bool done = t->failed || t->end;
        pthread_mutex_unlock(&t->lock);
        if (done)
            return NULL;
    }
}

/* Wait for a chunk to consume; 0 with *END set at the end, -1 after a failure. */
static int threaded_wait(struct threaded_source *t, bool *end, struct bk_error *err)
{
    pthread_mutex_lock(&t->lock);
    /* Data decoded before a failure is still handed out; the error comes after it. */
    while (t->consumed == t->produced && !t->end && !t->failed)
        pthread_cond_wait(&t->changed, &t->lock);
    int rc = 0;
    *end = t->consumed == t->produced;
    if (*end && t->failed) {
        *err = t->error;
        rc = -1;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* N more bytes of the current chunk were taken; hand it back when it is used up. */
static void threaded_advance(struct threaded_source *t, size_t n)
{
    t->pos += n;
    if (t->pos < t->chunks[t->consumed % CHUNK_COUNT].len)
        return;
    t->pos = 0;
    pthread_mutex_lock(&t->lock);
    t->consumed++;
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
}

static int threaded_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                         struct bk_error *err)
{
    struct threaded_source *t = src->priv;
    bool end;
    *got = 0;
    int rc = threaded_wait(t, &end, err);
    if (rc < 0 || end)
        return rc;
    struct chunk *c = &t->chunks[t->consumed % CHUNK_COUNT];
    size_t n = c->len - t->pos < len ? c->len - t->pos : len;
    memcpy(buf, c->data + t->pos, n);
    *got = n;
    threaded_advance(t, n);
    return 0;
}

/* Skipping drops whole chunks without copying them. */
static int threaded_skip(struct bk_source *src, uint64_t len, uint64_t *skipped,
                         struct bk_error *err)
{
    struct threaded_source *t = src->priv;
    *skipped = 0;
    while (*skipped < len) {
        bool end;
        if (threaded_wait(t, &end, err) < 0)
            return -1;
        if (end)
            break;
        size_t left = t->chunks[t->consumed % CHUNK_COUNT].len - t->pos;
        size_t n = len - *skipped < left ? (size_t)(len - *skipped) : left;
        *skipped += n;
        threaded_advance(t, n);
    }
    return 0;
}

static void threaded_close(struct bk_source *src)
{
    struct threaded_source *t = src->priv;
    if (t->started) {
        pthread_mutex_lock(&t->lock);
        t->stop = true;
        pthread_cond_broadcast(&t->changed);
        pthread_mutex_unlock(&t->lock);
        pthread_join(t->thread, NULL);
    }
    for (size_t i = 0; i < CHUNK_COUNT; i++)
        free(t->chunks[i].data);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->changed);
    bk_source_close(t->in);
    free(t);
}

struct bk_source *bk_source_threaded(struct bk_source *in, struct bk_error *err)
{
    struct threaded_source *t = calloc(1, sizeof *t);
    if (!t) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    t->in = in;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->changed, NULL);
    t->pub.name = in->name;
    t->pub.size = in->size;
    t->pub.seekable = false;
    t->pub.read = threaded_read;
    t->pub.skip = threaded_skip;
    t->pub.close = threaded_close;
    t->pub.priv = t;
    for (size_t i = 0; i < CHUNK_COUNT; i++) {
        t->chunks[i].data = malloc(CHUNK_BYTES);
        if (!t->chunks[i].data) {
            bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
            t->in = NULL;
            threaded_close(&t->pub);
            return NULL;
        }
    }
    int e = pthread_create(&t->thread, NULL, producer, t);
    if (e != 0) {
        bk_error_set(err, BK_E_IO, e, "cannot start a decoding thread");
        t->in = NULL;
        threaded_close(&t->pub);
        return NULL;
    }
    t->started = true;
    return &t->pub;
}
