/* SPDX-License-Identifier: MIT */
/*
 * http, https and ftp through libcurl's multi interface, pulled by the caller: the write
 * callback fills a buffer and pauses the transfer when it is full, so memory stays
 * bounded and the caller reads at its own pace. curl_global_init is process-wide and
 * counted; since libcurl 7.84 it is thread-safe, so every handle takes one reference
 * and gives it back when closed, and the library keeps nothing of its own.
 */
#include "net/net_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { BUF_CAP = 1 << 20 };

bool bk_net_available(void)
{
    return true;
}

static size_t on_header(char *data, size_t size, size_t count, void *ctx)
{
    struct bk_net *n = ctx;
    net_header_line(&n->resp, data, size * count);
    return size * count;
}

/* The response's status and headers, checked when its first byte arrives. */
static int check_response(struct bk_net *n)
{
    if (!n->http)
        return 0;
    long code = 0;
    n->lib.curl_easy_getinfo(n->easy, CURLINFO_RESPONSE_CODE, &code);
    if (n->probing) {
        bool partial = code == 206 && n->resp.has_range;
        n->probing = false;
        n->ranges = partial && n->resp.range_start == 0;
        snprintf(n->etag, sizeof n->etag, "%s", n->resp.etag);
        snprintf(n->modified, sizeof n->modified, "%s", n->resp.modified);
        if (n->ranges) {
            n->size = n->resp.range_total;
            if (n->size >= 0 && n->end > (uint64_t)n->size)
                n->end = (uint64_t)n->size;
        } else {
            curl_off_t len = -1;
            n->lib.curl_easy_getinfo(n->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
            n->size = len;
            n->end = UINT64_MAX;
        }
        return 0;
    }
    return net_check_response(n, &n->resp, code, n->pos + n->discard, &n->fail);
}

static size_t on_data(char *data, size_t size, size_t count, void *ctx)
{
    struct bk_net *n = ctx;
    size_t len = size * count;
    if (!n->checked) {
        if (check_response(n) < 0)
            return 0;
        n->checked = true;
    }
    size_t drop = n->discard < len ? (size_t)n->discard : len;
    n->discard -= drop;
    net_count(n, drop);
    data += drop;
    len -= drop;
    if (len == 0)
        return size * count;
    if (n->head == n->tail)
        n->head = n->tail = 0;
    if (n->cap - n->tail < len && n->head > 0) {
        memmove(n->buf, n->buf + n->head, n->tail - n->head);
        n->tail -= n->head;
        n->head = 0;
    }
    if (n->cap - n->tail < len) {
        if (n->tail > 0) {
            n->paused = true;
            return CURL_WRITEFUNC_PAUSE;
        }
        uint8_t *bigger = realloc(n->buf, len);
        if (!bigger) {
            bk_error_set(&n->fail, BK_E_NOMEM, 0, "out of memory");
            return 0;
        }
        n->buf = bigger;
        n->cap = len;
    }
    memcpy(n->buf + n->tail, data, len);
    n->tail += len;
    net_count(n, len);
    return size * count;
}

static void detach(struct bk_net *n)
{
    if (n->attached)
        n->lib.curl_multi_remove_handle(n->multi, n->easy);
    n->attached = n->active = n->paused = n->done = false;
    n->head = n->tail = 0;
}

/* Send the request for [pos + discard, end) (without ranges: from 0, discarding). */
static int launch(struct bk_net *n, struct bk_error *err)
{
    detach(n);
    n->checked = false;
    n->done = false;
    n->result = CURLE_OK;
    n->errbuf[0] = '\0';
    bk_error_clear(&n->fail);
    char range[64];
    uint64_t from = n->pos + n->discard;
    if (n->end != UINT64_MAX)
        snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, from, n->end - 1);
    else
        snprintf(range, sizeof range, "%" PRIu64 "-", from);
    n->lib.curl_easy_setopt(n->easy, CURLOPT_RANGE, n->ranges || n->probing ? range : NULL);
    if (n->lib.curl_multi_add_handle(n->multi, n->easy) != CURLM_OK)
        return bk_error_set(err, BK_E_NOMEM, 0, "%s: cannot start a transfer", n->name);
    n->attached = n->active = true;
    return 0;
}

static int transfer_error(struct bk_net *n, CURLcode rc, unsigned tries, struct bk_error *err)
{
    if (n->fail.code != BK_OK) {
        if (err)
            *err = n->fail;
        return -1;
    }
    return net_transfer_error(n, n->easy, rc, n->errbuf, tries, err);
}

/* Wait MS before a retry, in steps short enough that an interrupt is seen. */
static void nap(const struct bk_net *n, long ms)
{
    for (long left = ms; left > 0 && !atomic_load(&n->interrupted); left -= 100) {
        long step = left < 100 ? left : 100;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = step * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
    }
}

void bk_net_interrupt(struct bk_net *n)
{
    atomic_store(&n->interrupted, true);
    n->lib.curl_multi_wakeup(n->multi);
}

