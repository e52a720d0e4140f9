/* SPDX-License-Identifier: MIT */
/*
 * bmapkit copy IMAGE ssh://HOST/PATH. The bmap is found, read and its signature checked
 * here, as for a local copy. When the other host has bmapkit, the image goes there as
 * it is (compressed), after the bmap, over one ssh connection; the bmapkit there
 * decodes, checks and writes, and its events, warnings, error and exit status come back.
 * Otherwise the copy runs here and writes through nbdkit there (remote_nbd.c).
 */
#include "remote.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "copy_plan.h"
#include "disk_select.h"
#include "progress.h"

enum { CHUNK = 256 * 1024 };

struct sender {
    struct copy_plan *plan;
    const struct remote_url *u;
    struct progress *progress;
    struct remote_proc proc;
    struct remote_errors errs;
    struct line_reader out_lines, err_lines;

    /* What goes to the other host: the bmap, then the image file's bytes. */
    struct rbuf bmap;
    size_t bmap_sent;
    int image_fd;
    bool image_polled; /* a pipe or terminal: read only when poll says so */
    char *chunk;
    size_t chunk_len, chunk_off;
    bool image_done;
    int read_errno;
    uint64_t sent;
    bool interrupted;
    bool reported; /* the error and done events went out */

    /* What came back. */
    bool done;
    int remote_exit;
    char done_verification[32];
    struct bk_copy_stats stats;
    char error_code[32];
    char error_msg[2048];
};

/* ---------------------------------------------------------------- events from there */

static void relay(struct sender *s, const char *name, const char *line)
{
    char fields[4096];
    if (json_members_except_event(line, fields, sizeof fields))
        progress_event(s->progress, name, "%s", fields);
}

/* The UMS disk the other host found, shown as a local one would be. */
static void show_device(struct sender *s, const char *line)
{
    const char *v;
    size_t len;
    char dev[4096];
    if (!json_member(line, "device", &v, &len) || len >= sizeof dev)
        return;
    memcpy(dev, v, len);
    dev[len] = '\0';
    struct bk_disk_info d;
    memset(&d, 0, sizeof d);
    uint64_t lun = 0;
    json_member_string(dev, "path", d.path, sizeof d.path);
    json_member_string(dev, "name", d.name, sizeof d.name);
    json_member_string(dev, "vendor", d.vendor, sizeof d.vendor);
    json_member_string(dev, "model", d.model, sizeof d.model);
    json_member_string(dev, "serial", d.serial, sizeof d.serial);
    json_member_string(dev, "usb_port", d.usb_port, sizeof d.usb_port);
    json_member_string(dev, "transport", d.transport, sizeof d.transport);
    json_member_u64(dev, "size", &d.size);
    d.ums_lun = json_member_u64(dev, "ums_lun", &lun) ? (int)lun : -1;
    char id[1024];
    disk_identity(&d, id, sizeof id);
    progress_clear(s->progress);
    cli_info("U-Boot UMS disk on %s (LUN %d) %s", s->u->host, d.ums_lun, id);
}

static void take_done(struct sender *s, const char *line)
{
    uint64_t v = 0;
    s->done = true;
    s->remote_exit = json_member_u64(line, "exit", &v) && v < 256 ? (int)v : EXIT_ERROR;
    struct bk_copy_stats *st = &s->stats;
    if (json_member_u64(line, "bytes_written", &v))
        st->bytes_written = v;
    if (json_member_u64(line, "bytes_total", &v))
        st->bytes_total = v;
    if (json_member_u64(line, "ranges_verified", &v))
        st->ranges_verified = (size_t)v;
    if (json_member_u64(line, "ranges_unchecked", &v))
        st->ranges_unchecked = (size_t)v;
    if (json_member_u64(line, "readback_checked", &v))
        st->readback_checked = (size_t)v;
    if (json_member_u64(line, "readback_failed", &v))
        st->readback_failed = (size_t)v;
    if (json_member_u64(line, "ranges_skipped", &v))
        st->ranges_skipped = (size_t)v;
    if (json_member_u64(line, "bytes_skipped", &v))
        st->bytes_skipped = v;
    if (json_member_u64(line, "bytes_compared", &v))
        st->bytes_compared = v;
    if (!json_member_string(line, "verification", s->done_verification,
                            sizeof s->done_verification))
        snprintf(s->done_verification, sizeof s->done_verification, "not verified");
}

