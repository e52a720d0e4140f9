/* SPDX-License-Identifier: MIT */
/*
 * Internal: byte ranges of http, https and ftp URLs through libcurl. A handle probes its
 * URL once (size, whether ranges are honoured, the ETag and Last-Modified that must not
 * change), then runs one transfer at a time that the caller pulls bytes from. Dropped
 * connections, resets and 5xx are retried with back-off from the byte reached. Messages
 * name the URL without its password.
 */
#ifndef BMAPKIT_NET_NET_H
#define BMAPKIT_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bmapkit/error.h"
#include "bmapkit/fetch.h"
#include "common/url.h"

struct bk_net_options {
    const char *ca_file;     /* CA certificates for TLS; NULL: the system's */
    long connect_timeout_ms; /* per connection */
    long stall_seconds;      /* a transfer that receives nothing this long fails */
    unsigned retries;        /* of a transfer that broke off, each from the byte reached */
    long backoff_ms;         /* before the first retry; doubled for each next one */
    unsigned requests;       /* transfers in flight at once */
};

/* The defaults: system CAs, 30 s to connect, 60 s of stall, 4 retries from 250 ms, 4 requests. */
void bk_net_options_default(struct bk_net_options *o);

/* O from the public FETCH options (NULL: the defaults), zero fields meaning the default. */
void bk_net_options_from(struct bk_net_options *o, const struct bk_fetch_options *fetch);

/* Whether this build can open URLs (it was built with libcurl). */
bool bk_net_available(void);

struct bk_net;

/*
 * Probe URL with a request for its first PROBE bytes, and keep that transfer running:
 * bk_net_pull hands out its bytes (the whole file from byte 0 when the server ignores
 * ranges). O may be NULL for the defaults.
 */
struct bk_net *bk_net_open(const char *url, const struct bk_net_options *o, uint64_t probe,
                           struct bk_error *err);

/* The URL without its password, for messages. */
const char *bk_net_name(const struct bk_net *n);

/* The file's size, or -1 when the server did not say. */
int64_t bk_net_size(const struct bk_net *n);

/* Whether the server honours ranges (bk_net_start at any offset). */
bool bk_net_ranges(const struct bk_net *n);

/* Offset of the next byte the current transfer hands out, and whether one is running. */
uint64_t bk_net_pos(const struct bk_net *n);
bool bk_net_active(const struct bk_net *n);

/*
 * Stop the current transfer and start one of [START, END) (END UINT64_MAX: to the end of
 * the file). Without ranges, only START 0 is possible.
 */
int bk_net_start(struct bk_net *n, uint64_t start, uint64_t end, struct bk_error *err);

/* Up to LEN next bytes of the current transfer; *GOT is 0 at its end. */
int bk_net_pull(struct bk_net *n, void *buf, size_t len, size_t *got, struct bk_error *err);

/*
 * Make a pull that waits for the server in another thread, and every later one, fail
 * with BK_E_CANCELLED. Any thread.
 */
void bk_net_interrupt(struct bk_net *n);

/* Bytes received from the network so far, retries included. */
uint64_t bk_net_received(const struct bk_net *n);

void bk_net_close(struct bk_net *n);

struct bk_net_ahead;

/*
 * Fetch the COUNT areas [areas[i][0], areas[i][1]) of N (ascending, disjoint, none
 * empty; N must honour ranges) ahead of the readers, on a thread of its own: up to
 * N's requests transfers at once, neighbouring areas merged (net/runs.h), at most
 * 48 MiB held for the readers. N must outlive it.
 */
struct bk_net_ahead *bk_net_ahead_start(struct bk_net *n, const uint64_t (*areas)[2], size_t count,
                                        struct bk_error *err);

/*
 * Up to LEN bytes at OFF from what arrived, waiting for them: 0 with *GOT > 0, -1 on
 * failure, 1 when OFF is not in a planned area or was already handed out (read it
 * another way). Any thread, in any order.
 */
int bk_net_ahead_read(struct bk_net_ahead *a, void *buf, size_t len, uint64_t off, size_t *got,
                      struct bk_error *err);

/* Make a read waiting in another thread, and every later one, fail with BK_E_CANCELLED. */
void bk_net_ahead_interrupt(struct bk_net_ahead *a);

/* Stop the transfers and free what they hold. */
void bk_net_ahead_stop(struct bk_net_ahead *a);

/* Whether URL exists: 1 yes, 0 no (404, no such file), -1 another failure in ERR. */
int bk_net_exists(const char *url, const struct bk_net_options *o, struct bk_error *err);

/* All of URL (at most MAX bytes) into *DATA, which the caller frees. */
int bk_net_fetch_all(const char *url, const struct bk_net_options *o, size_t max, char **data,
                     size_t *len, struct bk_error *err);

#endif
