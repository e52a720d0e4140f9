/* SPDX-License-Identifier: MIT */
#include "disk_select.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

static void append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

void disk_marks(const struct bk_disk_info *d, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (d->ums_lun >= 0)
        append(buf, cap, " ums:%d", d->ums_lun);
    if (d->usage.holds_root)
        append(buf, cap, " system");
    if (d->usage.mounted)
        append(buf, cap, " mounted");
    if (d->usage.swap)
        append(buf, cap, " swap");
    if (d->usage.holders)
        append(buf, cap, " in-use");
    if (d->read_only)
        append(buf, cap, " ro");
    if (buf[0])
        memmove(buf, buf + 1, strlen(buf));
}

void disk_json(const struct bk_disk_info *d, char *buf, size_t cap)
{
    char path[200], name[150], disk[150], vendor[150], model[300], serial[300], tr[50], port[150],
        backing[600], usage[1100], lun[16];
    json_quote(path, sizeof path, d->path);
    json_quote(name, sizeof name, d->name);
    json_quote(disk, sizeof disk, d->disk);
    json_quote(vendor, sizeof vendor, d->vendor);
    json_quote(model, sizeof model, d->model);
    json_quote(serial, sizeof serial, d->serial);
    json_quote(tr, sizeof tr, d->transport);
    json_quote(port, sizeof port, d->usb_port);
    json_quote(backing, sizeof backing, d->backing);
    json_quote(usage, sizeof usage, d->usage.what);
    if (d->ums_lun >= 0)
        snprintf(lun, sizeof lun, "%d", d->ums_lun);
    else
        snprintf(lun, sizeof lun, "null");
    char marks[128], marks_json[256] = "";
    disk_marks(d, marks, sizeof marks);
    for (char *m = strtok(marks, " "); m; m = strtok(NULL, " ")) {
        /* "ums:0" is a display form; the JSON mark is "ums", the LUN has its own field. */
        if (strncmp(m, "ums:", 4) == 0)
            m[3] = '\0';
        append(marks_json, sizeof marks_json, "%s\"%s\"", marks_json[0] ? "," : "", m);
    }
    snprintf(buf, cap,
             "{\"path\":%s,\"name\":%s,\"type\":\"%s\",\"disk\":%s,\"size\":%" PRIu64
             ",\"transport\":%s,\"removable\":%s,\"read_only\":%s,\"vendor\":%s,\"model\":%s,"
             "\"serial\":%s,\"usb_port\":%s,\"backing_file\":%s,\"ums\":%s,\"ums_lun\":%s,"
             "\"mounted\":%s,\"system\":%s,\"swap\":%s,\"in_use\":%s,\"usage\":%s,"
             "\"marks\":[%s]}",
             path, name, d->partition ? "partition" : "disk", disk, d->size, tr,
             d->removable ? "true" : "false", d->read_only ? "true" : "false", vendor, model,
             serial, port, backing, d->ums_lun >= 0 ? "true" : "false", lun,
             d->usage.mounted ? "true" : "false", d->usage.holds_root ? "true" : "false",
             d->usage.swap ? "true" : "false", d->usage.holders ? "true" : "false", usage,
             marks_json);
}

void disk_identity(const struct bk_disk_info *d, char *buf, size_t cap)
{
    char size[32];
    snprintf(buf, cap, "%s: %s%s%s, %s", d->path, d->vendor, d->vendor[0] ? " " : "",
             d->model[0] ? d->model : "unknown model", cli_human_bytes(d->size, size, sizeof size));
    if (d->usb_port[0])
        append(buf, cap, ", USB port %s", d->usb_port);
    if (d->serial[0])
        append(buf, cap, ", serial %s", d->serial);
}

/* One line per disk under a refusal, so the user can pick. */
static void print_choices(const struct bk_disk_list *l)
{
    for (size_t i = 0; i < bk_disk_list_count(l); i++) {
        const struct bk_disk_info *d = bk_disk_list_get(l, i);
        char size[32];
        fprintf(stderr, "  %-12s LUN %d  serial %s  port %s  %s\n", d->path, d->ums_lun,
                d->serial[0] ? d->serial : "-", d->usb_port[0] ? d->usb_port : "-",
                cli_human_bytes(d->size, size, sizeof size));
    }
}

static void sleep_seconds(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    /* A signal ends the sleep early (no SA_RESTART), which is what we want. */
    nanosleep(&ts, NULL);
}

