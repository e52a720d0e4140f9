/* SPDX-License-Identifier: MIT */
#include "bmapkit/version.h"

#define STR(x) #x
#define XSTR(x) STR(x)

const char *bk_version(void)
{
    return XSTR(BK_VERSION_MAJOR) "." XSTR(BK_VERSION_MINOR) "." XSTR(BK_VERSION_PATCH);
}

unsigned bk_version_number(void)
{
    return BK_VERSION_NUMBER;
}
