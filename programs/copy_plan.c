/* SPDX-License-Identifier: MIT */
/* bmapkit copy: what to copy where, checked before the destination is touched. */
#include "copy_plan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "disk_select.h"
#include "progress.h"
#include "ssh_source.h"

/*
 * The local path of PATH: PATH itself, or the file a file: URL names ("file:/abs",
 * "file:///abs", "file://localhost/abs", %XX decoded) written to BUF; NULL for a URL of
 * another host or one that does not fit.
 */
static const char *local_path(const char *path, char *buf, size_t cap)
{
    if (strncasecmp(path, "file:", 5) != 0)
        return path;
    const char *p = path + 5;
    if (strncmp(p, "//", 2) == 0) {
        p += 2;
        if (strncasecmp(p, "localhost/", 10) == 0)
            p += 9;
    }
    if (*p != '/')
        return NULL;
    size_t n = 0;
    for (; *p && *p != '?' && *p != '#'; p++) {
        char c = *p;
        unsigned v;
        if (c == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]) &&
            sscanf(p + 1, "%2x", &v) == 1) {
            c = (char)v;
            p += 2;
        }
        if (c == '\0' || n + 1 >= cap)
            return NULL;
        buf[n++] = c;
    }
    buf[n] = '\0';
    return buf;
}

