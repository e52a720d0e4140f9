/* SPDX-License-Identifier: MIT */
/* The bmapkit command: global options, then one subcommand per file (cmd_*.c). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bmapkit/bmapkit.h"
#include "disk_select.h"
#include "ssh_source.h"

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
           "Compatible with the command line of bmaptool " CLI_REFERENCE_VERSION
           " and its bmap format.\n"
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
 * Under the reference's name, the version is the reference release whose command line
 * is accepted, in that release's form "bmaptool X.Y.Z": scripts read it from the second
 * or the last word to decide which options they may use. Only a person at a terminal
 * also gets a second line naming the program.
 */
static void print_version(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    const char *name = slash ? slash + 1 : argv0;
    if (!name || strcmp(name, "bmaptool") != 0) {
        printf("bmapkit %s\n", bk_version());
        return;
    }
    printf("bmaptool %s\n", CLI_REFERENCE_VERSION);
    if (isatty(STDOUT_FILENO))
        printf("(bmapkit %s, accepting the command line of bmaptool %s)\n", bk_version(),
               CLI_REFERENCE_VERSION);
}

int main(int argc, char **argv)
{
    /* ssh asking for the password of an ssh:// image (see ssh_source.c). */
    int askpass = ssh_askpass(argc, argv);
    if (askpass >= 0)
        return askpass;
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
            print_version(argv[0]);
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
            return cli_final_status(commands[i].run(argc - first, argv + first));
        }
    }
    return cli_usage_error(NULL, "unknown command '%s'", name);
}
