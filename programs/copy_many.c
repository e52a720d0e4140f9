/* SPDX-License-Identifier: MIT */
/*
 * bmapkit copy to several destinations at once: all opened, with every check, before
 * anything is written, a refused one left alone with its own line; one copy job writing
 * the others; one summary line each.
 */
#include "copy_plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "disk_select.h"
#include "progress.h"

struct many_cli {
    struct progress *progress;
    const struct copy_plan *plan;
    size_t *index; /* the job's destination K is the plan's index[K] (refused ones left out) */
    size_t opened;
};

/* Whether A and B name the same destination: the same device, file, or text. */
static bool same_dest(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return strcmp(a, b) == 0;
    if (S_ISBLK(sa.st_mode) || S_ISCHR(sa.st_mode))
        return (sa.st_mode & S_IFMT) == (sb.st_mode & S_IFMT) && sa.st_rdev == sb.st_rdev;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int copy_check_distinct(const struct copy_plan *plan)
{
    for (size_t i = 1; i < plan->dest_count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (!same_dest(plan->dest_paths[i], plan->dest_paths[j]))
                continue;
            if (strcmp(plan->dest_paths[i], plan->dest_paths[j]) == 0)
                cli_error("the destination %s is given twice", plan->dest_paths[i]);
            else
                cli_error("the destinations %s and %s are the same", plan->dest_paths[j],
                          plan->dest_paths[i]);
            return EXIT_ERROR;
        }
    }
    /* A disk and its partition, a loop device and its file, ...: one would spoil the other. */
    for (size_t i = 1; i < plan->dest_count; i++) {
        for (size_t j = 0; j < i; j++) {
            struct bk_error err;
            bk_error_clear(&err);
            if (bk_dest_check_apart(plan->dest_paths[j], plan->dest_paths[i], plan->dopts.sysroot,
                                    &err) < 0) {
                cli_error_code(err.code, "%s; nothing was written", cli_message(&err));
                return cli_final_status(cli_exit_status(&err));
            }
        }
    }
    return EXIT_OK;
}

static void on_warning(void *ctx, const char *msg)
{
    struct many_cli *c = ctx;
    progress_warning(c->progress, "%s", msg);
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct many_cli *c = ctx;
    progress_update(c->progress, done, total);
}

static void on_range(void *ctx, size_t index, const struct bk_range *r)
{
    struct many_cli *c = ctx;
    progress_event(c->progress, "range",
                   "\"index\":%zu,\"first\":%" PRIu64 ",\"last\":%" PRIu64
                   ",\"status\":\"verified\"",
                   index, r->first, r->last);
}

static void on_mismatch(void *ctx, size_t dest, size_t index, const struct bk_range *r,
                        unsigned attempt)
{
    struct many_cli *c = ctx;
    const char *path = c->plan->dest_paths[c->index[dest]];
    char q[PATH_MAX + 8];
    json_quote(q, sizeof q, path);
    progress_clear(c->progress);
    cli_warning("read-back of %s: blocks %" PRIu64 "-%" PRIu64 " differ (attempt %u)", path,
                r->first, r->last, attempt);
    progress_event(c->progress, "range",
                   "\"dest\":%s,\"index\":%zu,\"first\":%" PRIu64 ",\"last\":%" PRIu64
                   ",\"status\":\"readback-mismatch\",\"attempt\":%u",
                   q, index, r->first, r->last, attempt);
}

