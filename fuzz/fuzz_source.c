/* SPDX-License-Identifier: MIT */
/* The fuzz input as a source, and the checks the decoder targets share. */
#include "fuzz_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A pipe hands out at most this much a read, like the kernel's pipe buffer. */
#define PIPE_BYTES ((size_t)64 << 10)
/* Bytes read per pread range: more than a piece decoder reads at once, so ranges cross. */
#define RANGE_BYTES ((size_t)70000)
/* Bytes planned at the image's start and middle: a copy's mapped areas, in small. */
#define PLAN_BYTES ((uint64_t)4096)

/*
 * Decoders take the window or dictionary a header asks for (zstd up to 2 GiB, xz up to
 * 4 GiB) and touch only what the data fills: address space, not memory. libFuzzer's
 * malloc limit (by default its RSS limit, 2 GiB) would stop at the first such header,
 * so it is raised unless given; the RSS limit still watches the memory really used.
 */
#define MALLOC_LIMIT_FLAG "-malloc_limit_mb="
#define MALLOC_LIMIT "6144"

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static char **args; /* for good: libFuzzer keeps pointing at it */
    for (int i = 1; i < *argc; i++)
        if (strncmp((*argv)[i], MALLOC_LIMIT_FLAG, strlen(MALLOC_LIMIT_FLAG)) == 0)
            return 0;
    args = calloc((size_t)*argc + 2, sizeof *args);
    fuzz_check(args != NULL);
    memcpy(args, *argv, (size_t)*argc * sizeof *args);
    args[(*argc)++] = MALLOC_LIMIT_FLAG MALLOC_LIMIT;
    *argv = args;
    return 0;
}

/*
 * As OSS-Fuzz runs: an allocation too large to map returns NULL (a damaged header may
 * ask for one), and the library must report BK_E_NOMEM rather than crash.
 */
const char *__asan_default_options(void);

const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

struct mem_source {
    struct bk_source pub;
    const uint8_t *data;
    size_t len, pos;
    enum fuzz_kind kind;
};

static int mem_read(struct bk_source *src, void *buf, size_t len, size_t *got, struct bk_error *err)
{
    (void)err;
    struct mem_source *m = src->priv;
    size_t n = m->len - m->pos;
    if (n > len)
        n = len;
    if (m->kind == FUZZ_PIPE && n > PIPE_BYTES)
        n = PIPE_BYTES;
    /* Read sizes that change from one read to the next find refills that assume more. */
    if (m->kind == FUZZ_TRICKLE && n > 1 + m->pos % 13)
        n = 1 + m->pos % 13;
    if (n > 0)
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
    size_t n = offset < m->len ? (size_t)bk_min_u64(len, m->len - offset) : 0;
    if (n > 0)
        memcpy(buf, m->data + offset, n);
    *got = n;
    return 0;
}

static void mem_close(struct bk_source *src)
{
    free(src->priv);
}

/* Only the file reads at an offset: a decoder must not pread a pipe. */
static const struct bk_source_ops file_ops = {
    .read = mem_read,
    .pread = mem_pread,
    .close = mem_close,
};

static const struct bk_source_ops pipe_ops = {
    .read = mem_read,
    .close = mem_close,
};

struct bk_source *fuzz_source_new(const uint8_t *data, size_t len, enum fuzz_kind kind)
{
    struct mem_source *m = calloc(1, sizeof *m);
    fuzz_check(m != NULL);
    bool file = kind == FUZZ_FILE;
    m->data = data;
    m->len = len;
    m->kind = kind;
    m->pub = (struct bk_source){
        .ops = file ? &file_ops : &pipe_ops,
        .name = "fuzz.img",
        .size = file ? (int64_t)len : -1,
        .seekable = file,
        .priv = m,
    };
    return &m->pub;
}

void fuzz_check(bool ok)
{
    if (!ok)
        abort();
}

void fuzz_check_failure(const struct bk_error *err, unsigned allowed)
{
    bool terminated = memchr(err->msg, '\0', sizeof err->msg) != NULL;
    bool code_ok =
        err->code != BK_OK && (unsigned)err->code < 32 && (allowed & FUZZ_CODE(err->code)) != 0;
    if (!terminated || !code_ok || err->msg[0] == '\0' || strchr(err->msg, '\n')) {
        /* The message that broke the rule, for whoever reads the crash report. */
        fprintf(stderr, "bad failure: code %d, message \"%.*s\"\n", (int)err->code,
                (int)sizeof err->msg, err->msg);
        abort();
    }
}

void fuzz_out_free(struct fuzz_out *out)
{
    free(out->data);
    *out = (struct fuzz_out){0};
}

bool fuzz_out_whole(const struct fuzz_out *out)
{
    return out->ended && out->total == out->len;
}

static void keep(struct fuzz_out *out, const uint8_t *p, size_t n)
{
    n = (size_t)bk_min_u64(n, FUZZ_KEEP - out->len);
    if (n == 0)
        return;
    if (out->len + n > out->cap) {
        size_t cap = out->cap ? out->cap : 4096;
        while (cap < out->len + n)
            cap *= 2;
        out->data = realloc(out->data, cap);
        fuzz_check(out->data != NULL);
        out->cap = cap;
    }
    memcpy(out->data + out->len, p, n);
    out->len += n;
}