/* Move the transfer on until it has bytes for the caller or ended; retries inside. */
static int pump(struct bk_net *n, struct bk_error *err)
{
    unsigned tries = 0;
    long wait = n->o.backoff_ms;
    while (n->head == n->tail && n->active) {
        if (atomic_load(&n->interrupted))
            return bk_error_set(err, BK_E_CANCELLED, 0,
                                "%s: interrupted after %" PRIu64 " bytes received", n->name,
                                net_received(n));
        if (!n->done) {
            if (n->paused) {
                n->paused = false;
                n->lib.curl_easy_pause(n->easy, CURLPAUSE_CONT);
                continue;
            }
            int running = 0;
            if (n->lib.curl_multi_perform(n->multi, &running) != CURLM_OK)
                return bk_error_set(err, BK_E_IO, 0, "%s: transfer failed", n->name);
            CURLMsg *m;
            int left;
            while ((m = n->lib.curl_multi_info_read(n->multi, &left)) != NULL)
                if (m->msg == CURLMSG_DONE) {
                    n->done = true;
                    n->result = m->data.result;
                }
            if (!n->done && n->head == n->tail && !n->paused)
                n->lib.curl_multi_poll(n->multi, NULL, 0, 1000, NULL);
            continue;
        }
        /* Ended with nothing left to hand out. */
        CURLcode rc = n->result;
        bool short_end = rc == CURLE_OK && n->end != UINT64_MAX && n->pos < n->end;
        if (rc == CURLE_OK && !short_end) {
            n->active = false;
            return 0;
        }
        if (short_end)
            rc = CURLE_PARTIAL_FILE;
        bool again = n->fail.code == BK_OK && net_transient(n, n->easy, rc) &&
                     tries < n->o.retries && !n->probing;
        if (!again)
            return transfer_error(n, rc, tries, err);
        tries++;
        nap(n, wait);
        wait *= 2;
        if (!n->ranges)
            n->discard = n->pos; /* from the start again, dropping what was handed out */
        if (launch(n, err) < 0)
            return -1;
    }
    return 0;
}

int bk_net_pull(struct bk_net *n, void *buf, size_t len, size_t *got, struct bk_error *err)
{
    *got = 0;
    if (!n->active || len == 0)
        return 0;
    if (pump(n, err) < 0) {
        detach(n);
        return -1;
    }
    size_t have = n->tail - n->head;
    size_t k = have < len ? have : len;
    memcpy(buf, n->buf + n->head, k);
    n->head += k;
    n->pos += k;
    *got = k;
    return 0;
}

int bk_net_start(struct bk_net *n, uint64_t start, uint64_t end, struct bk_error *err)
{
    if (!n->ranges && start != 0)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "%s: the server does not honour ranges, cannot read from byte %" PRIu64,
                            n->name, start);
    if (n->size >= 0 && end > (uint64_t)n->size)
        end = (uint64_t)n->size;
    n->pos = start;
    n->end = end;
    n->discard = 0;
    if (end <= start) {
        detach(n);
        return 0;
    }
    return launch(n, err);
}

static void redacted(const char *url, char **out)
{
    *out = strdup(url);
    if (*out)
        bk_redact_passwords(*out);
}

static void setup(struct bk_net *n)
{
    net_setup_easy(n, n->easy, n->errbuf);
    n->lib.curl_easy_setopt(n->easy, CURLOPT_HEADERFUNCTION, on_header);
    n->lib.curl_easy_setopt(n->easy, CURLOPT_HEADERDATA, n);
    n->lib.curl_easy_setopt(n->easy, CURLOPT_WRITEFUNCTION, on_data);
    n->lib.curl_easy_setopt(n->easy, CURLOPT_WRITEDATA, n);
}

static int load_libcurl(struct libcurl *lib, struct bk_error *err)
{
#define SYMBOL(fn) {#fn, offsetof(struct libcurl, fn)},
    static const struct bk_dynlib_symbol symbols[] = {LIBCURL_FUNCTIONS(SYMBOL)};
#undef SYMBOL
    return bk_dynlib_open(BK_CURL_SONAME, "URLs", symbols, sizeof symbols / sizeof *symbols, lib,
                          &lib->handle, err);
}

