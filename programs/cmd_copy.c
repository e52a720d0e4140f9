/* SPDX-License-Identifier: MIT */
/* bmapkit copy: its help and command line; the plan and the run are in copy_*.c. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy_plan.h"
#include "remote.h"
#include "ssh_source.h"

static void copy_help(void)
{
    printf("Usage: bmapkit copy [--bmap BMAP | --nobmap] [OPTIONS] IMAGE DEST [DEST...]\n"
           "       bmapkit copy [OPTIONS] --ums[=SELECTOR] [--wait SECONDS] IMAGE\n"
           "\n"
           "Write IMAGE to DEST (a block device, a file or an NBD export such as\n"
           "nbd://HOST/EXPORT), only the blocks its bmap lists, checking each range against\n"
           "its checksum. IMAGE may be '-' for standard input or an http://, https://,\n"
           "ftp:// or file: URL (fetching only the bytes needed where the server allows),\n"
           "and may be compressed (gzip, bzip2, xz, zstd, lz4, lzop) or the first file of a\n"
           "tar or zip archive: it is decoded here, the format told by its content.\n"
           "IMAGE (and BMAP) may also be ssh://[USER[:PASSWORD]@]HOST:PATH (PATH relative\n"
           "to the home folder there unless it starts with /) or ssh://HOST[:PORT]/PATH,\n"
           "read with ssh.\n"
           "DEST 'ums' (or 'ums:SELECTOR') is the disk of a board running U-Boot's 'ums'\n"
           "command, like --ums; write ./ums for a file of that name. 'ums:all' is every\n"
           "UMS disk attached, 'ums:all=N' waits (see --wait) until N are.\n"
           "Several DESTs are written at once from one read of IMAGE, each checked before\n"
           "anything is written; one refused (mounted, too small, ...) is left alone and\n"
           "one that fails is dropped, and the others finish.\n"
           "DEST ssh://[USER@]HOST[:PORT]/PATH (or ssh://HOST/ums[:SELECTOR]) is on another\n"
           "host, reached with ssh (BMAPKIT_SSH_COMMAND replaces 'ssh'): its bmapkit gets\n"
           "the image as it is, compressed, and writes it; without one there, the image is\n"
           "decoded here and written through nbdkit started over ssh.\n"
           "Without --bmap the bmap is looked for next to IMAGE (IMAGE.bmap, then with one\n"
           "extension after another removed), over the same URL for a URL; BMAP may be a\n"
           "URL too.\n"
           "A signed bmap (clearsigned, or with a signature file) is copied only if its\n"
           "signature is good and made by a key of the keyring.\n"
           "\n"
           "Options:\n"
           "      --bmap BMAP          use this bmap file\n"
           "      --nobmap             copy the whole image, without a bmap\n"
           "      --no-verify          do not check range checksums (the bmap's own checksum\n"
           "                           is still checked); needed to copy with a bmap that\n"
           "                           has no range checksums\n"
           "      --removable-device   accept only a removable whole disk as DEST\n"
           "      --psplash-pipe PIPE  write 'PROGRESS n' lines to the psplash FIFO PIPE\n"
           "      --readback           after writing, read every range back from DEST,\n"
           "                           bypassing the page cache, and check it\n"
           "      --readback-retries N rewrite a range that reads back wrong up to N times\n"
           "      --skip-unchanged     read DEST first and write only what differs: ranges\n"
           "                           that match their checksum are skipped, elsewhere\n"
           "                           only the blocks that differ are written\n"
           "      --force              write to a disk even though one of its partitions is\n"
           "                           mounted or in use (never to the running system's)\n"
           "      --no-tune            leave the block device's I/O settings alone\n"
           "      --force-range RANGE  write these image bytes even where the bmap leaves\n"
           "                           them out: START-END or START+LENGTH (K, M, G, T\n"
           "                           suffixes, 0x hex); may be given several times\n"
           "      --zero-unmapped      make the image's unmapped ranges read as zeros on DEST\n"
           "                           (holes, zeroing that may unmap, or written zeros)\n"
           "      --relocate-gpt       move a GPT image's backup header and table to the end\n"
           "                           of a larger DEST\n"
           "      --ums[=SELECTOR]     write to the U-Boot UMS disk (vendor Linux, model\n"
           "                           'UMS disk N'); SELECTOR picks one of several by LUN,\n"
           "                           serial or USB port path (e.g. 0, 1-2.3); its identity\n"
           "                           is printed before anything is written\n"
           "      --wait SECONDS       wait this long for the UMS disk to appear (default\n"
           "                           60, 0: do not wait)\n"
           "      --json-events FILE   write JSON-lines events to FILE ('-': standard output)\n"
           "      --remote-bmapkit CMD the bmapkit program of an ssh:// DEST's host (default\n"
           "                           bmapkit)\n"
           "      --bmap-sig SIG       the detached OpenPGP signature of the bmap (default:\n"
           "                           BMAP.asc, then BMAP.sig, when one is there)\n"
           "      --keyring FILE       trust only the public keys in FILE (exported with gpg\n"
           "                           --export), not the user's GnuPG home\n"
           "      --fingerprint FPR    the bmap must be signed by the key with fingerprint FPR\n"
           "      --no-sig-verify      do not check the bmap's signature (a clearsigned bmap\n"
           "                           is still read)\n"
           "      --ca-file FILE       check the TLS certificates of https:// and ftps:// URLs\n"
           "                           against the CA certificates in FILE (PEM), not the\n"
           "                           system's\n"
           "      --connect-timeout SECONDS\n"
           "                           give up connecting to a server after this long\n"
           "                           (default 30)\n"
           "      --stall-timeout SECONDS\n"
           "                           break off a transfer that receives nothing this long\n"
           "                           (default 60)\n"
           "      --retries N          try a transfer that broke off N more times, from the\n"
           "                           byte reached (1 to 100, default 4)\n"
           "      --requests N         fetch with up to N requests in flight (1 to 32,\n"
           "                           default 4)\n"
           "  -q, --quiet              print only warnings and errors\n"
           "  -d, --debug              print debugging messages\n"
           "  -h, --help               print this help and exit\n"
           "\n"
           "The first MiB of the image (partition table, boot code) is written last, after\n"
           "everything else was written, verified and flushed.\n"
           "Exit status: 0 done and verified, 1 error, 2 usage, 3 data did not verify,\n"
           "4 interrupted.\n");
}

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
    OPT_BMAP_SIG,
    OPT_KEYRING,
    OPT_FINGERPRINT,
    OPT_NO_SIG,
    OPT_UMS,
    OPT_WAIT,
    OPT_REMOTE_BMAPKIT,
    OPT_BMAP_FROM_STDIN,
    OPT_FORCE_RANGE,
    OPT_ZERO_UNMAPPED,
    OPT_RELOCATE_GPT,
    OPT_SKIP_UNCHANGED,
    OPT_CA_FILE,
    OPT_CONNECT_TIMEOUT,
    OPT_STALL_TIMEOUT,
    OPT_NET_RETRIES,
    OPT_NET_REQUESTS,
};

static const struct option longopts[] = {
    {"bmap", required_argument, NULL, OPT_BMAP},
    {"nobmap", no_argument, NULL, OPT_NOBMAP},
    {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
    {"removable-device", no_argument, NULL, OPT_REMOVABLE},
    {"psplash-pipe", required_argument, NULL, OPT_PSPLASH},
    {"readback", no_argument, NULL, OPT_READBACK},
    {"readback-retries", required_argument, NULL, OPT_RETRIES},
    {"skip-unchanged", no_argument, NULL, OPT_SKIP_UNCHANGED},
    {"force", no_argument, NULL, OPT_FORCE},
    {"no-tune", no_argument, NULL, OPT_NO_TUNE},
    {"json-events", required_argument, NULL, OPT_JSON},
    {"bmap-sig", required_argument, NULL, OPT_BMAP_SIG},
    {"keyring", required_argument, NULL, OPT_KEYRING},
    {"fingerprint", required_argument, NULL, OPT_FINGERPRINT},
    {"no-sig-verify", no_argument, NULL, OPT_NO_SIG},
    {"ums", optional_argument, NULL, OPT_UMS},
    {"wait", required_argument, NULL, OPT_WAIT},
    {"remote-bmapkit", required_argument, NULL, OPT_REMOTE_BMAPKIT},
    {"force-range", required_argument, NULL, OPT_FORCE_RANGE},
    {"zero-unmapped", no_argument, NULL, OPT_ZERO_UNMAPPED},
    {"relocate-gpt", no_argument, NULL, OPT_RELOCATE_GPT},
    {"ca-file", required_argument, NULL, OPT_CA_FILE},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"stall-timeout", required_argument, NULL, OPT_STALL_TIMEOUT},
    {"retries", required_argument, NULL, OPT_NET_RETRIES},
    {"requests", required_argument, NULL, OPT_NET_REQUESTS},
    /* Internal: how a copy over ssh hands the bmap to the other host's bmapkit. */
    {"bmap-from-stdin", required_argument, NULL, OPT_BMAP_FROM_STDIN},
    {"quiet", no_argument, NULL, 'q'},
    {"debug", no_argument, NULL, 'd'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/*
 * The options of fetching URLs. A CA file that cannot be read is named now, with its
 * option, rather than as a TLS failure of the first https:// URL.
 */
static int fetch_option(int c, struct bk_fetch_options *fo)
{
    switch (c) {
    case OPT_CA_FILE: {
        int fd = open(optarg, O_RDONLY | O_CLOEXEC);
        struct stat st;
        int e = fd < 0 ? errno : fstat(fd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
        if (fd >= 0)
            close(fd);
        if (e) {
            cli_error("--ca-file %s: %s", optarg, strerror(e));
            return EXIT_ERROR;
        }
        fo->ca_file = optarg;
        return CLI_CONTINUE;
    }
    case OPT_CONNECT_TIMEOUT:
        if (cli_parse_uint(optarg, 1, 86400, &fo->connect_timeout) < 0)
            return cli_usage_error("copy", "--connect-timeout takes a number of seconds from 1 "
                                           "to 86400");
        return CLI_CONTINUE;
    case OPT_STALL_TIMEOUT:
        if (cli_parse_uint(optarg, 1, 86400, &fo->stall_timeout) < 0)
            return cli_usage_error("copy", "--stall-timeout takes a number of seconds from 1 "
                                           "to 86400");
        return CLI_CONTINUE;
    case OPT_NET_REQUESTS:
        if (cli_parse_uint(optarg, 1, 32, &fo->requests) < 0)
            return cli_usage_error("copy", "--requests takes a number from 1 to 32");
        return CLI_CONTINUE;
    default: /* OPT_NET_RETRIES; 0 would mean the default to the library */
        if (cli_parse_uint(optarg, 1, 100, &fo->retries) < 0)
            return cli_usage_error("copy", "--retries takes a number from 1 to 100");
        return CLI_CONTINUE;
    }
}

/* The options that take a value or end the command early. */
static int take_option(int c, char **argv, struct copy_plan *plan, bool *wait_given)
{
    switch (c) {
    case OPT_RETRIES:
        if (cli_parse_uint(optarg, 0, 100, &plan->readback_retries) < 0)
            return cli_usage_error("copy", "--readback-retries takes a number from 0 to 100");
        plan->readback = true;
        return CLI_CONTINUE;
    case OPT_WAIT:
        if (cli_parse_uint(optarg, 0, 86400, &plan->ums_timeout) < 0)
            return cli_usage_error("copy", "--wait takes a number of seconds from 0 to 86400");
        *wait_given = true;
        return CLI_CONTINUE;
    case OPT_BMAP_SIG:
        plan->bmap_sig = optarg;
        return CLI_CONTINUE;
    case OPT_KEYRING:
        plan->keyring = optarg;
        return CLI_CONTINUE;
    case OPT_FINGERPRINT:
        plan->fingerprint = optarg;
        return CLI_CONTINUE;
    case OPT_UMS:
        plan->ums = true;
        plan->ums_selector = optarg && optarg[0] ? optarg : NULL;
        return CLI_CONTINUE;
    case OPT_REMOTE_BMAPKIT:
        if (!optarg[0])
            return cli_usage_error("copy", "--remote-bmapkit needs a program name");
        plan->remote_bmapkit = optarg;
        return CLI_CONTINUE;
    case OPT_BMAP_FROM_STDIN:
        if (cli_parse_uint(optarg, 1, (unsigned)BK_BMAP_MAX_FILE_SIZE, &plan->bmap_from_stdin) < 0)
            return cli_usage_error("copy", "--bmap-from-stdin takes a number of bytes from 1 to %u",
                                   (unsigned)BK_BMAP_MAX_FILE_SIZE);
        return CLI_CONTINUE;
    case OPT_CA_FILE:
    case OPT_CONNECT_TIMEOUT:
    case OPT_STALL_TIMEOUT:
    case OPT_NET_RETRIES:
    case OPT_NET_REQUESTS:
        return fetch_option(c, &plan->fetch);
    default:
        return cli_common_option(c, "copy", argv, longopts, copy_help);
    }
}

/* One option into PLAN; CLI_CONTINUE, or the exit status. */
static int parse_option(int c, char **argv, struct copy_plan *plan, bool *wait_given)
{
    switch (c) {
    case OPT_BMAP:
        plan->bmap_path = optarg;
        break;
    case OPT_NOBMAP:
        plan->nobmap = true;
        break;
    case OPT_NO_VERIFY:
        plan->no_verify = true;
        break;
    case OPT_REMOVABLE:
        plan->dopts.removable_only = true;
        break;
    case OPT_PSPLASH:
        plan->psplash = optarg;
        break;
    case OPT_READBACK:
        plan->readback = true;
        break;
    case OPT_SKIP_UNCHANGED:
        plan->skip_unchanged = true;
        plan->dopts.keep_content = true; /* a file's old content is what is compared */
        break;
    case OPT_FORCE:
        plan->dopts.force = true;
        break;
    case OPT_NO_TUNE:
        plan->dopts.no_tune = true;
        break;
    case OPT_JSON:
        plan->json = optarg;
        break;
    case OPT_NO_SIG:
        plan->no_sig_verify = true;
        break;
    case OPT_FORCE_RANGE:
        return copy_parse_force_range(optarg, plan);
    case OPT_ZERO_UNMAPPED:
        plan->zero_unmapped = true;
        break;
    case OPT_RELOCATE_GPT:
        plan->relocate_gpt = true;
        break;
    default:
        return take_option(c, argv, plan, wait_given);
    }
    return CLI_CONTINUE;
}

/* The options of copies over ssh, on both sides; *REMOTE_UMS: DEST is ssh://HOST/ums. */
static int check_remote(const char *image, const char *dest, struct copy_plan *plan,
                        bool *remote_ums)
{
    bool remote = dest && remote_is_url(dest);
    if (remote) {
        struct remote_url u;
        int rc = remote_parse_url("copy", dest, true, &u);
        if (rc != CLI_CONTINUE)
            return rc;
        *remote_ums = u.ums;
    }
    if (remote && (plan->n_forced || plan->zero_unmapped || plan->relocate_gpt))
        return cli_usage_error("copy", "--force-range, --zero-unmapped and --relocate-gpt apply "
                                       "only to a DEST on this host");
    /* Images, bmaps and signatures over ssh: their URLs are checked before anything runs. */
    const char *inputs[] = {image, plan->bmap_path, plan->bmap_sig};
    for (size_t i = 0; i < 3; i++) {
        int rc = ssh_source_is_url(inputs[i]) ? ssh_source_check_url(inputs[i]) : CLI_CONTINUE;
        if (rc != CLI_CONTINUE)
            return rc;
    }
    if (remote && (ssh_source_is_url(image) || ssh_source_is_url(plan->bmap_path)))
        return cli_usage_error("copy", "an image or bmap over ssh cannot go to an ssh:// DEST: "
                                       "run bmapkit on one of the two hosts");
    if (plan->remote_bmapkit && !remote)
        return cli_usage_error("copy", "--remote-bmapkit applies only to an ssh:// DEST");
    if (!plan->remote_bmapkit)
        plan->remote_bmapkit = REMOTE_BMAPKIT_DEFAULT;
    if (plan->bmap_from_stdin &&
        (strcmp(image, "-") != 0 || remote || plan->bmap_path || plan->nobmap))
        return cli_usage_error("copy", "--bmap-from-stdin needs the IMAGE '-' and a local DEST, "
                                       "and excludes --bmap and --nobmap");
    return CLI_CONTINUE;
}

static bool is_ums_dest(const char *dest)
{
    return strcmp(dest, "ums") == 0 || strncmp(dest, "ums:", 4) == 0;
}

/* Options that act on what one destination holds: refused with several (or ums:all). */
static int one_dest_options(const struct copy_plan *plan)
{
    if (plan->skip_unchanged || plan->zero_unmapped || plan->relocate_gpt || plan->n_forced)
        return cli_usage_error("copy", "--skip-unchanged, --force-range, --zero-unmapped and "
                                       "--relocate-gpt apply to one DEST");
    return CLI_CONTINUE;
}

/* The DESTs after the first: neither UMS nor ssh:// (those are copied one at a time). */
static int check_more_dests(int argc, char **argv, struct copy_plan *plan)
{
    plan->dest_count = (size_t)(argc - optind - 1);
    plan->dest_paths = (const char **)&argv[optind + 1];
    if (plan->dest_count < 2)
        return CLI_CONTINUE;
    for (size_t i = 0; i < plan->dest_count; i++) {
        const char *d = plan->dest_paths[i];
        if (is_ums_dest(d))
            return cli_usage_error("copy",
                                   "DEST '%s' must be the only DEST (ums:all writes "
                                   "every UMS disk)",
                                   d);
        if (remote_is_url(d))
            return cli_usage_error("copy", "an ssh:// DEST must be the only DEST");
    }
    return one_dest_options(plan);
}

/* "all" or "all=N" as a UMS selector: every UMS disk, waiting for N of them. */
static int parse_ums_all(struct copy_plan *plan)
{
    const char *s = plan->ums_selector;
    if (!s || strncmp(s, "all", 3) != 0 || (s[3] != '\0' && s[3] != '='))
        return CLI_CONTINUE;
    plan->ums_all = true;
    plan->ums_selector = NULL;
    if (one_dest_options(plan) != CLI_CONTINUE)
        return EXIT_USAGE;
    if (s[3] == '=' && cli_parse_uint(s + 4, 1, BK_COPY_MAX_DESTS, &plan->ums_wait_for) < 0)
        return cli_usage_error("copy", "ums:all=N takes a number of disks from 1 to %d",
                               BK_COPY_MAX_DESTS);
    return CLI_CONTINUE;
}

/* IMAGE and DEST (or the UMS disk), and the options that exclude each other. */
static int parse_operands(int argc, char **argv, struct copy_plan *plan, bool wait_given)
{
    if (plan->ums && argc - optind >= 2)
        return cli_usage_error("copy", "--ums replaces DEST; give only the IMAGE");
    const int npos = plan->ums ? 1 : 2;
    if (argc - optind < npos)
        return cli_usage_error("copy", plan->ums ? "copy needs an IMAGE"
                                                 : "copy needs an IMAGE and a DEST");
    if (!plan->ums) {
        int rc = check_more_dests(argc, argv, plan);
        if (rc != CLI_CONTINUE)
            return rc;
    }
    const char *dest = plan->ums ? NULL : argv[optind + 1];
    if (dest && is_ums_dest(dest)) {
        plan->ums = true;
        plan->ums_selector = dest[3] == ':' && dest[4] ? dest + 4 : NULL;
    }
    if (plan->ums && parse_ums_all(plan) != CLI_CONTINUE)
        return EXIT_USAGE;
    bool remote_ums = false;
    int rc = check_remote(argv[optind], dest, plan, &remote_ums);
    if (rc != CLI_CONTINUE)
        return rc;
    if (wait_given && !plan->ums && !remote_ums)
        return cli_usage_error("copy", "--wait applies only to a UMS destination (--ums, DEST "
                                       "ums or ssh://HOST/ums)");
    if (plan->bmap_path && plan->nobmap)
        return cli_usage_error("copy", "--bmap and --nobmap exclude each other");
    if (plan->no_sig_verify && (plan->bmap_sig || plan->keyring || plan->fingerprint))
        return cli_usage_error("copy", "--no-sig-verify excludes --bmap-sig, --keyring and "
                                       "--fingerprint");
    if (plan->nobmap && (plan->bmap_sig || plan->keyring || plan->fingerprint))
        return cli_usage_error("copy", "--bmap-sig, --keyring and --fingerprint check the "
                                       "bmap's signature, so they cannot be used with --nobmap");
    if (plan->nobmap && plan->n_forced)
        return cli_usage_error("copy", "--force-range writes image bytes the bmap leaves out, and "
                                       "--nobmap writes all of them");
    if (plan->nobmap && plan->readback)
        return cli_usage_error("copy", "--readback checks the bmap's range checksums, so it "
                                       "cannot be used with --nobmap");
    if (plan->nobmap && plan->skip_unchanged)
        return cli_usage_error("copy", "--skip-unchanged compares the destination with the "
                                       "bmap's ranges, so it cannot be used with --nobmap");
    plan->image = argv[optind];
    plan->dest_path = plan->ums ? "ums" : dest;
    return CLI_CONTINUE;
}

int copy_parse(int argc, char **argv, struct copy_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    bk_dest_options_init(&plan->dopts);
    bk_fetch_options_init(&plan->fetch);
    plan->dopts.sysroot = getenv("BMAPKIT_SYSROOT");
    plan->ums_timeout = 60;
    bool wait_given = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qdh", longopts, NULL)) != -1) {
        int rc = parse_option(c, argv, plan, &wait_given);
        if (rc != CLI_CONTINUE)
            return rc;
    }
    return parse_operands(argc, argv, plan, wait_given);
}

int cmd_copy(int argc, char **argv)
{
    struct copy_plan plan;
    int rc = copy_parse(argc, argv, &plan);
    if (rc != CLI_CONTINUE)
        return rc;
    if (remote_is_url(plan.dest_path)) {
        rc = remote_copy(&plan);
        copy_plan_free(&plan);
        return rc;
    }
    cli_recover_tuning(plan.dopts.sysroot);
    if (plan.bmap_from_stdin) {
        rc = remote_receive_bmap(&plan, plan.bmap_from_stdin);
        if (rc != EXIT_OK)
            return rc;
    }
    rc = copy_resolve(&plan);
    /* Messages and events name where the bmap came from. */
    if (plan.bmap_from_stdin)
        plan.bmap_path = "on standard input";
    if (rc == EXIT_OK)
        rc = plan.dest_count > 1 || plan.ums_all ? copy_execute_many(&plan) : copy_execute(&plan);
    copy_plan_free(&plan);
    return rc;
}
