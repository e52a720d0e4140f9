/* SPDX-License-Identifier: MIT */
/* bmapkit create: write the bmap of an image file. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bmapkit/bmapkit.h"

static void create_help(void)
{
    printf("Usage: bmapkit create [-o OUTPUT] [--no-checksum] [OPTIONS] IMAGE\n"
           "\n"
           "Write the block map of IMAGE: the ranges of blocks that hold data, each with\n"
           "its checksum. The output is bmap format 2.0, as bmaptool writes it.\n"
           "\n"
           "Options:\n"
           "  -o, --output FILE       write the bmap to FILE (default: standard output);\n"
           "                          an existing FILE is replaced only once the new bmap\n"
           "                          is complete\n"
           "      --no-checksum       leave out the per-range checksums\n"
           "      --checksum-type T   sha256 (default), sha1, sha224, sha384, sha512, md5\n"
           "      --detect-zeros      also leave out blocks that hold only zero bytes; use\n"
           "                          it only for images that lost their holes: written\n"
           "                          zeros then become \"don't care\" and are not flashed\n"
           "      --threads N         hashing threads (default: one per CPU)\n"
           "  -q, --quiet             print only warnings and errors\n"
           "  -d, --debug             print debugging messages\n"
           "  -h, --help              print this help and exit\n");
}

struct progress_state {
    bool enabled;
    double last;
};

static void create_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct progress_state *p = ctx;
    if (!p->enabled)
        return;
    double now = cli_now();
    if (done < total && now - p->last < 0.5)
        return;
    p->last = now;
    char a[32], b[32];
    fprintf(stderr, "\rbmapkit: hashing %s of %s (%3.0f%%)", cli_human_bytes(done, a, sizeof a),
            cli_human_bytes(total, b, sizeof b),
            total ? 100.0 * (double)done / (double)total : 100.0);
    if (done >= total)
        fputc('\n', stderr);
}

/* Where the bmap goes: standard output, a special file as is, or a temporary renamed
   over a regular file once complete so a failure never destroys an older bmap. */
struct output {
    const char *path; /* NULL for standard output */
    char *tmp_path;
    int fd;
};

