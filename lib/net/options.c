/* SPDX-License-Identifier: MIT */
/* The transfer settings, from their defaults and the caller's public options. */
#include "net/net.h"

#include <stddef.h>

void bk_net_options_default(struct bk_net_options *o)
{
    *o = (struct bk_net_options){.connect_timeout_ms = 30000,
                                 .stall_seconds = 60,
                                 .retries = 4,
                                 .backoff_ms = 250,
                                 .requests = 4};
}

/* FIELD of F when the caller's struct is large enough to hold it, else 0. */
#define KNOWN(f, field)                                                                            \
    ((f)->struct_size >= offsetof(struct bk_fetch_options, field) + sizeof(f)->field ? (f)->field  \
                                                                                     : 0)

void bk_net_options_from(struct bk_net_options *o, const struct bk_fetch_options *fetch)
{
    bk_net_options_default(o);
    if (!fetch)
        return;
    o->ca_file = KNOWN(fetch, ca_file);
    unsigned v;
    if ((v = KNOWN(fetch, connect_timeout)) != 0)
        o->connect_timeout_ms = (long)v * 1000;
    if ((v = KNOWN(fetch, stall_timeout)) != 0)
        o->stall_seconds = (long)v;
    if ((v = KNOWN(fetch, retries)) != 0)
        o->retries = v;
    if ((v = KNOWN(fetch, requests)) != 0)
        o->requests = v;
}
