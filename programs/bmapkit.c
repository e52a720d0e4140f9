/* SPDX-License-Identifier: MIT */
/* The bmapkit command: global options, then one subcommand per file (cmd_*.c). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "bmapkit/bmapkit.h"
#include "disk_select.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"copy", cmd_copy, "write an image to a disk or file using its bmap, verified"},
    {"create", cmd_create, "make the bmap of an image file"},
    {"list", cmd_list, "list the disks to flash, marking U-Boot UMS, mounted and system disks"},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void print_help(void)
{
    printf("Usage: bmapkit [--version] [-q] [-d] [-h] COMMAND [ARGS]\n"
           "\n"
           "Create block maps (bmap files) of disk images and flash images with them.\n"
           "Compatible with bmaptool's command line and bmap format.\n"
           "\n"
           "Commands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        printf("  %-10s %s\n", commands[i].name, commands[i].summary);
    printf("\n"
           "Options:\n"
           "  --version     print the version and exit\n"
           "  -q, --quiet   print only warnings and errors\n"
           "  -d, --debug   print debugging messages\n"
           "  -h, --help    print this help and exit\n"
           "\n"
           "Run 'bmapkit COMMAND --help' for a command's options; see bmapkit(1).\n");
}

/*
 * An error that a signal caused (a blocking open or read cut short, EINTR) ends as an
 * interruption, status 4; data that did not verify keeps its own status.
 */
static int interrupted_status(int status)
{
    if (status == EXIT_ERROR && atomic_load(&cli_interrupted))
        return EXIT_INTERRUPTED;
    return status;
}

int main(int argc, char **argv)
{
    /* First of all: a Ctrl-C or SIGTERM from now on ends in the documented way. */
    cli_install_signals();
    static const struct option longopts[] = {
        {"version", no_argument, NULL, 'V'},
        {"quiet", no_argument, NULL, 'q'},
        {"debug", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    /* "+" stops at the subcommand, which parses its own options. */
    while ((c = getopt_long(argc, argv, "+qdh", longopts, NULL)) != -1) {
        switch (c) {
        case 'V':
            printf("bmapkit %s\n", bk_version());
            return EXIT_OK;
        case 'q':
            cli.quiet = true;
            break;
        case 'd':
            cli.debug = true;
            break;
        case 'h':
            print_help();
            return EXIT_OK;
        default: {
            char shortopt[4];
            return cli_usage_error(NULL, "unknown option '%s'",
                                   cli_rejected_option(argv, longopts, shortopt, sizeof shortopt));
        }
        }
    }
    if (optind >= argc)
        return cli_usage_error(NULL, "no command given (one of: copy, create, list)");

    const char *name = argv[optind];
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            /* The subcommand sees its name as argv[0], like a program of its own;
               optind = 0 makes glibc's getopt start afresh. */
            int first = optind;
            optind = 0;
            return interrupted_status(commands[i].run(argc - first, argv + first));
        }
    }
    return cli_usage_error(NULL, "unknown command '%s'", name);
}
