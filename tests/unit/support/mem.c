/* SPDX-License-Identifier: MIT */
/* An image and a disk in memory, plugged in through the operations tables. */
#include "fakes.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct mem_source {
    struct bk_source pub;
    const uint8_t *data;
    uint64_t size, pos;
    uint64_t *log;
    size_t log_cap, *log_count;
};

static void log_read(struct mem_source *m, uint64_t offset, size_t len)
{
    if (!m->log_count || len == 0)
        return;
    if (*m->log_count < m->log_cap)
        m->log[*m->log_count] = offset;
    ++*m->log_count;
}

static int mem_read(struct bk_source *src, void *buf, size_t len, size_t *got, struct bk_error *err)
{
    (void)err;
    struct mem_source *m = src->priv;
    size_t n = m->size - m->pos < len ? (size_t)(m->size - m->pos) : len;
    log_read(m, m->pos, n);
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    *got = n;
    return 0;
}

static int mem_pread(struct bk_source *src, void *buf, size_t len, uint64_t offset, size_t *got,
                     struct bk_error *err)
{
    (void)err;
    struct mem_source *m = src->priv;
    size_t n = offset >= m->size ? 0 : m->size - offset < len ? (size_t)(m->size - offset) : len;
    log_read(m, offset, n);
    memcpy(buf, m->data + offset, n);
    *got = n;
    return 0;
}

static void mem_source_close(struct bk_source *src)
{
    free(src->priv);
}

static const struct bk_source_ops mem_source_ops = {
    .read = mem_read,
    .pread = mem_pread,
    .close = mem_source_close,
};

struct bk_source *mem_source_new(const uint8_t *data, uint64_t size, bool seekable)
{
    struct mem_source *m = calloc(1, sizeof *m);
    m->data = data;
    m->size = size;
    m->pub = (struct bk_source){.ops = &mem_source_ops,
                                .name = "memory image",
                                .size = seekable ? (int64_t)size : -1,
                                .seekable = seekable,
                                .priv = m};
    return &m->pub;
}

void mem_source_log_reads(struct bk_source *src, uint64_t *log, size_t cap, size_t *count)
{
    struct mem_source *m = src->priv;
    m->log = log;
    m->log_cap = cap;
    m->log_count = count;
    *count = 0;
}

static int disk_write(struct bk_dest *d, const void *buf, size_t len, uint64_t offset,
                      struct bk_error *err)
{
    struct mem_disk *m = d->priv;
    if (offset > m->size || len > m->size - offset)
        return bk_error_set(err, BK_E_IO, 28, "%s: write beyond the end at byte %" PRIu64, d->name,
                            offset);
    memcpy(m->data + offset, buf, len);
    m->writes++;
    m->written += len;
    return 0;
}

static int disk_read(struct bk_dest *d, void *buf, size_t len, uint64_t offset, size_t *got,
                     struct bk_error *err)
{
    (void)err;
    struct mem_disk *m = d->priv;
    size_t n = offset >= m->size ? 0 : m->size - offset < len ? (size_t)(m->size - offset) : len;
    memcpy(buf, m->data + offset, n);
    *got = n;
    return 0;
}

static int disk_flush(struct bk_dest *d, struct bk_error *err)
{
    (void)err;
    struct mem_disk *m = d->priv;
    m->flushes++;
    return 0;
}

static int disk_set_size(struct bk_dest *d, uint64_t size, struct bk_error *err)
{
    (void)err;
    struct mem_disk *m = d->priv;
    m->set_size = (int64_t)size;
    return 0;
}

static void disk_close(struct bk_dest *d)
{
    struct mem_disk *m = d->priv;
    m->closed = true;
}

static const struct bk_dest_ops mem_dest_ops = {
    .kind = "memory disk",
    .write = disk_write,
    .read = disk_read,
    .flush = disk_flush,
    .set_size = disk_set_size,
    .close = disk_close,
};

struct bk_dest *mem_dest_new(struct mem_disk *disk, uint64_t size, uint8_t fill, unsigned caps)
{
    memset(disk, 0, sizeof *disk);
    disk->data = malloc(size ? size : 1);
    memset(disk->data, fill, size);
    disk->size = size;
    disk->set_size = -1;
    struct bk_error err;
    struct bk_dest *d = bk_dest_new(&mem_dest_ops, "memory disk", &err);
    d->size = size;
    d->caps = caps;
    d->priv = disk;
    return d;
}

void mem_disk_free(struct mem_disk *disk)
{
    free(disk->data);
    disk->data = NULL;
}