/* The handle with libcurl loaded and its global state referenced, else NULL and ERR. */
static struct bk_net *net_alloc(const char *url, struct bk_error *err)
{
    struct bk_net *n = calloc(1, sizeof *n);
    if (n)
        redacted(url, &n->name);
    if (!n || !n->name) {
        free(n);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    if (load_libcurl(&n->lib, err) < 0) {
        bk_error_prefix(err, "%s", n->name);
        bk_net_close(n);
        return NULL;
    }
    if (n->lib.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        bk_error_set(err, BK_E_NOMEM, 0, "%s: cannot set up libcurl", n->name);
        bk_net_close(n);
        return NULL;
    }
    n->curl_ready = true;
    return n;
}

static struct bk_net *net_new(const char *url, const struct bk_net_options *o, struct bk_error *err)
{
    struct bk_net *n = net_alloc(url, err);
    if (!n)
        return NULL;
    if (o)
        n->o = *o;
    else
        bk_net_options_default(&n->o);
    n->url = strdup(url);
    n->cap = BUF_CAP;
    n->buf = malloc(n->cap);
    n->easy = n->lib.curl_easy_init();
    n->multi = n->lib.curl_multi_init();
    n->size = -1;
    n->http = strncasecmp(url, "http", 4) == 0;
    if (!n->url || !n->buf || !n->easy || !n->multi) {
        bk_net_close(n);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    setup(n);
    return n;
}

/* FTP: the size and time from SIZE and MDTM; REST gives every range. */
static int probe_ftp(struct bk_net *n, struct bk_error *err)
{
    n->lib.curl_easy_setopt(n->easy, CURLOPT_NOBODY, 1L);
    n->lib.curl_easy_setopt(n->easy, CURLOPT_FILETIME, 1L);
    CURLcode rc = n->lib.curl_easy_perform(n->easy);
    n->lib.curl_easy_setopt(n->easy, CURLOPT_NOBODY, 0L);
    if (rc != CURLE_OK)
        return transfer_error(n, rc, 0, err);
    curl_off_t len = -1, t = -1;
    n->lib.curl_easy_getinfo(n->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
    n->lib.curl_easy_getinfo(n->easy, CURLINFO_FILETIME_T, &t);
    n->size = len;
    n->ranges = len >= 0;
    return 0;
}

struct bk_net *bk_net_open(const char *url, const struct bk_net_options *o, uint64_t probe,
                           struct bk_error *err)
{
    struct bk_net *n = net_new(url, o, err);
    if (!n)
        return NULL;
    int rc;
    if (n->http) {
        n->probing = true;
        n->end = probe;
        rc = launch(n, err);
        /* Until the first byte or the end: the status and headers are known then. */
        while (rc == 0 && n->probing && n->active)
            rc = pump(n, err);
        if (rc == 0 && n->probing) {
            /* An empty file: no byte to check the response on. */
            n->probing = false;
            curl_off_t len = -1;
            n->lib.curl_easy_getinfo(n->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
            n->size = len;
        }
    } else {
        rc = probe_ftp(n, err);
        if (rc == 0)
            rc = bk_net_start(n, 0, probe, err);
    }
    if (rc < 0) {
        bk_net_close(n);
        return NULL;
    }
    return n;
}

const char *bk_net_name(const struct bk_net *n)
{
    return n->name;
}

int64_t bk_net_size(const struct bk_net *n)
{
    return n->size;
}

bool bk_net_ranges(const struct bk_net *n)
{
    return n->ranges;
}

uint64_t bk_net_pos(const struct bk_net *n)
{
    return n->pos;
}

uint64_t bk_net_received(const struct bk_net *n)
{
    return net_received(n);
}

bool bk_net_active(const struct bk_net *n)
{
    return n->active;
}

void bk_net_close(struct bk_net *n)
{
    if (!n)
        return;
    if (n->easy && n->multi)
        detach(n);
    if (n->multi)
        n->lib.curl_multi_cleanup(n->multi);
    if (n->easy)
        n->lib.curl_easy_cleanup(n->easy);
    free(n->buf);
    free(n->url);
    free(n->name);
    if (n->curl_ready)
        n->lib.curl_global_cleanup();
    bk_dynlib_close(n->lib.handle);
    free(n);
}

int bk_net_exists(const char *url, const struct bk_net_options *o, struct bk_error *err)
{
    struct bk_net *n = net_new(url, o, err);
    if (!n)
        return -1;
    n->lib.curl_easy_setopt(n->easy, CURLOPT_NOBODY, 1L);
    CURLcode rc = n->lib.curl_easy_perform(n->easy);
    int out = 1;
    if (rc != CURLE_OK) {
        struct bk_error e;
        bk_error_clear(&e);
        transfer_error(n, rc, 0, &e);
        out = e.sys_errno == ENOENT ? 0 : -1;
        if (out < 0 && err)
            *err = e;
    }
    bk_net_close(n);
    return out;
}

int bk_net_fetch_all(const char *url, const struct bk_net_options *o, size_t max, char **data,
                     size_t *len, struct bk_error *err)
{
    struct bk_net *n = bk_net_open(url, o, 1 << 16, err);
    if (!n)
        return -1;
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    while (rc == 0) {
        if (!n->active && n->ranges && (n->size < 0 || n->pos < (uint64_t)n->size)) {
            if ((rc = bk_net_start(n, n->pos, UINT64_MAX, err)) < 0 || !n->active)
                break;
        }
        if (used == cap) {
            char *bigger = cap < max ? realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                rc = bk_error_set(err, BK_E_FORMAT, 0, "%s: larger than %zu bytes", n->name, max);
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = 0;
        if ((rc = bk_net_pull(n, buf + used, cap - used, &got, err)) < 0)
            break;
        used += got;
        if (got == 0 && (!n->ranges || (n->size >= 0 && n->pos >= (uint64_t)n->size)))
            break;
    }
    bk_net_close(n);
    if (rc < 0) {
        free(buf);
        return -1;
    }
    *data = buf;
    *len = used;
    return 0;
}
