/* SPDX-License-Identifier: MIT */
#include "cli.h"

#include <getopt.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "bmapkit/disk.h"

struct cli_globals cli;
atomic_int cli_interrupted;

static cli_error_fn error_sink;
static void *error_sink_ctx;
/* The class of the library error whose message the next error line holds. */
static const char *pending_code;

static void on_signal(int sig)
{
    atomic_store(&cli_interrupted, sig);
}

void cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* A closed pipe shows up as EPIPE on write, which names the output. */
    signal(SIGPIPE, SIG_IGN);
    /* A parent may start us with these blocked: what it sent meanwhile arrives now, at
       the handler, instead of being lost or killing us later by its default action. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

bool cli_cancel_requested(void *ctx)
{
    (void)ctx;
    return atomic_load(&cli_interrupted) != 0;
}

const char *cli_hint(const struct bk_error *err)
{
    switch (err->code) {
    case BK_E_IN_USE:
        return " (stop using it first, or use --force if you really mean to overwrite it)";
    case BK_E_NOT_REMOVABLE:
        return ", but --removable-device was given";
    case BK_E_UNVERIFIABLE:
        return " (use --no-verify to copy it without verification)";
    default:
        return "";
    }
}

const char *cli_dest_hint(const struct bk_error *err, const char *dest)
{
    static char hint[1024];
    struct stat st;
    /* The library says the open was refused; who may open a disk is the system's setup. */
    if ((err->sys_errno != EACCES && err->sys_errno != EPERM) || stat(dest, &st) < 0 ||
        !S_ISBLK(st.st_mode))
        return cli_hint(err);
    struct group *gr = getgrgid(st.st_gid);
    char group[300] = "";
    if (gr && st.st_gid != 0)
        snprintf(group, sizeof group, " '%s'", gr->gr_name);
    snprintf(hint, sizeof hint,
             " (writing to a disk takes root, e.g. sudo, or membership in the group%s that owns "
             "it; the udev rule 70-bmapkit-ums.rules, once installed, gives the user logged in "
             "at the seat access to a board's U-Boot UMS disk when it is connected)",
             group);
    return hint;
}

void cli_set_error_sink(cli_error_fn fn, void *ctx)
{
    error_sink = fn;
    error_sink_ctx = ctx;
}

/* Print one message; an error also goes to the sink with CODE, or the pending class. */
static void vmessage(const char *level, const char *code, const char *fmt, va_list ap)
{
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    bk_redact_passwords(line); /* an image or bmap URL the user gave with its password */
    if (level)
        fprintf(stderr, "bmapkit: %s: %s\n", level, line);
    else
        fprintf(stderr, "bmapkit: %s\n", line);
    if (level && strcmp(level, "error") == 0 && error_sink)
        error_sink(error_sink_ctx, code ? code : pending_code, line);
    pending_code = NULL;
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error", NULL, fmt, ap);
    va_end(ap);
}

void cli_error_code(enum bk_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error", bk_code_name(code), fmt, ap);
    va_end(ap);
}

void cli_warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning", NULL, fmt, ap);
    va_end(ap);
}

static void warn_recovered(void *ctx, const char *msg)
{
    (void)ctx;
    cli_warning("%s", msg);
}

void cli_recover_tuning(const char *sysroot)
{
    bk_tuning_recover_all(sysroot, warn_recovered, NULL);
}

void cli_info(const char *fmt, ...)
{
    if (cli.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmessage(NULL, NULL, fmt, ap);
    va_end(ap);
}

void cli_debug(const char *fmt, ...)
{
    if (!cli.debug)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmessage("debug", NULL, fmt, ap);
    va_end(ap);
}

const char *cli_message(const struct bk_error *err)
{
    pending_code = bk_code_name(err->code);
    /* Every failing library call says what failed; an empty message is a library bug. */
    return err->msg[0] ? err->msg : "internal error: a library call failed without a message";
}

int cli_final_status(int status)
{
    if (status == EXIT_ERROR && atomic_load(&cli_interrupted))
        return EXIT_INTERRUPTED;
    return status;
}

int cli_fail(const struct bk_error *err)
{
    cli_error("%s%s", cli_message(err), cli_hint(err));
    return cli_exit_status(err);
}

int cli_exit_status(const struct bk_error *err)
{
    switch (err->code) {
    case BK_E_VERIFY:
        return EXIT_VERIFY;
    case BK_E_CANCELLED:
        return EXIT_INTERRUPTED;
    default:
        return EXIT_ERROR;
    }
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error", "usage", fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "Try 'bmapkit %s --help' for more information.\n", cmd);
    else
        fprintf(stderr, "Try 'bmapkit --help' for more information.\n");
    return EXIT_USAGE;
}

const char *cli_human_bytes(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%" PRIu64 " bytes", bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", v, units[u]);
    return buf;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The option getopt_long rejected with '?'. An unknown long option sets optopt to 0 and
 * a long option given a value it does not take sets it to that option's code; both end
 * their argument, so argv[optind - 1] names them. Otherwise optopt is an unknown short
 * option, possibly in the middle of a group such as "-xq" where optind has not moved.
 */
const char *cli_rejected_option(char **argv, const struct option *longopts, char *buf, size_t cap)
{
    if (optopt == 0)
        return argv[optind - 1];
    for (const struct option *o = longopts; o->name; o++)
        if (o->val == optopt)
            return argv[optind - 1];
    snprintf(buf, cap, "-%c", optopt);
    return buf;
}

int cli_common_option(int c, const char *cmd, char **argv, const struct option *longopts,
                      void (*help)(void))
{
    char shortopt[4];
    switch (c) {
    case 'q':
        cli.quiet = true;
        return CLI_CONTINUE;
    case 'd':
        cli.debug = true;
        return CLI_CONTINUE;
    case 'h':
        help();
        return EXIT_OK;
    case ':':
        return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
    default:
        return cli_usage_error(cmd, "unknown option '%s'",
                               cli_rejected_option(argv, longopts, shortopt, sizeof shortopt));
    }
}

int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

bool cli_is_url(const char *path)
{
    const char *colon = strchr(path, ':');
    return strncmp(path, "file:", 5) == 0 || (colon && strncmp(colon, "://", 3) == 0);
}

bool cli_is_net_url(const char *path)
{
    return cli_is_url(path) && strncasecmp(path, "file:", 5) != 0;
}