static int output_open(struct output *out, const char *path, const struct stat *image_st,
                       struct bk_error *err)
{
    out->path = path;
    out->tmp_path = NULL;
    if (!path) {
        out->fd = STDOUT_FILENO;
        return 0;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        if (st.st_dev == image_st->st_dev && st.st_ino == image_st->st_ino)
            return bk_error_set(err, BK_E_INVALID, 0,
                                "output %s is the image itself; refusing to overwrite it", path);
        if (S_ISDIR(st.st_mode))
            return bk_error_set(err, BK_E_INVALID, 0, "output %s is a directory", path);
        if (!S_ISREG(st.st_mode)) {
            out->fd = open(path, O_WRONLY | O_CLOEXEC);
            if (out->fd < 0)
                return bk_error_set(err, BK_E_IO, errno, "cannot open output %s", path);
            return 0;
        }
    }
    char *copy = strdup(path);
    if (!copy || asprintf(&out->tmp_path, "%s/.%s.XXXXXX", dirname(copy),
                          strrchr(path, '/') ? strrchr(path, '/') + 1 : path) < 0) {
        free(copy);
        out->tmp_path = NULL;
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    free(copy);
    out->fd = mkostemp(out->tmp_path, O_CLOEXEC);
    if (out->fd < 0) {
        int e = errno;
        free(out->tmp_path);
        out->tmp_path = NULL;
        return bk_error_set(err, BK_E_IO, e, "cannot create output %s", path);
    }
    /* mkostemp makes the file 0600; give it the usual mode for a new file. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(out->fd, 0666 & ~mask);
    return 0;
}

static int output_commit(struct output *out, struct bk_error *err)
{
    const char *name = out->path ? out->path : "standard output";
    if (!out->tmp_path) {
        if (out->fd != STDOUT_FILENO && close(out->fd) < 0)
            return bk_error_set(err, BK_E_IO, errno, "cannot write %s", name);
        return 0;
    }
    int rc = 0;
    if (fsync(out->fd) < 0)
        rc = bk_error_set(err, BK_E_IO, errno, "cannot write %s", name);
    if (close(out->fd) < 0 && rc == 0)
        rc = bk_error_set(err, BK_E_IO, errno, "cannot write %s", name);
    if (rc == 0 && rename(out->tmp_path, out->path) < 0)
        rc = bk_error_set(err, BK_E_IO, errno, "cannot move the new bmap to %s", name);
    if (rc < 0)
        unlink(out->tmp_path);
    free(out->tmp_path);
    return rc;
}

static void output_abort(struct output *out)
{
    if (out->tmp_path) {
        close(out->fd);
        unlink(out->tmp_path);
        free(out->tmp_path);
    } else if (out->fd != STDOUT_FILENO) {
        close(out->fd);
    }
}

static const struct option create_longopts[] = {
    {"output", required_argument, NULL, 'o'},
    {"no-checksum", no_argument, NULL, 'n'},
    {"checksum-type", required_argument, NULL, 'c'},
    {"detect-zeros", no_argument, NULL, 'z'},
    {"threads", required_argument, NULL, 't'},
    {"quiet", no_argument, NULL, 'q'},
    {"debug", no_argument, NULL, 'd'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The options into OPTS and *OUTPUT, the image into *IMAGE; CLI_CONTINUE or a status. */
static int parse_create(int argc, char **argv, struct bk_create_options *opts, const char **output,
                        const char **image)
{
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:qdh", create_longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            *output = optarg;
            break;
        case 'n':
            opts->no_checksum = true;
            break;
        case 'c':
            opts->hash = bk_hash_from_name(optarg);
            if (opts->hash == BK_HASH_NONE)
                return cli_usage_error("create", "unknown checksum type '%s'", optarg);
            break;
        case 'z':
            opts->detect_zeros = true;
            break;
        case 't':
            if (cli_parse_uint(optarg, 1, 64, &opts->threads) < 0)
                return cli_usage_error("create", "--threads takes a number from 1 to 64");
            break;
        default: {
            int rc = cli_common_option(c, "create", argv, create_longopts, create_help);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
        }
    }
    if (optind >= argc)
        return cli_usage_error("create", "no image given");
    if (argc - optind > 1)
        return cli_usage_error("create", "unexpected argument '%s'", argv[optind + 1]);
    *image = argv[optind];
    return CLI_CONTINUE;
}

/* What was mapped, and the warning about an image without holes. */
static void report_create(const char *image, const struct bk_bmap *bmap,
                          const struct bk_create_options *opts, const struct bk_create_info *info,
                          double elapsed)
{
    uint64_t mapped = bk_bmap_mapped_blocks(bmap), blocks = bk_bmap_blocks_count(bmap);
    cli_debug("mapped with %s, %u hashing thread(s)", bk_map_method_name(info->method),
              info->threads);
    if (mapped == blocks && !opts->detect_zeros)
        cli_warning("%s has no holes: every block is mapped and will be written. If the image "
                    "lost its holes (copied without --sparse), --detect-zeros can leave out "
                    "zero blocks",
                    image);
    if (opts->detect_zeros && info->zero_blocks)
        cli_info("left out %" PRIu64 " zero-filled block(s)", info->zero_blocks);
    char a[32], b[32];
    cli_info("%s: %" PRIu64 " of %" PRIu64 " blocks mapped (%s of %s) in %.2f s", image, mapped,
             blocks, cli_human_bytes(info->mapped_bytes, a, sizeof a),
             cli_human_bytes(bk_bmap_image_size(bmap), b, sizeof b), elapsed);
}

int cmd_create(int argc, char **argv)
{
    struct bk_create_options opts;
    bk_create_options_init(&opts);
    opts.cancel = cli_cancel_requested;
    const char *output = NULL, *image = NULL;
    int rc = parse_create(argc, argv, &opts, &output, &image);
    if (rc != CLI_CONTINUE)
        return rc;

    struct bk_error err;
    bk_error_clear(&err);
    struct stat image_st;
    if (stat(image, &image_st) < 0) {
        bk_error_set(&err, BK_E_IO, errno, "cannot open image %s", image);
        return cli_fail(&err);
    }
    struct output out;
    if (output_open(&out, output, &image_st, &err) < 0)
        return cli_fail(&err);
    struct progress_state progress = {.enabled = !cli.quiet && isatty(STDERR_FILENO)};
    opts.progress = create_progress;
    opts.progress_ctx = &progress;

    double t0 = cli_now();
    struct bk_create_info info = {.struct_size = sizeof info};
    struct bk_bmap *bmap = bk_create_bmap(image, &opts, &info, &err);
    if (!bmap || bk_bmap_write_fd(bmap, out.fd, output ? output : "standard output", &err) < 0) {
        output_abort(&out);
        bk_bmap_free(bmap);
        return cli_fail(&err);
    }
    if (output_commit(&out, &err) < 0) {
        bk_bmap_free(bmap);
        return cli_fail(&err);
    }
    report_create(image, bmap, &opts, &info, cli_now() - t0);
    bk_bmap_free(bmap);
    return EXIT_OK;
}
