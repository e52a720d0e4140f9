/* SPDX-License-Identifier: MIT */
/*
 * The standard output of a program as a source (ssh HOST cat FILE, say). The program's
 * exit status is part of the stream: its end is the end of the image only when it
 * exited 0, so a dropped connection never passes for a short image.
 */
#include "source/source_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* How long a program stopped early has to end after SIGTERM before it gets SIGKILL. */
#define STOP_GRACE_MS 2000

struct command_source {
    struct bk_source pub;
    pid_t pid;   /* -1 once waited for */
    int out;     /* the program's standard output, -1 at its end */
    int err;     /* its error output, -1 at its end */
    int wake[2]; /* a byte in it interrupts the reads (command_interrupt) */
    uint64_t pos;
    _Atomic uint64_t received;
    char last[512]; /* the last non-empty line of its error output */
    char line[512]; /* the line being read */
    size_t line_len;
    bool failed; /* the end was reported as an error: report it again */
    struct bk_error end_err;
    char name[];
};

/* A line of the program's error output is complete: keep it when it says something. */
static void end_line(struct command_source *c)
{
    size_t n = c->line_len;
    while (n > 0 && (c->line[n - 1] == '\r' || c->line[n - 1] == ' ' || c->line[n - 1] == '\t'))
        n--;
    c->line_len = 0;
    if (n == 0)
        return;
    memcpy(c->last, c->line, n);
    c->last[n] = '\0';
    /* Messages are one line of printable text, without a password a program echoed. */
    for (char *p = c->last; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    bk_redact_passwords(c->last);
}

/* Take what the error output holds now; its end closes it. */
static void drain_err(struct command_source *c)
{
    char buf[4096];
    while (c->err >= 0) {
        ssize_t n = read(c->err, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            end_line(c);
            close(c->err);
            c->err = -1;
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n')
                end_line(c);
            else if (c->line_len < sizeof c->line - 1)
                c->line[c->line_len++] = buf[i];
        }
    }
}

/* Wait for the program; its status as waitpid gives it, or -1. */
static int reap(struct command_source *c, int options)
{
    int st;
    for (;;) {
        pid_t r = waitpid(c->pid, &st, options);
        if (r == c->pid) {
            c->pid = -1;
            return st;
        }
        if (r == 0 || errno != EINTR)
            return -1;
    }
}

/* Whether the reads were interrupted; fills ERR then. */
static bool interrupted(struct command_source *c, short revents, struct bk_error *err)
{
    if (!revents)
        return false;
    bk_error_set(err, BK_E_CANCELLED, 0, "%s: interrupted at byte %" PRIu64, c->pub.name, c->pos);
    return true;
}

/* The end of the output: the image ends here if the program succeeded. */
static int at_end(struct command_source *c, struct bk_error *err)
{
    while (c->err >= 0) {
        struct pollfd p[2] = {{.fd = c->err, .events = POLLIN},
                              {.fd = c->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (interrupted(c, p[1].revents, err))
            return -1;
        drain_err(c);
    }
    int st = reap(c, 0);
    if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    char why[64];
    if (st < 0)
        snprintf(why, sizeof why, "the command could not be waited for");
    else if (WIFSIGNALED(st))
        snprintf(why, sizeof why, "the command was killed by signal %d", WTERMSIG(st));
    else
        snprintf(why, sizeof why, "the command ended with status %d", WEXITSTATUS(st));
    c->failed = true;
    bk_error_clear(&c->end_err);
    if (c->last[0])
        bk_error_set(&c->end_err, BK_E_IO, 0, "%s: %s (%s after %" PRIu64 " bytes)", c->pub.name,
                     c->last, why, c->pos);
    else
        bk_error_set(&c->end_err, BK_E_IO, 0, "%s: %s after %" PRIu64 " bytes", c->pub.name, why,
                     c->pos);
    if (err)
        *err = c->end_err;
    return -1;
}

static int command_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                        struct bk_error *err)
{
    struct command_source *c = src->priv;
    *got = 0;
    if (c->failed) {
        if (err)
            *err = c->end_err;
        return -1;
    }
    while (c->out >= 0) {
        struct pollfd p[3] = {{.fd = c->out, .events = POLLIN},
                              {.fd = c->err, .events = POLLIN},
                              {.fd = c->wake[0], .events = POLLIN}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return bk_error_set(err, BK_E_IO, errno, "%s: poll failed at byte %" PRIu64, src->name,
                                c->pos);
        }
        if (interrupted(c, p[2].revents, err))
            return -1;
        if (p[1].revents)
            drain_err(c);
        if (!p[0].revents)
            continue;
        ssize_t n = read(c->out, buf, len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return bk_error_set(err, BK_E_IO, errno, "%s: read failed at byte %" PRIu64, src->name,
                                c->pos);
        if (n == 0) {
            close(c->out);
            c->out = -1;
            break;
        }
        *got = (size_t)n;
        c->pos += (uint64_t)n;
        atomic_fetch_add(&c->received, (uint64_t)n);
        return 0;
    }
    if (c->pid < 0)
        return 0; /* the end was seen and the program succeeded */
    return at_end(c, err);
}

static uint64_t command_fetched(const struct bk_source *src)
{
    struct command_source *c = src->priv;
    return atomic_load(&c->received);
}

static void command_interrupt(const struct bk_source *src)
{
    struct command_source *c = src->priv;
    /* The pipe is never drained: one byte keeps every later poll awake too. */
    ssize_t n = write(c->wake[1], "", 1);
    (void)n; /* full already: interrupted already */
}

/* A program still running when the source is closed is stopped and waited for. */
static void command_close(struct bk_source *src)
{
    struct command_source *c = src->priv;
    if (c->out >= 0)
        close(c->out);
    if (c->err >= 0)
        close(c->err);
    close(c->wake[0]);
    close(c->wake[1]);
    if (c->pid > 0 && reap(c, WNOHANG) < 0 && c->pid > 0) {
        kill(c->pid, SIGTERM);
        for (int waited = 0; c->pid > 0 && waited < STOP_GRACE_MS; waited += 10) {
            if (reap(c, WNOHANG) >= 0)
                break;
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        }
        if (c->pid > 0) {
            kill(c->pid, SIGKILL);
            reap(c, 0);
        }
    }
    free(c);
}

static const struct bk_source_ops command_ops = {
    .read = command_read,
    .fetched = command_fetched,
    .interrupt = command_interrupt,
    .close = command_close,
};

/* Start ARGV with C's pipes as its output and error output, /dev/null as its input. */
static int spawn(struct command_source *c, char *const *argv, char *const *envp, int out_w,
                 int err_w)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return ENOMEM;
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return ENOMEM;
    }
    /* The caller may ignore SIGPIPE or block signals; the program starts with defaults. */
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGTERM);
    int rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &def);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnp(&c->pid, argv[0], &fa, &attr, argv, envp ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc;
}

