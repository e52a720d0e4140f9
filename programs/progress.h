/* SPDX-License-Identifier: MIT */
/* Progress and events of a copy: terminal bar, plain lines, psplash FIFO, JSON lines. */
#ifndef BMAPKIT_PROGRESS_H
#define BMAPKIT_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct progress {
    bool bar;       /* stderr is a terminal */
    bool plain;     /* periodic plain lines */
    FILE *json;     /* JSON-lines events, or NULL */
    int psplash_fd; /* -1 when none */
    double start;
    double last_print;
    int last_percent;
    int last_json_percent;
    double last_json_time;
    bool bar_dirty;
};

/* Set up from the options; JSON_PATH "-" means standard output. Returns 0 or -1. */
int progress_open(struct progress *p, bool quiet, const char *json_path, const char *psplash_path);

/* Bytes DONE of TOTAL (0 = unknown). */
void progress_update(struct progress *p, uint64_t done, uint64_t total);

/* End the bar line, if one is showing. */
void progress_clear(struct progress *p);

/* Write one JSON event; FIELDS is the inside of the object after "event" (may be ""). */
void progress_event(struct progress *p, const char *event, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append S to BUF as a JSON string literal with quotes. */
void json_quote(char *buf, size_t cap, const char *s);

void progress_close(struct progress *p);

#endif
