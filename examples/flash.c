/* SPDX-License-Identifier: MIT */
/*
 * flash: write a disk image to a disk or a file with its bmap, verified, through the
 * public API of libbmapkit alone. It is the long form of the README's example and is
 * meant to be read next to bmapkit(3). Build it with
 *
 *     cc flash.c $(pkg-config --cflags --libs bmapkit) -o flash
 *
 * Usage: flash [-b BMAP] [-n] [-r] [-f] [-R] IMAGE DEST
 * Exit status as the bmapkit command's: 0 done, 1 error, 2 usage, 3 data did not
 * verify, 4 interrupted.
 */
#define _POSIX_C_SOURCE 200809L

#include <bmapkit/bmapkit.h>

#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { EXIT_USAGE = 2, EXIT_VERIFY = 3, EXIT_INTERRUPTED = 4 };

/* Rewrites of a range that reads back wrong, with -r. */
#define READBACK_RETRIES 2

struct settings {
    const char *image;
    const char *dest;
    const char *bmap; /* NULL: look for it next to the image */
    bool verify;
    bool readback;
    bool force;
    bool removable_only;
};

/* Everything the flash holds, released in one place whatever failed. */
struct flash {
    char bmap_path[4096];
    struct bk_bmap *bmap;
    struct bk_source *src;
    struct bk_dest *dest;
    struct bk_copy *job;
    int last_step; /* last tenth of the copy reported, -1 before the first */
};

/* Set by the signal handler, read by the copy's threads: a lock-free atomic is safe for both. */
static atomic_bool stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_requested, true);
}

/* The copy asks this now and then, from any of its threads. */
static bool should_stop(void *ctx)
{
    (void)ctx;
    return atomic_load(&stop_requested);
}

/* One line at 0 %, at each further tenth and at the end; the library calls this often. */
static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct flash *f = ctx;
    int step = total ? (int)((double)done * 10.0 / (double)total) : 0;
    if (step <= f->last_step)
        return;
    f->last_step = step;
    fprintf(stderr, "flash: %3d%% (%" PRIu64 " of %" PRIu64 " bytes)\n", step * 10, done, total);
}

static void on_warning(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "flash: warning: %s\n", msg);
}

static int usage(FILE *out, int status)
{
    fprintf(out, "usage: flash [-b BMAP] [-n] [-r] [-f] [-R] IMAGE DEST\n"
                 "  -b BMAP  the bmap (default: found next to IMAGE; needed when IMAGE is -)\n"
                 "  -n       do not verify the ranges against their checksums\n"
                 "  -r       read every range back from DEST afterwards\n"
                 "  -f       accept a disk whose partitions are mounted or in use\n"
                 "  -R       accept only a removable whole disk\n");
    return status;
}

static int parse_args(int argc, char **argv, struct settings *s)
{
    *s = (struct settings){.verify = true};
    int opt;
    while ((opt = getopt(argc, argv, "b:nrfRh")) != -1) {
        switch (opt) {
        case 'b':
            s->bmap = optarg;
            break;
        case 'n':
            s->verify = false;
            break;
        case 'r':
            s->readback = true;
            break;
        case 'f':
            s->force = true;
            break;
        case 'R':
            s->removable_only = true;
            break;
        case 'h':
            exit(usage(stdout, EXIT_SUCCESS));
        default:
            return usage(stderr, EXIT_USAGE);
        }
    }
    if (argc - optind != 2)
        return usage(stderr, EXIT_USAGE);
    s->image = argv[optind];
    s->dest = argv[optind + 1];
    return 0;
}

/* The bmap, given or found next to the image, and the image it describes. */
static int open_inputs(struct flash *f, const struct settings *s, struct bk_error *err)
{
    if (s->bmap) {
        int n = snprintf(f->bmap_path, sizeof f->bmap_path, "%s", s->bmap);
        if (n < 0 || (size_t)n >= sizeof f->bmap_path)
            return bk_error_set(err, BK_E_INVALID, 0, "bmap path %.40s... is too long", s->bmap);
    } else if (bk_bmap_find(s->image, f->bmap_path, sizeof f->bmap_path, err) < 0) {
        return -1;
    }
    f->bmap = bk_bmap_parse_file(f->bmap_path, err);
    if (!f->bmap)
        return -1;
    /* Refuse a bmap that cannot be verified before anything is opened for writing. */
    if (bk_copy_check_verifiable(f->bmap, s->verify, s->readback, err) < 0)
        return bk_error_prefix(err, "bmap %s", f->bmap_path);

    enum bk_format format;
    f->src = bk_source_open_image(s->image, &format, err);
    if (!f->src || bk_copy_check_source(f->bmap, f->src, err) < 0)
        return -1;
    printf("%s (%s): %" PRIu64 " of %" PRIu64 " bytes mapped in %zu ranges (bmap %s)\n",
           bk_source_name(f->src), bk_format_name(format), bk_bmap_mapped_bytes(f->bmap),
           bk_bmap_image_size(f->bmap), bk_bmap_range_count(f->bmap), f->bmap_path);
    return 0;
}

