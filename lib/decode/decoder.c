/* SPDX-License-Identifier: MIT */
/* What every stream decoder's source has in common. */
#include "decode/decode.h"

void bk_source_init_decoder(struct bk_source *pub, const struct bk_source *in,
                            const struct bk_source_ops *ops, void *priv)
{
    *pub = (struct bk_source){
        .name = in->name,
        .size = -1,
        .seekable = false,
        .decodes = true,
        .below = in,
        .ops = ops,
        .priv = priv,
    };
}
