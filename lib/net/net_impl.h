/* SPDX-License-Identifier: MIT */
/*
 * Internal to lib/net: the handle of a URL and what one transfer of it needs, shared by
 * the pulled transfer (net.c) and the transfers run ahead of the readers (ahead.c).
 */
#ifndef BMAPKIT_NET_IMPL_H
#define BMAPKIT_NET_IMPL_H

/* Calls go through the table below, which curl's checking macros cannot wrap. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <stdatomic.h>

#include "common/dynlib.h"
#include "net/net.h"

enum { NET_FIELD = 256 };

/* What the headers of the response being received said. */
struct net_response {
    char etag[NET_FIELD];
    char modified[NET_FIELD];
    bool has_range;
    uint64_t range_start;
    int64_t range_total;
};

#define LIBCURL_FUNCTIONS(X)                                                                       \
    X(curl_easy_cleanup)                                                                           \
    X(curl_easy_getinfo)                                                                           \
    X(curl_easy_init)                                                                              \
    X(curl_easy_pause)                                                                             \
    X(curl_easy_perform)                                                                           \
    X(curl_easy_setopt)                                                                            \
    X(curl_easy_strerror)                                                                          \
    X(curl_global_cleanup)                                                                         \
    X(curl_global_init)                                                                            \
    X(curl_multi_add_handle)                                                                       \
    X(curl_multi_cleanup)                                                                          \
    X(curl_multi_info_read)                                                                        \
    X(curl_multi_init)                                                                             \
    X(curl_multi_perform)                                                                          \
    X(curl_multi_poll)                                                                             \
    X(curl_multi_remove_handle)                                                                    \
    X(curl_multi_setopt)                                                                           \
    X(curl_multi_wakeup)

/* libcurl, loaded when the first URL is opened. */
struct libcurl {
    void *handle;
    LIBCURL_FUNCTIONS(BK_DYNLIB_MEMBER)
};

struct bk_net {
    struct libcurl lib;
    bool curl_ready; /* holds a reference to curl_global_init */
    CURLM *multi;
    CURL *easy;
    char *url;
    char *name; /* URL without its password */
    struct bk_net_options o;
    bool http, ranges, probing, active, attached, paused, done, checked;
    CURLcode result;
    int64_t size;
    char etag[NET_FIELD], modified[NET_FIELD]; /* of the first response */
    struct net_response resp;
    uint64_t start, end; /* the transfer's range */
    uint64_t pos;        /* next byte handed out */
    uint64_t discard;    /* bytes to drop (a restart without ranges) */
    /* By every transfer of the handle; other threads read it for progress. */
    _Atomic uint64_t received;
    _Atomic bool interrupted; /* bk_net_interrupt, from any thread */
    uint8_t *buf;
    size_t head, tail, cap;
    struct bk_error fail; /* a failure the callbacks found */
    char errbuf[CURL_ERROR_SIZE];
};

/* Note one header line of a response (a status line starts a new response). */
void net_header_line(struct net_response *r, const char *data, size_t len);

/*
 * Check a later response R of N against the first one: the same ETag and Last-Modified,
 * and (with ranges) status 206 from byte WANT. CODE is its HTTP status. Fills FAIL.
 */
int net_check_response(const struct bk_net *n, const struct net_response *r, long code,
                       uint64_t want, struct bk_error *fail);

/* Whether a transfer on E that ended with RC may be tried again from the byte reached. */
bool net_transient(const struct bk_net *n, CURL *e, CURLcode rc);

/*
 * The error of a transfer on E that ended with RC after TRIES retries: the URL, the
 * status or cause (ERRBUF, else libcurl's text) and the bytes received.
 */
int net_transfer_error(const struct bk_net *n, CURL *e, CURLcode rc, const char *errbuf,
                       unsigned tries, struct bk_error *err);

/* Set E up for N's URL and options, with ERRBUF for libcurl's messages. */
void net_setup_easy(const struct bk_net *n, CURL *e, char *errbuf);

/* Count LEN more bytes received. */
static inline void net_count(struct bk_net *n, uint64_t len)
{
    atomic_fetch_add_explicit(&n->received, len, memory_order_relaxed);
}

static inline uint64_t net_received(const struct bk_net *n)
{
    return atomic_load_explicit(&n->received, memory_order_relaxed);
}

#endif
