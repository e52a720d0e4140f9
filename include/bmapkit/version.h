/* SPDX-License-Identifier: MIT */
/* The version of the headers, and of the library a program runs with. */
#ifndef BMAPKIT_VERSION_H
#define BMAPKIT_VERSION_H

#include "bmapkit/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version these headers belong to. Meson refuses to configure when they disagree
   with the project's version. */
#define BK_VERSION_MAJOR 0
#define BK_VERSION_MINOR 2
#define BK_VERSION_PATCH 90

/* One number that grows with every release: 10000 * MAJOR + 100 * MINOR + PATCH. */
#define BK_VERSION_NUMBER (BK_VERSION_MAJOR * 10000 + BK_VERSION_MINOR * 100 + BK_VERSION_PATCH)

/* Version of the library in use as "MAJOR.MINOR.PATCH" (may differ from the headers'). */
BK_API const char *bk_version(void);

/* Version of the library in use as BK_VERSION_NUMBER computes it. */
BK_API unsigned bk_version_number(void);

#ifdef __cplusplus
}
#endif

#endif
