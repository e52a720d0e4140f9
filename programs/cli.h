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

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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

/* ERR's message, or a line saying that it has none (a library bug, never hidden). */
const char *cli_message(const struct bk_error *err);

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

/* "1.5 GiB" into BUF. */
const char *cli_human_bytes(uint64_t bytes, char *buf, size_t cap);

/* Seconds since an arbitrary start, monotonic. */
double cli_now(void);

int cmd_copy(int argc, char **argv);
int cmd_create(int argc, char **argv);

#endif
