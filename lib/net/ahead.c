/* SPDX-License-Identifier: MIT */
/*
 * Fetching planned areas ahead of the readers. The areas become runs (net/runs.h); a
 * thread of its own drives one libcurl multi handle with up to `requests` easy handles,
 * each fetching one run into a buffer of the run's size, started in order while the
 * buffers held stay within NET_AHEAD_BYTES. A run a reader waits for starts next, even
 * past that bound, so a reader that jumps ahead never waits on runs nobody reads. A run
 * is freed once its useful bytes were handed out. Each transfer keeps the guarantees of
 * the pulled one: a drop, a reset or a 5xx is retried from the byte reached with
 * back-off, a changed ETag or Last-Modified fails, and so does a range not honoured.
 */
#include "net/net_impl.h"
#include "net/runs.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes held for the readers, fetched and not yet read (at most). */
#define NET_AHEAD_BYTES ((uint64_t)48 << 20)
enum { WANTS_MAX = 32, RECV_BYTES = 512 << 10 };

enum run_state { RUN_QUEUED, RUN_ACTIVE, RUN_DONE, RUN_FAILED, RUN_FREED };

struct arun {
    struct net_run r;
    enum run_state state;
    uint8_t *buf;
    uint64_t filled; /* bytes arrived, from r.start on */
    uint64_t taken;  /* bytes handed out */
    struct bk_error error;
};

/* One easy handle and the run it fetches. */
struct xfer {
    struct bk_net_ahead *a;
    CURL *easy;
    struct arun *run; /* NULL when idle */
    bool attached, checked, backing_off;
    unsigned tries;
    long wait_ms;
    struct timespec retry_at;
    struct net_response resp;
    struct bk_error fail; /* found by a callback */
    char errbuf[CURL_ERROR_SIZE];
};

struct bk_net_ahead {
    struct bk_net *net;
    CURLM *multi;
    struct xfer *xfers;
    unsigned nxfers;
    struct arun *runs;
    size_t nruns;
    size_t next;      /* first run not started in order */
    uint64_t held;    /* bytes of run buffers */
    uint64_t buf_len; /* every run buffer's size: the longest run */
    void *pool;       /* freed run buffers, each starting with the next one's address */
    size_t pooled;
    size_t wants[WANTS_MAX];
    unsigned nwants, waiting;
    bool stop, started, interrupted;
    struct bk_error fail; /* the first run that failed for good */
    pthread_mutex_t lock;
    pthread_cond_t arrived;
    pthread_t thread;
};

/* Buffers are reused: fresh memory would cost a page fault every 4 KiB. */
static void free_run(struct bk_net_ahead *a, struct arun *r)
{
    if (r->buf) {
        if (a->pooled < NET_AHEAD_BYTES / a->buf_len) {
            memcpy(r->buf, &a->pool, sizeof a->pool);
            a->pool = r->buf;
            a->pooled++;
        } else {
            free(r->buf);
        }
        r->buf = NULL;
        a->held -= a->buf_len;
    }
    r->state = RUN_FREED;
}

static uint8_t *new_buf(struct bk_net_ahead *a)
{
    uint8_t *b = a->pool;
    if (b) {
        memcpy(&a->pool, b, sizeof a->pool);
        a->pooled--;
    } else {
        b = malloc((size_t)a->buf_len);
    }
    return b;
}

static size_t on_header(char *data, size_t size, size_t count, void *ctx)
{
    struct xfer *x = ctx;
    net_header_line(&x->resp, data, size * count);
    return size * count;
}

static size_t on_data(char *data, size_t size, size_t count, void *ctx)
{
    struct xfer *x = ctx;
    struct bk_net_ahead *a = x->a;
    struct arun *r = x->run;
    size_t len = size * count;
    /* Only this thread writes filled and the bytes past it; readers look below it. */
    uint64_t at = r->r.start + r->filled;
    if (!x->checked && a->net->http) {
        long code = 0;
        a->net->lib.curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        if (net_check_response(a->net, &x->resp, code, at, &x->fail) < 0)
            return 0;
    }
    x->checked = true;
    if (len > r->r.end - at) {
        bk_error_set(&x->fail, BK_E_IO, 0,
                     "%s: the server sent more than the %" PRIu64 " bytes asked from byte %" PRIu64
                     ", %" PRIu64 " bytes received",
                     a->net->name, r->r.end - at, at, net_received(a->net));
        return 0;
    }
    memcpy(r->buf + r->filled, data, len);
    net_count(a->net, len);
    pthread_mutex_lock(&a->lock);
    r->filled += len;
    if (a->waiting)
        pthread_cond_broadcast(&a->arrived);
    pthread_mutex_unlock(&a->lock);
    return len;
}

