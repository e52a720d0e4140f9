/* SPDX-License-Identifier: MIT */
/*
 * Destinations: the safety checks before anything is opened for writing, the choice of
 * implementation, and the calls every destination answers through its table.
 */
#include "dest/dest_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/options.h"
#include "common/util.h"

/*
 * Where PATH leads once every symbolic link is followed, into OUT; a last link that
 * points at nothing leads to the path it names, which opening with O_CREAT would
 * create. Returns -1 for a loop of links or a path too long.
 */
static int follow_links(const char *path, char *out, size_t cap)
{
    char cur[PATH_MAX], target[PATH_MAX];
    if (snprintf(cur, sizeof cur, "%s", path) >= (int)sizeof cur)
        return -1;
    for (int hops = 0; hops < 40; hops++) {
        struct stat st;
        ssize_t n;
        if (lstat(cur, &st) < 0 || !S_ISLNK(st.st_mode) ||
            (n = readlink(cur, target, sizeof target - 1)) < 0) {
            snprintf(out, cap, "%s", cur);
            return 0;
        }
        target[n] = '\0';
        if (target[0] == '/') {
            snprintf(cur, sizeof cur, "%s", target);
            continue;
        }
        /* A relative target is relative to the folder that holds the link. */
        char *slash = strrchr(cur, '/');
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - cur) : 1, slash ? cur : ".");
        if (snprintf(cur, sizeof cur, "%s/%s", slash == cur ? "" : dir, target) >= (int)sizeof cur)
            return -1;
    }
    return -1;
}

/* A path that names a device node directory: there a missing node is a typo, not a file. */
static bool in_device_directory(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return false;
    char dir[PATH_MAX];
    bool dev = false;
    if (realpath(dirname(copy), dir)) {
        dev = (strcmp(dir, "/dev") == 0 || strncmp(dir, "/dev/", 5) == 0) &&
              strcmp(dir, "/dev/shm") != 0 && strncmp(dir, "/dev/shm/", 9) != 0;
    }
    free(copy);
    return dev;
}

struct bk_dest *bk_dest_new(const struct bk_dest_ops *ops, const char *name, struct bk_error *err)
{
    struct bk_dest *d = calloc(1, sizeof *d);
    if (d) {
        d->ops = ops;
        d->name = strdup(name);
    }
    if (!d || !d->name) {
        free(d);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    return d;
}

/* What kind of file PATH is, refusing what cannot be a destination. */
static int check_path(const char *path, const struct bk_dest_options *o, struct stat *st,
                      bool *exists, struct bk_error *err)
{
    *exists = stat(path, st) == 0;
    if (!*exists && errno != ENOENT)
        return bk_error_set(err, BK_E_IO, errno, "cannot access destination %s", path);
    char final[PATH_MAX];
    if (!*exists && follow_links(path, final, sizeof final) < 0)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "destination %s: too many symbolic links, or a path too long", path);
    if (!*exists && in_device_directory(final))
        return bk_error_set(err, BK_E_REFUSED, 0,
                            "destination %s does not exist%s%s; refusing to create a regular "
                            "file in a device directory (is the device plugged in, is the name "
                            "right?)",
                            path, strcmp(final, path) != 0 ? " and links to " : "",
                            strcmp(final, path) != 0 ? final : "");
    if (o->removable_only && (!*exists || !S_ISBLK(st->st_mode)))
        return bk_error_set(err, BK_E_NOT_REMOVABLE, 0,
                            "destination %s is not a block device, so not a removable disk", path);
    if (*exists && S_ISDIR(st->st_mode))
        return bk_error_set(err, BK_E_INVALID, 0, "destination %s is a directory", path);
    if (*exists && !S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode) && !S_ISCHR(st->st_mode))
        return bk_error_set(err, BK_E_INVALID, 0, "destination %s is neither a file nor a device",
                            path);
    return 0;
}

/* An NBD URI rather than a path; a file of such a name is reached as ./nbd:... */
static bool is_nbd_uri(const char *s)
{
    static const char *const schemes[] = {"nbd://",       "nbds://",      "nbd+unix://",
                                          "nbds+unix://", "nbd+vsock://", "nbds+vsock://"};
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++)
        if (strncmp(s, schemes[i], strlen(schemes[i])) == 0)
            return true;
    return false;
}

