/* SPDX-License-Identifier: MIT */
/*
 * ssh:// destinations: the URL, quoting for the remote shell, the ssh process, what its
 * error output says, and the one call that asks the other host what it has.
 */
#include "remote.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

/* The first release whose copy takes --bmap-from-stdin; an older one gets the NBD way. */
#define REMOTE_MIN_VERSION "0.2.0"

bool remote_is_url(const char *s)
{
    return strncmp(s, "ssh://", 6) == 0;
}

static int url_error(const char *cmd, const char *text, const char *why)
{
    /* The message stays one line: control characters are shown as \xNN. */
    char shown[1024];
    size_t n = 0;
    for (const char *c = text; *c && n + 5 < sizeof shown; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            n += (size_t)snprintf(shown + n, sizeof shown - n, "\\x%02x", (unsigned char)*c);
        else
            shown[n++] = *c;
    }
    shown[n] = '\0';
    return cli_usage_error(cmd, "bad ssh destination '%s': %s (the form is %s)", shown, why,
                           strcmp(cmd, "list") == 0 ? "ssh://[USER@]HOST[:PORT]"
                                                    : "ssh://[USER@]HOST[:PORT]/PATH");
}

/* Letters, digits and CHARS only, and not starting with '-' (ssh would take an option). */
static bool plain_word(const char *s, size_t len, const char *chars)
{
    if (len == 0 || s[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(chars, c)))
            return false;
    }
    return true;
}

static bool copy_part(char *out, size_t cap, const char *s, size_t len)
{
    if (len >= cap)
        return false;
    memcpy(out, s, len);
    out[len] = '\0';
    return true;
}

/* USER@ of the authority A (LEN bytes): *USED is how much of A it takes. */
static const char *parse_user(const char *a, size_t len, struct remote_url *u, size_t *used)
{
    const char *at = memchr(a, '@', len);
    *used = 0;
    if (!at)
        return NULL;
    size_t ulen = (size_t)(at - a);
    if (memchr(a, ':', ulen))
        return "a password cannot be given in the URL: ssh asks for it, or uses keys";
    if (!plain_word(a, ulen, "._-") || !copy_part(u->user, sizeof u->user, a, ulen))
        return "the user name must be letters, digits, '.', '_' and '-'";
    *used = ulen + 1;
    return NULL;
}

/* HOST[:PORT] or [IPV6][:PORT]. */
static const char *parse_host(const char *h, size_t len, struct remote_url *u)
{
    const char *port = NULL;
    size_t hlen = len;
    if (len > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', len);
        if (!close || !plain_word(h + 1, (size_t)(close - h - 1), ":.") ||
            !copy_part(u->host, sizeof u->host, h + 1, (size_t)(close - h - 1)))
            return "a bracketed host must be an IPv6 address, as in [::1]";
        size_t rest = len - (size_t)(close + 1 - h);
        if (rest > 0 && close[1] != ':')
            return "only ':PORT' may follow ']'";
        port = rest > 0 ? close + 2 : NULL;
    } else {
        const char *colon = memchr(h, ':', len);
        hlen = colon ? (size_t)(colon - h) : len;
        if (hlen == 0)
            return "no host";
        if (!plain_word(h, hlen, "._-") || !copy_part(u->host, sizeof u->host, h, hlen))
            return "the host must be a name or an address (letters, digits, '.', '-', '_')";
        port = colon ? colon + 1 : NULL;
    }
    if (port) {
        size_t plen = len - (size_t)(port - h);
        unsigned n;
        char text[8];
        if (!copy_part(text, sizeof text, port, plen) || cli_parse_uint(text, 1, 65535, &n) < 0)
            return "the port must be a number from 1 to 65535";
        snprintf(u->port, sizeof u->port, "%u", n);
    }
    return NULL;
}

/* /PATH, or /ums, /ums:SELECTOR for the UMS disk of the other host. */
static const char *parse_path(const char *p, struct remote_url *u, bool with_path)
{
    if (!with_path)
        return p[0] && strcmp(p, "/") != 0 ? "a host is listed, not a path" : NULL;
    if (strlen(p) < 2)
        return "no path after the host (as in ssh://HOST/dev/sdX)";
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return "the path holds a control character";
    if (!copy_part(u->path, sizeof u->path, p, strlen(p)))
        return "the path is too long";
    if (strcmp(p, "/ums") == 0) {
        u->ums = true;
    } else if (strncmp(p, "/ums:", 5) == 0) {
        if (!plain_word(p + 5, strlen(p + 5), ".:_-") ||
            !copy_part(u->ums_selector, sizeof u->ums_selector, p + 5, strlen(p + 5)))
            return "ums: is followed by a LUN, serial or USB port path (letters, digits, "
                   "'.', ':', '_', '-')";
        u->ums = true;
    }
    return NULL;
}