/* Whether A and B name the same file, as paths or file: URLs. */
static bool same_file(const char *a, const char *b)
{
    char la[PATH_MAX], lb[PATH_MAX];
    struct stat sa, sb;
    a = local_path(a, la, sizeof la);
    b = local_path(b, lb, sizeof lb);
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/*
 * A missing image is named as such before a bmap is looked for next to it or read, so
 * that the user learns first what is missing. Its message is the library's own. An
 * image that is no local path (a URL) is opened here, once, and kept for the copy.
 */
static int check_image(struct copy_plan *plan)
{
    /* Over ssh one round trip also looks for the bmap and its signature. */
    if (ssh_source_is_url(plan->image))
        return ssh_check_image(plan->image, !plan->bmap_path && !plan->nobmap && !plan->bmap,
                               plan->found, sizeof plan->found);
    struct stat st;
    if (strcmp(plan->image, "-") == 0 || stat(plan->image, &st) == 0)
        return EXIT_OK;
    struct bk_error err;
    bk_error_clear(&err);
    plan->src = bk_source_open_image_fetch(plan->image, &plan->fetch, &plan->format, &err);
    return plan->src ? EXIT_OK : cli_fail(&err);
}

/* The bmap: given, or found next to the image; never the image itself. */
static int find_bmap(struct copy_plan *plan)
{
    /* A bmap already read (--bmap-from-stdin) is not looked for. */
    if (!plan->bmap_path && !plan->nobmap && !plan->bmap) {
        if (strcmp(plan->image, "-") == 0) {
            cli_error("an image read from standard input needs --bmap BMAP (or --nobmap to "
                      "copy all of it)");
            return EXIT_ERROR;
        }
        struct bk_error err;
        bk_error_clear(&err);
        if (ssh_source_is_url(plan->image)
                ? ssh_found_bmap(plan->image, plan->found, &err) < 0
                : bk_bmap_find_fetch(plan->image, &plan->fetch, plan->found, sizeof plan->found,
                                     &err) < 0) {
            cli_error("%s; give one with --bmap, or use --nobmap to copy the whole image",
                      cli_message(&err));
            return EXIT_ERROR;
        }
        plan->bmap_path = plan->found;
        cli_debug("using bmap %s", plan->bmap_path);
    }
    if (plan->bmap_path && strcmp(plan->image, "-") != 0 &&
        same_file(plan->bmap_path, plan->image)) {
        cli_error("the bmap %s is the image itself", plan->bmap_path);
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

/* Parse the bmap and open the image; check they belong together. */
static int open_inputs(struct copy_plan *plan)
{
    struct bk_error err;
    bk_error_clear(&err);
    if (plan->bmap_path) {
        int rc = copy_load_bmap(plan);
        if (rc != EXIT_OK)
            return rc;
        unsigned major, minor;
        bk_bmap_version(plan->bmap, &major, &minor);
        if (!bk_bmap_has_file_checksum(plan->bmap))
            cli_debug("bmap version %u.%u has no checksum of its own", major, minor);
    }
    /* A URL image is open already (check_image). */
    if (!plan->src)
        plan->src =
            ssh_source_is_url(plan->image)
                ? ssh_open_image(plan->image, &plan->format, &err)
                : bk_source_open_image_fetch(plan->image, &plan->fetch, &plan->format, &err);
    if (!plan->src)
        return cli_fail(&err);
    if (cli_is_net_url(plan->image))
        progress_watch_network(copy_progress(), plan->src);
    cli_debug("image format: %s", bk_format_name(plan->format));
    /* Known to be empty before the destination is opened (and a file truncated). */
    if (!plan->bmap && bk_source_size(plan->src) == 0) {
        cli_error("the image %s is empty, there is nothing to copy", plan->image);
        return EXIT_ERROR;
    }
    /* The library compares the destination with these before it opens anything. */
    size_t n = 0;
    if (strcmp(plan->image, "-") == 0)
        plan->inputs[n++] = (struct bk_dest_input){.what = "image on standard input", .fd = 0};
    else
        plan->inputs[n++] = (struct bk_dest_input){.what = "image", .path = plan->image, .fd = -1};
    if (plan->bmap_path)
        plan->inputs[n++] =
            (struct bk_dest_input){.what = "bmap", .path = plan->bmap_path, .fd = -1};
    if (plan->sig_path)
        plan->inputs[n++] =
            (struct bk_dest_input){.what = "bmap signature", .path = plan->sig_path, .fd = -1};
    plan->dopts.inputs = plan->inputs;
    plan->dopts.n_inputs = n;
    if (plan->bmap && bk_copy_check_source(plan->bmap, plan->src, &err) < 0)
        return cli_fail(&err);
    /* Before a UMS board is waited for or the destination opened. */
    if (plan->bmap &&
        bk_copy_check_verifiable(plan->bmap, !plan->no_verify, plan->readback, &err) < 0) {
        bk_error_prefix(&err, "bmap %s", plan->bmap_path ? plan->bmap_path : "from standard input");
        return cli_fail(&err);
    }
    return EXIT_OK;
}

/*
 * The UMS disk is looked for only once the image and bmap passed their checks, so the
 * user starts 'ums' on the board with nothing left to go wrong on this side. The disk
 * found then goes through bk_dest_open's checks like any DEST. Under BMAPKIT_SYSROOT
 * (a fake tree for tests) the destination is SYSROOT/dev/NAME: a regular file there
 * receives the image as a file, without the block-device checks.
 */
static int find_ums_disk(struct copy_plan *plan)
{
    const char *sysroot = plan->dopts.sysroot;
    int rc = ums_wait(sysroot, plan->ums_selector, plan->ums_timeout, &plan->ums_disk);
    if (rc != EXIT_OK)
        return rc;
    char id[1024];
    disk_identity(&plan->ums_disk, id, sizeof id);
    cli_info("U-Boot UMS disk (LUN %d) %s", plan->ums_disk.ums_lun, id);
    snprintf(plan->ums_path, sizeof plan->ums_path, "%s/dev/%s", sysroot ? sysroot : "",
             plan->ums_disk.name);
    plan->dest_path = plan->ums_path;
    return EXIT_OK;
}

/* ums:all: every UMS disk present once enough are, each a destination, named first. */
static int find_ums_disks(struct copy_plan *plan)
{
    const char *sysroot = plan->dopts.sysroot;
    struct bk_disk_list *l = NULL;
    int rc = ums_wait_all(sysroot, plan->ums_wait_for, plan->ums_timeout, &l);
    if (rc != EXIT_OK)
        return rc;
    size_t n = bk_disk_list_count(l);
    if (n > BK_COPY_MAX_DESTS) {
        bk_disk_list_free(l);
        cli_error("%zu U-Boot UMS disks are present; a copy writes at most %d", n,
                  BK_COPY_MAX_DESTS);
        return EXIT_ERROR;
    }
    struct bk_disk_info *disks = calloc(n, sizeof *disks);
    char(*paths)[PATH_MAX] = calloc(n, PATH_MAX);
    const char **names = calloc(n, sizeof *names);
    if (!disks || !paths || !names) {
        bk_disk_list_free(l);
        free(disks);
        free(paths);
        free((void *)names);
        cli_error("out of memory");
        return EXIT_ERROR;
    }
    /* Owned by the plan from here: copy_plan_free frees the three. */
    plan->ums_disks = disks;
    plan->ums_paths = paths;
    plan->dest_paths = names;
    for (size_t i = 0; i < n; i++) {
        plan->ums_disks[i] = *bk_disk_list_get(l, i);
        char id[1024];
        disk_identity(&plan->ums_disks[i], id, sizeof id);
        cli_info("U-Boot UMS disk (LUN %d) %s", plan->ums_disks[i].ums_lun, id);
        snprintf(paths[i], PATH_MAX, "%s/dev/%s", sysroot ? sysroot : "", plan->ums_disks[i].name);
        names[i] = paths[i];
    }
    bk_disk_list_free(l);
    plan->dest_count = n;
    plan->dest_path = plan->dest_paths[0];
    return EXIT_OK;
}

int copy_resolve(struct copy_plan *plan)
{
    /* The events start here, so that a copy that cannot start still ends with events. */
    struct progress *events = copy_progress();
    if (progress_open(events, cli.quiet, plan->json, plan->psplash) < 0)
        return EXIT_ERROR;
    int rc = check_image(plan);
    if (rc == EXIT_OK)
        rc = find_bmap(plan);
    if (rc == EXIT_OK)
        rc = open_inputs(plan);
    if (rc == EXIT_OK && plan->ums_all)
        rc = find_ums_disks(plan);
    else if (rc == EXIT_OK && plan->ums)
        rc = find_ums_disk(plan);
    if (rc == EXIT_OK && plan->dest_count > 1)
        rc = copy_check_distinct(plan);
    if (rc != EXIT_OK) {
        progress_fail(events, cli_final_status(rc));
        progress_close(events);
    }
    return rc;
}

void copy_plan_free(struct copy_plan *plan)
{
    progress_close(copy_progress());
    bk_source_close(plan->src);
    bk_bmap_free(plan->bmap);
    plan->src = NULL;
    plan->bmap = NULL;
    if (plan->ums_paths) {
        free(plan->ums_disks);
        free(plan->ums_paths);
        free((void *)plan->dest_paths);
        plan->ums_disks = NULL;
        plan->ums_paths = NULL;
        plan->dest_paths = NULL;
    }
}
