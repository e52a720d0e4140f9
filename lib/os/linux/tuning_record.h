/* SPDX-License-Identifier: MIT */
/*
 * Internal to os/linux: the record a copy leaves in SYSROOT/run/bmapkit/tuning for as
 * long as a disk's I/O settings are changed, so that a later run can put them back when
 * the process that changed them dies first. Its text, its files, and the process and
 * boot it names.
 */
#ifndef BMAPKIT_OS_LINUX_TUNING_RECORD_H
#define BMAPKIT_OS_LINUX_TUNING_RECORD_H

#include <stdbool.h>
#include <stddef.h>

/* Under the sysroot. /run is a tmpfs on most systems: records do not outlive a boot. */
#define BK_TUNING_DIR "/run/bmapkit/tuning"
#define BK_TUNING_MAX_SETTINGS 2
/* A record is a few hundred bytes; a longer file is not one. */
#define BK_TUNING_RECORD_MAX 2048

/* One changed setting: a sysfs attribute of the disk, its value before and the one set. */
struct bk_tuning_setting {
    char attr[32];     /* "queue/scheduler" */
    char original[64]; /* written back at the end */
    char tuned[64];    /* written back over only: a value changed since is someone else's */
};

/* Which device, changed by which process of which boot, and how. */
struct bk_tuning_record {
    char disk[64];            /* sysfs name */
    char dev[32];             /* its "dev" when tuned, MAJ:MIN */
    char diskseq[32];         /* its "diskseq", "-" where the kernel has none */
    char boot_id[48];         /* the kernel's boot_id when tuned */
    long pid;                 /* the owner, the process that tuned */
    unsigned long long start; /* the owner's start time (/proc/PID/stat), against pid reuse */
    size_t count;
    struct bk_tuning_setting set[BK_TUNING_MAX_SETTINGS];
};

/* The I-th setting a copy changes (I below BK_TUNING_MAX_SETTINGS) and the value it sets. */
void bk_tuning_target_at(size_t i, const char **attr, const char **value);

/* The value a copy gives ATTR, or NULL when ATTR is none of the settings it changes. */
const char *bk_tuning_target(const char *attr);

/* Whether VALUE can be stored in a record as a setting's value (and written back). */
bool bk_tuning_value_ok(const char *value);

/* R as text into BUF; its length, or -1 when it does not fit. */
int bk_tuning_record_format(const struct bk_tuning_record *r, char *buf, size_t cap);

/*
 * Parse the LEN bytes of TEXT into R. -1 with WHY ("line 3: bad dev '7'") when TEXT is
 * not one whole record: every field once, known settings only, ending with "end".
 */
int bk_tuning_record_parse(const char *text, size_t len, struct bk_tuning_record *r, char *why,
                           size_t why_cap);

/* The file name of R's record ("sdb.PID.START"); a name starting with "." is a temporary. */
void bk_tuning_record_name(const struct bk_tuning_record *r, char *buf, size_t cap);

/* The owner a temporary's name (".sdb.PID.START") gives; false when NAME is not one. */
bool bk_tuning_temp_owner(const char *name, long *pid, unsigned long long *start);

/* Write R as DIR/NAME, whole or not at all (a temporary renamed); -1 with errno. */
int bk_tuning_record_save(const char *dir, const char *name, const struct bk_tuning_record *r);

/*
 * Read the record file PATH into R: 0; -1 with errno when it cannot be read (ENOENT:
 * another run removed it); -2 with WHY when it is not a valid record.
 */
int bk_tuning_record_load(const char *path, struct bk_tuning_record *r, char *why, size_t why_cap);

/* This process as a record's owner: pid and start time. -1 when /proc cannot tell. */
int bk_tuning_self(long *pid, unsigned long long *start);

enum bk_tuning_owner_state { BK_OWNER_ALIVE, BK_OWNER_GONE, BK_OWNER_UNKNOWN };

/* Whether the process PID that started at START still runs (a zombie has ended). */
enum bk_tuning_owner_state bk_tuning_owner(long pid, unsigned long long start);

/* The running kernel's boot_id into BUF; -1 when it cannot be read. */
int bk_tuning_boot_id(char *buf, size_t cap);

#endif
