/* SPDX-License-Identifier: MIT */
/*
 * NBD exports as destinations, through libnbd: a URI (nbd://, nbds://, nbd+unix://) or
 * a program that speaks NBD on its standard input and output (nbdkit -s over ssh).
 * Writes are sent without waiting for their replies, several at once, so the link's
 * latency does not set the speed; a failed write is reported by the next call.
 */
#include "dest/dest_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynlib.h"
#include "common/options.h"
#include "common/util.h"

/* How much may be in flight: enough to fill a link of 10 ms latency at 1 GB/s. */
#define NBD_MAX_REQUESTS 32u
#define NBD_MAX_BYTES (64u << 20)
/* The largest request sent, when the server names no smaller maximum. */
#define NBD_REQUEST_CAP (4u << 20)
/* A server that answers nothing for this long is taken as gone. */
#define NBD_STALL_MS 60000

#define LIBNBD_FUNCTIONS(X)                                                                        \
    X(nbd_aio_flush)                                                                               \
    X(nbd_aio_is_closed)                                                                           \
    X(nbd_aio_is_dead)                                                                             \
    X(nbd_aio_is_processing)                                                                       \
    X(nbd_aio_is_ready)                                                                            \
    X(nbd_aio_pwrite)                                                                              \
    X(nbd_can_flush)                                                                               \
    X(nbd_can_trim)                                                                                \
    X(nbd_can_zero)                                                                                \
    X(nbd_close)                                                                                   \
    X(nbd_connect_command)                                                                         \
    X(nbd_connect_uri)                                                                             \
    X(nbd_create)                                                                                  \
    X(nbd_flush)                                                                                   \
    X(nbd_get_block_size)                                                                          \
    X(nbd_get_errno)                                                                               \
    X(nbd_get_error)                                                                               \
    X(nbd_get_size)                                                                                \
    X(nbd_is_read_only)                                                                            \
    X(nbd_poll)                                                                                    \
    X(nbd_pread)                                                                                   \
    X(nbd_set_uri_allow_local_file)                                                                \
    X(nbd_shutdown)                                                                                \
    X(nbd_trim)                                                                                    \
    X(nbd_zero)

/* libnbd, loaded when the first NBD export is opened. */
struct libnbd {
    void *handle;
    LIBNBD_FUNCTIONS(BK_DYNLIB_MEMBER)
};

struct nbd_dest {
    struct libnbd lib;
    struct nbd_handle *h;
    uint64_t max_request;
    bool can_flush;
    unsigned requests; /* sent and not yet answered */
    uint64_t bytes;
    /* The first write the server refused, reported by the next call. */
    bool failed;
    int failed_errno;
    uint64_t failed_offset;
    size_t failed_len;
};

struct nbd_request {
    struct nbd_dest *nd;
    uint64_t offset;
    size_t len;
    uint8_t data[];
};

/*
 * libnbd's last message, without the name of the call in front ("nbd_pwrite: ") and
 * the text of its errno at the end, which the error adds back itself.
 */
struct nbd_reason {
    char text[512];
};

static const char *nbd_reason(const struct nbd_dest *nd, struct nbd_reason *r)
{
    const char *m = nd->lib.nbd_get_error();
    if (!m)
        return "unknown error";
    const char *colon = strstr(m, ": ");
    snprintf(r->text, sizeof r->text, "%s", strncmp(m, "nbd_", 4) == 0 && colon ? colon + 2 : m);
    int e = nd->lib.nbd_get_errno();
    if (e) {
        char buf[128];
        const char *say = strerror_r(e, buf, sizeof buf);
        size_t n = strlen(r->text), k = strlen(say);
        if (n > k + 2 && strcmp(r->text + n - k, say) == 0 && r->text[n - k - 2] == ':')
            r->text[n - k - 2] = '\0';
    }
    return r->text;
}

/* A synchronous command WHAT failed: the server refused it, or the connection is gone. */
static int command_failed(struct bk_dest *d, const char *what, struct bk_error *err)
{
    struct nbd_dest *nd = d->priv;
    struct nbd_reason why;
    int e = nd->lib.nbd_get_errno();
    if (nd->lib.nbd_aio_is_dead(nd->h) || nd->lib.nbd_aio_is_closed(nd->h))
        return bk_error_set(err, BK_E_IO, e, "%s: the connection was lost during the %s: %s",
                            d->name, what, nbd_reason(nd, &why));
    return bk_error_set(err, BK_E_IO, e, "%s: the server failed the %s", d->name, what);
}