/* Device events of the UMS disks, then one start event naming every destination. */
static void announce(struct many_cli *mc, const struct copy_plan *plan, uint64_t image_size)
{
    progress_restart_clock(mc->progress);
    for (size_t i = 0; plan->ums_disks && i < plan->dest_count; i++) {
        char dev[4096];
        disk_json(&plan->ums_disks[i], dev, sizeof dev);
        progress_event(mc->progress, "device", "\"device\":%s", dev);
    }
    copy_announce(mc->progress, plan, plan->dest_path, image_size);
    /* The start event keeps "dest" (the first); the whole list is an event of its own. */
    size_t cap = plan->dest_count * (PATH_MAX + 8) + 16, len = 0;
    char *list = malloc(cap);
    if (!list)
        return;
    list[0] = '\0';
    for (size_t i = 0; i < plan->dest_count; i++) {
        char q[PATH_MAX + 8];
        json_quote(q, sizeof q, plan->dest_paths[i]);
        len += (size_t)snprintf(list + len, cap - len, "%s%s", i ? "," : "", q);
    }
    progress_event(mc->progress, "destinations", "\"dests\":[%s]", list);
    free(list);
}

/* How a destination is named in its summary line: with the UMS disk's port and serial. */
static void dest_label(const struct copy_plan *plan, size_t i, char *buf, size_t cap)
{
    const char *path = plan->dest_paths[i];
    const struct bk_disk_info *d = plan->ums_disks ? &plan->ums_disks[i] : NULL;
    if (d && (d->usb_port[0] || d->serial[0]))
        snprintf(buf, cap, "%s (%s%s%s%s%s)", path, d->usb_port[0] ? "USB port " : "", d->usb_port,
                 d->usb_port[0] && d->serial[0] ? ", " : "", d->serial[0] ? "serial " : "",
                 d->serial);
    else
        snprintf(buf, cap, "%s", path);
}

/* ERR's message and HINT about destination I, for its error line and its event. Most
   messages name the destination already; the others get its LABEL in front. */
static void dest_message(const struct copy_plan *plan, size_t i, const char *label,
                         const struct bk_error *err, const char *hint, char *buf, size_t cap)
{
    const char *m = cli_message(err);
    if (strstr(m, plan->dest_paths[i]))
        snprintf(buf, cap, "%s%s", m, hint);
    else
        snprintf(buf, cap, "%s: %s%s", label, m, hint);
}

static const char *verification(const struct copy_plan *plan, bool ok,
                                const struct bk_copy_stats *st)
{
    if (!ok || !plan->bmap || plan->no_verify)
        return "not verified";
    if (st->ranges_unchecked == 0)
        return "verified";
    return st->ranges_verified > 0 ? "partial" : "not verified";
}

/* The summary line and the event of the job's destination K; returns its exit status. */
static int report_dest(struct many_cli *mc, struct bk_copy *job, size_t k)
{
    const struct copy_plan *plan = mc->plan;
    size_t i = mc->index[k];
    const struct bk_copy_stats *st = bk_copy_get_dest_stats(job, k);
    struct bk_error err;
    bk_error_clear(&err);
    bool ok = bk_copy_get_dest_result(job, k, &err) == 0;
    char label[PATH_MAX + 700], a[32], q[PATH_MAX + 8];
    dest_label(plan, i, label, sizeof label);
    json_quote(q, sizeof q, plan->dest_paths[i]);
    double secs = (double)st->elapsed_ns / 1e9;
    const char *ver = verification(plan, ok, st);
    int status = EXIT_OK;
    char errjson[2 * (PATH_MAX + 700 + BK_ERROR_MSG_MAX + 512) + 128] = "null";
    if (ok) {
        char rb[64] = "";
        if (plan->readback)
            snprintf(rb, sizeof rb, ", read back %zu range(s)", st->readback_checked);
        cli_info("%s: wrote %s in %.2f s, %s%s", label,
                 cli_human_bytes(st->bytes_written, a, sizeof a), secs, ver, rb);
    } else {
        char state[PATH_MAX + 200], msg[PATH_MAX + 700 + BK_ERROR_MSG_MAX + 512];
        copy_describe_state(st, plan->dest_paths[i], true, state, sizeof state);
        status = cli_final_status(cli_exit_status(&err));
        dest_message(plan, i, label, &err, cli_hint(&err), msg, sizeof msg);
        cli_error_code(err.code, "%s%s", msg, state);
        char qm[2 * sizeof msg + 8];
        json_quote(qm, sizeof qm, msg);
        snprintf(errjson, sizeof errjson, "{\"code\":\"%s\",\"message\":%s}",
                 bk_code_name(err.code), qm);
    }
    progress_event(mc->progress, "dest-done",
                   "\"dest\":%s,\"status\":\"%s\",\"exit\":%d,\"bytes_written\":%" PRIu64
                   ",\"readback_checked\":%zu,\"readback_failed\":%zu,\"head_written\":%s"
                   ",\"seconds\":%.3f,\"verification\":\"%s\",\"error\":%s",
                   q, ok ? "ok" : "failed", status, st->bytes_written, st->readback_checked,
                   st->readback_failed, st->head_written ? "true" : "false", secs, ver, errjson);
    return status;
}

