/* SPDX-License-Identifier: MIT */
/* bmapkit copy: opening the destination, the copy job, its progress and its summary. */
#include "copy_plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "disk_select.h"
#include "progress.h"

struct copy_cli {
    struct progress *progress;
    const char *dest_path;
};

static void on_warning(void *ctx, const char *msg)
{
    struct copy_cli *c = ctx;
    progress_warning(c->progress, "%s", msg);
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct copy_cli *c = ctx;
    progress_update(c->progress, done, total);
}

static void on_range(void *ctx, size_t index, const struct bk_range *r)
{
    struct copy_cli *c = ctx;
    progress_event(c->progress, "range",
                   "\"index\":%zu,\"first\":%" PRIu64 ",\"last\":%" PRIu64
                   ",\"status\":\"verified\"",
                   index, r->first, r->last);
}

static void on_readback_mismatch(void *ctx, size_t index, const struct bk_range *r,
                                 unsigned attempt)
{
    struct copy_cli *c = ctx;
    progress_clear(c->progress);
    cli_warning("read-back of %s: blocks %" PRIu64 "-%" PRIu64 " differ (attempt %u)", c->dest_path,
                r->first, r->last, attempt);
    progress_event(c->progress, "range",
                   "\"index\":%zu,\"first\":%" PRIu64 ",\"last\":%" PRIu64
                   ",\"status\":\"readback-mismatch\",\"attempt\":%u",
                   index, r->first, r->last, attempt);
}

/* What state DEST was left in after a failed copy, as the tail of the error line. */
void copy_describe_state(const struct bk_copy_stats *st, const char *dest, bool dest_opened,
                         char *buf, size_t cap)
{
    char a[32];
    buf[0] = '\0';
    if (!dest_opened)
        return;
    if (st->head_written) {
        /* Only a failure after the whole head went out (a failed flush) leaves this. */
        snprintf(buf, cap,
                 "; %s may hold the image's first MiB although the copy failed: do not boot "
                 "from it",
                 dest);
        return;
    }
    if (st->bytes_written == 0 && st->head_cleared)
        snprintf(buf, cap,
                 "; nothing of the image was written to %s, but zeros may have replaced the "
                 "mapped part of its first MiB",
                 dest);
    else if (st->bytes_written == 0)
        snprintf(buf, cap, "; nothing was written to %s", dest);
    else
        snprintf(buf, cap,
                 "; %s holds an incomplete copy (%s written) without the image's first MiB, "
                 "so it does not look like a valid image",
                 dest, cli_human_bytes(st->bytes_written, a, sizeof a));
}

void copy_announce(struct progress *progress, const struct copy_plan *plan, const char *dest,
                   uint64_t image_size)
{
    const struct bk_bmap *bmap = plan->bmap;
    progress_restart_clock(progress);
    char q1[PATH_MAX + 8], q2[PATH_MAX + 8], q3[PATH_MAX + 8];
    json_quote(q1, sizeof q1, plan->image);
    json_quote(q2, sizeof q2, dest);
    json_quote(q3, sizeof q3, plan->bmap_path ? plan->bmap_path : "");
    /* Who signed the bmap, when its signature was checked; null otherwise. */
    char sig[6 * BK_SIGNATURE_SIGNER_MAX + 128] = "null";
    if (plan->sig_verified) {
        char fpr[BK_SIGNATURE_FPR_MAX + 8], who[6 * BK_SIGNATURE_SIGNER_MAX + 8];
        json_quote(fpr, sizeof fpr, plan->signature.fingerprint);
        json_quote(who, sizeof who, plan->signature.signer);
        snprintf(sig, sizeof sig, "{\"fingerprint\":%s,\"signer\":%s}", fpr, who);
    }
    progress_event(progress, "start",
                   "\"image\":%s,\"dest\":%s,\"bmap\":%s,\"signature\":%s,\"image_size\":%" PRIu64
                   ",\"mapped_bytes\":%" PRIu64 ",\"ranges\":%zu",
                   q1, q2, q3, sig, image_size, bmap ? bk_bmap_mapped_bytes(bmap) : image_size,
                   bmap ? bk_bmap_range_count(bmap) : 0);
}

