/* SPDX-License-Identifier: MIT */
/*
 * Destinations and disk lists on another host, reached with the system's ssh client:
 * ssh://[USER@]HOST[:PORT]/PATH and ssh://HOST/ums[:SELECTOR]. remote.c has the URL, the
 * quoting for the remote shell, the ssh process and what its error output says;
 * remote_copy.c sends the image to the bmapkit of the other host, remote_nbd.c writes
 * through nbdkit there when it has none, remote_list.c lists its disks.
 */
#ifndef BMAPKIT_REMOTE_H
#define BMAPKIT_REMOTE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct copy_plan;
struct bk_dest;
struct bk_error;

/* The bmapkit program the other host runs unless --remote-bmapkit names another. */
#define REMOTE_BMAPKIT_DEFAULT "bmapkit"

struct remote_url {
    const char *text; /* the URL as given, for messages */
    char user[128];   /* "" when not given */
    char host[256];
    char port[8];           /* "" when not given */
    char path[PATH_MAX];    /* "" for a bare host */
    bool ums;               /* the path is ums or ums:SELECTOR */
    char ums_selector[128]; /* "" for any */
};

/* Whether S is an ssh:// URL rather than a path. */
bool remote_is_url(const char *s);

/*
 * Parse TEXT (an ssh:// URL) into *U. WITH_PATH: a path must follow the host (copy);
 * otherwise none may (list). Returns CLI_CONTINUE, or EXIT_USAGE after the usage error of
 * the subcommand CMD.
 */
int remote_parse_url(const char *cmd, const char *text, bool with_path, struct remote_url *u);

/* A growing string; a failed allocation leaves it marked and the text cut short. */
struct rbuf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
};

void rbuf_add(struct rbuf *b, const void *data, size_t len);
void rbuf_addf(struct rbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ARG quoted for a POSIX shell ('...', each ' as '\''). */
void rbuf_add_quoted(struct rbuf *b, const char *arg);
/* A space, then ARG quoted. */
void rbuf_add_word(struct rbuf *b, const char *arg);
void rbuf_free(struct rbuf *b);

/*
 * The argv that runs COMMAND (a shell command line for the remote host) through ssh:
 * /bin/sh -c '$BMAPKIT_SSH_COMMAND "$@"' with -T, -p PORT, -l USER, HOST and COMMAND as
 * its arguments. REDIRECT_FD >= 0 sends ssh's error output to that descriptor. Returns
 * a NULL-terminated array for remote_argv_free, or NULL when out of memory.
 */
char **remote_argv(const struct remote_url *u, const char *command, int redirect_fd);
void remote_argv_free(char **argv);

/* A running ssh: its process and the local ends of its standard streams (-1: none). */
struct remote_proc {
    pid_t pid;
    int in;
    int out;
    int err;
};

/*
 * Start ssh running COMMAND on U's host. With WANT_STDIN its standard input is a pipe
 * (P->in, non-blocking), else /dev/null; its output and error output are pipes. Returns 0,
 * or -1 after printing the error.
 */
int remote_spawn(const struct remote_url *u, const char *command, bool want_stdin,
                 struct remote_proc *p);

/*
 * Close what is still open of P and wait for it. Returns its exit status, or 128 + the
 * signal that ended it.
 */
int remote_wait(struct remote_proc *p);

/* A line reader over a non-blocking descriptor. */
struct line_reader {
    char buf[8192];
    size_t len;
};

/*
 * Read what FD has into R and call FN for each complete line (without its newline; a
 * line longer than the buffer comes in pieces). Returns 1 while FD is open, 0 at its end
 * (the last unterminated line passed on), -1 on a read error.
 */
int line_reader_feed(struct line_reader *r, int fd, void (*fn)(void *ctx, char *line), void *ctx);

/*
 * The error output of the remote command, line by line: the bmapkit there reports with
 * "bmapkit: error: ..." and "bmapkit: warning: ..."; everything else is from ssh or the
 * remote shell.
 */
struct remote_errors {
    const struct remote_url *url;
    void (*before_print)(void *ctx); /* e.g. end a progress bar; may be NULL */
    void *ctx;
    char error[2048];  /* the remote bmapkit's last error, without "bmapkit: error: " */
    char other[1024];  /* the last other non-empty line (ssh's own messages) */
    bool remote_usage; /* the remote bmapkit printed its usage hint */
};

/* One line of remote error output: warnings printed at once, errors kept for the end. */
void remote_errors_line(void *ctx, char *line);

/* JSON objects of the remote events (remote_json.c): the raw text of member KEY. */
bool json_member(const char *obj, const char *key, const char **val, size_t *len);
bool json_member_u64(const char *obj, const char *key, uint64_t *out);
/* Member KEY, a string, unescaped into OUT. */
bool json_member_string(const char *obj, const char *key, char *out, size_t cap);
/* The members other than "event", "schema" and "time", as the inside of an object, into OUT. */
bool json_members_except_event(const char *obj, char *out, size_t cap);

/* What the other host has, asked in one ssh call before a copy. */
struct remote_probe {
    bool bmapkit; /* the remote bmapkit program was found */
    char bmapkit_version[64];
    bool bmapkit_usable; /* and is recent enough to receive a copy */
    bool nbdkit;
    bool lsblk;
    enum { REMOTE_MISSING, REMOTE_NO_DIR, REMOTE_FILE, REMOTE_BLOCK, REMOTE_OTHER } kind;
    uint64_t size;     /* of a block device */
    bool removable;    /* of a block device */
    bool whole_disk;   /* of a block device */
    char mounts[1024]; /* its mount points (and [SWAP]), space-separated */
    bool holds_root;   /* one of them is / */
};

/*
 * Ask U's host whether it has BMAPKIT_CMD and nbdkit, and what U's path is there.
 * Returns 0, or the exit status after printing the error.
 */
int remote_probe(const struct remote_url *u, const char *bmapkit_cmd, struct remote_probe *pr);

/* bmapkit copy to an ssh:// DEST, PLAN parsed. Returns the exit status. */
int remote_copy(struct copy_plan *plan);

/*
 * Mode 1: the other host's bmapkit (found by the probe) receives the image as it is and
 * its bmap, and decodes, checks and writes. Returns the exit status.
 */
int remote_copy_bmapkit(struct copy_plan *plan, const struct remote_url *u,
                        const struct remote_probe *pr);

/*
 * Mode 2: no usable bmapkit there: the image is decoded here and written through nbdkit
 * started by the ssh connection, after checks of the remote path. Returns the exit status.
 */
int remote_copy_nbd(struct copy_plan *plan, const struct remote_url *u,
                    const struct remote_probe *pr);

/* bmapkit list ssh://HOST: the list of the other host's bmapkit. Returns the exit status. */
int remote_list(const char *url, const char *bmapkit_cmd, bool json, bool all);

/*
 * The remote side of a copy over ssh (bmapkit copy --bmap-from-stdin=BYTES - DEST): read
 * the bmap from the first BYTES of standard input into PLAN, and stop the copy when the
 * reader of standard output goes away (the connection closed). Returns EXIT_OK, or the
 * exit status after printing the error.
 */
int remote_receive_bmap(struct copy_plan *plan, unsigned bytes);

#endif