/* The line and the event of destination I, refused with ERR; returns its exit status. */
static int report_refused(struct many_cli *mc, size_t i, const struct bk_error *err)
{
    const struct copy_plan *plan = mc->plan;
    char label[PATH_MAX + 700], q[PATH_MAX + 8];
    char msg[PATH_MAX + 700 + BK_ERROR_MSG_MAX + 512];
    dest_label(plan, i, label, sizeof label);
    int status = cli_final_status(cli_exit_status(err));
    dest_message(plan, i, label, err, cli_dest_hint(err, plan->dest_paths[i]), msg, sizeof msg);
    cli_error_code(err->code, "%s; this destination is left alone", msg);
    char qm[2 * sizeof msg + 8];
    json_quote(q, sizeof q, plan->dest_paths[i]);
    json_quote(qm, sizeof qm, msg);
    progress_event(mc->progress, "dest-done",
                   "\"dest\":%s,\"status\":\"refused\",\"exit\":%d,\"bytes_written\":0"
                   ",\"readback_checked\":0,\"readback_failed\":0,\"head_written\":false"
                   ",\"seconds\":0,\"verification\":\"not verified\",\"error\":"
                   "{\"code\":\"%s\",\"message\":%s}",
                   q, status, bk_code_name(err->code), qm);
    return status;
}

/*
 * Open every destination before anything is written. One that is refused (mounted, too
 * small, ...) is left alone with its own line, and the others are written; returns the
 * exit status of the first refused, or EXIT_OK. ERR keeps the first refusal.
 */
static int open_all(struct many_cli *mc, struct copy_plan *plan, uint64_t image_size,
                    struct bk_dest **dests, struct bk_error *err)
{
    int status = EXIT_OK;
    for (size_t i = 0; i < plan->dest_count; i++) {
        struct bk_error e;
        bk_error_clear(&e);
        dests[i] = bk_dest_open(plan->dest_paths[i], image_size, &plan->dopts, &e);
        if (dests[i]) {
            mc->index[mc->opened++] = i;
            continue;
        }
        int s = report_refused(mc, i, &e);
        if (status == EXIT_OK) {
            status = s;
            *err = e;
        }
    }
    return status;
}

static struct bk_copy *new_job(struct many_cli *mc, const struct copy_plan *plan,
                               struct bk_dest **dests, struct bk_error *err)
{
    struct bk_copy *job = bk_copy_new(plan->bmap, plan->src, dests[mc->index[0]], err);
    for (size_t k = 1; job && k < mc->opened; k++) {
        if (bk_copy_add_dest(job, dests[mc->index[k]], err) < 0) {
            bk_copy_free(job);
            return NULL;
        }
    }
    if (!job)
        return NULL;
    bk_copy_set_verify(job, !plan->no_verify);
    bk_copy_set_readback(job, plan->readback, plan->readback_retries);
    bk_copy_set_progress_fn(job, on_progress, mc);
    bk_copy_set_verified_fn(job, on_range, mc);
    bk_copy_set_dest_mismatch_fn(job, on_mismatch, mc);
    bk_copy_set_cancel_fn(job, cli_cancel_requested, NULL);
    return job;
}

