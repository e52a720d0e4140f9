/* SPDX-License-Identifier: MIT */
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define PLAIN_INTERVAL 5.0
#define BAR_INTERVAL 0.2
/* The bar's width between its brackets: at most, and the least it is shown with. */
#define BAR_MAX 30
#define BAR_MIN 10
/* How long closing waits for a psplash reader that is behind to take the last lines. */
#define PSPLASH_FLUSH_MS 1000

struct progress *copy_progress(void)
{
    static struct progress channel = {.psplash_fd = -1};
    return &channel;
}

/* Keep the first error line, the one that says why the copy did not start. */
static void keep_error(void *ctx, const char *code, const char *line)
{
    struct progress *p = ctx;
    if (p->have_error)
        return;
    p->have_error = true;
    snprintf(p->error_code, sizeof p->error_code, "%s", code ? code : "");
    snprintf(p->error_msg, sizeof p->error_msg, "%s", line);
}

int progress_open(struct progress *p, bool quiet, const char *json_path, const char *psplash_path)
{
    memset(p, 0, sizeof *p);
    p->psplash_fd = -1;
    p->psplash_sent = -1;
    p->psplash_target = -1;
    p->psplash_tried = -1;
    p->psplash_path = psplash_path;
    p->last_json_percent = -1;
    p->start = cli_now();
    if (!quiet) {
        p->bar = isatty(STDERR_FILENO);
        p->plain = !p->bar;
    }
    if (json_path) {
        p->json = strcmp(json_path, "-") == 0 ? stdout : fopen(json_path, "we");
        if (!p->json) {
            cli_error_code(BK_E_IO, "cannot open JSON events file %s: %s", json_path,
                           strerror(errno));
            return -1;
        }
        setvbuf(p->json, NULL, _IOLBF, 0);
        cli_set_error_sink(keep_error, p);
    }
    p->open = true;
    return 0;
}

void progress_restart_clock(struct progress *p)
{
    p->start = cli_now();
    p->net_base = p->net_src ? bk_source_fetched(p->net_src) : 0;
}

void progress_watch_network(struct progress *p, const struct bk_source *src)
{
    p->net_src = src;
    p->net_base = bk_source_fetched(src);
}

/* The "fetched" member of progress and done events, "" when the image is no URL. */
static void fetched_member(const struct progress *p, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (p->net_src)
        snprintf(buf, cap, ",\"fetched\":%" PRIu64, bk_source_fetched(p->net_src));
}

void progress_warning(struct progress *p, const char *fmt, ...)
{
    char msg[1024], q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    progress_clear(p);
    cli_warning("%s", msg);
    json_quote(q, sizeof q, msg);
    progress_event(p, "warning", "\"message\":%s", q);
}

/*
 * Open the psplash FIFO when it can be: psplash may start, or create its FIFO, after
 * the copy did, so a failed open is tried again at the next percent. Anything but a
 * FIFO is left alone (not even opened: closing a disk opened for writing makes udev
 * probe it again).
 */
static bool psplash_ready(struct progress *p)
{
    if (p->psplash_fd >= 0)
        return true;
    if (!p->psplash_path || p->psplash_off || p->psplash_target <= p->psplash_tried)
        return false;
    p->psplash_tried = p->psplash_target;
    struct stat st;
    int fd = -1;
    if (stat(p->psplash_path, &st) == 0 && !S_ISFIFO(st.st_mode))
        errno = 0;
    else
        fd = open(p->psplash_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))) {
        close(fd);
        fd = -1;
        errno = 0;
    }
    if (fd < 0 && errno == 0) {
        p->psplash_off = true;
        progress_warning(p, "%s is not a FIFO: no progress is sent to psplash", p->psplash_path);
        return false;
    }
    if (fd < 0) {
        /* Best effort, like psplash itself: a missing reader must not stop the copy. */
        if (!p->psplash_warned)
            progress_warning(p,
                             "cannot open psplash pipe %s: %s; the progress is sent once it "
                             "can be opened",
                             p->psplash_path, strerror(errno));
        p->psplash_warned = true;
        return false;
    }
    p->psplash_fd = fd;
    return true;
}

