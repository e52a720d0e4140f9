/* SPDX-License-Identifier: MIT */
/* Progress and events of a copy: terminal bar, plain lines, psplash FIFO, JSON lines. */
#ifndef BMAPKIT_PROGRESS_H
#define BMAPKIT_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bmapkit/copy.h"

/*
 * The version of the JSON events' schema, in every event as "schema". It changes only
 * when a member changes its meaning or goes away; new events and members keep it.
 */
#define PROGRESS_SCHEMA 1

struct progress {
    bool open;
    bool bar;   /* stderr is a terminal */
    bool plain; /* periodic plain lines */
    FILE *json; /* JSON-lines events, or NULL */
    double start;
    double last_print;
    /* The image source when it comes over the network: its bytes fetched are shown. */
    const struct bk_source *net_src;
    uint64_t net_base; /* bytes it had fetched when the clock started */
    int last_json_percent;
    double last_json_time;
    bool bar_dirty;

    /* psplash: every whole percent once, in order, from 0. */
    const char *psplash_path; /* NULL when none */
    int psplash_fd;           /* -1 while not open */
    int psplash_sent;         /* the last percent sent, -1 before the first */
    int psplash_target;       /* the percent reached */
    int psplash_tried;        /* the percent at the last open tried */
    bool psplash_warned;
    bool psplash_off; /* not a FIFO: given up */

    /* The first error line printed since the events were opened, for the error event. */
    bool have_error;
    char error_code[32];
    char error_msg[2048];
};

/* The channel of this process's copy: the command runs one copy at most. */
struct progress *copy_progress(void);

/*
 * Set up from the options; JSON_PATH "-" means standard output. From now on the first
 * error line the command prints is kept for progress_fail. Returns 0 or -1.
 */
int progress_open(struct progress *p, bool quiet, const char *json_path, const char *psplash_path);

/* Count the events' times from now: called right before the copy's first event. */
void progress_restart_clock(struct progress *p);

/*
 * The image SRC comes over the network: progress shows the rate it is fetched at, and
 * the progress and done events carry its bytes fetched. Until progress_close.
 */
void progress_watch_network(struct progress *p, const struct bk_source *src);

/* Bytes DONE of TOTAL (0 = unknown). */
void progress_update(struct progress *p, uint64_t done, uint64_t total);

/* End the bar line, if one is showing. */
void progress_clear(struct progress *p);

/* Print a warning and send it as a warning event. */
void progress_warning(struct progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Write one JSON event; FIELDS is the inside of the object after "time" (may be ""). */
void progress_event(struct progress *p, const char *event, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The error event: CODE (a bk_code_name, "usage" or "invalid"), MESSAGE, exit STATUS. */
void progress_error(struct progress *p, const char *code, const char *message, int status);

/* The done event with the copy's totals and how far it was VERIFICATION checked. */
void progress_done(struct progress *p, int status, const struct bk_copy_stats *st, double seconds,
                   const char *verification);

/*
 * The copy failed with STATUS before it started: the error event of the first error
 * line printed since progress_open, then a done event with nothing copied.
 */
void progress_fail(struct progress *p, int status);

/* Append S to BUF as a JSON string literal with quotes. */
void json_quote(char *buf, size_t cap, const char *s);

/* Finish the bar, send what psplash has not received yet, close the outputs. */
void progress_close(struct progress *p);

#endif