/*
 * Run the job; one summary line per destination. REFUSED is the status of the first
 * destination refused before (with ERR0), or EXIT_OK. Returns the exit status.
 */
static int run_and_report(struct many_cli *mc, struct bk_copy *job, int refused,
                          const struct bk_error *err0)
{
    const struct copy_plan *plan = mc->plan;
    cli_info("copying %s to %zu destination(s)%s%s", plan->image, mc->opened,
             plan->bmap_path ? " using bmap " : "",
             plan->bmap_path ? plan->bmap_path : " without a bmap");
    struct bk_error err;
    bk_error_clear(&err);
    double t0 = cli_now();
    int rc = bk_copy_run(job, &err);
    double elapsed = cli_now() - t0;
    progress_clear(mc->progress);
    int status = refused;
    size_t failed = plan->dest_count - mc->opened;
    if (refused != EXIT_OK)
        err = *err0;
    for (size_t k = 0; k < mc->opened; k++) {
        int s = report_dest(mc, job, k);
        if (s != EXIT_OK && status == EXIT_OK)
            status = s;
        failed += s != EXIT_OK;
    }
    const struct bk_copy_stats *st = bk_copy_get_stats(job);
    if (plan->bmap && rc == 0)
        cli_info("verified %zu of %zu range(s)", st->ranges_verified,
                 bk_bmap_range_count(plan->bmap));
    if (failed) {
        cli_info("%zu of %zu destinations written", plan->dest_count - failed, plan->dest_count);
        progress_error(mc->progress, bk_code_name(err.code), cli_message(&err), status);
    } else
        cli_info("all %zu destinations written in %.2f s", plan->dest_count, elapsed);
    progress_done(mc->progress, status, st, elapsed,
                  failed ? "not verified" : verification(plan, true, st));
    return status;
}

int copy_execute_many(struct copy_plan *plan)
{
    struct many_cli mc = {.progress = copy_progress(), .plan = plan};
    if (!mc.progress->open && progress_open(mc.progress, cli.quiet, plan->json, plan->psplash) < 0)
        return EXIT_ERROR;
    int64_t src_size = bk_source_size(plan->src);
    uint64_t image_size = plan->bmap      ? bk_bmap_image_size(plan->bmap)
                          : src_size >= 0 ? (uint64_t)src_size
                                          : 0;
    announce(&mc, plan, image_size);
    plan->dopts.warn = on_warning;
    plan->dopts.warn_ctx = &mc;
    struct bk_dest **dests = calloc(plan->dest_count, sizeof *dests);
    mc.index = calloc(plan->dest_count, sizeof *mc.index);
    if (!dests || !mc.index) {
        free(dests);
        free(mc.index);
        cli_error("out of memory");
        return EXIT_ERROR;
    }
    struct bk_error err;
    bk_error_clear(&err);
    bool ran = false;
    int refused = open_all(&mc, plan, image_size, dests, &err);
    int status = refused;
    if (mc.opened == 0) {
        cli_error("every destination was refused; nothing was written");
        progress_error(mc.progress, bk_code_name(err.code), cli_message(&err), status);
    } else {
        struct bk_copy *job = new_job(&mc, plan, dests, &err);
        if (job) {
            status = run_and_report(&mc, job, refused, &err);
            ran = true;
        } else {
            status = cli_fail(&err);
            progress_error(mc.progress, bk_code_name(err.code), cli_message(&err), status);
        }
        bk_copy_free(job);
    }
    /* Closing restores the device settings; a warning from that still reaches the events. */
    for (size_t i = 0; i < plan->dest_count; i++)
        bk_dest_close(dests[i]);
    free(dests);
    free(mc.index);
    progress_clear(mc.progress);
    if (!ran) {
        struct bk_copy_stats none = {0};
        progress_done(mc.progress, status, &none, 0, "not verified");
    }
    progress_close(mc.progress);
    return status;
}