/* The destination, after the library's safety checks; it must not destroy an input. */
static int open_dest(struct flash *f, const struct settings *s, struct bk_error *err)
{
    struct bk_dest_input inputs[2];
    if (strcmp(s->image, "-") == 0)
        inputs[0] = (struct bk_dest_input){.what = "image on standard input", .fd = 0};
    else
        inputs[0] = (struct bk_dest_input){.what = "image", .path = s->image, .fd = -1};
    inputs[1] = (struct bk_dest_input){.what = "bmap", .path = f->bmap_path, .fd = -1};

    struct bk_dest_options opts;
    bk_dest_options_init(&opts);
    opts.force = s->force;
    opts.removable_only = s->removable_only;
    opts.warn = on_warning;
    opts.inputs = inputs;
    opts.n_inputs = sizeof inputs / sizeof inputs[0];
    f->dest = bk_dest_open(s->dest, bk_bmap_image_size(f->bmap), &opts, err);
    return f->dest ? 0 : -1;
}

static int run_copy(struct flash *f, const struct settings *s, struct bk_error *err)
{
    f->job = bk_copy_new(f->bmap, f->src, f->dest, err);
    if (!f->job)
        return -1;
    bk_copy_set_verify(f->job, s->verify);
    bk_copy_set_readback(f->job, s->readback, READBACK_RETRIES);
    bk_copy_set_progress_fn(f->job, on_progress, f);
    bk_copy_set_cancel_fn(f->job, should_stop, NULL);

    /* Ctrl-C stops the copy cleanly: the image's first MiB is then never written. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (bk_copy_run(f->job, err) < 0)
        return -1;
    const struct bk_copy_stats *st = bk_copy_get_stats(f->job);
    printf("%" PRIu64 " bytes written to %s (%s), %zu ranges verified, %zu not verified\n",
           st->bytes_written, bk_dest_name(f->dest), bk_dest_kind(f->dest), st->ranges_verified,
           st->ranges_unchecked);
    if (s->readback)
        printf("%zu ranges read back from %s and matched\n", st->readback_checked,
               bk_dest_name(f->dest));
    return 0;
}

/* What a failed copy left on the destination, for the end of the error line. */
static const char *dest_state(const struct flash *f)
{
    if (!f->job)
        return f->dest ? "; nothing was written" : "";
    const struct bk_copy_stats *st = bk_copy_get_stats(f->job);
    if (st->head_written)
        return "; the destination may hold the image's first MiB: do not boot from it";
    if (st->bytes_written > 0)
        return "; the destination holds an incomplete copy without the image's first MiB";
    return "; nothing was written";
}

static int exit_status(const struct bk_error *err)
{
    switch (err->code) {
    case BK_E_VERIFY:
        return EXIT_VERIFY;
    case BK_E_CANCELLED:
        return EXIT_INTERRUPTED;
    default:
        return EXIT_FAILURE;
    }
}

int main(int argc, char **argv)
{
    struct settings s;
    int rc = parse_args(argc, argv, &s);
    if (rc != 0)
        return rc;

    struct flash f = {.last_step = -1};
    struct bk_error err;
    bk_error_clear(&err);
    int status = EXIT_SUCCESS;
    if (open_inputs(&f, &s, &err) < 0 || open_dest(&f, &s, &err) < 0 ||
        run_copy(&f, &s, &err) < 0) {
        /* The message names what failed and where; the code's name classifies it. */
        fprintf(stderr, "flash: %s [%s]%s\n", err.msg, bk_code_name(err.code), dest_state(&f));
        status = exit_status(&err);
    }
    /* The job borrows the others: free it first. Closing DEST restores its settings. */
    bk_copy_free(f.job);
    bk_dest_close(f.dest);
    bk_source_close(f.src);
    bk_bmap_free(f.bmap);
    return status;
}
