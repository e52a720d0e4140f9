/* SPDX-License-Identifier: MIT */
/*
 * A destination must not destroy what the copy reads: it must not be the image, the
 * bmap or the file behind standard input, nor a block device they lie on or are read
 * from, nor a loop device over one of them, nor the file behind a device one of them is
 * read from. Identities (device and inode numbers) are compared, never names, so hard
 * links, bind mounts and other names of the same file are caught too.
 */
#include "dest/dest_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/url.h"
#include "common/util.h"
#include "os/os.h"

/* Loop devices over loop devices nest; the walk follows a few levels, not a cycle. */
enum { MAX_DEPTH = 4 };

struct guard {
    const char *sysroot;
    struct bk_dev_stack written; /* what writing a block device destination changes */
    char why[160];               /* how the conflict found goes */
};

/* Whether S has the file DEV:INO behind a loop device; PARTIAL as in bk_dev_stack. */
static bool stack_has_file(const struct bk_dev_stack *s, dev_t dev, ino_t ino, bool partial,
                           const char **loop)
{
    for (size_t i = 0; i < s->n_files; i++)
        if (s->files[i].dev == dev && s->files[i].ino == ino && !(partial && s->files[i].partial)) {
            *loop = s->files[i].loop;
            return true;
        }
    return false;
}

/*
 * Whether writing the destination changes the bytes of block device DEV (and so of
 * every file on a file system there). Two stacks that meet only in the whole disk of
 * two different partitions do not overlap.
 */
static bool changes_device(struct guard *g, dev_t dev, bool file_on_it, int depth)
{
    struct bk_dev_stack *held = malloc(sizeof *held);
    struct bk_error ignored;
    if (!held || bk_dev_stack_storage(g->sysroot, dev, held, &ignored) < 0) {
        free(held);
        return false; /* not a block device sysfs knows: a tmpfs, an overlay, ... */
    }
    bool hit = false;
    for (size_t i = 0; i < held->count && !hit; i++)
        for (size_t j = 0; j < g->written.count && !hit; j++)
            if (held->devs[i] == g->written.devs[j] &&
                !(held->partial[i] && g->written.partial[j])) {
                hit = true;
                snprintf(g->why, sizeof g->why, file_on_it ? "it lies on %s" : "they share %s",
                         held->names[i]);
            }
    for (size_t i = 0; i < held->n_files && !hit; i++) {
        const struct bk_backing_file *f = &held->files[i];
        const char *loop;
        if (stack_has_file(&g->written, f->dev, f->ino, f->partial, &loop)) {
            hit = true;
            snprintf(g->why, sizeof g->why, "%s and %s read the same file", f->loop, loop);
        } else if (depth < MAX_DEPTH && changes_device(g, f->dev, true, depth + 1)) {
            hit = true;
        }
    }
    free(held);
    return hit;
}

/* Whether writing the block device destination destroys the input described by ST. */
static bool blockdev_destroys(struct guard *g, const struct stat *st)
{
    const char *loop;
    if (S_ISREG(st->st_mode) && stack_has_file(&g->written, st->st_dev, st->st_ino, false, &loop)) {
        snprintf(g->why, sizeof g->why, "it is the file behind %s", loop);
        return true;
    }
    if (S_ISREG(st->st_mode))
        return changes_device(g, st->st_dev, true, 0);
    if (S_ISBLK(st->st_mode))
        return changes_device(g, st->st_rdev, false, 0);
    return false;
}

/* Whether writing the regular file DEST destroys the input described by ST. */
static bool file_destroys(struct guard *g, const struct stat *dest, const struct stat *st)
{
    if (dest->st_dev == st->st_dev && dest->st_ino == st->st_ino) {
        snprintf(g->why, sizeof g->why, "it is the same file");
        return true;
    }
    if (!S_ISBLK(st->st_mode))
        return false;
    /* An input read from a block device: is DEST behind it, or on it? */
    struct bk_dev_stack *held = malloc(sizeof *held);
    struct bk_error ignored;
    if (!held || bk_dev_stack_storage(g->sysroot, st->st_rdev, held, &ignored) < 0) {
        free(held);
        return false;
    }
    bool hit = false;
    const char *loop;
    if (stack_has_file(held, dest->st_dev, dest->st_ino, false, &loop)) {
        snprintf(g->why, sizeof g->why, "this file is behind %s", loop);
        hit = true;
    }
    for (size_t i = 0; i < held->count && !hit; i++)
        if (held->devs[i] == dest->st_dev) {
            snprintf(g->why, sizeof g->why, "this file lies on %s", held->names[i]);
            hit = true;
        }
    free(held);
    return hit;
}

static int input_stat(const struct bk_dest_input *in, struct stat *st)
{
    /* A file: URL is the local file it names. */
    char local[4096];
    if (in->path && bk_net_file_path(in->path, local, sizeof local))
        return stat(local, st);
    return in->path ? stat(in->path, st) : fstat(in->fd, st);
}

int bk_dest_check_apart(const char *a, const char *b, const char *sysroot, struct bk_error *err)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return 0; /* to be created, or not a local path: nothing shared yet */
    struct bk_dest_options o;
    bk_dest_options_init(&o);
    o.sysroot = sysroot;
    struct bk_dest_input other = {"destination", b, -1};
    o.inputs = &other;
    o.n_inputs = 1;
    /* Each way round: a file behind a loop device is caught from the device's side. */
    if (bk_dest_check_inputs(a, &sa, &o, err) < 0)
        return -1;
    other.path = a;
    return bk_dest_check_inputs(b, &sb, &o, err);
}

int bk_dest_check_inputs(const char *path, const struct stat *dest, const struct bk_dest_options *o,
                         struct bk_error *err)
{
    if (o->n_inputs == 0 || (!S_ISREG(dest->st_mode) && !S_ISBLK(dest->st_mode)))
        return 0;
    struct guard *g = calloc(1, sizeof *g);
    if (!g)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    g->sysroot = o->sysroot;
    int rc = 0;
    if (S_ISBLK(dest->st_mode))
        rc = bk_dev_stack_written(o->sysroot, dest->st_rdev, &g->written, err);
    for (size_t i = 0; rc == 0 && i < o->n_inputs; i++) {
        const struct bk_dest_input *in = &o->inputs[i];
        struct stat st;
        if (input_stat(in, &st) < 0)
            continue; /* gone or closed: nothing of it left to destroy */
        bool hit = S_ISBLK(dest->st_mode) ? blockdev_destroys(g, &st) : file_destroys(g, dest, &st);
        if (hit)
            rc = bk_error_set(err, BK_E_REFUSED, 0,
                              "refusing to write to %s: that would destroy the %s%s%s (%s)", path,
                              in->what, in->path ? " " : "", in->path ? in->path : "", g->why);
    }
    free(g);
    return rc;
}
