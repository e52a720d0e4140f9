/* SPDX-License-Identifier: MIT */
/*
 * Internal: libraries loaded when first needed. libcurl, libnbd and libarchive pull in
 * some fifty libraries between them (TLS, Kerberos, LDAP, ICU), whose loading costs
 * ~20 ms at every start; a local copy needs none of them, so their users load them
 * through here into a table of function pointers that each handle keeps.
 */
#ifndef BMAPKIT_DYNLIB_H
#define BMAPKIT_DYNLIB_H

#include <stddef.h>

#include "bmapkit/error.h"

/* A function of the library, and where its pointer goes in the caller's table. */
struct bk_dynlib_symbol {
    const char *name;
    size_t offset;
};

/*
 * A table lists its functions once, as LIST(X) calling X(function) for each; its members
 * are BK_DYNLIB_MEMBER(function), pointers of the function's own type named like it, so
 * that calls read as before: t->archive_read_new().
 */
#define BK_DYNLIB_MEMBER(fn) __typeof__(fn) *fn;

/*
 * Load SONAME and store the address of every one of the N SYMBOLS into TABLE at its
 * offset. The library stays mapped for the rest of the process (libcurl and the TLS
 * libraries below it keep threads and exit handlers that unmapping would break); the
 * handle in *HANDLE only counts a reference. WHAT says what needs the library, for the
 * message when it is missing ("URLs"). Returns 0, or -1 with ERR filled (BK_E_UNSUPPORTED).
 */
int bk_dynlib_open(const char *soname, const char *what, const struct bk_dynlib_symbol *symbols,
                   size_t n, void *table, void **handle, struct bk_error *err);

/* Give back the reference bk_dynlib_open took; NULL is ignored. */
void bk_dynlib_close(void *handle);

#endif