struct bk_dest *bk_dest_open(const char *path, uint64_t image_size,
                             const struct bk_dest_options *opts, struct bk_error *err)
{
    struct bk_dest_options o;
    if (bk_options_take(&o, sizeof o, opts, "destination options", err) < 0)
        return NULL;
    if (is_nbd_uri(path))
        return bk_dest_open_nbd_uri(path, image_size, &o, err);
    struct stat st;
    bool exists;
    if (check_path(path, &o, &st, &exists, err) < 0)
        return NULL;
    /* A block device is checked for its users first, then for the inputs. */
    if (exists && !S_ISBLK(st.st_mode) && bk_dest_check_inputs(path, &st, &o, err) < 0)
        return NULL;
    if (exists && S_ISBLK(st.st_mode))
        return bk_dest_open_blockdev(path, st.st_rdev, image_size, &o, err);
    if (exists && S_ISCHR(st.st_mode))
        return bk_dest_open_chardev(path, err);
    return bk_dest_open_file(path, image_size, o.keep_content, err);
}

const char *bk_dest_name(const struct bk_dest *d)
{
    return d->name;
}

const char *bk_dest_kind(const struct bk_dest *d)
{
    return d->ops->kind;
}

uint64_t bk_dest_size(const struct bk_dest *d)
{
    return d->size;
}

unsigned bk_dest_capabilities(const struct bk_dest *d)
{
    return d->caps;
}

int bk_dest_write(struct bk_dest *d, const void *buf, size_t len, uint64_t offset,
                  struct bk_error *err)
{
    return d->ops->write(d, buf, len, offset, err);
}

int bk_dest_read(struct bk_dest *d, void *buf, size_t len, uint64_t offset, size_t *got,
                 struct bk_error *err)
{
    *got = 0;
    if (!d->ops->read || !(d->caps & BK_DEST_CAN_READ))
        return bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s (a %s) cannot be read back", d->name,
                            d->ops->kind);
    return d->ops->read(d, buf, len, offset, got, err);
}

int bk_dest_flush(struct bk_dest *d, struct bk_error *err)
{
    return d->ops->flush(d, err);
}

/* Zeroing by writing zeros, for destinations that have no faster way. */
static int write_zeros(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err)
{
    enum { CHUNK = 1 << 20 };
    void *zeros = calloc(1, CHUNK);
    if (!zeros)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    int rc = 0;
    while (len > 0 && rc == 0) {
        size_t n = (size_t)bk_min_u64(len, CHUNK);
        rc = d->ops->write(d, zeros, n, offset, err);
        offset += n;
        len -= n;
    }
    free(zeros);
    return rc;
}

int bk_dest_zero(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err)
{
    if (d->ops->zero && (d->caps & BK_DEST_CAN_ZERO)) {
        struct bk_error e;
        bk_error_clear(&e);
        if (d->ops->zero(d, offset, len, &e) == 0)
            return 0;
        if (e.code != BK_E_UNSUPPORTED) {
            if (err)
                *err = e;
            return -1;
        }
    }
    return write_zeros(d, offset, len, err);
}

int bk_dest_discard(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err)
{
    if (!d->ops->discard || !(d->caps & BK_DEST_CAN_DISCARD))
        return bk_error_set(err, BK_E_UNSUPPORTED, 0, "%s (a %s) cannot discard", d->name,
                            d->ops->kind);
    return d->ops->discard(d, offset, len, err);
}

int bk_dest_set_size(struct bk_dest *d, uint64_t size, struct bk_error *err)
{
    return d->ops->set_size ? d->ops->set_size(d, size, err) : 0;
}

void bk_dest_start_writeback(struct bk_dest *d)
{
    if (d->ops->start_writeback)
        d->ops->start_writeback(d);
}

void bk_dest_close(struct bk_dest *d)
{
    if (!d)
        return;
    if (d->priv && d->ops->close)
        d->ops->close(d);
    free(d->name);
    free(d);
}