struct bk_source *bk_source_open_command(char *const *argv, char *const *envp, const char *name,
                                         struct bk_error *err)
{
    if (!argv || !argv[0] || !name) {
        bk_error_set(err, BK_E_INVALID, 0, "no program to read an image from");
        return NULL;
    }
    struct command_source *c = calloc(1, sizeof *c + strlen(name) + 1);
    if (!c) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    strcpy(c->name, name);
    bk_redact_passwords(c->name);
    c->pid = -1;
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    c->wake[0] = c->wake[1] = -1;
    int rc = 0;
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
        pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) < 0)
        rc = errno;
    if (rc == 0)
        rc = spawn(c, argv, envp, out[1], errp[1]);
    if (out[1] >= 0)
        close(out[1]);
    if (errp[1] >= 0)
        close(errp[1]);
    if (rc != 0) {
        bk_error_set(err, BK_E_IO, rc, "%s: cannot start %s", c->name, argv[0]);
        if (out[0] >= 0)
            close(out[0]);
        if (errp[0] >= 0)
            close(errp[0]);
        for (int i = 0; i < 2; i++)
            if (c->wake[i] >= 0)
                close(c->wake[i]);
        free(c);
        return NULL;
    }
    c->out = out[0];
    c->err = errp[0];
    fcntl(c->err, F_SETFL, fcntl(c->err, F_GETFL) | O_NONBLOCK);
    c->pub.ops = &command_ops;
    c->pub.name = c->name;
    c->pub.size = -1;
    c->pub.priv = c;
    return &c->pub;
}
