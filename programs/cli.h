/* SPDX-License-Identifier: MIT */
/* Shared pieces of the bmapkit command: messages, exit codes, subcommand entry points. */
#ifndef BMAPKIT_CLI_H
#define BMAPKIT_CLI_H

#include <getopt.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "bmapkit/error.h"

/* Exit statuses, documented in bmapkit(1). */
enum {
    EXIT_OK = 0,
    EXIT_ERROR = 1,
    EXIT_USAGE = 2,
    EXIT_VERIFY = 3,      /* data did not match its checksum */
    EXIT_INTERRUPTED = 4, /* stopped by a signal */
};

/* Options every subcommand shares. */
struct cli_globals {
    bool quiet;
    bool debug;
};

extern struct cli_globals cli;

/* Set by SIGINT/SIGTERM/SIGHUP once cli_install_signals ran. */
extern atomic_int cli_interrupted;

/* Catch SIGINT, SIGTERM and SIGHUP into cli_interrupted (no SA_RESTART). */
void cli_install_signals(void);

/* The library's cancellation hook: whether a signal asked to stop (CTX unused). */
bool cli_cancel_requested(void *ctx);

/*
 * What the user can do about ERR with an option of the command, as a tail for its
 * message ("" when nothing): the library names what failed, the command the option.
 */
const char *cli_hint(const struct bk_error *err);

/*
 * Like cli_hint, for ERR from opening the destination DEST: also says how to get write
 * access to a disk when ERR is a refused permission.
 */
const char *cli_dest_hint(const struct bk_error *err, const char *dest);

/*
 * The release of the reference bmaptool whose command line the command accepts: copy's
 * --removable-device, --keyring and --fingerprint came with it. Under the name bmaptool,
 * --version prints "bmaptool" and this, as that release does.
 */
#define CLI_REFERENCE_VERSION "3.9.0"

/*
 * An error line, with the class of the failure for the error sink: the bk_code_name of
 * the library error whose cli_message the line holds, else NULL (a check of the
 * command itself); usage errors are "usage".
 */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An error line of class CODE. */
void cli_error_code(enum bk_code code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Receives each error line (without "bmapkit: error: ") and its class, or NULL. */
typedef void (*cli_error_fn)(void *ctx, const char *code, const char *line);

/* Hand every error line from now on to FN (NULL: to nobody). */
void cli_set_error_sink(cli_error_fn fn, void *ctx);

void cli_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Put back the I/O settings that a copy killed or crashed earlier left on a disk (under
 * SYSROOT, a fake tree), with a warning for each; done at the start of copy and list.
 */
void cli_recover_tuning(const char *sysroot);
/* Informational line; silent with -q. */
void cli_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only with -d. */
void cli_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The exit status that matches ERR's code. */
int cli_exit_status(const struct bk_error *err);

/*
 * ERR's message, or a line saying that it has none (a library bug, never hidden). The
 * error line printed next, if printed right away, takes ERR's class.
 */
const char *cli_message(const struct bk_error *err);

/*
 * The exit status of the command for STATUS: an error that a signal caused (a blocking
 * open or read cut short, EINTR) is an interruption, status 4.
 */
int cli_final_status(int status);

/* Print ERR as an error and return the exit status that matches its code. */
int cli_fail(const struct bk_error *err);

/* Usage error: print the message and a hint to --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Name of the option getopt_long just rejected ("--bogus", or "-x" inside "-xq"). */
const char *cli_rejected_option(char **argv, const struct option *longopts, char *buf, size_t cap);

/* Returned by cli_common_option when the option was handled and parsing goes on. */
#define CLI_CONTINUE (-1)

/*
 * Handle what every subcommand's option loop shares: -q, -d, -h (calls HELP), a missing
 * value and an unknown option. Returns CLI_CONTINUE or the exit status to return.
 */
int cli_common_option(int c, const char *cmd, char **argv, const struct option *longopts,
                      void (*help)(void));

/* Parse a decimal number from MIN to MAX into *OUT; -1 when S is not one. */
int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

/* Whether PATH is a URL (http, https, ftp, file:) that the library opens itself. */
bool cli_is_url(const char *path);

/* Whether PATH is a URL fetched over the network (not a file: URL). */
bool cli_is_net_url(const char *path);

/* "1.5 GiB" into BUF. */
const char *cli_human_bytes(uint64_t bytes, char *buf, size_t cap);

/* Seconds since an arbitrary start, monotonic. */
double cli_now(void);

int cmd_copy(int argc, char **argv);
int cmd_create(int argc, char **argv);

#endif