static int request_done(void *user_data, int *error)
{
    struct nbd_request *r = user_data;
    struct nbd_dest *nd = r->nd;
    if (*error && !nd->failed) {
        nd->failed = true;
        nd->failed_errno = *error;
        nd->failed_offset = r->offset;
        nd->failed_len = r->len;
    }
    return 1; /* retire the command: nothing waits for its cookie */
}

static void request_free(void *user_data)
{
    struct nbd_request *r = user_data;
    r->nd->requests--;
    r->nd->bytes -= r->len;
    free(r);
}

static int report_failure(struct bk_dest *d, struct bk_error *err)
{
    const struct nbd_dest *nd = d->priv;
    if (!nd->failed)
        return 0;
    return bk_error_set(err, BK_E_IO, nd->failed_errno,
                        "%s: the server failed the write of %zu bytes at byte %" PRIu64, d->name,
                        nd->failed_len, nd->failed_offset);
}

/* Wait until at most REQUESTS requests and BYTES bytes are in flight. */
static int wait_in_flight(struct bk_dest *d, unsigned requests, uint64_t bytes,
                          struct bk_error *err)
{
    struct nbd_reason why;
    struct nbd_dest *nd = d->priv;
    int idle_ms = 0;
    while (nd->requests > requests || nd->bytes > bytes) {
        int r = nd->lib.nbd_poll(nd->h, 1000);
        if (r < 0)
            return bk_error_set(err, BK_E_IO, nd->lib.nbd_get_errno(), "%s: %s", d->name,
                                nbd_reason(nd, &why));
        idle_ms = r == 0 ? idle_ms + 1000 : 0;
        if (idle_ms >= NBD_STALL_MS)
            return bk_error_set(err, BK_E_IO, ETIMEDOUT,
                                "%s: the server answered none of %u requests for %d s", d->name,
                                nd->requests, NBD_STALL_MS / 1000);
    }
    return report_failure(d, err);
}

static int nbd_dest_write(struct bk_dest *d, const void *buf, size_t len, uint64_t offset,
                          struct bk_error *err)
{
    struct nbd_reason why;
    struct nbd_dest *nd = d->priv;
    const uint8_t *p = buf;
    while (len > 0) {
        size_t n = (size_t)bk_min_u64(len, nd->max_request);
        if (wait_in_flight(d, NBD_MAX_REQUESTS - 1, NBD_MAX_BYTES - n, err) < 0)
            return -1;
        struct nbd_request *r = malloc(sizeof *r + n);
        if (!r)
            return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        *r = (struct nbd_request){.nd = nd, .offset = offset, .len = n};
        memcpy(r->data, p, n);
        /* Counted before sending: libnbd frees the request, also when sending fails. */
        nd->requests++;
        nd->bytes += n;
        nbd_completion_callback cb = {
            .callback = request_done, .user_data = r, .free = request_free};
        if (nd->lib.nbd_aio_pwrite(nd->h, r->data, n, offset, cb, 0) < 0)
            return bk_error_set(err, BK_E_IO, nd->lib.nbd_get_errno(),
                                "%s: cannot send the write of %zu bytes at byte %" PRIu64 ": %s",
                                d->name, n, offset, nbd_reason(nd, &why));
        p += n;
        offset += n;
        len -= n;
    }
    return report_failure(d, err);
}

static int nbd_dest_read(struct bk_dest *d, void *buf, size_t len, uint64_t offset, size_t *got,
                         struct bk_error *err)
{
    struct nbd_dest *nd = d->priv;
    *got = 0;
    if (wait_in_flight(d, 0, 0, err) < 0)
        return -1;
    if (offset >= d->size)
        return 0;
    len = (size_t)bk_min_u64(len, d->size - offset);
    uint8_t *p = buf;
    while (*got < len) {
        size_t n = (size_t)bk_min_u64(len - *got, nd->max_request);
        if (nd->lib.nbd_pread(nd->h, p + *got, n, offset + *got, 0) < 0) {
            char what[64];
            snprintf(what, sizeof what, "read of %zu bytes at byte %" PRIu64, n, offset + *got);
            return command_failed(d, what, err);
        }
        *got += n;
    }
    return 0;
}

