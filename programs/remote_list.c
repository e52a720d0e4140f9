/* SPDX-License-Identifier: MIT */
/* bmapkit list ssh://HOST: the disks of another host, as its bmapkit lists them. */
#include "remote.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void keep_output(void *ctx, char *line)
{
    struct rbuf *out = ctx;
    rbuf_add(out, line, strlen(line));
    rbuf_add(out, "\n", 1);
}

/* Run COMMAND there; its output into OUT, its messages through ERRS. */
static int run(const struct remote_url *u, const char *command, struct rbuf *out,
               struct remote_errors *errs, bool *interrupted)
{
    struct remote_proc p;
    if (remote_spawn(u, command, false, &p) < 0)
        return -1;
    struct line_reader out_lines = {0}, err_lines = {0};
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
        if (atomic_load(&cli_interrupted)) {
            *interrupted = true;
            kill(p.pid, SIGTERM);
            break;
        }
        struct pollfd fds[2] = {{.fd = out_open ? p.out : -1, .events = POLLIN},
                                {.fd = err_open ? p.err : -1, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0)
            continue;
        if (fds[0].revents)
            out_open = line_reader_feed(&out_lines, p.out, keep_output, out) > 0;
        if (fds[1].revents)
            err_open = line_reader_feed(&err_lines, p.err, remote_errors_line, errs) > 0;
    }
    return remote_wait(&p);
}

int remote_list(const char *url, const char *bmapkit_cmd, bool json, bool all)
{
    struct remote_url u;
    int rc = remote_parse_url("list", url, false, &u);
    if (rc != CLI_CONTINUE)
        return rc;
    struct rbuf command = {0};
    /* A missing program is told apart from one that fails by a status of its own. */
    rbuf_addf(&command, "PATH=\"$PATH:/usr/sbin:/sbin\"; b=");
    rbuf_add_quoted(&command, bmapkit_cmd);
    rbuf_addf(&command, "; command -v \"$b\" >/dev/null 2>&1 || exit 127; exec \"$b\" list%s%s%s",
              json ? " --json" : "", all ? " --all" : "", cli.debug ? " -d" : "");
    if (command.failed) {
        rbuf_free(&command);
        cli_error("out of memory");
        return EXIT_ERROR;
    }
    struct rbuf out = {0};
    struct remote_errors errs = {.url = &u};
    bool interrupted = false;
    int status = run(&u, command.data, &out, &errs, &interrupted);
    rbuf_free(&command);
    if (status < 0) {
        rbuf_free(&out);
        return EXIT_ERROR;
    }
    if (interrupted) {
        cli_error("%s: interrupted", u.text);
        status = EXIT_INTERRUPTED;
    } else if (status == 127 && !errs.error[0]) {
        cli_error("%s: no '%s' on %s (--remote-bmapkit names the bmapkit program there)", u.text,
                  bmapkit_cmd, u.host);
        status = EXIT_ERROR;
    } else if (status != 0) {
        cli_error("%s: %s", u.text,
                  errs.error[0]   ? errs.error
                  : errs.other[0] ? errs.other
                                  : "the list failed there without saying why");
        status = status == 255 || status > 4 || status == EXIT_USAGE ? EXIT_ERROR : status;
    } else {
        /* Only a whole list is shown. */
        if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len)
            status = EXIT_ERROR;
        if (fflush(stdout) != 0 || status != 0) {
            cli_error("cannot write the list to standard output");
            status = EXIT_ERROR;
        }
    }
    rbuf_free(&out);
    return status;
}