/*
 * Send every whole percent not sent yet, one write each, up to the one reached. A
 * reader that is behind (a full pipe) gets the rest later; with WAIT, for up to a
 * second. A reader that went away is looked for again at the next percent.
 */
static void psplash_send(struct progress *p, bool wait)
{
    double deadline = cli_now() + PSPLASH_FLUSH_MS / 1000.0;
    while (p->psplash_sent < p->psplash_target && psplash_ready(p)) {
        char line[32];
        int n = snprintf(line, sizeof line, "PROGRESS %d\n", p->psplash_sent + 1);
        ssize_t w = write(p->psplash_fd, line, (size_t)n);
        if (w == n) {
            p->psplash_sent++;
            continue;
        }
        /* Up to PIPE_BUF bytes go into a pipe whole or not at all. */
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {.fd = p->psplash_fd, .events = POLLOUT};
            int left = (int)((deadline - cli_now()) * 1000);
            if (wait && left > 0 && poll(&pfd, 1, left) > 0 && !(pfd.revents & POLLERR))
                continue;
            return;
        }
        close(p->psplash_fd);
        p->psplash_fd = -1;
        if (wait)
            return;
    }
}

static void format_eta(double seconds, char *buf, size_t cap)
{
    if (seconds < 0 || seconds > 99 * 3600) {
        snprintf(buf, cap, "--:--");
        return;
    }
    unsigned s = (unsigned)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, cap, "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, cap, "%u:%02u", s / 60, s % 60);
}

/*
 * Columns of the terminal on stderr, asked at each refresh so that a resized window is
 * followed; COLUMNS when the terminal does not tell (a serial console says 0), else 80.
 */
static int terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *env = getenv("COLUMNS");
    unsigned cols;
    if (env && cli_parse_uint(env, 1, 10000, &cols) == 0)
        return (int)cols;
    return 80;
}

/*
 * The parts of the bar line, in the order they are given up when the line is too long:
 * from the network, its rate stays longer than the copy's.
 */
enum { PART_RATE, PART_NET, PART_ETA, PART_BAR, PART_BYTES, PART_PERCENT, PARTS };

/* The order they are shown in after the bar. */
static const int shown_order[] = {PART_PERCENT, PART_BYTES, PART_RATE, PART_NET, PART_ETA};
#define SHOWN_PARTS (sizeof shown_order / sizeof shown_order[0])

/*
 * The bar line in at most AVAIL columns (ASCII only, so bytes are columns): the bar
 * shrinks to BAR_MIN first, then the rate, the network rate, the time left, the bar and
 * the byte counts go, in that order. The widths of the numbers are padded so that the
 * layout holds still from one refresh to the next. NET is NULL when the image is no URL.
 */
static void bar_line(char *out, size_t cap, int avail, int percent, const char *done,
                     const char *total, const char *rate, const char *net, const char *eta)
{
    char text[PARTS][96];
    bool show[PARTS];
    for (int i = 0; i < PARTS; i++)
        show[i] = true;
    if (percent < 0) {
        /* The amount to copy is unknown: how much so far, and how fast. */
        snprintf(text[PART_BYTES], sizeof text[0], "copied %-10s", done);
        show[PART_BAR] = show[PART_ETA] = show[PART_PERCENT] = false;
    } else {
        snprintf(text[PART_BYTES], sizeof text[0], "%10s / %s", done, total);
        snprintf(text[PART_PERCENT], sizeof text[0], "%3d%%", percent);
        snprintf(text[PART_ETA], sizeof text[0], "ETA %-7s", eta);
    }
    snprintf(text[PART_RATE], sizeof text[0], "%10s/s", rate);
    if (net)
        snprintf(text[PART_NET], sizeof text[0], "net %10s/s", net);
    else
        show[PART_NET] = false;
    text[PART_BAR][0] = '\0';

    int bar = 0;
    for (int drop = 0;; drop++) {
        int used = 0, n = 0;
        for (size_t k = 0; k < SHOWN_PARTS; k++)
            if (show[shown_order[k]]) {
                used += (n ? 2 : 0) + (int)strlen(text[shown_order[k]]);
                n++;
            }
        if (show[PART_BAR]) {
            bar = avail - used - 3; /* "[", "] " */
            if (bar >= BAR_MIN) {
                bar = bar > BAR_MAX ? BAR_MAX : bar;
                break;
            }
        } else if (used <= avail) {
            break;
        }
        while (drop < PARTS && !show[drop])
            drop++;
        if (drop == PARTS) {
            out[0] = '\0';
            return;
        }
        show[drop] = false;
    }

    size_t len = 0;
    out[0] = '\0';
    if (show[PART_BAR]) {
        int fill = percent * bar / 100;
        len += (size_t)snprintf(out + len, cap - len, "[%.*s%*s] ", fill,
                                "##############################", bar - fill, "");
    }
    const char *sep = "";
    for (size_t k = 0; k < SHOWN_PARTS && len < cap; k++) {
        if (!show[shown_order[k]])
            continue;
        len += (size_t)snprintf(out + len, cap - len, "%s%s", sep, text[shown_order[k]]);
        sep = "  ";
    }
}