/* Send X's request for the rest of its run. Call locked. */
static void launch(struct bk_net_ahead *a, struct xfer *x)
{
    struct arun *r = x->run;
    char range[64];
    snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, r->r.start + r->filled, r->r.end - 1);
    a->net->lib.curl_easy_setopt(x->easy, CURLOPT_RANGE, range);
    x->checked = x->backing_off = false;
    x->errbuf[0] = '\0';
    bk_error_clear(&x->fail);
    if (a->net->lib.curl_multi_add_handle(a->multi, x->easy) != CURLM_OK) {
        bk_error_set(&r->error, BK_E_NOMEM, 0, "%s: cannot start a transfer", a->net->name);
        r->state = RUN_FAILED;
        a->fail = r->error;
        x->run = NULL;
        return;
    }
    x->attached = true;
}

/* Give X run R (with a buffer of its size) and start it. Call locked. */
static void begin(struct bk_net_ahead *a, struct xfer *x, struct arun *r)
{
    r->buf = new_buf(a);
    if (!r->buf) {
        bk_error_set(&r->error, BK_E_NOMEM, 0, "out of memory");
        r->state = RUN_FAILED;
        a->fail = r->error;
        return;
    }
    a->held += a->buf_len;
    r->state = RUN_ACTIVE;
    x->run = r;
    x->tries = 0;
    x->wait_ms = a->net->o.backoff_ms;
    launch(a, x);
}

/* The run an idle transfer takes next: one a reader waits for, else the next in order. */
static struct arun *pick(struct bk_net_ahead *a)
{
    while (a->nwants > 0) {
        struct arun *r = &a->runs[a->wants[--a->nwants]];
        if (r->state == RUN_QUEUED)
            return r;
    }
    while (a->next < a->nruns && a->runs[a->next].state != RUN_QUEUED)
        a->next++;
    if (a->next == a->nruns)
        return NULL;
    struct arun *r = &a->runs[a->next];
    if (a->held > 0 && a->held + a->buf_len > NET_AHEAD_BYTES)
        return NULL;
    a->next++;
    return r;
}

