/* SPDX-License-Identifier: MIT */
/*
 * A copy over ssh to a host without bmapkit: the image is decoded and checked here, and
 * written through nbdkit, which the ssh connection starts there and which speaks NBD on
 * that connection. nbdkit checks nothing, so the remote path is checked first from what
 * the probe saw: it must exist (a regular file outside /dev is created), and a disk must
 * be large enough, not in use unless --force, never the running system's.
 */
#include "remote.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "copy_plan.h"
#include "progress.h"

struct nbd_way {
    const struct remote_url *u;
    const struct remote_probe *pr;
    int err_fd; /* ssh's error output, kept to say why a connection failed */
};

/* The last non-empty line ssh and nbdkit printed, into BUF ("" when none). */
static void last_error_line(int fd, char *buf, size_t cap)
{
    char text[8192];
    buf[0] = '\0';
    ssize_t n = fd >= 0 ? pread(fd, text, sizeof text - 1, 0) : -1;
    if (n <= 0)
        return;
    text[n] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cli_debug("ssh: %s", line);
        if (line[strspn(line, " \t\r")])
            snprintf(buf, cap, "%s", line);
    }
}

/* The command there: a regular file made the image's size first, then nbdkit on it. */
static void nbd_command(struct rbuf *c, const struct nbd_way *w, uint64_t image_size)
{
    rbuf_addf(c, "PATH=\"$PATH:/usr/sbin:/sbin\"; ");
    if (w->pr->kind != REMOTE_BLOCK) {
        /* As a local copy does: emptied, then sized, so what is not written is holes. */
        rbuf_addf(c, ": >");
        rbuf_add_word(c, w->u->path);
        rbuf_addf(c, " && truncate -s %" PRIu64 " --", image_size);
        rbuf_add_word(c, w->u->path);
        rbuf_addf(c, " && ");
    }
    char arg[PATH_MAX + 8];
    snprintf(arg, sizeof arg, "file=%s", w->u->path);
    rbuf_addf(c, "exec nbdkit -s --exit-with-parent file");
    rbuf_add_word(c, arg);
}

/* The copy's destination: bk_dest_open_nbd_command on ssh running nbdkit there. */
static struct bk_dest *open_over_ssh(struct copy_plan *plan, uint64_t image_size,
                                     struct bk_error *err)
{
    struct nbd_way *w = plan->open_dest_ctx;
    struct rbuf command = {0};
    nbd_command(&command, w, image_size);
    char **argv = command.failed ? NULL : remote_argv(w->u, command.data, w->err_fd);
    if (!argv) {
        rbuf_free(&command);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    cli_debug("running: %s with: %s", argv[2], command.data);
    rbuf_free(&command);
    struct bk_dest *d = bk_dest_open_nbd_command(argv, w->u->text, image_size, &plan->dopts, err);
    remote_argv_free(argv);
    char why[512];
    last_error_line(w->err_fd, why, sizeof why);
    if (!d && why[0]) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, " (%s: %s)", w->u->host, why);
    }
    return d;
}