/* The device event of a UMS disk, then the start event. */
static void announce(struct copy_cli *cc, const struct copy_plan *plan, uint64_t image_size)
{
    progress_restart_clock(cc->progress);
    if (plan->ums) {
        char dev[4096];
        disk_json(&plan->ums_disk, dev, sizeof dev);
        progress_event(cc->progress, "device", "\"device\":%s", dev);
    }
    copy_announce(cc->progress, plan, plan->dest_path, image_size);
}

/* Whether BMAP has ranges but none of them carries a checksum: nothing could be verified. */
static bool bmap_unverifiable(const struct bk_bmap *bmap)
{
    struct bk_error ignored;
    return bk_copy_check_verifiable(bmap, true, false, &ignored) < 0;
}

/* How far the copy was checked, as the "verification" member of the done event. */
static const char *verification(const struct copy_plan *plan, int status,
                                const struct bk_copy_stats *st)
{
    if (status != EXIT_OK || !plan->bmap || plan->no_verify)
        return "not verified";
    if (st->ranges_unchecked == 0)
        return "verified";
    return st->ranges_verified > 0 ? "partial" : "not verified";
}

/* The summary lines about verification. */
static void report_verification(struct copy_cli *cc, const struct copy_plan *plan,
                                const struct bk_copy_stats *st)
{
    size_t n = bk_bmap_range_count(plan->bmap);
    const char *why = !plan->no_verify ? "the bmap has no checksum for them"
                      : bmap_unverifiable(plan->bmap)
                          ? "--no-verify; the bmap has no range checksums"
                          : "--no-verify";
    if (st->ranges_unchecked > 0 && st->ranges_verified == 0) {
        progress_warning(cc->progress, "not verified: none of the %zu range(s) was checked (%s)", n,
                         why);
        return;
    }
    cli_info("verified %zu of %zu range(s)", st->ranges_verified, n);
    if (st->ranges_unchecked)
        progress_warning(cc->progress, "%zu range(s) were not verified (%s)", st->ranges_unchecked,
                         why);
}

/* The summary line of --skip-unchanged: what DEST held already. */
static void report_unchanged(const struct copy_plan *plan, const struct bk_copy_stats *st)
{
    char s[32], m[32], c[32];
    cli_info("unchanged on %s: %zu of %zu range(s) skipped, %s of %s mapped not written (%s "
             "read to compare)",
             plan->dest_path, st->ranges_skipped, bk_bmap_range_count(plan->bmap),
             cli_human_bytes(st->bytes_skipped, s, sizeof s),
             cli_human_bytes(st->bytes_total, m, sizeof m),
             cli_human_bytes(st->bytes_compared, c, sizeof c));
}

/* Copy into the open DEST; returns 0 or -1 with ERR filled, and the statistics. */
static int run_job(struct copy_cli *cc, const struct copy_plan *plan, struct bk_dest *dest,
                   struct bk_copy_stats *stats, struct bk_error *err)
{
    struct bk_copy *job = bk_copy_new(plan->bmap, plan->src, dest, err);
    if (!job)
        return -1;
    bk_copy_set_verify(job, !plan->no_verify);
    bk_copy_set_readback(job, plan->readback, plan->readback_retries);
    bk_copy_set_skip_unchanged(job, plan->skip_unchanged);
    bk_copy_set_progress_fn(job, on_progress, cc);
    bk_copy_set_verified_fn(job, on_range, cc);
    bk_copy_set_readback_mismatch_fn(job, on_readback_mismatch, cc);
    bk_copy_set_cancel_fn(job, cli_cancel_requested, NULL);
    if (copy_apply_extras(job, plan, err) < 0) {
        bk_copy_free(job);
        return -1;
    }
    cli_info("copying %s to %s%s%s", plan->image, plan->dest_path,
             plan->bmap_path ? " using bmap " : "",
             plan->bmap_path ? plan->bmap_path : " without a bmap");
    int rc = bk_copy_run(job, err);
    *stats = *bk_copy_get_stats(job);
    bk_copy_free(job);
    return rc;
}