static int nbd_dest_flush(struct bk_dest *d, struct bk_error *err)
{
    struct nbd_dest *nd = d->priv;
    if (wait_in_flight(d, 0, 0, err) < 0)
        return -1;
    /* A server without flush has nothing to make durable, or no way to: either way done. */
    if (nd->can_flush && nd->lib.nbd_flush(nd->h, 0) < 0)
        return command_failed(d, "flush", err);
    return 0;
}

/* Zeroing and discarding: one synchronous command over a range, after the writes. */
static int range_command(struct bk_dest *d,
                         int (*command)(struct nbd_handle *, uint64_t, uint64_t, uint32_t),
                         const char *what, uint64_t offset, uint64_t len, struct bk_error *err)
{
    struct nbd_dest *nd = d->priv;
    if (wait_in_flight(d, 0, 0, err) < 0)
        return -1;
    if (command(nd->h, len, offset, 0) < 0)
        return command_failed(d, what, err);
    return 0;
}

static int nbd_dest_zero(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err)
{
    const struct nbd_dest *nd = d->priv;
    return range_command(d, nd->lib.nbd_zero, "zeroing", offset, len, err);
}

static int nbd_dest_discard(struct bk_dest *d, uint64_t offset, uint64_t len, struct bk_error *err)
{
    const struct nbd_dest *nd = d->priv;
    return range_command(d, nd->lib.nbd_trim, "discard", offset, len, err);
}

static int flush_sent(void *user_data, int *error)
{
    (void)user_data;
    (void)error; /* a hint only: the final flush reports what matters */
    return 1;
}

/* Ask the server to write back what it holds, so the final flush does not wait long. */
static void nbd_dest_start_writeback(struct bk_dest *d)
{
    struct nbd_dest *nd = d->priv;
    if (nd->can_flush)
        nd->lib.nbd_aio_flush(nd->h, (nbd_completion_callback){.callback = flush_sent}, 0);
}

static void nbd_dest_close(struct bk_dest *d)
{
    struct nbd_dest *nd = d->priv;
    if (!nd)
        return;
    if (nd->h) {
        /* Replies still due are waited for briefly; a dead server is not waited for. */
        struct bk_error ignored;
        bk_error_clear(&ignored);
        if (nd->lib.nbd_aio_is_ready(nd->h) || nd->lib.nbd_aio_is_processing(nd->h)) {
            if (wait_in_flight(d, 0, 0, &ignored) == 0)
                nd->lib.nbd_shutdown(nd->h, 0);
        }
        nd->lib.nbd_close(nd->h);
    }
    bk_dynlib_close(nd->lib.handle);
    free(nd);
}

static const struct bk_dest_ops nbd_ops = {
    .kind = "NBD export",
    .write = nbd_dest_write,
    .read = nbd_dest_read,
    .flush = nbd_dest_flush,
    .zero = nbd_dest_zero,
    .discard = nbd_dest_discard,
    .start_writeback = nbd_dest_start_writeback,
    .close = nbd_dest_close,
};

/* After the connection: size, capabilities, and whether the image fits. */
static int describe_export(struct bk_dest *d, uint64_t image_size, struct bk_error *err)
{
    struct nbd_reason why;
    struct nbd_dest *nd = d->priv;
    int64_t size = nd->lib.nbd_get_size(nd->h);
    if (size < 0)
        return bk_error_set(err, BK_E_IO, nd->lib.nbd_get_errno(),
                            "%s: cannot get the export's size: %s", d->name, nbd_reason(nd, &why));
    d->size = (uint64_t)size;
    if (nd->lib.nbd_is_read_only(nd->h) == 1)
        return bk_error_set(err, BK_E_REFUSED, 0, "%s: the export is read-only", d->name);
    if (d->size < image_size)
        return bk_error_set(err, BK_E_REFUSED, 0,
                            "destination %s is too small: %" PRIu64
                            " bytes, the image needs %" PRIu64 "; nothing was written",
                            d->name, d->size, image_size);
    int64_t max = nd->lib.nbd_get_block_size(nd->h, LIBNBD_SIZE_MAXIMUM);
    nd->max_request = max > 0 ? bk_min_u64((uint64_t)max, NBD_REQUEST_CAP) : NBD_REQUEST_CAP;
    nd->can_flush = nd->lib.nbd_can_flush(nd->h) == 1;
    d->caps = BK_DEST_CAN_READ | BK_DEST_IS_DISK;
    if (nd->lib.nbd_can_zero(nd->h) == 1)
        d->caps |= BK_DEST_CAN_ZERO;
    if (nd->lib.nbd_can_trim(nd->h) == 1)
        d->caps |= BK_DEST_CAN_DISCARD;
    return 0;
}

