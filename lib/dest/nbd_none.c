/* SPDX-License-Identifier: MIT */
/* NBD destinations in a build without libnbd: every one is refused, saying why. */
#include "dest/dest_impl.h"

#include "common/options.h"

struct bk_dest *bk_dest_open_nbd_uri(const char *uri, uint64_t image_size,
                                     const struct bk_dest_options *o, struct bk_error *err)
{
    (void)image_size;
    (void)o;
    bk_error_set(err, BK_E_UNSUPPORTED, 0,
                 "destination %s: NBD exports need libnbd, and this build has none", uri);
    return NULL;
}

struct bk_dest *bk_dest_open_nbd_command(char *const *argv, const char *name, uint64_t image_size,
                                         const struct bk_dest_options *opts, struct bk_error *err)
{
    (void)argv;
    (void)image_size;
    (void)opts;
    bk_error_set(err, BK_E_UNSUPPORTED, 0,
                 "destination %s: NBD exports need libnbd, and this build has none",
                 name ? name : "(unnamed)");
    return NULL;
}