/* The lines and the event that say how it went. */
static int report(struct copy_cli *cc, const struct copy_plan *plan, int rc,
                  const struct bk_copy_stats *st, const struct bk_error *err, bool dest_opened,
                  double elapsed)
{
    int status = EXIT_OK;
    if (rc < 0) {
        char state[PATH_MAX + 200], msg[BK_ERROR_MSG_MAX + 512];
        copy_describe_state(st, plan->dest_path, dest_opened, state, sizeof state);
        status = cli_final_status(cli_exit_status(err));
        /* Opening a disk may be refused for lack of rights, which the hint explains. */
        snprintf(msg, sizeof msg, "%s%s", cli_message(err),
                 dest_opened ? cli_hint(err) : cli_dest_hint(err, plan->dest_path));
        cli_error_code(err->code, "%s%s", msg, state);
        progress_error(cc->progress, bk_code_name(err->code), msg, status);
    } else {
        char a[32], r[32];
        uint64_t rate = elapsed > 0 ? (uint64_t)((double)st->bytes_written / elapsed) : 0;
        cli_info("wrote %s to %s in %.2f s (%s/s)", cli_human_bytes(st->bytes_written, a, sizeof a),
                 plan->dest_path, elapsed, cli_human_bytes(rate, r, sizeof r));
        if (plan->skip_unchanged)
            report_unchanged(plan, st);
        if (plan->src && cli_is_net_url(plan->image)) {
            uint64_t got = bk_source_fetched(plan->src);
            uint64_t net = elapsed > 0 ? (uint64_t)((double)got / elapsed) : 0;
            cli_info("fetched %s from the network (%s/s)", cli_human_bytes(got, a, sizeof a),
                     cli_human_bytes(net, r, sizeof r));
        }
        if (plan->bmap)
            report_verification(cc, plan, st);
        if (plan->readback)
            cli_info("read back %zu range(s) from %s: all match", st->readback_checked,
                     plan->dest_path);
        status = copy_report_extras(cc->progress, plan, st);
    }
    progress_done(cc->progress, status, st, elapsed, verification(plan, status, st));
    return status;
}

int copy_execute(struct copy_plan *plan)
{
    struct copy_cli cc = {.progress = copy_progress(), .dest_path = plan->dest_path};
    /* Normally opened by copy_resolve, so that its failures are events too. */
    if (!cc.progress->open && progress_open(cc.progress, cli.quiet, plan->json, plan->psplash) < 0)
        return EXIT_ERROR;
    int64_t src_size = bk_source_size(plan->src);
    uint64_t image_size = plan->bmap      ? bk_bmap_image_size(plan->bmap)
                          : src_size >= 0 ? (uint64_t)src_size
                                          : 0;
    announce(&cc, plan, image_size);
    if (copy_check_extras(plan, image_size) != EXIT_OK) {
        progress_error(cc.progress, bk_code_name(BK_E_INVALID), "forced range past the image",
                       EXIT_ERROR);
        progress_done(cc.progress, EXIT_ERROR, &(struct bk_copy_stats){0}, 0, "not verified");
        progress_close(cc.progress);
        return EXIT_ERROR;
    }
    plan->dopts.warn = on_warning;
    plan->dopts.warn_ctx = &cc;

    struct bk_copy_stats stats = {0};
    struct bk_error err;
    bk_error_clear(&err);
    double t0 = cli_now();
    struct bk_dest *dest = plan->open_dest
                               ? plan->open_dest(plan, image_size, &err)
                               : bk_dest_open(plan->dest_path, image_size, &plan->dopts, &err);
    int rc = dest ? run_job(&cc, plan, dest, &stats, &err) : -1;
    double elapsed = cli_now() - t0;
    /* Closing restores the device settings; a warning from that still reaches the events. */
    bk_dest_close(dest);
    progress_clear(cc.progress);
    int status = report(&cc, plan, rc, &stats, &err, dest != NULL, elapsed);
    progress_close(cc.progress);
    return status;
}