int remote_parse_url(const char *cmd, const char *text, bool with_path, struct remote_url *u)
{
    memset(u, 0, sizeof *u);
    u->text = text;
    if (!remote_is_url(text))
        return url_error(cmd, text, "it does not start with ssh://");
    const char *a = text + 6;
    const char *slash = strchr(a, '/');
    size_t alen = slash ? (size_t)(slash - a) : strlen(a);
    size_t used;
    const char *why = parse_user(a, alen, u, &used);
    if (!why)
        why = parse_host(a + used, alen - used, u);
    if (!why)
        why = parse_path(slash ? slash : "", u, with_path);
    return why ? url_error(cmd, text, why) : CLI_CONTINUE;
}

/* ---------------------------------------------------------------- strings */

void rbuf_add(struct rbuf *b, const void *data, size_t len)
{
    if (b->failed)
        return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void rbuf_addf(struct rbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        rbuf_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rbuf_add(b, big, (size_t)n);
    free(big);
}

void rbuf_add_word(struct rbuf *b, const char *arg)
{
    rbuf_add(b, " ", 1);
    rbuf_add_quoted(b, arg);
}

void rbuf_add_quoted(struct rbuf *b, const char *arg)
{
    /* Inside single quotes the shell takes every byte as it is, except the quote itself. */
    rbuf_add(b, "'", 1);
    for (const char *q; (q = strchr(arg, '\'')); arg = q + 1) {
        rbuf_add(b, arg, (size_t)(q - arg));
        rbuf_add(b, "'\\''", 4);
    }
    rbuf_add(b, arg, strlen(arg));
    rbuf_add(b, "'", 1);
}

void rbuf_free(struct rbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- the ssh process */

char **remote_argv(const struct remote_url *u, const char *command, int redirect_fd)
{
    const char *ssh = getenv("BMAPKIT_SSH_COMMAND");
    if (!ssh || !ssh[0])
        ssh = "ssh";
    /* The user's command line is the shell's to read, as git does with GIT_SSH_COMMAND;
       every argument after it comes through "$@", never through the script's text. The
       shell gives way to ssh (exec), so that stopping the process stops ssh itself. */
    struct rbuf script = {0};
    rbuf_addf(&script, "exec %s \"$@\"", ssh);
    if (redirect_fd >= 0)
        rbuf_addf(&script, " 2>&%d", redirect_fd);
    const char *args[] = {
        "-T",   u->port[0] ? "-p" : NULL, u->port, u->user[0] ? "-l" : NULL, u->user, u->host,
        command};
    char **argv = calloc(4 + sizeof args / sizeof *args + 1, sizeof *argv);
    size_t n = 0;
    if (!argv || script.failed) {
        free(argv);
        rbuf_free(&script);
        return NULL;
    }
    argv[n++] = strdup("/bin/sh");
    argv[n++] = strdup("-c");
    argv[n++] = script.data;
    argv[n++] = strdup("ssh");
    for (size_t i = 0; i < sizeof args / sizeof *args; i++) {
        if ((i == 1 || i == 3) && !args[i]) {
            i++; /* no -p PORT or -l USER */
            continue;
        }
        argv[n++] = strdup(args[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (!argv[i]) {
            argv[n] = NULL;
            remote_argv_free(argv);
            return NULL;
        }
    }
    return argv;
}

void remote_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* In the child: its standard streams, then the shell that runs ssh. */
static void exec_child(char **argv, int in, int out, int err)
{
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(127);
    /* The command ignores SIGPIPE for itself; ssh and the shell get the default back. */
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv);
    _exit(127);
}

int remote_spawn(const struct remote_url *u, const char *command, bool want_stdin,
                 struct remote_proc *p)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    p->pid = -1;
    p->in = p->out = p->err = -1;
    char **argv = remote_argv(u, command, -1);
    bool ok = argv && pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0 &&
              (want_stdin ? pipe2(in, O_CLOEXEC)
                          : ((in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 ? -1 : 0)) == 0;
    if (ok) {
        cli_debug("running: %s %s",
                  getenv("BMAPKIT_SSH_COMMAND") ? getenv("BMAPKIT_SSH_COMMAND") : "ssh", command);
        fflush(NULL);
        p->pid = fork();
        if (p->pid == 0)
            exec_child(argv, in[0], out[1], err[1]);
    }
    int saved = errno;
    remote_argv_free(argv);
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    if (!ok || p->pid < 0) {
        close_fd(&in[1]);
        close_fd(&out[0]);
        close_fd(&err[0]);
        cli_error("%s: cannot start ssh: %s", u->text, strerror(saved ? saved : ENOMEM));
        return -1;
    }
    p->in = in[1];
    p->out = out[0];
    p->err = err[0];
    if (p->in >= 0)
        fcntl(p->in, F_SETFL, fcntl(p->in, F_GETFL) | O_NONBLOCK);
    fcntl(p->out, F_SETFL, fcntl(p->out, F_GETFL) | O_NONBLOCK);
    fcntl(p->err, F_SETFL, fcntl(p->err, F_GETFL) | O_NONBLOCK);
    return 0;
}

int remote_wait(struct remote_proc *p)
{
    close_fd(&p->in);
    close_fd(&p->out);
    close_fd(&p->err);
    if (p->pid <= 0)
        return 255;
    int st;
    while (waitpid(p->pid, &st, 0) < 0) {
        if (errno != EINTR)
            return 255;
    }
    p->pid = -1;
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

int line_reader_feed(struct line_reader *r, int fd, void (*fn)(void *ctx, char *line), void *ctx)
{
    for (;;) {
        ssize_t n = read(fd, r->buf + r->len, sizeof r->buf - 1 - r->len);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 1 : -1;
        if (n == 0) {
            if (r->len > 0) {
                r->buf[r->len] = '\0';
                r->len = 0;
                fn(ctx, r->buf);
            }
            return 0;
        }
        r->len += (size_t)n;
        char *start = r->buf, *nl;
        while ((nl = memchr(start, '\n', r->len - (size_t)(start - r->buf)))) {
            *nl = '\0';
            fn(ctx, start);
            start = nl + 1;
        }
        r->len -= (size_t)(start - r->buf);
        memmove(r->buf, start, r->len);
        if (r->len == sizeof r->buf - 1) {
            r->buf[r->len] = '\0';
            r->len = 0;
            fn(ctx, r->buf);
        }
    }
}

/* ---------------------------------------------------------------- remote messages */

void remote_errors_line(void *ctx, char *line)
{
    struct remote_errors *e = ctx;
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
        line[--n] = '\0';
    if (strncmp(line, "bmapkit: error: ", 16) == 0) {
        snprintf(e->error, sizeof e->error, "%s", line + 16);
    } else if (strncmp(line, "bmapkit: warning: ", 18) == 0) {
        if (e->before_print)
            e->before_print(e->ctx);
        cli_warning("%s: %s", e->url->text, line + 18);
    } else if (strncmp(line, "bmapkit: debug: ", 16) == 0) {
        cli_debug("%s: %s", e->url->text, line + 16);
    } else if (strncmp(line, "Try 'bmapkit", 12) == 0) {
        e->remote_usage = true;
    } else if (n > 0) {
        cli_debug("%s: %s", e->url->text, line);
        snprintf(e->other, sizeof e->other, "%s", line);
    }
}

/* ---------------------------------------------------------------- what the host has */

/* Whether the version text V ("0.2.0") is at least MIN. */
static bool version_at_least(const char *v, const char *min)
{
    unsigned a[3] = {0}, b[3] = {0};
    if (sscanf(v, "%u.%u.%u", &a[0], &a[1], &a[2]) < 2)
        return false;
    sscanf(min, "%u.%u.%u", &b[0], &b[1], &b[2]);
    for (int i = 0; i < 3; i++)
        if (a[i] != b[i])
            return a[i] > b[i];
    return true;
}

static void probe_line(void *ctx, char *line)
{
    struct remote_probe *pr = ctx;
    char type[16] = "";
    unsigned rm = 0;
    if (strncmp(line, "bmapkit ", 8) == 0) {
        pr->bmapkit = true;
        snprintf(pr->bmapkit_version, sizeof pr->bmapkit_version, "%s", line + 8);
        pr->bmapkit_usable = strncmp(line + 8, "bmapkit ", 8) == 0 &&
                             version_at_least(line + 16, REMOTE_MIN_VERSION);
    } else if (strcmp(line, "nbdkit") == 0) {
        pr->nbdkit = true;
    } else if (strcmp(line, "lsblk") == 0) {
        pr->lsblk = true;
    } else if (strcmp(line, "block") == 0) {
        pr->kind = REMOTE_BLOCK;
    } else if (strcmp(line, "file") == 0) {
        pr->kind = REMOTE_FILE;
    } else if (strcmp(line, "other") == 0) {
        pr->kind = REMOTE_OTHER;
    } else if (strcmp(line, "nodir") == 0) {
        pr->kind = REMOTE_NO_DIR;
    } else if (sscanf(line, "dev %" SCNu64 " %u %15s", &pr->size, &rm, type) == 3) {
        pr->removable = rm == 1;
        pr->whole_disk = strcmp(type, "disk") == 0 || strcmp(type, "loop") == 0;
    } else if (strncmp(line, "mount ", 6) == 0) {
        size_t n = strlen(pr->mounts);
        snprintf(pr->mounts + n, sizeof pr->mounts - n, "%s%s", n ? " " : "", line + 6);
        if (strcmp(line + 6, "/") == 0)
            pr->holds_root = true;
    }
}

/* The script of the probe: one fact a line, for probe_line. */
static void probe_script(struct rbuf *s, const struct remote_url *u, const char *bmapkit_cmd)
{
    /* Non-login sessions often lack the sbin directories, where nbdkit may be. */
    rbuf_addf(s, "PATH=\"$PATH:/usr/sbin:/sbin\"; b=");
    rbuf_add_quoted(s, bmapkit_cmd);
    rbuf_addf(s, "; if command -v \"$b\" >/dev/null 2>&1; then "
                 "echo \"bmapkit $(\"$b\" --version 2>/dev/null | head -n 1)\"; fi; "
                 "if command -v nbdkit >/dev/null 2>&1; then echo nbdkit; fi; "
                 "if command -v lsblk >/dev/null 2>&1; then echo lsblk; fi; ");
    if (u->ums)
        return;
    rbuf_addf(s, "p=");
    rbuf_add_quoted(s, u->path);
    rbuf_addf(s, "; if [ -b \"$p\" ]; then echo block; "
                 "lsblk -bdno SIZE,RM,TYPE \"$p\" 2>/dev/null | sed 's/^ */dev /'; "
                 "lsblk -nrpo MOUNTPOINT \"$p\" 2>/dev/null | sed '/^$/d; s/^/mount /'; "
                 "elif [ -f \"$p\" ]; then echo file; elif [ -e \"$p\" ]; then echo other; "
                 "elif [ -d \"$(dirname -- \"$p\")\" ]; then echo missing; else echo nodir; fi\n");
}

int remote_probe(const struct remote_url *u, const char *bmapkit_cmd, struct remote_probe *pr)
{
    memset(pr, 0, sizeof *pr);
    pr->kind = REMOTE_MISSING;
    struct rbuf script = {0};
    probe_script(&script, u, bmapkit_cmd);
    if (script.failed) {
        rbuf_free(&script);
        cli_error("out of memory");
        return EXIT_ERROR;
    }
    struct remote_proc p;
    int rc = remote_spawn(u, script.data, false, &p);
    rbuf_free(&script);
    if (rc < 0)
        return EXIT_ERROR;
    struct remote_errors errs = {.url = u};
    struct line_reader out = {0}, err = {0};
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
        struct pollfd fds[2] = {{.fd = out_open ? p.out : -1, .events = POLLIN},
                                {.fd = err_open ? p.err : -1, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR && !atomic_load(&cli_interrupted))
                continue;
            break;
        }
        if (fds[0].revents)
            out_open = line_reader_feed(&out, p.out, probe_line, pr) > 0;
        if (fds[1].revents)
            err_open = line_reader_feed(&err, p.err, remote_errors_line, &errs) > 0;
    }
    if (out_open || err_open)
        kill(p.pid, SIGTERM);
    int status = remote_wait(&p);
    if (atomic_load(&cli_interrupted)) {
        cli_error("%s: interrupted", u->text);
        return EXIT_INTERRUPTED;
    }
    if (status != 0) {
        cli_error("%s: cannot run a command there over ssh: %s", u->text,
                  errs.other[0] ? errs.other : "ssh failed without saying why");
        return EXIT_ERROR;
    }
    return EXIT_OK;
}
