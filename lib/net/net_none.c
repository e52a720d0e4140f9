/* SPDX-License-Identifier: MIT */
/* A build without libcurl: every URL is refused, saying why. */
#include "net/net.h"

#include <stdlib.h>
#include <string.h>

struct bk_net {
    int unused;
};

static int refuse(const char *url, struct bk_error *err)
{
    char *name = strdup(url);
    if (name)
        bk_redact_passwords(name);
    bk_error_set(err, BK_E_UNSUPPORTED, 0,
                 "%s: this build of bmapkit has no libcurl, so it cannot read URLs",
                 name ? name : "URL");
    free(name);
    return -1;
}

uint64_t bk_net_received(const struct bk_net *n)
{
    (void)n;
    return 0;
}

bool bk_net_available(void)
{
    return false;
}

struct bk_net *bk_net_open(const char *url, const struct bk_net_options *o, uint64_t probe,
                           struct bk_error *err)
{
    (void)o, (void)probe;
    refuse(url, err);
    return NULL;
}

const char *bk_net_name(const struct bk_net *n)
{
    (void)n;
    return "";
}

int64_t bk_net_size(const struct bk_net *n)
{
    (void)n;
    return -1;
}

bool bk_net_ranges(const struct bk_net *n)
{
    (void)n;
    return false;
}

uint64_t bk_net_pos(const struct bk_net *n)
{
    (void)n;
    return 0;
}

bool bk_net_active(const struct bk_net *n)
{
    (void)n;
    return false;
}

int bk_net_start(struct bk_net *n, uint64_t start, uint64_t end, struct bk_error *err)
{
    (void)n, (void)start, (void)end;
    return bk_error_set(err, BK_E_UNSUPPORTED, 0, "no libcurl");
}

int bk_net_pull(struct bk_net *n, void *buf, size_t len, size_t *got, struct bk_error *err)
{
    (void)n, (void)buf, (void)len;
    *got = 0;
    return bk_error_set(err, BK_E_UNSUPPORTED, 0, "no libcurl");
}

void bk_net_close(struct bk_net *n)
{
    free(n);
}

struct bk_net_ahead *bk_net_ahead_start(struct bk_net *n, const uint64_t (*areas)[2], size_t count,
                                        struct bk_error *err)
{
    (void)n, (void)areas, (void)count;
    bk_error_set(err, BK_E_UNSUPPORTED, 0, "no libcurl");
    return NULL;
}

int bk_net_ahead_read(struct bk_net_ahead *a, void *buf, size_t len, uint64_t off, size_t *got,
                      struct bk_error *err)
{
    (void)a, (void)buf, (void)len, (void)off, (void)err;
    *got = 0;
    return 1;
}

void bk_net_interrupt(struct bk_net *n)
{
    (void)n;
}

void bk_net_ahead_interrupt(struct bk_net_ahead *a)
{
    (void)a;
}

void bk_net_ahead_stop(struct bk_net_ahead *a)
{
    (void)a;
}

int bk_net_exists(const char *url, const struct bk_net_options *o, struct bk_error *err)
{
    (void)o;
    return refuse(url, err);
}

int bk_net_fetch_all(const char *url, const struct bk_net_options *o, size_t max, char **data,
                     size_t *len, struct bk_error *err)
{
    (void)o, (void)max, (void)data, (void)len;
    return refuse(url, err);
}
