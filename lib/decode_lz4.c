/* SPDX-License-Identifier: MIT */
#include "decode.h"

struct bk_source *bk_decode_lz4(struct bk_source *in, struct bk_error *err)
{
    bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s: lz4 images are not supported yet", in->name);
    return NULL;
}