static bool due(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Start what may start: retries whose back-off is over, then new runs. Call locked. */
static void schedule(struct bk_net_ahead *a)
{
    for (unsigned i = 0; i < a->nxfers; i++) {
        struct xfer *x = &a->xfers[i];
        if (x->run && x->backing_off && due(&x->retry_at))
            launch(a, x);
    }
    for (unsigned i = 0; i < a->nxfers && a->fail.code == BK_OK; i++) {
        struct xfer *x = &a->xfers[i];
        struct arun *r;
        if (!x->run && (r = pick(a)) != NULL)
            begin(a, x, r);
    }
}

/* X's transfer ended with RC: its run is complete, retried later, or failed. */
static void finished(struct bk_net_ahead *a, struct xfer *x, CURLcode rc)
{
    a->net->lib.curl_multi_remove_handle(a->multi, x->easy);
    x->attached = false;
    pthread_mutex_lock(&a->lock);
    struct arun *r = x->run;
    bool complete = r->filled == r->r.end - r->r.start;
    if (rc == CURLE_OK && complete) {
        r->state = RUN_DONE;
        if (r->taken >= r->r.useful)
            free_run(a, r);
        x->run = NULL;
    } else if (x->fail.code == BK_OK && x->tries < a->net->o.retries &&
               net_transient(a->net, x->easy, rc == CURLE_OK ? CURLE_PARTIAL_FILE : rc)) {
        x->tries++;
        x->backing_off = true;
        clock_gettime(CLOCK_MONOTONIC, &x->retry_at);
        x->retry_at.tv_sec += x->wait_ms / 1000;
        x->retry_at.tv_nsec += (x->wait_ms % 1000) * 1000000L;
        if (x->retry_at.tv_nsec >= 1000000000L) {
            x->retry_at.tv_sec++;
            x->retry_at.tv_nsec -= 1000000000L;
        }
        x->wait_ms *= 2;
    } else {
        if (x->fail.code != BK_OK)
            r->error = x->fail;
        else
            net_transfer_error(a->net, x->easy, rc == CURLE_OK ? CURLE_PARTIAL_FILE : rc, x->errbuf,
                               x->tries, &r->error);
        r->state = RUN_FAILED;
        if (a->fail.code == BK_OK)
            a->fail = r->error;
        x->run = NULL;
    }
    pthread_cond_broadcast(&a->arrived);
    pthread_mutex_unlock(&a->lock);
}

/* How long the loop may sleep when nothing happens: briefly while a retry waits. */
static int sleep_ms(const struct bk_net_ahead *a)
{
    int ms = 1000;
    for (unsigned i = 0; i < a->nxfers; i++)
        if (a->xfers[i].run && a->xfers[i].backing_off)
            ms = 10;
    return ms;
}

static void *ahead_main(void *arg)
{
    struct bk_net_ahead *a = arg;
    pthread_mutex_lock(&a->lock);
    while (!a->stop) {
        schedule(a);
        int ms = sleep_ms(a);
        pthread_mutex_unlock(&a->lock);
        int running = 0;
        a->net->lib.curl_multi_perform(a->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = a->net->lib.curl_multi_info_read(a->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            struct xfer *x = NULL;
            a->net->lib.curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            finished(a, x, m->data.result);
        }
        a->net->lib.curl_multi_poll(a->multi, NULL, 0, ms, NULL);
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* The run that holds OFF, or NULL. */
static struct arun *find_run(struct bk_net_ahead *a, uint64_t off)
{
    size_t lo = 0, hi = a->nruns;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->runs[mid].r.end <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < a->nruns && a->runs[lo].r.start <= off ? &a->runs[lo] : NULL;
}

/* Ask the thread to start R next. Call locked. */
static void want(struct bk_net_ahead *a, struct arun *r)
{
    size_t k = (size_t)(r - a->runs);
    for (unsigned i = 0; i < a->nwants; i++)
        if (a->wants[i] == k)
            return;
    if (a->nwants < WANTS_MAX) {
        a->wants[a->nwants++] = k;
        a->net->lib.curl_multi_wakeup(a->multi);
    }
}

int bk_net_ahead_read(struct bk_net_ahead *a, void *buf, size_t len, uint64_t off, size_t *got,
                      struct bk_error *err)
{
    *got = 0;
    if (len == 0)
        return 0;
    pthread_mutex_lock(&a->lock);
    struct arun *r = find_run(a, off);
    int rc = 1;
    while (r) {
        uint64_t have = r->r.start + r->filled;
        if (r->state == RUN_FREED)
            break;
        if (a->interrupted) {
            rc = bk_error_set(err, BK_E_CANCELLED, 0,
                              "%s: interrupted after %" PRIu64 " bytes received", a->net->name,
                              net_received(a->net));
            break;
        }
        if (have > off) {
            size_t n = (size_t)(have - off < len ? have - off : len);
            memcpy(buf, r->buf + (off - r->r.start), n);
            *got = n;
            r->taken += n;
            if (r->state == RUN_DONE && r->taken >= r->r.useful) {
                free_run(a, r);
                a->net->lib.curl_multi_wakeup(a->multi); /* room for the next run */
            }
            rc = 0;
            break;
        }
        /* After a failure for good (the file changed, say), nobody waits for more. */
        if (r->state == RUN_FAILED || a->fail.code != BK_OK) {
            if (err)
                *err = r->state == RUN_FAILED ? r->error : a->fail;
            rc = -1;
            break;
        }
        if (r->state == RUN_QUEUED)
            want(a, r);
        a->waiting++;
        pthread_cond_wait(&a->arrived, &a->lock);
        a->waiting--;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void bk_net_ahead_interrupt(struct bk_net_ahead *a)
{
    pthread_mutex_lock(&a->lock);
    a->interrupted = true;
    pthread_cond_broadcast(&a->arrived);
    pthread_mutex_unlock(&a->lock);
}

void bk_net_ahead_stop(struct bk_net_ahead *a)
{
    if (!a)
        return;
    if (a->started) {
        pthread_mutex_lock(&a->lock);
        a->stop = true;
        pthread_mutex_unlock(&a->lock);
        a->net->lib.curl_multi_wakeup(a->multi);
        pthread_join(a->thread, NULL);
    }
    for (unsigned i = 0; i < a->nxfers; i++) {
        struct xfer *x = &a->xfers[i];
        if (x->attached)
            a->net->lib.curl_multi_remove_handle(a->multi, x->easy);
        if (x->easy)
            a->net->lib.curl_easy_cleanup(x->easy);
    }
    for (size_t i = 0; i < a->nruns; i++)
        free(a->runs[i].buf);
    while (a->pool) {
        void *b = a->pool;
        memcpy(&a->pool, b, sizeof a->pool);
        free(b);
    }
    if (a->multi)
        a->net->lib.curl_multi_cleanup(a->multi);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->arrived);
    free(a->xfers);
    free(a->runs);
    free(a);
}

/* The runs of AREAS, each queued. */
static int make_runs(struct bk_net_ahead *a, const uint64_t (*areas)[2], size_t count)
{
    struct net_run *runs;
    size_t n;
    /* Small plans are cut finer too: every transfer gets several runs, none waits alone. */
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += areas[i][1] - areas[i][0];
    uint64_t run_max = total / (8 * (uint64_t)(a->net->o.requests ? a->net->o.requests : 1));
    run_max = run_max < NET_RUN_MIN ? NET_RUN_MIN : run_max > NET_RUN_MAX ? NET_RUN_MAX : run_max;
    if (net_runs(areas, count, run_max, &runs, &n) < 0)
        return -1;
    a->runs = calloc(n ? n : 1, sizeof *a->runs);
    if (!a->runs) {
        free(runs);
        return -1;
    }
    a->buf_len = sizeof(void *); /* room for the pool's link */
    for (size_t i = 0; i < n; i++) {
        a->runs[i] = (struct arun){.r = runs[i], .state = RUN_QUEUED};
        if (runs[i].end - runs[i].start > a->buf_len)
            a->buf_len = runs[i].end - runs[i].start;
    }
    a->nruns = n;
    free(runs);
    return 0;
}

static int make_xfers(struct bk_net_ahead *a)
{
    unsigned n = a->net->o.requests ? a->net->o.requests : 1;
    if (!(a->xfers = calloc(n, sizeof *a->xfers)))
        return -1;
    a->nxfers = n;
    for (unsigned i = 0; i < n; i++) {
        struct xfer *x = &a->xfers[i];
        x->a = a;
        if (!(x->easy = a->net->lib.curl_easy_init()))
            return -1;
        net_setup_easy(a->net, x->easy, x->errbuf);
        a->net->lib.curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
        a->net->lib.curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
        a->net->lib.curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
        a->net->lib.curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
        a->net->lib.curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
        /* Larger reads from the socket: fewer calls and fewer wake-ups of the readers. */
        a->net->lib.curl_easy_setopt(x->easy, CURLOPT_BUFFERSIZE, (long)RECV_BYTES);
    }
    return 0;
}

struct bk_net_ahead *bk_net_ahead_start(struct bk_net *n, const uint64_t (*areas)[2], size_t count,
                                        struct bk_error *err)
{
    struct bk_net_ahead *a = calloc(1, sizeof *a);
    if (!a) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    a->net = n;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->arrived, NULL);
    if (!(a->multi = a->net->lib.curl_multi_init()) || make_runs(a, areas, count) < 0 ||
        make_xfers(a) < 0) {
        bk_net_ahead_stop(a);
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    /* Connections are reused between the transfers, up to one per transfer in flight. */
    a->net->lib.curl_multi_setopt(a->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)a->nxfers);
    int e = pthread_create(&a->thread, NULL, ahead_main, a);
    if (e != 0) {
        bk_net_ahead_stop(a);
        bk_error_set(err, BK_E_IO, e, "%s: cannot start a thread for the transfers", n->name);
        return NULL;
    }
    a->started = true;
    return a;
}
