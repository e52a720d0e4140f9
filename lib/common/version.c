/* SPDX-License-Identifier: MIT */
#include "bmapkit/bmapkit.h"

const char *bk_version(void)
{
    return BMAPKIT_VERSION;
}
