/* SPDX-License-Identifier: MIT */
/*
 * Internal: the source operations table. A source is an implementation of these
 * operations plus its name, size and nature; decoders are sources stacked on another
 * source, so they work the same on a file, standard input or anything else that reads.
 */
#ifndef BMAPKIT_SOURCE_IMPL_H
#define BMAPKIT_SOURCE_IMPL_H

#include "bmapkit/source.h"

/* A byte area [start, end) of the image. */
struct bk_area {
    uint64_t start;
    uint64_t end;
};

struct bk_source_ops {
    /* Read up to LEN bytes at the current position; *GOT = 0 only at the end. */
    int (*read)(struct bk_source *src, void *buf, size_t len, size_t *got, struct bk_error *err);
    /* Read up to LEN bytes at OFFSET; called only when the source is seekable. */
    int (*pread)(struct bk_source *src, void *buf, size_t len, uint64_t offset, size_t *got,
                 struct bk_error *err);
    /*
     * Optional: move the sequential position LEN bytes on without handing the bytes out;
     * *SKIPPED is less than LEN only at the end.
     */
    int (*skip)(struct bk_source *src, uint64_t len, uint64_t *skipped, struct bk_error *err);
    /* Optional: bytes received from the network so far; may be called from any thread. */
    uint64_t (*fetched)(const struct bk_source *src);
    /*
     * Optional: the areas [start, end) that will be read with pread, ascending, before
     * the first read, so a source that must decode can work ahead on all CPUs. The
     * source copies what it needs to keep.
     */
    int (*plan)(struct bk_source *src, const struct bk_area *areas, size_t count,
                struct bk_error *err);
    /*
     * Optional: make a read that waits for a program or a peer, in another thread, and
     * every later read fail with BK_E_CANCELLED; may be called from any thread.
     */
    void (*interrupt)(const struct bk_source *src);
    void (*close)(struct bk_source *src);
};

/*
 * Interrupt the reads of SRC and of every source below it (see the interrupt op): a
 * copy that stops calls it so that its reader, waiting for bytes that may never come,
 * can be joined.
 */
void bk_source_interrupt(const struct bk_source *src);

struct bk_source {
    const struct bk_source_ops *ops;
    const char *name; /* for messages */
    int64_t size;     /* image bytes, or -1 when unknown */
    bool seekable;
    /* Reading decodes: the reading thread is busy, and a copy leaves it a CPU. */
    bool decodes;
    /* Fetched from a network: a look at every part of it costs about what reading it does. */
    bool remote;
    /* Decodes ahead on workers in the order of its plan: reading out of order stalls it. */
    bool works_ahead;
    /* The source this one reads (a decoder's input), or NULL at the bottom of a stack. */
    const struct bk_source *below;
    void *priv;
};

/*
 * Open an http, https or ftp URL: seekable when the server honours ranges and says the
 * size, else read once from the start. Named by the URL without its password.
 */
struct bk_source *bk_source_open_url(const char *url, const struct bk_fetch_options *opts,
                                     struct bk_error *err);

/* Tell SRC the areas it will be asked for (see the plan operation); 0 when it has none. */
int bk_source_plan(struct bk_source *src, const struct bk_area *areas, size_t count,
                   struct bk_error *err);

/* Read exactly LEN bytes at OFFSET from a seekable source; running short is an error. */
int bk_source_pread_full(struct bk_source *src, void *buf, size_t len, uint64_t offset,
                         struct bk_error *err);

/* Read exactly LEN bytes sequentially; running short is an error naming OFFSET. */
int bk_source_read_full(struct bk_source *src, void *buf, size_t len, uint64_t offset,
                        struct bk_error *err);

/*
 * Move SRC's sequential position LEN bytes on; OFFSET is the position now (for the
 * message). Uses the source's skip when it has one, else reads into the CAP bytes at
 * SCRATCH. Running short is an error, as with bk_source_read_full.
 */
int bk_source_skip_full(struct bk_source *src, uint64_t len, uint64_t offset, void *scratch,
                        size_t cap, struct bk_error *err);

/*
 * A source that reads the seekable source IN sequentially from byte AT, through its
 * pread. Closing it leaves IN open: IN must outlive it.
 */
struct bk_source *bk_source_view(struct bk_source *in, uint64_t at, struct bk_error *err);

/*
 * Wrap IN so that up to CAP of its first bytes can be peeked at before they are read.
 * Takes ownership of IN. pread and size pass through unchanged.
 */
struct bk_source *bk_source_peekable(struct bk_source *in, size_t cap, struct bk_error *err);

/*
 * Look at the first WANT bytes (at most the wrapper's CAP) of a peekable source
 * without consuming them; *GOT is smaller at the end of a short stream.
 */
int bk_source_peek(struct bk_source *src, const uint8_t **data, size_t want, size_t *got,
                   struct bk_error *err);

#endif