static int load_libnbd(struct libnbd *lib, struct bk_error *err)
{
#define SYMBOL(fn) {#fn, offsetof(struct libnbd, fn)},
    static const struct bk_dynlib_symbol symbols[] = {LIBNBD_FUNCTIONS(SYMBOL)};
#undef SYMBOL
    return bk_dynlib_open(BK_NBD_SONAME, "NBD exports", symbols, sizeof symbols / sizeof *symbols,
                          lib, &lib->handle, err);
}

/* A destination for NAME with a fresh handle, not yet connected. */
static struct bk_dest *nbd_dest_new(const char *name, const struct bk_dest_options *o,
                                    struct bk_error *err)
{
    struct nbd_reason why;
    if (o->removable_only) {
        bk_error_set(err, BK_E_NOT_REMOVABLE, 0,
                     "destination %s is an NBD export, not a removable disk", name);
        return NULL;
    }
    struct bk_dest *d = bk_dest_new(&nbd_ops, name, err);
    struct nbd_dest *nd = d ? calloc(1, sizeof *nd) : NULL;
    if (d && !nd) {
        bk_dest_close(d);
        d = NULL;
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    if (!d)
        return NULL;
    d->priv = nd;
    if (load_libnbd(&nd->lib, err) < 0) {
        bk_error_prefix(err, "%s", name);
        bk_dest_close(d);
        return NULL;
    }
    nd->h = nd->lib.nbd_create();
    if (!nd->h) {
        bk_error_set(err, BK_E_NOMEM, nd->lib.nbd_get_errno(), "%s: %s", name,
                     nbd_reason(nd, &why));
        bk_dest_close(d);
        return NULL;
    }
    return d;
}

struct bk_dest *bk_dest_open_nbd_uri(const char *uri, uint64_t image_size,
                                     const struct bk_dest_options *o, struct bk_error *err)
{
    struct nbd_reason why;
    struct bk_dest *d = nbd_dest_new(uri, o, err);
    if (!d)
        return NULL;
    struct nbd_dest *nd = d->priv;
    /* The user named the TLS key file in the URI: reading it is what was asked for. */
    nd->lib.nbd_set_uri_allow_local_file(nd->h, true);
    if (nd->lib.nbd_connect_uri(nd->h, uri) < 0) {
        bk_error_set(err, BK_E_IO, nd->lib.nbd_get_errno(), "cannot connect to %s: %s", uri,
                     nbd_reason(nd, &why));
        bk_dest_close(d);
        return NULL;
    }
    if (describe_export(d, image_size, err) < 0) {
        bk_dest_close(d);
        return NULL;
    }
    return d;
}

struct bk_dest *bk_dest_open_nbd_command(char *const *argv, const char *name, uint64_t image_size,
                                         const struct bk_dest_options *opts, struct bk_error *err)
{
    struct nbd_reason why;
    if (!argv || !argv[0] || !name) {
        bk_error_set(err, BK_E_INVALID, 0, "an NBD command needs a program and a name");
        return NULL;
    }
    struct bk_dest_options o;
    if (bk_options_take(&o, sizeof o, opts, "destination options", err) < 0)
        return NULL;
    struct bk_dest *d = nbd_dest_new(name, &o, err);
    if (!d)
        return NULL;
    struct nbd_dest *nd = d->priv;
    if (nd->lib.nbd_connect_command(nd->h, (char **)argv) < 0) {
        bk_error_set(err, BK_E_IO, nd->lib.nbd_get_errno(), "cannot connect to %s through %s: %s",
                     name, argv[0], nbd_reason(nd, &why));
        bk_dest_close(d);
        return NULL;
    }
    if (describe_export(d, image_size, err) < 0) {
        bk_dest_close(d);
        return NULL;
    }
    return d;
}