int fuzz_drain(struct bk_source *src, uint64_t cap, struct fuzz_out *out, unsigned allowed,
               struct bk_error *err)
{
    static uint8_t buf[(size_t)256 << 10];
    static const size_t sizes[] = {sizeof buf, 1, 4093, PIPE_BYTES, 17};
    struct fuzz_out none;
    if (!out)
        out = &none;
    *out = (struct fuzz_out){0};
    /* A source that gives its size hands out exactly that many bytes. */
    bool sized = src->size >= 0;
    int rc = 1;
    for (size_t i = 0; out->total < cap; i++) {
        size_t want =
            (size_t)bk_min_u64(sizes[i % (sizeof sizes / sizeof sizes[0])], cap - out->total);
        size_t got = SIZE_MAX;
        bk_error_clear(err);
        if (bk_source_read(src, buf, want, &got, err) < 0) {
            fuzz_check_failure(err, allowed);
            rc = -1;
            break;
        }
        fuzz_check(got <= want);
        if (got == 0) {
            out->ended = true;
            rc = 0;
            break;
        }
        keep(out, buf, got);
        out->total += got;
        fuzz_check(!sized || out->total <= (uint64_t)src->size);
    }
    fuzz_check(!out->ended || !sized || out->total == (uint64_t)src->size);
    if (out == &none)
        fuzz_out_free(&none);
    return rc;
}

int fuzz_decode(const uint8_t *data, size_t len, enum fuzz_kind kind, bk_decode_fn decode,
                struct fuzz_out *out, struct bk_error *err)
{
    struct bk_source *in = fuzz_source_new(data, len, kind);
    bk_error_clear(err);
    struct bk_source *dec = decode(in, err);
    if (!dec) {
        /* The input stays ours. */
        fuzz_check_failure(err, FUZZ_DECODE_ERRORS);
        bk_source_close(in);
        *out = (struct fuzz_out){0};
        return -1;
    }
    int rc = fuzz_drain(dec, FUZZ_OUTPUT_CAP, out, FUZZ_DECODE_ERRORS, err);
    bk_source_close(dec);
    return rc;
}

/* Read LEN bytes at OFF (fewer at the end, none past it) and compare them with EXPECT. */
static int read_range(struct bk_source *src, uint64_t off, size_t len,
                      const struct fuzz_out *expect, unsigned allowed, struct bk_error *err)
{
    static uint8_t buf[RANGE_BYTES];
    uint64_t size = (uint64_t)src->size;
    size_t want = off < size ? (size_t)bk_min_u64(bk_min_u64(len, sizeof buf), size - off) : 0;
    size_t done = 0;
    do {
        size_t got = SIZE_MAX;
        bk_error_clear(err);
        if (bk_source_pread(src, buf + done, want > 0 ? want - done : 1, off + done, &got, err) <
            0) {
            fuzz_check_failure(err, allowed);
            return -1;
        }
        /* Short only at the end; nothing at all past it. */
        fuzz_check(want > 0 ? got > 0 && got <= want - done : got == 0);
        done += got;
    } while (done < want);
    if (want > 0 && fuzz_out_whole(expect)) {
        fuzz_check(off + want <= expect->len);
        fuzz_check(memcmp(buf, expect->data + off, want) == 0);
    }
    return 0;
}

int fuzz_preads(struct bk_source *src, const struct fuzz_out *expect, unsigned allowed,
                struct bk_error *err)
{
    static const struct fuzz_out none;
    if (!expect)
        expect = &none;
    fuzz_check(src->seekable && src->size >= 0);
    uint64_t size = (uint64_t)src->size;
    fuzz_check(!fuzz_out_whole(expect) || expect->total == size);
    /* Out of order, so a piece decoder must start over, and across the ends. */
    const uint64_t offsets[] = {size / 2, 0,    size > 0 ? size - 1 : 0, size / 3,
                                1,        size, UINT64_MAX - 1};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        uint64_t off = offsets[i];
        if (off < size && off > FUZZ_OUTPUT_CAP)
            continue;
        if (read_range(src, off, RANGE_BYTES, expect, allowed, err) < 0)
            return -1;
    }

    /* The same once planned, as a copy reads: the workers decode, pread takes. */
    uint64_t mid = bk_min_u64(size / 2, FUZZ_OUTPUT_CAP);
    struct bk_area areas[2] = {{0, bk_min_u64(PLAN_BYTES, size)}, {0, 0}};
    areas[1].start = bk_max_u64(mid, areas[0].end);
    areas[1].end = bk_min_u64(areas[1].start + PLAN_BYTES, size);
    size_t count = areas[1].start < areas[1].end ? 2 : 1;
    bk_error_clear(err);
    if (bk_source_plan(src, areas, count, err) < 0) {
        fuzz_check_failure(err, allowed);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (read_range(src, areas[i].start, (size_t)(areas[i].end - areas[i].start), expect,
                       allowed, err) < 0)
            return -1;
    }
    return 0;
}