static void on_event(void *ctx, char *line)
{
    struct sender *s = ctx;
    char name[32];
    if (!json_member_string(line, "event", name, sizeof name)) {
        cli_debug("%s: not an event: %s", s->u->text, line);
        return;
    }
    uint64_t done = 0, total = 0;
    if (strcmp(name, "start") == 0) {
        return; /* this side announced the copy with its own names */
    } else if (strcmp(name, "progress") == 0) {
        if (json_member_u64(line, "bytes", &done) && json_member_u64(line, "total", &total)) {
            s->stats.bytes_written = done;
            s->stats.bytes_total = total;
            progress_update(s->progress, done, total);
        }
    } else if (strcmp(name, "error") == 0) {
        json_member_string(line, "code", s->error_code, sizeof s->error_code);
        json_member_string(line, "message", s->error_msg, sizeof s->error_msg);
    } else if (strcmp(name, "done") == 0) {
        take_done(s, line);
    } else {
        if (strcmp(name, "device") == 0)
            show_device(s, line);
        relay(s, name, line);
    }
}

static void end_bar(void *ctx)
{
    progress_clear(ctx);
}

/* ---------------------------------------------------------------- what goes there */

static int bmap_sink(void *ctx, const void *data, size_t len, struct bk_error *err)
{
    struct rbuf *b = ctx;
    rbuf_add(b, data, len);
    if (b->failed) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * The command the other host runs: its bmapkit copies standard input to the path, with
 * the options that concern the destination; events on standard output, the rest quiet.
 */
static void build_command(struct rbuf *c, const struct copy_plan *plan, const struct remote_url *u,
                          size_t bmap_len)
{
    rbuf_addf(c, "PATH=\"$PATH:/usr/sbin:/sbin\"; exec");
    rbuf_add_word(c, plan->remote_bmapkit);
    rbuf_addf(c, " copy -q --json-events -%s", cli.debug ? " -d" : "");
    if (plan->bmap)
        rbuf_addf(c, " --bmap-from-stdin=%zu", bmap_len);
    else
        rbuf_addf(c, " --nobmap");
    if (plan->no_verify)
        rbuf_addf(c, " --no-verify");
    if (plan->readback)
        rbuf_addf(c, " --readback --readback-retries=%u", plan->readback_retries);
    if (plan->skip_unchanged)
        rbuf_addf(c, " --skip-unchanged");
    if (plan->dopts.force)
        rbuf_addf(c, " --force");
    if (plan->dopts.removable_only)
        rbuf_addf(c, " --removable-device");
    if (plan->dopts.no_tune)
        rbuf_addf(c, " --no-tune");
    if (u->ums) {
        rbuf_addf(c, " --wait=%u", plan->ums_timeout);
        if (u->ums_selector[0]) {
            char opt[sizeof u->ums_selector + 8];
            snprintf(opt, sizeof opt, "--ums=%s", u->ums_selector);
            rbuf_add_word(c, opt);
        } else {
            rbuf_addf(c, " --ums");
        }
        rbuf_addf(c, " -");
    } else {
        rbuf_addf(c, " - --");
        rbuf_add_word(c, u->path);
    }
}

static bool pending(const struct sender *s)
{
    return s->bmap_sent < s->bmap.len || s->chunk_off < s->chunk_len;
}

/* The next piece of the image; the end or a read error ends the image. */
static void fill(struct sender *s)
{
    ssize_t n = read(s->image_fd, s->chunk, CHUNK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        s->read_errno = n < 0 ? errno : 0;
        s->image_done = true;
        return;
    }
    s->chunk_len = (size_t)n;
    s->chunk_off = 0;
}

/* Write what ssh takes now; false once it takes no more (the other side stopped reading). */
static bool send_some(struct sender *s)
{
    while (pending(s)) {
        bool head = s->bmap_sent < s->bmap.len;
        const char *p = head ? s->bmap.data + s->bmap_sent : s->chunk + s->chunk_off;
        size_t len = head ? s->bmap.len - s->bmap_sent : s->chunk_len - s->chunk_off;
        ssize_t n = write(s->proc.in, p, len);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        if (head)
            s->bmap_sent += (size_t)n;
        else
            s->chunk_off += (size_t)n;
        s->sent += (uint64_t)n;
    }
    return true;
}

/* Send everything and read what comes back, until ssh closes its outputs. */
static void pump(struct sender *s)
{
    bool in_open = true, out_open = true, err_open = true;
    while (out_open || err_open) {
        if (atomic_load(&cli_interrupted)) {
            s->interrupted = true;
            return;
        }
        if (in_open && !pending(s) && !s->image_done && !s->image_polled)
            fill(s);
        if (in_open && !pending(s) && s->image_done) {
            /* A short image would look whole to the other side: cut the connection. */
            if (s->read_errno)
                return;
            close(s->proc.in);
            s->proc.in = -1;
            in_open = false;
        }
        bool want_image = in_open && !pending(s) && !s->image_done && s->image_polled;
        struct pollfd fds[4] = {
            {.fd = in_open && pending(s) ? s->proc.in : -1, .events = POLLOUT},
            {.fd = out_open ? s->proc.out : -1, .events = POLLIN},
            {.fd = err_open ? s->proc.err : -1, .events = POLLIN},
            {.fd = want_image ? s->image_fd : -1, .events = POLLIN},
        };
        if (poll(fds, 4, -1) < 0)
            continue; /* a signal: looked at above */
        if (fds[0].revents && !send_some(s)) {
            close(s->proc.in);
            s->proc.in = -1;
            in_open = false;
        }
        if (fds[1].revents)
            out_open = line_reader_feed(&s->out_lines, s->proc.out, on_event, s) > 0;
        if (fds[2].revents)
            err_open =
                line_reader_feed(&s->err_lines, s->proc.err, remote_errors_line, &s->errs) > 0;
        if (fds[3].revents)
            fill(s);
    }
}

/* ---------------------------------------------------------------- the outcome */

/* Why the copy failed, from what came back, into MSG; returns the exit status. */
static int failure(struct sender *s, int ssh_status, char *msg, size_t cap)
{
    const char *host = s->u->host;
    if (s->interrupted) {
        snprintf(msg, cap,
                 "interrupted; the connection to %s was closed, which stops the copy there "
                 "before it writes the image's first MiB",
                 host);
        return EXIT_INTERRUPTED;
    }
    if (s->read_errno) {
        snprintf(msg, cap, "cannot read the image %s: %s; the connection to %s was closed",
                 s->plan->image, strerror(s->read_errno), host);
        return EXIT_ERROR;
    }
    const char *why = s->errs.error[0] ? s->errs.error : s->error_msg;
    if (why[0] && s->errs.remote_usage)
        snprintf(msg, cap,
                 "%s (the bmapkit on %s does not take the command line of this one; "
                 "install the same version there)",
                 why, host);
    else if (why[0])
        snprintf(msg, cap, "%s", why);
    else if (ssh_status != 255)
        snprintf(msg, cap, "the bmapkit on %s ended without saying why (exit status %d)%s%s", host,
                 ssh_status, s->errs.other[0] ? ": " : "", s->errs.other);
    else if (s->errs.other[0])
        snprintf(msg, cap, "the connection to %s ended before the copy did: %s", host,
                 s->errs.other);
    else
        snprintf(msg, cap, "the connection to %s ended before the copy did", host);
    if (s->done)
        return s->remote_exit == EXIT_USAGE ? EXIT_ERROR : s->remote_exit;
    return ssh_status >= 1 && ssh_status <= 4 && ssh_status != EXIT_USAGE ? ssh_status : EXIT_ERROR;
}

static void report_success(struct sender *s, double elapsed)
{
    char a[32], r[32], w[32];
    const struct bk_copy_stats *st = &s->stats;
    uint64_t rate = elapsed > 0 ? (uint64_t)((double)st->bytes_written / elapsed) : 0;
    cli_info("wrote %s to %s in %.2f s (%s/s), %s sent over ssh",
             cli_human_bytes(st->bytes_written, a, sizeof a), s->u->text, elapsed,
             cli_human_bytes(rate, r, sizeof r), cli_human_bytes(s->sent, w, sizeof w));
    if (s->plan->bmap && st->ranges_verified > 0)
        cli_info("verified %zu of %zu range(s)", st->ranges_verified,
                 bk_bmap_range_count(s->plan->bmap));
    if (s->plan->readback)
        cli_info("read back %zu range(s) from %s: all match", st->readback_checked, s->u->text);
}

static int finish(struct sender *s, int ssh_status, double elapsed)
{
    s->reported = true;
    progress_clear(s->progress);
    if (s->done && s->remote_exit == EXIT_OK) {
        report_success(s, elapsed);
        progress_done(s->progress, EXIT_OK, &s->stats, elapsed, s->done_verification);
        return EXIT_OK;
    }
    char msg[3072];
    int status = failure(s, ssh_status, msg, sizeof msg);
    cli_error("%s: %s", s->u->text, msg);
    char line[4096];
    snprintf(line, sizeof line, "%s: %s", s->u->text, msg);
    const char *code = s->error_code[0]             ? s->error_code
                       : status == EXIT_INTERRUPTED ? "cancelled"
                                                    : "io";
    progress_error(s->progress, code, line, status);
    progress_done(s->progress, status, &s->stats, elapsed, "not verified");
    return status;
}

/* ---------------------------------------------------------------- mode 1 */

/* The start event, named as on this side. */
static void announce(struct sender *s)
{
    const struct bk_bmap *bmap = s->plan->bmap;
    copy_announce(s->progress, s->plan, s->u->text, bmap ? bk_bmap_image_size(bmap) : 0);
}

/* The image file as it is, from its start. */
static int open_image(struct sender *s)
{
    const char *image = s->plan->image;
    /* The image goes as it is, so it must be bytes here: a URL is for the far side. */
    if (cli_is_url(image)) {
        cli_error_code(BK_E_INVALID,
                       "%s: an image given as a URL cannot be sent on to %s; fetch it here "
                       "first, or run the copy there",
                       image, s->u->text);
        return EXIT_ERROR;
    }
    s->image_fd = strcmp(image, "-") == 0 ? STDIN_FILENO : open(image, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (s->image_fd < 0 || fstat(s->image_fd, &st) < 0) {
        cli_error_code(BK_E_IO, "cannot open image %s: %s", image, strerror(errno));
        return EXIT_ERROR;
    }
    s->image_polled = !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
    s->chunk = malloc(CHUNK);
    if (!s->chunk) {
        cli_error("out of memory");
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

static int prepare(struct sender *s)
{
    struct bk_error err;
    bk_error_clear(&err);
    if (s->plan->bmap && bk_bmap_write(s->plan->bmap, bmap_sink, &s->bmap, &err) < 0)
        return cli_fail(&err);
    return open_image(s);
}

int remote_copy_bmapkit(struct copy_plan *plan, const struct remote_url *u,
                        const struct remote_probe *pr)
{
    struct sender s = {.plan = plan, .u = u, .progress = copy_progress(), .image_fd = -1};
    s.errs.url = u;
    s.errs.before_print = end_bar;
    s.errs.ctx = s.progress;
    s.proc.pid = -1;
    s.proc.in = s.proc.out = s.proc.err = -1;
    int status = prepare(&s);
    struct rbuf command = {0};
    if (status == EXIT_OK) {
        build_command(&command, plan, u, s.bmap.len);
        if (command.failed) {
            cli_error("out of memory");
            status = EXIT_ERROR;
        }
    }
    if (status == EXIT_OK) {
        cli_info("%s: %s there writes the image; sending %s as it is%s", u->text,
                 pr->bmapkit_version, plan->image, plan->bmap ? ", after its bmap" : "");
        announce(&s);
        double t0 = cli_now();
        if (remote_spawn(u, command.data, true, &s.proc) < 0) {
            status = EXIT_ERROR;
        } else {
            pump(&s);
            if (s.interrupted || s.read_errno)
                kill(s.proc.pid, SIGTERM);
            int ssh_status = remote_wait(&s.proc);
            status = finish(&s, ssh_status, cli_now() - t0);
        }
    }
    if (status != EXIT_OK && !s.reported)
        progress_fail(s.progress, status);
    rbuf_free(&command);
    rbuf_free(&s.bmap);
    free(s.chunk);
    if (s.image_fd > STDIN_FILENO)
        close(s.image_fd);
    return status;
}

/* ---------------------------------------------------------------- which way */

/*
 * An image on standard input goes to the other host's bmapkit unread, so only the bmap
 * is read here (copy_resolve would start decoding the image).
 */
static int resolve_stdin(struct copy_plan *plan)
{
    struct progress *events = copy_progress();
    if (progress_open(events, cli.quiet, plan->json, plan->psplash) < 0)
        return EXIT_ERROR;
    struct bk_error err;
    bk_error_clear(&err);
    int rc = EXIT_OK;
    if (!plan->bmap_path && !plan->nobmap) {
        cli_error("an image read from standard input needs --bmap BMAP (or --nobmap to copy all "
                  "of it)");
        rc = EXIT_ERROR;
    } else if (plan->bmap_path) {
        rc = copy_load_bmap(plan);
    }
    if (rc == EXIT_OK && plan->bmap &&
        bk_copy_check_verifiable(plan->bmap, !plan->no_verify, plan->readback, &err) < 0) {
        bk_error_prefix(&err, "bmap %s", plan->bmap_path);
        rc = cli_fail(&err);
    }
    if (rc != EXIT_OK)
        progress_fail(events, rc);
    return rc;
}

/* When the image comes from standard input, the way decides how it is read. */
static int resolve(struct copy_plan *plan, bool to_bmapkit)
{
    if (strcmp(plan->image, "-") != 0)
        return plan->src ? EXIT_OK : copy_resolve(plan);
    return to_bmapkit ? resolve_stdin(plan) : copy_resolve(plan);
}

/* Neither bmapkit nor nbdkit there, or nothing the fallback can do: why, in one line. */
static int no_way(const struct copy_plan *plan, const struct remote_url *u,
                  const struct remote_probe *pr)
{
    char found[128] = "";
    if (pr->bmapkit)
        snprintf(found, sizeof found, " ('%s --version' says: %s)", plan->remote_bmapkit,
                 pr->bmapkit_version[0] ? pr->bmapkit_version : "nothing");
    if (u->ums)
        cli_error("%s: the UMS disk of %s is found by its bmapkit, and it has none that can "
                  "receive a copy%s: install bmapkit %s there, or name it with --remote-bmapkit",
                  u->text, u->host, found, bk_version());
    else
        cli_error("%s: %s has neither a bmapkit that can receive a copy ('%s'%s) nor nbdkit: "
                  "install one of them there, or name its bmapkit with --remote-bmapkit",
                  u->text, u->host, plan->remote_bmapkit, pr->bmapkit ? found : " not found");
    progress_fail(copy_progress(), EXIT_ERROR);
    return EXIT_ERROR;
}

int remote_copy(struct copy_plan *plan)
{
    struct remote_url u;
    int rc = remote_parse_url("copy", plan->dest_path, true, &u);
    if (rc != CLI_CONTINUE)
        return rc;
    /* The local checks first: nothing to connect for when the bmap is bad. */
    if (strcmp(plan->image, "-") != 0 && (rc = copy_resolve(plan)) != EXIT_OK)
        return rc;
    struct remote_probe pr;
    rc = remote_probe(&u, plan->remote_bmapkit, &pr);
    if (rc != EXIT_OK) {
        progress_fail(copy_progress(), rc);
        return rc;
    }
    bool to_bmapkit = pr.bmapkit_usable;
    if (!to_bmapkit && (u.ums || !pr.nbdkit))
        return no_way(plan, &u, &pr);
    if ((rc = resolve(plan, to_bmapkit)) != EXIT_OK)
        return rc;
    if (to_bmapkit)
        return remote_copy_bmapkit(plan, &u, &pr);
    return remote_copy_nbd(plan, &u, &pr);
}
