/* SPDX-License-Identifier: MIT */
/*
 * bmapkit copy in three steps: the command line (cmd_copy.c), the plan resolved from it
 * with every check that does not touch the destination (copy_plan.c), and the run that
 * opens the destination, copies and reports (copy_run.c).
 */
#ifndef BMAPKIT_COPY_PLAN_H
#define BMAPKIT_COPY_PLAN_H

#include <limits.h>
#include <stdbool.h>

#include "bmapkit/bmapkit.h"

/* How many --force-range options a copy takes. */
#define COPY_FORCED_MAX 64

/* One --force-range: bytes [start, start + length) of the image. */
struct copy_forced_range {
    uint64_t start, length;
    const char *text; /* as given */
};

struct copy_plan {
    /* From the command line. */
    const char *image;     /* a path, or "-" */
    const char *dest_path; /* as given; the UMS disk's node once found */
    const char *bmap_path; /* --bmap, or the one found next to the image */
    bool nobmap;
    const char *psplash;
    const char *json;
    bool ums; /* the board's UMS disk instead of a DEST path */
    const char *ums_selector;
    unsigned ums_timeout;
    bool no_verify;
    const char *bmap_sig;    /* --bmap-sig */
    const char *keyring;     /* --keyring */
    const char *fingerprint; /* --fingerprint */
    bool no_sig_verify;
    bool readback;
    unsigned readback_retries;
    bool skip_unchanged; /* --skip-unchanged */
    struct bk_dest_options dopts;
    /* --zero-unmapped, --relocate-gpt, --force-range. */
    bool zero_unmapped;
    bool relocate_gpt;
    struct copy_forced_range forced[COPY_FORCED_MAX];
    size_t n_forced;
    struct bk_fetch_options fetch; /* how URLs are fetched: image, bmap, signature */
    /* Every DEST of the command line (dest_path is the first), or one per UMS disk of
       ums:all once found; more than one goes through copy_many.c. */
    const char **dest_paths;
    size_t dest_count;
    bool ums_all;                   /* ums:all[=N], --ums=all[=N] */
    unsigned ums_wait_for;          /* N: disks to wait for (0: those present, at least one) */
    struct bk_disk_info *ums_disks; /* ums:all: the disks found, dest_count of them */
    char (*ums_paths)[PATH_MAX];    /* ums:all: their nodes */

    /* Resolved. */
    char found[PATH_MAX];
    struct bk_bmap *bmap; /* NULL with --nobmap */
    struct bk_source *src;
    enum bk_format format;
    struct bk_disk_info ums_disk;
    char ums_path[PATH_MAX];
    char sig_found[PATH_MAX];
    const char *sig_path;                 /* the detached signature checked, or NULL */
    bool sig_verified;                    /* the bmap's signature was checked and good */
    struct bk_signature_result signature; /* who signed it, when verified */
    struct bk_dest_input inputs[3];       /* what the destination must not destroy */

    /* Over ssh (remote*.c): the program of the other host (--remote-bmapkit), and there,
       the bytes of standard input that hold the bmap before the image (--bmap-from-stdin). */
    const char *remote_bmapkit;
    unsigned bmap_from_stdin;
    /* Opens the destination instead of bk_dest_open(dest_path), when set. */
    struct bk_dest *(*open_dest)(struct copy_plan *plan, uint64_t image_size, struct bk_error *err);
    void *open_dest_ctx;
};

/* Parse ARGV into PLAN. Returns CLI_CONTINUE, or the exit status after printing. */
int copy_parse(int argc, char **argv, struct copy_plan *plan);

/*
 * Find and parse the bmap, open the image, check they belong together, name them to
 * the destination checks as inputs not to destroy, and wait for the UMS disk. Returns
 * EXIT_OK, or the exit status after printing the error.
 */
int copy_resolve(struct copy_plan *plan);

/*
 * Read and parse PLAN's bmap, checking its OpenPGP signature when it has one (see
 * copy_sig.c). Returns EXIT_OK, or the exit status after printing the error.
 */
int copy_load_bmap(struct copy_plan *plan);

/*
 * --force-range, --zero-unmapped and --relocate-gpt (copy_extras.c): parse one RANGE
 * into PLAN; check the ranges against the image before the destination is opened (the
 * exit status after the error line); hand them to JOB; and the summary's lines, whose
 * exit status is not EXIT_OK when --relocate-gpt could not do its part.
 */
struct progress;
int copy_parse_force_range(const char *arg, struct copy_plan *plan);
int copy_check_extras(const struct copy_plan *plan, uint64_t image_size);
int copy_apply_extras(struct bk_copy *job, const struct copy_plan *plan, struct bk_error *err);
int copy_report_extras(struct progress *progress, const struct copy_plan *plan,
                       const struct bk_copy_stats *st);

/* Open the destination, copy, report. Returns the exit status. */
int copy_execute(struct copy_plan *plan);

/*
 * The same for several destinations (copy_many.c): all are opened, with every check,
 * before anything is written; one refused is left alone and the others are written.
 * Returns the exit status.
 */
int copy_execute_many(struct copy_plan *plan);

/* Refuse a destination named twice, or two that share storage (copy_many.c). Returns
   EXIT_OK or the status. */
int copy_check_distinct(const struct copy_plan *plan);

/* What copy_execute and copy_execute_many share (copy_run.c). */
void copy_describe_state(const struct bk_copy_stats *st, const char *dest, bool dest_opened,
                         char *buf, size_t cap);

struct progress;

/*
 * The start event of PLAN's copy to DEST (as it is named to the user) of an image of
 * IMAGE_SIZE bytes; the events' clock starts at it.
 */
void copy_announce(struct progress *progress, const struct copy_plan *plan, const char *dest,
                   uint64_t image_size);

/* Release what copy_resolve opened. */
void copy_plan_free(struct copy_plan *plan);

#endif
