/* SPDX-License-Identifier: MIT */
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define PLAIN_INTERVAL 5.0
#define BAR_INTERVAL 0.2

int progress_open(struct progress *p, bool quiet, const char *json_path, const char *psplash_path)
{
    memset(p, 0, sizeof *p);
    p->psplash_fd = -1;
    p->last_percent = -1;
    p->last_json_percent = -1;
    p->start = cli_now();
    if (!quiet) {
        p->bar = isatty(STDERR_FILENO);
        p->plain = !p->bar;
    }
    if (json_path) {
        p->json = strcmp(json_path, "-") == 0 ? stdout : fopen(json_path, "we");
        if (!p->json) {
            cli_error("cannot open JSON events file %s: %s", json_path, strerror(errno));
            return -1;
        }
        setvbuf(p->json, NULL, _IOLBF, 0);
    }
    if (psplash_path) {
        /* Best effort, like psplash itself: a missing reader must not stop the copy. */
        p->psplash_fd = open(psplash_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (p->psplash_fd < 0)
            cli_warning("cannot open psplash pipe %s: %s", psplash_path, strerror(errno));
    }
    return 0;
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

void progress_update(struct progress *p, uint64_t done, uint64_t total)
{
    double now = cli_now();
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    int percent = total ? (int)(100.0 * (double)done / (double)total) : -1;
    bool complete = total && done >= total;

    if (p->psplash_fd >= 0 && percent >= 0 && percent != p->last_percent) {
        char line[32];
        int n = snprintf(line, sizeof line, "PROGRESS %d\n", percent);
        if (write(p->psplash_fd, line, (size_t)n) < 0 && errno != EAGAIN) {
            close(p->psplash_fd);
            p->psplash_fd = -1;
        }
    }
    p->last_percent = percent;

    /* Without a known total, percent stays -1: report the bytes once a second instead. */
    if (p->json &&
        (percent != p->last_json_percent || (percent < 0 && now - p->last_json_time >= 1.0))) {
        progress_event(p, "progress", "\"bytes\":%" PRIu64 ",\"total\":%" PRIu64 ",\"percent\":%d",
                       done, total, percent);
        p->last_json_percent = percent;
        p->last_json_time = now;
    }

    char a[32], b[32], r[32], eta[32];
    if (p->bar && (complete || now - p->last_print >= BAR_INTERVAL)) {
        int width = 30, fill = percent >= 0 ? percent * width / 100 : 0;
        format_eta(rate > 0 && total ? (double)(total - done) / rate : -1, eta, sizeof eta);
        fprintf(stderr, "\r[%.*s%*s] %3d%%  %s / %s  %s/s  ETA %s \033[K", fill,
                "##############################", width - fill, "", percent < 0 ? 0 : percent,
                cli_human_bytes(done, a, sizeof a), cli_human_bytes(total, b, sizeof b),
                cli_human_bytes((uint64_t)rate, r, sizeof r), eta);
        fflush(stderr);
        p->bar_dirty = true;
        p->last_print = now;
    } else if (p->plain && !complete && now - p->last_print >= PLAIN_INTERVAL) {
        if (p->last_print > 0) {
            if (total)
                fprintf(stderr, "bmapkit: copied %s of %s (%d%%), %s/s\n",
                        cli_human_bytes(done, a, sizeof a), cli_human_bytes(total, b, sizeof b),
                        percent, cli_human_bytes((uint64_t)rate, r, sizeof r));
            else
                fprintf(stderr, "bmapkit: copied %s, %s/s\n", cli_human_bytes(done, a, sizeof a),
                        cli_human_bytes((uint64_t)rate, r, sizeof r));
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
    fprintf(p->json, "{\"event\":\"%s\",\"time\":%.3f%s%s}\n", event, cli_now() - p->start,
            fields[0] ? "," : "", fields);
}

void progress_close(struct progress *p)
{
    progress_clear(p);
    if (p->json && p->json != stdout)
        fclose(p->json);
    if (p->psplash_fd >= 0)
        close(p->psplash_fd);
    p->json = NULL;
    p->psplash_fd = -1;
}