void progress_update(struct progress *p, uint64_t done, uint64_t total)
{
    double now = cli_now();
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    int percent = total ? (int)(100.0 * (double)done / (double)total) : -1;
    percent = percent > 100 ? 100 : percent;
    bool complete = total && done >= total;

    if (percent > p->psplash_target) {
        p->psplash_target = percent;
        psplash_send(p, false);
    }

    /* Without a known total, percent stays -1: report the bytes once a second instead. */
    if (p->json &&
        (percent != p->last_json_percent || (percent < 0 && now - p->last_json_time >= 1.0))) {
        char fetched[48];
        fetched_member(p, fetched, sizeof fetched);
        progress_event(p, "progress",
                       "\"bytes\":%" PRIu64 ",\"total\":%" PRIu64 ",\"percent\":%d%s", done, total,
                       percent, fetched);
        p->last_json_percent = percent;
        p->last_json_time = now;
    }

    char a[32], b[32], r[32], eta[32], n[32];
    cli_human_bytes(done, a, sizeof a);
    cli_human_bytes(total, b, sizeof b);
    cli_human_bytes((uint64_t)rate, r, sizeof r);
    /* The network's rate since the clock started, the bytes fetched to open the image
       left out. */
    const char *net = NULL;
    char tail[64] = "";
    if (p->net_src) {
        uint64_t got = bk_source_fetched(p->net_src);
        got = got > p->net_base ? got - p->net_base : 0;
        net = cli_human_bytes(elapsed > 0 ? (uint64_t)((double)got / elapsed) : 0, n, sizeof n);
        snprintf(tail, sizeof tail, ", %s/s from the network", net);
    }
    if (p->bar && (complete || now - p->last_print >= BAR_INTERVAL)) {
        char line[256];
        format_eta(rate > 0 && total ? (double)(total - done) / rate : -1, eta, sizeof eta);
        /* One column stays free: a line as wide as the terminal moves the cursor on. */
        bar_line(line, sizeof line, terminal_columns() - 1, percent, a, b, r, net, eta);
        fprintf(stderr, "\r%s\033[K", line);
        fflush(stderr);
        p->bar_dirty = true;
        p->last_print = now;
    } else if (p->plain && !complete && now - p->last_print >= PLAIN_INTERVAL) {
        if (p->last_print > 0) {
            if (total)
                fprintf(stderr, "bmapkit: copied %s of %s (%d%%), %s/s%s\n", a, b, percent, r,
                        tail);
            else
                fprintf(stderr, "bmapkit: copied %s, %s/s%s\n", a, r, tail);
        }
        p->last_print = now;
    }
}

void progress_clear(struct progress *p)
{
    if (p->bar_dirty) {
        fputc('\n', stderr);
        p->bar_dirty = false;
    }
}

