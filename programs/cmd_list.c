/* SPDX-License-Identifier: MIT */
/* bmapkit list: the disks an image could be written to, with marks that warn or help. */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmapkit/bmapkit.h"
#include "disk_select.h"
#include "progress.h"
#include "remote.h"

static void list_help(void)
{
    printf("Usage: bmapkit list [--json] [--all] [ssh://[USER@]HOST[:PORT]]\n"
           "\n"
           "List the disks an image can be written to: device path, size, transport (usb,\n"
           "mmc, nvme, sata, virtio, loop, ...), removable flag, vendor, model, serial, USB\n"
           "port path and marks:\n"
           "  ums      a U-Boot USB mass-storage gadget (vendor \"Linux\", model \"UMS disk N\";\n"
           "           shown as ums:N with its LUN): the board's disk after 'ums 0 mmc 0'\n"
           "  mounted  a file system on the disk or one of its partitions is mounted\n"
           "  system   the disk holds the running system (a partition is mounted on /)\n"
           "  swap     the disk or a partition is used as swap\n"
           "  in-use   claimed by device-mapper, md or similar\n"
           "  ro       the kernel reports the device read-only\n"
           "'bmapkit copy' refuses a mounted, system, swap or in-use disk unless --force.\n"
           "With ssh://HOST, the disks of that host, listed by its bmapkit over ssh.\n"
           "\n"
           "Options:\n"
           "      --json      print a JSON array with one object per device\n"
           "      --all       also list partitions, loop devices without a backing file,\n"
           "                  ram, zram, device-mapper, md, optical and empty devices\n"
           "      --remote-bmapkit CMD  the bmapkit program of the ssh:// HOST (default\n"
           "                  bmapkit)\n"
           "  -q, --quiet     accepted for symmetry; the list is still printed\n"
           "  -d, --debug     print debugging messages\n"
           "  -h, --help      print this help and exit\n");
}

enum { COLS = 9 };

/* The cells of one table row; "-" for what is unknown. */
static void row_cells(const struct bk_disk_info *d, char cells[COLS][160])
{
    char size[32], marks[128];
    disk_marks(d, marks, sizeof marks);
    const char *v[COLS] = {d->path,      cli_human_bytes(d->size, size, sizeof size),
                           d->transport, d->removable ? "1" : "0",
                           d->vendor,    d->model,
                           d->serial,    d->usb_port,
                           marks};
    for (int i = 0; i < COLS; i++)
        snprintf(cells[i], sizeof cells[i], "%s", v[i][0] ? v[i] : "-");
}

/* Columns as wide as their widest cell, so long serials do not break the layout. */
static void print_table(const struct bk_disk_list *l)
{
    static const char *const head[COLS] = {"PATH",  "SIZE",   "TRANSPORT", "RM",   "VENDOR",
                                           "MODEL", "SERIAL", "PORT",      "MARKS"};
    int width[COLS];
    char cells[COLS][160];
    for (int i = 0; i < COLS; i++)
        width[i] = (int)strlen(head[i]);
    size_t count = bk_disk_list_count(l);
    for (size_t r = 0; r < count; r++) {
        row_cells(bk_disk_list_get(l, r), cells);
        for (int i = 0; i < COLS; i++)
            if ((int)strlen(cells[i]) > width[i])
                width[i] = (int)strlen(cells[i]);
    }
    for (size_t r = 0; r <= count; r++) {
        if (r > 0)
            row_cells(bk_disk_list_get(l, r - 1), cells);
        for (int i = 0; i < COLS; i++) {
            const char *c = r ? cells[i] : head[i];
            if (i == COLS - 1)
                printf("%s\n", c);
            else if (i == 1) /* sizes line up on the right */
                printf("%*s  ", width[i], c);
            else
                printf("%-*s  ", width[i], c);
        }
    }
}

static void print_json(const struct bk_disk_list *l)
{
    printf("[");
    size_t count = bk_disk_list_count(l);
    for (size_t i = 0; i < count; i++) {
        char obj[4096];
        disk_json(bk_disk_list_get(l, i), obj, sizeof obj);
        printf("%s\n  %s", i ? "," : "", obj);
    }
    printf("%s]\n", count ? "\n" : "");
}

int cmd_list(int argc, char **argv)
{
    enum { OPT_JSON = 256, OPT_ALL, OPT_REMOTE_BMAPKIT };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"all", no_argument, NULL, OPT_ALL},
        {"remote-bmapkit", required_argument, NULL, OPT_REMOTE_BMAPKIT},
        {"quiet", no_argument, NULL, 'q'},
        {"debug", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false, all = false;
    const char *remote_bmapkit = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qdh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON:
            json = true;
            break;
        case OPT_ALL:
            all = true;
            break;
        case OPT_REMOTE_BMAPKIT:
            if (!optarg[0])
                return cli_usage_error("list", "--remote-bmapkit needs a program name");
            remote_bmapkit = optarg;
            break;
        default: {
            int rc = cli_common_option(c, "list", argv, longopts, list_help);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
        }
    }
    /* One operand: the other host whose disks are listed. */
    if (optind < argc && remote_is_url(argv[optind])) {
        if (optind + 1 < argc)
            return cli_usage_error("list", "unexpected argument '%s'", argv[optind + 1]);
        return remote_list(argv[optind], remote_bmapkit ? remote_bmapkit : REMOTE_BMAPKIT_DEFAULT,
                           json, all);
    }
    if (optind < argc)
        return cli_usage_error("list", "unexpected argument '%s'", argv[optind]);
    if (remote_bmapkit)
        return cli_usage_error("list", "--remote-bmapkit applies only with ssh://HOST");

    /* A test-only hook: look at a fake /sys, /proc and /dev instead of the real ones. */
    const char *sysroot = getenv("BMAPKIT_SYSROOT");
    cli_recover_tuning(sysroot);
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_disk_list *l = bk_disk_list_scan(sysroot, all, &err);
    if (!l)
        return cli_fail(&err);
    cli_debug("%zu block device(s)%s", bk_disk_list_count(l), all ? "" : " to show");
    if (!bk_disk_list_root_known(l))
        cli_warning("cannot tell which disk holds the running system (the root directory is on "
                    "no block device visible here, as in a container): no disk is marked "
                    "'system'");
    if (json)
        print_json(l);
    else if (bk_disk_list_count(l) == 0)
        cli_info("no disks found%s", all ? "" : " (--all shows partitions and virtual devices)");
    else
        print_table(l);
    bk_disk_list_free(l);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write the list to standard output");
        return EXIT_ERROR;
    }
    return EXIT_OK;
}
