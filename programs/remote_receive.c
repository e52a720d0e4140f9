/* SPDX-License-Identifier: MIT */
/*
 * The other host's side of a copy over ssh: bmapkit copy --bmap-from-stdin=BYTES - DEST.
 * Standard input holds the bmap, then the image as it is; standard output carries the
 * events back. When the connection goes, the copy stops before it writes the head.
 */
#include "remote.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "copy_plan.h"

/*
 * Waits until nobody reads standard output any more: ssh closes it when the connection
 * drops or the sending side was stopped. The copy then cancels as on a signal, so an
 * image that arrived whole is still not finished without the sender.
 */
static void *watch_output(void *arg)
{
    (void)arg;
    struct pollfd fd = {.fd = STDOUT_FILENO, .events = 0};
    for (;;) {
        int n = poll(&fd, 1, -1);
        if (n > 0 && (fd.revents & (POLLERR | POLLHUP | POLLNVAL))) {
            atomic_store(&cli_interrupted, SIGPIPE);
            return NULL;
        }
        if (n < 0 && errno != EINTR)
            return NULL;
    }
}

static void start_watch(void)
{
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) < 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
        return;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, watch_output, NULL) != 0)
        cli_debug("cannot watch standard output: the copy goes on if the sender goes");
    pthread_attr_destroy(&attr);
}

int remote_receive_bmap(struct copy_plan *plan, unsigned bytes)
{
    start_watch();
    char *buf = malloc(bytes);
    if (!buf) {
        cli_error("out of memory for a bmap of %u bytes", bytes);
        return EXIT_ERROR;
    }
    size_t got = 0;
    while (got < bytes) {
        /* Plain reads: the image that follows must stay unread for its decoder. */
        ssize_t n = read(STDIN_FILENO, buf + got, bytes - got);
        if (n < 0 && errno == EINTR && !atomic_load(&cli_interrupted))
            continue;
        if (n <= 0) {
            if (n < 0)
                cli_error_code(BK_E_IO, "cannot read the bmap from standard input: %s",
                               strerror(errno));
            else
                cli_error_code(BK_E_FORMAT, "standard input ended after %zu of the bmap's %u bytes",
                               got, bytes);
            free(buf);
            return EXIT_ERROR;
        }
        got += (size_t)n;
    }
    struct bk_error err;
    bk_error_clear(&err);
    plan->bmap = bk_bmap_parse_buffer(buf, bytes, "bmap from standard input", &err);
    free(buf);
    return plan->bmap ? EXIT_OK : cli_fail(&err);
}