/* The refusals of a local copy, made from what the probe saw. */
static int check_block(const struct copy_plan *plan, const struct remote_url *u,
                       const struct remote_probe *pr, uint64_t image_size)
{
    char a[32], b[32];
    if (pr->holds_root) {
        cli_error_code(BK_E_REFUSED, "%s: %s holds the running system of %s (mounted on /)",
                       u->text, u->path, u->host);
        return EXIT_ERROR;
    }
    if (!pr->lsblk && !plan->dopts.force) {
        cli_error_code(BK_E_IN_USE,
                       "%s: %s has no lsblk to tell whether %s is in use (use --force if you "
                       "really mean to overwrite it)",
                       u->text, u->host, u->path);
        return EXIT_ERROR;
    }
    if (pr->mounts[0] && !plan->dopts.force) {
        cli_error_code(BK_E_IN_USE,
                       "%s: %s is in use on %s (%s) (stop using it first, or use --force if "
                       "you really mean to overwrite it)",
                       u->text, u->path, u->host, pr->mounts);
        return EXIT_ERROR;
    }
    if (plan->dopts.removable_only && !(pr->removable && pr->whole_disk)) {
        cli_error_code(BK_E_NOT_REMOVABLE,
                       "%s: %s is not a removable whole disk, but --removable-device was given",
                       u->text, u->path);
        return EXIT_ERROR;
    }
    if (pr->lsblk && pr->size < image_size) {
        cli_error_code(BK_E_REFUSED, "%s: %s is too small for the image: %s, the image is %s",
                       u->text, u->path, cli_human_bytes(pr->size, a, sizeof a),
                       cli_human_bytes(image_size, b, sizeof b));
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

static int check_path(const struct copy_plan *plan, const struct remote_url *u,
                      const struct remote_probe *pr, uint64_t image_size)
{
    bool in_dev = strncmp(u->path, "/dev/", 5) == 0 && strncmp(u->path, "/dev/shm/", 9) != 0;
    switch (pr->kind) {
    case REMOTE_BLOCK:
        return check_block(plan, u, pr, image_size);
    case REMOTE_FILE:
        break;
    case REMOTE_MISSING:
        if (!in_dev)
            break;
        cli_error_code(BK_E_IO, "%s: %s does not exist on %s", u->text, u->path, u->host);
        return EXIT_ERROR;
    case REMOTE_NO_DIR:
        cli_error_code(BK_E_IO, "%s: the folder of %s does not exist on %s", u->text, u->path,
                       u->host);
        return EXIT_ERROR;
    default:
        cli_error_code(BK_E_INVALID, "%s: %s is neither a block device nor a regular file on %s",
                       u->text, u->path, u->host);
        return EXIT_ERROR;
    }
    if (plan->dopts.removable_only) {
        cli_error_code(BK_E_NOT_REMOVABLE,
                       "%s: %s is a file, not a removable disk, but --removable-device was given",
                       u->text, u->path);
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

int remote_copy_nbd(struct copy_plan *plan, const struct remote_url *u,
                    const struct remote_probe *pr)
{
    int64_t src_size = bk_source_size(plan->src);
    uint64_t image_size = plan->bmap      ? bk_bmap_image_size(plan->bmap)
                          : src_size >= 0 ? (uint64_t)src_size
                                          : 0;
    int rc = EXIT_OK;
    if (!plan->bmap && src_size < 0 && pr->kind != REMOTE_BLOCK) {
        cli_error("%s: the size of the image is known only once it is decoded, and a file on "
                  "%s without bmapkit is made that size first: give a bmap, or a disk",
                  u->text, u->host);
        rc = EXIT_ERROR;
    }
    if (rc == EXIT_OK)
        rc = check_path(plan, u, pr, image_size);
    struct nbd_way w = {.u = u, .pr = pr, .err_fd = -1};
    /* Inherited by ssh through libnbd, which keeps the descriptors it does not use. */
    if (rc == EXIT_OK && (w.err_fd = memfd_create("bmapkit-ssh-errors", 0)) < 0) {
        cli_error("%s: %s", u->text, strerror(errno));
        rc = EXIT_ERROR;
    }
    if (rc != EXIT_OK) {
        progress_fail(copy_progress(), rc);
        return rc;
    }
    char why[128];
    if (pr->bmapkit)
        snprintf(why, sizeof why, "'%s --version' says: %s", plan->remote_bmapkit,
                 pr->bmapkit_version[0] ? pr->bmapkit_version : "nothing");
    else
        snprintf(why, sizeof why, "'%s' not found", plan->remote_bmapkit);
    cli_info("%s: no bmapkit there that can receive a copy (%s): the image is decoded here and "
             "written through nbdkit over ssh",
             u->text, why);
    plan->open_dest = open_over_ssh;
    plan->open_dest_ctx = &w;
    rc = copy_execute(plan);
    plan->open_dest = NULL;
    plan->open_dest_ctx = NULL;
    char last[512];
    if (rc != EXIT_OK)
        last_error_line(w.err_fd, last, sizeof last);
    close(w.err_fd);
    return rc;
}