void json_quote(char *buf, size_t cap, const char *s)
{
    size_t n = 0;
    if (cap < 3)
        return;
    buf[n++] = '"';
    for (; *s && n + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

void progress_event(struct progress *p, const char *event, const char *fields_fmt, ...)
{
    if (!p->json)
        return;
    char fields[4096];
    va_list ap;
    va_start(ap, fields_fmt);
    vsnprintf(fields, sizeof fields, fields_fmt, ap);
    va_end(ap);
    bk_redact_passwords(fields); /* an image or bmap URL the user gave with its password */
    fprintf(p->json, "{\"event\":\"%s\",\"schema\":%d,\"time\":%.3f%s%s}\n", event, PROGRESS_SCHEMA,
            cli_now() - p->start, fields[0] ? "," : "", fields);
}

void progress_error(struct progress *p, const char *code, const char *message, int status)
{
    char q[4096];
    json_quote(q, sizeof q, message);
    progress_event(p, "error", "\"code\":\"%s\",\"message\":%s,\"exit\":%d", code, q, status);
}

/* The done event's name of what the copy did with a GPT. */
static const char *gpt_name(enum bk_copy_gpt gpt)
{
    switch (gpt) {
    case BK_COPY_GPT_NONE:
        return "none";
    case BK_COPY_GPT_AT_END:
        return "at-end";
    case BK_COPY_GPT_MOVABLE:
        return "movable";
    case BK_COPY_GPT_LEFT_ALONE:
        return "left-alone";
    case BK_COPY_GPT_MOVED:
        return "moved";
    case BK_COPY_GPT_UNCHECKED:
        break;
    }
    return "unchecked";
}

void progress_done(struct progress *p, int status, const struct bk_copy_stats *st, double seconds,
                   const char *verification)
{
    char fetched[48], extras[400];
    fetched_member(p, fetched, sizeof fetched);
    snprintf(extras, sizeof extras,
             ",\"ranges_forced\":%zu,\"forced_bytes\":%" PRIu64 ",\"zeroed_bytes\":%" PRIu64
             ",\"zeroed_released\":%" PRIu64 ",\"zeroed_offloaded\":%" PRIu64
             ",\"zeroed_written\":%" PRIu64 ",\"gpt\":\"%s\"",
             st->ranges_forced, st->forced_bytes, st->zeroed_bytes, st->zeroed_released,
             st->zeroed_offloaded, st->zeroed_written, gpt_name(st->gpt));
    progress_event(p, "done",
                   "\"status\":\"%s\",\"exit\":%d,\"bytes_written\":%" PRIu64
                   ",\"bytes_total\":%" PRIu64 ",\"ranges_verified\":%zu,\"ranges_unchecked\":%zu"
                   ",\"readback_checked\":%zu,\"readback_failed\":%zu,\"ranges_skipped\":%zu"
                   ",\"bytes_skipped\":%" PRIu64 ",\"bytes_compared\":%" PRIu64
                   "%s,\"seconds\":%.3f,\"verification\":\"%s\"%s",
                   status == EXIT_OK ? "ok" : "failed", status, st->bytes_written, st->bytes_total,
                   st->ranges_verified, st->ranges_unchecked, st->readback_checked,
                   st->readback_failed, st->ranges_skipped, st->bytes_skipped, st->bytes_compared,
                   extras, seconds, verification, fetched);
}

/* The class of a failure whose error line came from a check of the command itself. */
static const char *command_code(int status)
{
    switch (status) {
    case EXIT_USAGE:
        return "usage";
    case EXIT_VERIFY:
        return "verify";
    case EXIT_INTERRUPTED:
        return "cancelled";
    default:
        return "invalid";
    }
}

void progress_fail(struct progress *p, int status)
{
    if (!p->open || !p->json)
        return;
    const char *code = p->have_error && p->error_code[0] ? p->error_code : command_code(status);
    const char *msg =
        p->have_error ? p->error_msg : "internal error: the copy failed without an error message";
    progress_error(p, code, msg, status);
    struct bk_copy_stats none = {0};
    progress_done(p, status, &none, 0, "not verified");
}

void progress_close(struct progress *p)
{
    if (!p->open)
        return;
    progress_clear(p);
    psplash_send(p, true);
    if (p->json) {
        cli_set_error_sink(NULL, NULL);
        if (p->json != stdout)
            fclose(p->json);
        else
            fflush(stdout);
    }
    if (p->psplash_fd >= 0)
        close(p->psplash_fd);
    p->net_src = NULL;
    p->json = NULL;
    p->psplash_fd = -1;
    p->open = false;
}
