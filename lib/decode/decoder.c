/* SPDX-License-Identifier: MIT */
/* What every stream decoder's source has in common. */
#include "decode/decode.h"

void bk_source_init_decoder(struct bk_source *pub, const struct bk_source *in,
                            int (*read)(struct bk_source *src, void *buf, size_t len, size_t *got,
                                        struct bk_error *err),
                            void (*close)(struct bk_source *src), void *priv)
{
    *pub = (struct bk_source){
        .name = in->name,
        .size = -1,
        .seekable = false,
        .decodes = true,
        .read = read,
        .close = close,
        .priv = priv,
    };
}
