/* SPDX-License-Identifier: MIT */
/* bmapkit copy: write an image to a file or block device using its bmap, verified. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bmapkit/bmapkit.h"
#include "disk_select.h"
#include "progress.h"

static void copy_help(void)
{
    printf("Usage: bmapkit copy [--bmap BMAP | --nobmap] [OPTIONS] IMAGE DEST\n"
           "       bmapkit copy [OPTIONS] --ums[=SELECTOR] [--wait SECONDS] IMAGE\n"
           "\n"
           "Write IMAGE to DEST (a block device or a file), only the blocks its bmap lists,\n"
           "checking each range against its checksum. IMAGE may be '-' for standard input,\n"
           "and may be compressed (gzip, bzip2, xz, zstd, lz4, lzop) or the first file of a\n"
           "tar or zip archive: it is decoded here, the format told by its content.\n"
           "DEST 'ums' (or 'ums:SELECTOR') is the disk of a board running U-Boot's 'ums'\n"
           "command, like --ums; write ./ums for a file of that name.\n"
           "Without --bmap the bmap is looked for next to IMAGE (IMAGE.bmap, then with one\n"
           "extension after another removed).\n"
           "\n"
           "Options:\n"
           "      --bmap BMAP          use this bmap file\n"
           "      --nobmap             copy the whole image, without a bmap\n"
           "      --no-verify          do not check range checksums (the bmap's own checksum\n"
           "                           is still checked)\n"
           "      --removable-device   accept only a removable whole disk as DEST\n"
           "      --psplash-pipe PIPE  write 'PROGRESS n' lines to the psplash FIFO PIPE\n"
           "      --readback           after writing, read every range back from DEST,\n"
           "                           bypassing the page cache, and check it\n"
           "      --readback-retries N rewrite a range that reads back wrong up to N times\n"
           "      --force              write to a disk even though one of its partitions is\n"
           "                           mounted or in use\n"
           "      --no-tune            leave the block device's I/O settings alone\n"
           "      --ums[=SELECTOR]     write to the U-Boot UMS disk (vendor Linux, model\n"
           "                           'UMS disk N'); SELECTOR picks one of several by LUN,\n"
           "                           serial or USB port path (e.g. 0, 1-2.3); its identity\n"
           "                           is printed before anything is written\n"
           "      --wait SECONDS       wait this long for the UMS disk to appear (default\n"
           "                           60, 0: do not wait)\n"
           "      --json-events FILE   write JSON-lines events to FILE ('-': standard output)\n"
           "  -q, --quiet              print only warnings and errors\n"
           "  -d, --debug              print debugging messages\n"
           "  -h, --help               print this help and exit\n"
           "\n"
           "The first MiB of the image (partition table, boot code) is written last, after\n"
           "everything else was written, verified and flushed.\n"
           "Exit status: 0 done and verified, 1 error, 2 usage, 3 data did not verify,\n"
           "4 interrupted.\n");
}

struct copy_cli {
    struct progress progress;
    const char *dest_path;
};

static void on_warning(void *ctx, const char *msg)
{
    struct copy_cli *c = ctx;
    char q[1024];
    progress_clear(&c->progress);
    cli_warning("%s", msg);
    json_quote(q, sizeof q, msg);
    progress_event(&c->progress, "warning", "\"message\":%s", q);
}

static void copy_warning(struct copy_cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void copy_warning(struct copy_cli *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    on_warning(c, msg);
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct copy_cli *c = ctx;
    progress_update(&c->progress, done, total);
}

static void on_range(void *ctx, size_t index, const struct bk_range *r)
{
    struct copy_cli *c = ctx;
    progress_event(&c->progress, "range",
                   "\"index\":%zu,\"first\":%" PRIu64 ",\"last\":%" PRIu64
                   ",\"status\":\"verified\"",
                   index, r->first, r->last);
}

static void on_readback_mismatch(void *ctx, size_t index, const struct bk_range *r,
                                 unsigned attempt)
{
    struct copy_cli *c = ctx;
    progress_clear(&c->progress);
    cli_warning("read-back of %s: blocks %" PRIu64 "-%" PRIu64 " differ (attempt %u)", c->dest_path,
                r->first, r->last, attempt);
    progress_event(&c->progress, "range",
                   "\"index\":%zu,\"first\":%" PRIu64 ",\"last\":%" PRIu64
                   ",\"status\":\"readback-mismatch\",\"attempt\":%u",
                   index, r->first, r->last, attempt);
}

/* What state DEST was left in after a failed copy, as the tail of the error line. */
static void describe_state(const struct bk_copy_stats *st, const char *dest, bool dest_opened,
                           char *buf, size_t cap)
{
    char a[32];
    buf[0] = '\0';
    if (!dest_opened || st->head_written)
        return;
    if (st->bytes_written == 0)
        snprintf(buf, cap, "; nothing was written to %s", dest);
    else
        snprintf(buf, cap,
                 "; %s holds an incomplete copy (%s written) without the image's first MiB, "
                 "so it does not look like a valid image",
                 dest, cli_human_bytes(st->bytes_written, a, sizeof a));
}

