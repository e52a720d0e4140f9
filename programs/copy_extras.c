/* SPDX-License-Identifier: MIT */
/*
 * bmapkit copy beyond the bmap: --force-range, --zero-unmapped and --relocate-gpt, from
 * the command line to the job and into the summary.
 */
#include "copy_plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "progress.h"

/* A number of bytes: decimal or 0x hexadecimal, with K, M, G or T (powers of 1024). */
static int parse_bytes(const char *s, const char **end, uint64_t *out)
{
    if (!(*s >= '0' && *s <= '9'))
        return -1;
    bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    char *e;
    errno = 0;
    uint64_t v = strtoull(s, &e, hex ? 16 : 10);
    if (errno || e == s + (hex ? 2 : 0))
        return -1;
    unsigned shift = 0;
    const char *units = "KMGT";
    const char *u = *e ? strchr(units, *e) : NULL;
    if (u) {
        shift = 10 * (unsigned)(u - units + 1);
        e++;
        if (e[0] == 'i' && e[1] == 'B')
            e += 2;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = v << shift;
    *end = e;
    return 0;
}

int copy_parse_force_range(const char *arg, struct copy_plan *plan)
{
    if (plan->n_forced == COPY_FORCED_MAX)
        return cli_usage_error("copy", "--force-range is accepted at most %d times",
                               COPY_FORCED_MAX);
    const char *e;
    uint64_t start, second;
    bool ok = parse_bytes(arg, &e, &start) == 0 && (*e == '-' || *e == '+');
    char sep = ok ? *e : 0;
    ok = ok && parse_bytes(e + 1, &e, &second) == 0 && *e == '\0';
    uint64_t len = sep == '-' ? second - start : second;
    if (!ok || (sep == '-' && second <= start) || (sep == '+' && second == 0) ||
        start + len < start)
        return cli_usage_error("copy",
                               "--force-range '%s' is not START-END or START+LENGTH in bytes (K, "
                               "M, G, T for KiB ... TiB, 0x for hexadecimal), END above START",
                               arg);
    plan->forced[plan->n_forced++] = (struct copy_forced_range){start, len, arg};
    return CLI_CONTINUE;
}

int copy_check_extras(const struct copy_plan *plan, uint64_t image_size)
{
    for (size_t i = 0; plan->bmap && i < plan->n_forced; i++) {
        const struct copy_forced_range *r = &plan->forced[i];
        if (r->start + r->length > image_size) {
            cli_error_code(BK_E_INVALID,
                           "--force-range %s: bytes %" PRIu64 "-%" PRIu64
                           " reach past the end of the image (%" PRIu64 " bytes)",
                           r->text, r->start, r->start + r->length - 1, image_size);
            return EXIT_ERROR;
        }
    }
    return EXIT_OK;
}

int copy_apply_extras(struct bk_copy *job, const struct copy_plan *plan, struct bk_error *err)
{
    for (size_t i = 0; i < plan->n_forced; i++)
        if (bk_copy_add_forced_range(job, plan->forced[i].start, plan->forced[i].length, err) < 0)
            return -1;
    bk_copy_set_zero_unmapped(job, plan->zero_unmapped);
    bk_copy_set_relocate_gpt(job, plan->relocate_gpt);
    return 0;
}

/* What --relocate-gpt did, or the hint that it would help; the status of the command. */
static int report_gpt(struct progress *progress, const struct copy_plan *plan,
                      const struct bk_copy_stats *st)
{
    enum bk_copy_gpt g = st->gpt;
    if (!plan->relocate_gpt) {
        if (g == BK_COPY_GPT_MOVABLE)
            cli_info("note: %s; --relocate-gpt moves it there", st->gpt_note);
        return EXIT_OK;
    }
    if (g == BK_COPY_GPT_MOVED || g == BK_COPY_GPT_AT_END) {
        cli_info("%s", st->gpt_note);
        return EXIT_OK;
    }
    char msg[sizeof st->gpt_note + PATH_MAX + 96];
    snprintf(msg, sizeof msg, "%s: GPT not relocated: %s; the image itself was written as it is",
             plan->dest_path, g == BK_COPY_GPT_UNCHECKED ? "it was not looked at" : st->gpt_note);
    cli_error_code(BK_E_UNSUPPORTED, "%s", msg);
    progress_error(progress, bk_code_name(BK_E_UNSUPPORTED), msg, EXIT_ERROR);
    return EXIT_ERROR;
}

int copy_report_extras(struct progress *progress, const struct copy_plan *plan,
                       const struct bk_copy_stats *st)
{
    char a[32], b[32], c[32], d[32];
    if (st->ranges_forced > 0)
        cli_info("wrote %s the bmap leaves out, in %zu forced range(s)%s",
                 cli_human_bytes(st->forced_bytes, a, sizeof a), st->ranges_forced,
                 plan->readback ? ", read back and checked" : " (not verified without --readback)");
    if (plan->zero_unmapped && plan->bmap)
        cli_info("unmapped space reads as zeros on %s: %s, of which %s released (holes or "
                 "unmapped blocks), %s zeroed by the device, %s written as zeros",
                 plan->dest_path, cli_human_bytes(st->zeroed_bytes, a, sizeof a),
                 cli_human_bytes(st->zeroed_released, b, sizeof b),
                 cli_human_bytes(st->zeroed_offloaded, c, sizeof c),
                 cli_human_bytes(st->zeroed_written, d, sizeof d));
    return report_gpt(progress, plan, st);
}
