/* SPDX-License-Identifier: MIT */
/* Files and standard input as sources. */
#include "source/source_impl.h"
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct file_source {
    struct bk_source pub;
    int fd;
    bool own_fd;
    uint64_t pos;
    char name[];
};

static int file_read(struct bk_source *src, void *buf, size_t len, size_t *got,
                     struct bk_error *err)
{
    struct file_source *f = src->priv;
    for (;;) {
        ssize_t n = read(f->fd, buf, len);
        if (n >= 0) {
            *got = (size_t)n;
            f->pos += (uint64_t)n;
            return 0;
        }
        if (errno != EINTR)
            return bk_error_set(err, BK_E_IO, errno, "%s: read failed at byte %" PRIu64, src->name,
                                f->pos);
    }
}

static int file_pread(struct bk_source *src, void *buf, size_t len, uint64_t offset, size_t *got,
                      struct bk_error *err)
{
    struct file_source *f = src->priv;
    for (;;) {
        ssize_t n = pread(f->fd, buf, len, (off_t)offset);
        if (n >= 0) {
            *got = (size_t)n;
            return 0;
        }
        if (errno != EINTR)
            return bk_error_set(err, BK_E_IO, errno, "%s: read failed at byte %" PRIu64, src->name,
                                offset);
    }
}

static void file_close(struct bk_source *src)
{
    struct file_source *f = src->priv;
    if (f->own_fd)
        close(f->fd);
    free(f);
}

static const struct bk_source_ops file_ops = {
    .read = file_read,
    .pread = file_pread,
    .close = file_close,
};

struct bk_source *bk_source_open_file(const char *path, struct bk_error *err)
{
    return bk_source_open_file_fetch(path, NULL, err);
}

struct bk_source *bk_source_open_file_fetch(const char *path, const struct bk_fetch_options *opts,
                                            struct bk_error *err)
{
    if (bk_net_is_url(path))
        return bk_source_open_url(path, opts, err);
    char local[4096];
    if (bk_net_file_path(path, local, sizeof local))
        path = local;
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "standard input" : path;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        bk_error_set(err, BK_E_IO, errno, "cannot open image %s", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        if (S_ISDIR(st.st_mode))
            bk_error_set(err, BK_E_INVALID, 0, "image %s is a directory", path);
        else
            bk_error_set(err, BK_E_IO, errno, "cannot stat image %s", path);
        if (!is_stdin)
            close(fd);
        return NULL;
    }

    struct file_source *f = calloc(1, sizeof *f + strlen(name) + 1);
    if (!f) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        if (!is_stdin)
            close(fd);
        return NULL;
    }
    strcpy(f->name, name);
    f->fd = fd;
    f->own_fd = !is_stdin;
    f->pub.name = f->name;
    f->pub.priv = f;
    f->pub.ops = &file_ops;
    /* Standard input redirected from a regular file is as good as the file itself. */
    if (S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) == 0) {
        f->pub.seekable = true;
        f->pub.size = st.st_size;
    } else {
        f->pub.size = -1;
    }
    if (f->pub.seekable)
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return &f->pub;
}