int cmd_copy(int argc, char **argv)
{
    enum {
        OPT_BMAP = 256,
        OPT_NOBMAP,
        OPT_NO_VERIFY,
        OPT_REMOVABLE,
        OPT_PSPLASH,
        OPT_READBACK,
        OPT_RETRIES,
        OPT_FORCE,
        OPT_NO_TUNE,
        OPT_JSON,
        OPT_SIG,
        OPT_NO_SIG,
        OPT_UMS,
        OPT_WAIT,
    };
    static const struct option longopts[] = {
        {"bmap", required_argument, NULL, OPT_BMAP},
        {"nobmap", no_argument, NULL, OPT_NOBMAP},
        {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
        {"removable-device", no_argument, NULL, OPT_REMOVABLE},
        {"psplash-pipe", required_argument, NULL, OPT_PSPLASH},
        {"readback", no_argument, NULL, OPT_READBACK},
        {"readback-retries", required_argument, NULL, OPT_RETRIES},
        {"force", no_argument, NULL, OPT_FORCE},
        {"no-tune", no_argument, NULL, OPT_NO_TUNE},
        {"json-events", required_argument, NULL, OPT_JSON},
        {"bmap-sig", required_argument, NULL, OPT_SIG},
        {"keyring", required_argument, NULL, OPT_SIG},
        {"fingerprint", required_argument, NULL, OPT_SIG},
        {"no-sig-verify", no_argument, NULL, OPT_NO_SIG},
        {"ums", optional_argument, NULL, OPT_UMS},
        {"wait", required_argument, NULL, OPT_WAIT},
        {"quiet", no_argument, NULL, 'q'},
        {"debug", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *bmap_path = NULL, *psplash = NULL, *json = NULL;
    bool nobmap = false;
    /* The board's UMS disk instead of a DEST path: its selector (NULL: any) and wait. */
    bool ums = false, wait_given = false;
    const char *ums_selector = NULL;
    unsigned ums_timeout = 60;
    struct bk_dest_options dopts = {.sysroot = getenv("BMAPKIT_SYSROOT")};
    struct bk_copy_options copts = {.cancel = &cli_interrupted};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qdh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_BMAP:
            bmap_path = optarg;
            break;
        case OPT_NOBMAP:
            nobmap = true;
            break;
        case OPT_NO_VERIFY:
            copts.no_verify = true;
            break;
        case OPT_REMOVABLE:
            dopts.removable_only = true;
            break;
        case OPT_PSPLASH:
            psplash = optarg;
            break;
        case OPT_READBACK:
            copts.readback = true;
            break;
        case OPT_RETRIES:
            if (cli_parse_uint(optarg, 0, 100, &copts.readback_retries) < 0)
                return cli_usage_error("copy", "--readback-retries takes a number from 0 to 100");
            copts.readback = true;
            break;
        case OPT_FORCE:
            dopts.force = true;
            break;
        case OPT_NO_TUNE:
            dopts.no_tune = true;
            break;
        case OPT_JSON:
            json = optarg;
            break;
        case OPT_SIG:
            cli_error("OpenPGP signature checking (--bmap-sig, --keyring, --fingerprint) is "
                      "not supported yet");
            return EXIT_ERROR;
        case OPT_NO_SIG:
            break;
        case OPT_UMS:
            ums = true;
            ums_selector = optarg && optarg[0] ? optarg : NULL;
            break;
        case OPT_WAIT:
            if (cli_parse_uint(optarg, 0, 86400, &ums_timeout) < 0)
                return cli_usage_error("copy", "--wait takes a number of seconds from 0 to 86400");
            wait_given = true;
            break;
        default: {
            int rc = cli_common_option(c, "copy", argv, longopts, copy_help);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
        }
    }
    if (ums && argc - optind == 2)
        return cli_usage_error("copy", "--ums replaces DEST; give only the IMAGE");
    const int npos = ums ? 1 : 2;
    if (argc - optind < npos)
        return cli_usage_error("copy",
                               ums ? "copy needs an IMAGE" : "copy needs an IMAGE and a DEST");
    if (argc - optind > npos)
        return cli_usage_error("copy", "unexpected argument '%s'", argv[optind + npos]);
    if (!ums &&
        (strcmp(argv[optind + 1], "ums") == 0 || strncmp(argv[optind + 1], "ums:", 4) == 0)) {
        ums = true;
        ums_selector =
            argv[optind + 1][3] == ':' && argv[optind + 1][4] ? argv[optind + 1] + 4 : NULL;
    }
    if (wait_given && !ums)
        return cli_usage_error("copy", "--wait applies only to a UMS destination (--ums or "
                                       "DEST ums)");
    if (bmap_path && nobmap)
        return cli_usage_error("copy", "--bmap and --nobmap exclude each other");
    if (nobmap && copts.readback)
        return cli_usage_error("copy", "--readback checks the bmap's range checksums, so it "
                                       "cannot be used with --nobmap");
    const char *image = argv[optind], *dest_path = ums ? "ums" : argv[optind + 1];

    struct bk_error err;
    bk_error_clear(&err);

    /* Everything that can be checked without touching DEST is checked first. */
    char found[PATH_MAX];
    if (!bmap_path && !nobmap) {
        if (strcmp(image, "-") == 0) {
            cli_error("an image read from standard input needs --bmap BMAP (or --nobmap to "
                      "copy all of it)");
            return EXIT_ERROR;
        }
        if (bk_bmap_find(image, found, sizeof found) < 0) {
            cli_error("no bmap found for %s (looked for %s.bmap and names with extensions "
                      "removed); give one with --bmap, or use --nobmap to copy the whole image",
                      image, image);
            return EXIT_ERROR;
        }
        bmap_path = found;
        cli_debug("using bmap %s", bmap_path);
    }
    if (bmap_path && strcmp(image, "-") != 0) {
        struct stat a, b;
        if (stat(bmap_path, &a) == 0 && stat(image, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            cli_error("the bmap %s is the image itself", bmap_path);
            return EXIT_ERROR;
        }
    }

    struct bk_bmap bmap;
    bk_bmap_init(&bmap);
    if (bmap_path && bk_bmap_parse_file(bmap_path, &bmap, &err) < 0)
        return cli_fail(&err);
    if (bmap_path && !bmap.has_file_checksum && bmap.version_major == 1 && bmap.version_minor < 3)
        cli_debug("bmap version %u.%u has no checksum of its own", bmap.version_major,
                  bmap.version_minor);

    enum bk_format format = BK_FORMAT_RAW;
    struct bk_source *src = bk_source_open_image(image, &format, &err);
    if (!src) {
        bk_bmap_free(&bmap);
        return cli_fail(&err);
    }
    cli_debug("image format: %s", bk_format_name(format));
    if (!ums && strcmp(image, "-") != 0) {
        struct stat a, b;
        if (stat(dest_path, &a) == 0 && stat(image, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            cli_error("destination %s is the image itself", dest_path);
            bk_source_close(src);
            bk_bmap_free(&bmap);
            return EXIT_ERROR;
        }
    }
    if (bmap_path && bk_copy_check_source(&bmap, src, &err) < 0) {
        bk_source_close(src);
        bk_bmap_free(&bmap);
        return cli_fail(&err);
    }

    /*
     * The UMS disk is looked for only once the image and bmap passed their checks, so the
     * user starts 'ums' on the board with nothing left to go wrong on this side. The disk
     * found then goes through bk_dest_open's checks like any DEST. Under BMAPKIT_SYSROOT
     * (a fake tree for tests) the destination is SYSROOT/dev/NAME: a regular file there
     * receives the image as a file, without the block-device checks.
     */
    struct bk_disk_info ums_disk;
    char ums_path[PATH_MAX];
    if (ums) {
        int rc = ums_wait(dopts.sysroot, ums_selector, ums_timeout, &ums_disk);
        if (rc != EXIT_OK) {
            bk_source_close(src);
            bk_bmap_free(&bmap);
            return rc;
        }
        char id[1024];
        disk_identity(&ums_disk, id, sizeof id);
        cli_info("U-Boot UMS disk (LUN %d) %s", ums_disk.ums_lun, id);
        snprintf(ums_path, sizeof ums_path, "%s/dev/%s", dopts.sysroot ? dopts.sysroot : "",
                 ums_disk.name);
        dest_path = ums_path;
    }

    struct copy_cli cc = {.dest_path = dest_path};
    if (progress_open(&cc.progress, cli.quiet, json, psplash) < 0) {
        bk_source_close(src);
        bk_bmap_free(&bmap);
        return EXIT_ERROR;
    }
    if (bmap_path && bmap.hash == BK_HASH_NONE && !copts.no_verify)
        copy_warning(&cc,
                     "bmap %s has no range checksums (version %u.%u): the data cannot be "
                     "verified",
                     bmap_path, bmap.version_major, bmap.version_minor);
    if (ums) {
        char dev[4096];
        disk_json(&ums_disk, dev, sizeof dev);
        progress_event(&cc.progress, "device", "\"device\":%s", dev);
    }
    dopts.warn = on_warning;
    dopts.warn_ctx = &cc;
    copts.cb = (struct bk_copy_callbacks){.progress = on_progress,
                                          .range_verified = on_range,
                                          .readback_mismatch = on_readback_mismatch,
                                          .warn = on_warning,
                                          .ctx = &cc};

    uint64_t image_size = bmap_path ? bmap.image_size : src->size >= 0 ? (uint64_t)src->size : 0;
    char q1[PATH_MAX + 8], q2[PATH_MAX + 8], q3[PATH_MAX + 8];
    json_quote(q1, sizeof q1, image);
    json_quote(q2, sizeof q2, dest_path);
    json_quote(q3, sizeof q3, bmap_path ? bmap_path : "");
    progress_event(&cc.progress, "start",
                   "\"image\":%s,\"dest\":%s,\"bmap\":%s,\"image_size\":%" PRIu64
                   ",\"mapped_bytes\":%" PRIu64 ",\"ranges\":%zu",
                   q1, q2, q3, image_size, bmap_path ? bk_bmap_mapped_bytes(&bmap) : image_size,
                   bmap.range_count);

    struct bk_copy_stats stats = {0};
    double t0 = cli_now();
    int status = EXIT_OK;
    struct bk_dest *dest = bk_dest_open(dest_path, image_size, &dopts, &err);
    if (dest) {
        if (!dopts.no_tune)
            bk_dest_tune(dest);
        cli_info("copying %s to %s%s%s", image, dest_path, bmap_path ? " using bmap " : "",
                 bmap_path ? bmap_path : " without a bmap");
        if (bk_copy(bmap_path ? &bmap : NULL, src, dest, &copts, &stats, &err) < 0)
            status = -1;
    } else {
        status = -1;
    }
    double elapsed = cli_now() - t0;
    /* Closing restores the device settings; a warning from that still reaches the events. */
    bool dest_opened = dest != NULL;
    bk_dest_close(dest);
    progress_clear(&cc.progress);

    if (status < 0) {
        char state[PATH_MAX + 200], q[4096];
        describe_state(&stats, dest_path, dest_opened, state, sizeof state);
        status = cli_exit_status(&err);
        cli_error("%s%s", err.msg, state);
        json_quote(q, sizeof q, err.msg);
        progress_event(&cc.progress, "error", "\"message\":%s,\"exit\":%d", q, status);
    } else {
        char a[32], r[32];
        uint64_t rate = elapsed > 0 ? (uint64_t)((double)stats.bytes_written / elapsed) : 0;
        cli_info("wrote %s to %s in %.2f s (%s/s)",
                 cli_human_bytes(stats.bytes_written, a, sizeof a), dest_path, elapsed,
                 cli_human_bytes(rate, r, sizeof r));
        if (bmap_path)
            cli_info("verified %zu of %zu range(s)", stats.ranges_verified, bmap.range_count);
        if (bmap_path && stats.ranges_unchecked)
            copy_warning(&cc, "%zu range(s) were not verified (%s)", stats.ranges_unchecked,
                         copts.no_verify ? "--no-verify" : "the bmap has no checksum for them");
        if (copts.readback)
            cli_info("read back %zu range(s) from %s: all match", stats.readback_checked,
                     dest_path);
    }
    progress_event(&cc.progress, "done",
                   "\"status\":\"%s\",\"exit\":%d,\"bytes_written\":%" PRIu64
                   ",\"bytes_total\":%" PRIu64 ",\"ranges_verified\":%zu,\"ranges_unchecked\":%zu"
                   ",\"readback_checked\":%zu,\"readback_failed\":%zu,\"seconds\":%.3f",
                   status == EXIT_OK ? "ok" : "failed", status, stats.bytes_written,
                   stats.bytes_total, stats.ranges_verified, stats.ranges_unchecked,
                   stats.readback_checked, stats.readback_failed, elapsed);
    progress_close(&cc.progress);
    bk_source_close(src);
    bk_bmap_free(&bmap);
    return status;
}
