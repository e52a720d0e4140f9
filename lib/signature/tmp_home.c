/* SPDX-License-Identifier: MIT */
/* A temporary GnuPG home: made with mkdtemp, removed with all gpg left in it. */
#include "signature/tmp_home.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int bk_tmp_home_make(char *dir, size_t cap, struct bk_error *err)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !tmp[0])
        tmp = "/tmp";
    int n = snprintf(dir, cap, "%s/bmapkit-gnupg.XXXXXX", tmp);
    if (n < 0 || (size_t)n >= cap)
        return bk_error_set(err, BK_E_INVALID, 0, "temporary GnuPG home under %s: path too long",
                            tmp);
    if (!mkdtemp(dir))
        return bk_error_set(err, BK_E_IO, errno, "cannot make a temporary GnuPG home under %s",
                            tmp);
    /* Public keys need no agent: none is started, so none outlives the home. */
    char conf[PATH_MAX];
    snprintf(conf, sizeof conf, "%s/gpg.conf", dir);
    FILE *f = fopen(conf, "w");
    bool ok = f && fputs("no-autostart\n", f) >= 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok) {
        int e = errno;
        bk_tmp_home_remove(dir, NULL);
        return bk_error_set(err, BK_E_IO, e, "cannot write %s", conf);
    }
    return 0;
}

/* Depth first, so a directory is removed after what it holds; symbolic links not followed. */
static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    /* gpg's lock files and sockets may go away by themselves meanwhile. */
    return remove(path) == 0 || errno == ENOENT ? 0 : errno;
}

int bk_tmp_home_remove(const char *dir, struct bk_error *err)
{
    int rc = nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc != 0)
        return bk_error_set(err, BK_E_IO, rc > 0 ? rc : errno,
                            "cannot remove the temporary GnuPG home %s", dir);
    return 0;
}
