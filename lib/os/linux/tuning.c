/* SPDX-License-Identifier: MIT */
/*
 * I/O settings of a disk for the time of a copy: a low share of dirty pages keeps the
 * page cache from filling with gigabytes bound for a slow USB disk, and no scheduler
 * lets the requests go out in the copy's (ascending) order.
 */
#include "os/os.h"
#include "os/linux/sysfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void warn(const struct bk_tuning *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void warn(const struct bk_tuning *t, const char *fmt, ...)
{
    if (!t->warn)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->warn(t->warn_ctx, msg);
}

static int write_attr(const struct bk_tuning *t, const char *attr, const char *value)
{
    char path[PATH_MAX];
    bk_root_path(path, sizeof path, t->sysroot, "/sys/class/block/%s/%s", t->disk, attr);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, value, strlen(value));
    int e = errno;
    close(fd);
    errno = e;
    return n < 0 ? -1 : 0;
}

/* Set sysfs attribute ATTR to VALUE; remember the old value in *SAVED. */
static void tune_attr(struct bk_tuning *t, const char *attr, const char *value, char **saved)
{
    char old[256];
    if (bk_disk_read_attr(t->sysroot, t->disk, attr, old, sizeof old) < 0)
        return;
    /* The scheduler list marks the active one in brackets: "mq-deadline [none]". */
    char *open_br = strchr(old, '['), *close_br = open_br ? strchr(open_br, ']') : NULL;
    const char *current = old;
    if (open_br && close_br) {
        *close_br = '\0';
        current = open_br + 1;
    }
    if (strcmp(current, value) == 0)
        return;
    if (write_attr(t, attr, value) < 0)
        warn(t, "cannot set %s of %s to %s: %s", attr, t->disk, value, strerror(errno));
    else
        *saved = strdup(current);
}

int bk_tuning_apply(struct bk_tuning *t, const char *sysroot, const char *disk, bk_warn_fn fn,
                    void *warn_ctx)
{
    *t = (struct bk_tuning){.warn = fn, .warn_ctx = warn_ctx};
    t->disk = strdup(disk);
    t->sysroot = sysroot ? strdup(sysroot) : NULL;
    if (!t->disk || (sysroot && !t->sysroot)) {
        bk_tuning_restore(t);
        return -1;
    }
    tune_attr(t, "bdi/max_ratio", "1", &t->saved_max_ratio);
    tune_attr(t, "queue/scheduler", "none", &t->saved_scheduler);
    return 0;
}

void bk_tuning_restore(struct bk_tuning *t)
{
    char *saved[2] = {t->saved_max_ratio, t->saved_scheduler};
    const char *attrs[2] = {"bdi/max_ratio", "queue/scheduler"};
    for (int i = 0; i < 2; i++) {
        if (!saved[i])
            continue;
        if (write_attr(t, attrs[i], saved[i]) < 0)
            warn(t, "cannot restore %s of %s to %s", attrs[i], t->disk, saved[i]);
        free(saved[i]);
    }
    free(t->disk);
    free(t->sysroot);
    *t = (struct bk_tuning){0};
}
