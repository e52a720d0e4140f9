/* SPDX-License-Identifier: MIT */
/* How images, bmaps and signatures given as http, https, ftp or ftps URLs are fetched. */
#ifndef BMAPKIT_FETCH_H
#define BMAPKIT_FETCH_H

#include <stddef.h>
#include <string.h>

#include "bmapkit/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Options of the functions below. Start from bk_fetch_options_init: struct_size tells
 * the library which fields the caller knows, so fields can be added at the end later.
 * A zero field means its default. Proxies come from the standard environment variables
 * and credentials from ~/.netrc, whatever these options say.
 */
struct bk_fetch_options {
    size_t struct_size;
    const char *ca_file;      /* PEM file of CA certificates for TLS; NULL: the system's */
    unsigned connect_timeout; /* seconds to connect; 0: 30 */
    unsigned stall_timeout;   /* seconds a transfer may receive nothing; 0: 60 */
    unsigned retries;         /* of a transfer that broke off, from the byte reached; 0: 4 */
    unsigned requests;        /* requests in flight to one server; 0: 4 */
};

/* Set O to the defaults: all zero, padding included, and its size. */
static inline void bk_fetch_options_init(struct bk_fetch_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
}

#ifdef __cplusplus
}
#endif

#endif