int ums_wait(const char *sysroot, const char *selector, unsigned timeout, struct bk_disk_info *out)
{
    const bool tty = !cli.quiet && isatty(STDERR_FILENO);
    const double start = cli_now(), deadline = start + timeout;
    char what[200];
    if (selector && selector[0])
        snprintf(what, sizeof what, "a U-Boot UMS disk matching '%.100s'", selector);
    else
        snprintf(what, sizeof what, "a U-Boot UMS disk");
    long shown = -1;
    bool waited = false;
    for (;;) {
        struct bk_error err;
        bk_error_clear(&err);
        struct bk_disk_list *l = bk_ums_find(sysroot, selector, &err);
        if (!l) {
            if (waited && tty)
                fputc('\n', stderr);
            return cli_fail(&err);
        }
        size_t count = bk_disk_list_count(l);
        if (count > 0 && waited && tty)
            fprintf(stderr, "\r\033[K");
        if (count == 1)
            *out = *bk_disk_list_get(l, 0);
        else if (count > 1) {
            cli_error("%zu U-Boot UMS disks are present%s%s%s; pick one with --ums=LUN, "
                      "--ums=SERIAL or --ums=PORT (or DEST ums:LUN):",
                      count, selector ? " matching '" : "", selector ? selector : "",
                      selector ? "'" : "");
            print_choices(l);
        }
        bk_disk_list_free(l);
        if (count > 0)
            return count == 1 ? EXIT_OK : EXIT_ERROR;

        double now = cli_now();
        if (cli_interrupted || now >= deadline) {
            if (waited && tty)
                fputc('\n', stderr);
            if (cli_interrupted) {
                cli_error("interrupted while waiting for %s", what);
                return EXIT_INTERRUPTED;
            }
            cli_error("no %s appeared within %u s (run 'ums 0 mmc 0' at the board's U-Boot "
                      "prompt and connect its USB device port to this computer; "
                      "'bmapkit list' shows the disks present)",
                      what + 2, timeout);
            return EXIT_ERROR;
        }
        long left = (long)(deadline - now + 0.999);
        if (tty && left != shown) {
            fprintf(stderr, "\rbmapkit: waiting for %s... %ld s left\033[K", what, left);
            fflush(stderr);
        } else if (!tty && (shown < 0 || (left % 10 == 0 && left != shown))) {
            if (shown < 0)
                cli_info("waiting up to %u s for %s (run 'ums 0 mmc 0' at the board's "
                         "U-Boot prompt)",
                         timeout, what);
            else
                cli_info("still waiting for %s... %ld s left", what, left);
        }
        shown = left;
        waited = true;
        double rest = deadline - now;
        sleep_seconds(rest < 0.5 ? rest : 0.5);
    }
}

int ums_wait_all(const char *sysroot, unsigned want, unsigned timeout, struct bk_disk_list **out)
{
    const bool tty = !cli.quiet && isatty(STDERR_FILENO);
    const double deadline = cli_now() + timeout;
    const size_t need = want ? want : 1;
    long shown = -1;
    bool waited = false;
    for (;;) {
        struct bk_error err;
        bk_error_clear(&err);
        struct bk_disk_list *l = bk_ums_find(sysroot, NULL, &err);
        if (!l) {
            if (waited && tty)
                fputc('\n', stderr);
            return cli_fail(&err);
        }
        size_t count = bk_disk_list_count(l);
        if (count >= need) {
            if (waited && tty)
                fprintf(stderr, "\r\033[K");
            *out = l;
            return EXIT_OK;
        }
        bk_disk_list_free(l);
        double now = cli_now();
        if (cli_interrupted || now >= deadline) {
            if (waited && tty)
                fputc('\n', stderr);
            if (cli_interrupted) {
                cli_error("interrupted while waiting for %zu U-Boot UMS disk(s), %zu present", need,
                          count);
                return EXIT_INTERRUPTED;
            }
            cli_error("%zu of %zu U-Boot UMS disk(s) appeared within %u s (run 'ums 0 mmc 0' "
                      "at each board's U-Boot prompt; 'bmapkit list' shows the disks present)",
                      count, need, timeout);
            return EXIT_ERROR;
        }
        long left = (long)(deadline - now + 0.999);
        if (tty && left != shown) {
            fprintf(
                stderr,
                "\rbmapkit: waiting for %zu U-Boot UMS disk(s), %zu present... %ld s left\033[K",
                need, count, left);
            fflush(stderr);
        } else if (!tty && (shown < 0 || (left % 10 == 0 && left != shown))) {
            cli_info("waiting up to %ld s for %zu U-Boot UMS disk(s), %zu present", left, need,
                     count);
        }
        shown = left;
        waited = true;
        double rest = deadline - now;
        sleep_seconds(rest < 0.5 ? rest : 0.5);
    }
}
