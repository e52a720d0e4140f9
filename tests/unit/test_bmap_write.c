/* SPDX-License-Identifier: MIT */
/* Unit tests of the bmap writer: layout, file checksum, and parse(write(x)) == x. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bmap/bmap_impl.h"
#include "bmapkit/bmap.h"
#include "bmapkit/digest.h"
#include "bmapkit/error.h"
#include "digest/hex.h"
#include "vectors.h"

struct mem_sink {
    struct vbuf out;
    size_t calls;
    size_t largest;   /* biggest single chunk handed over */
    size_t fail_call; /* fail on this call (1-based), 0 never */
};

static int mem_sink_fn(void *ctx, const void *data, size_t len, struct bk_error *err)
{
    struct mem_sink *s = ctx;
    s->calls++;
    if (s->fail_call && s->calls == s->fail_call)
        return bk_error_set(err, BK_E_IO, ENOSPC, "sink refused chunk %zu", s->calls);
    if (len > s->largest)
        s->largest = len;
    vbuf_add(&s->out, data, len);
    return 0;
}

static const struct bk_range std_ranges[] = {{0, 1}, {5, 5}, {7, 20}, {24, 24}};
#define STD_RANGE_COUNT (sizeof std_ranges / sizeof std_ranges[0])

/*
 * The map of a 100000-byte image in 4096-byte blocks (25 blocks, the last partial).
 * WITH_DIGEST says per range whether it gets a digest (NULL: all do).
 */
static struct bk_bmap *build_map(enum bk_hash hash, const bool *with_digest)
{
    struct bk_error err;
    struct bk_bmap *m = bk_bmap_new(100000, 4096, hash, &err);
    if (!m)
        fail_msg("bk_bmap_new failed: %s", err.msg);
    assert_int_equal(m->version_major, 2);
    assert_int_equal(m->version_minor, 0);
    assert_int_equal(m->blocks_count, 25);
    assert_true(m->has_file_checksum);
    for (size_t i = 0; i < STD_RANGE_COUNT; i++) {
        uint8_t d[BK_DIGEST_MAX];
        bool give = hash != BK_HASH_NONE && (!with_digest || with_digest[i]);
        if (give)
            vec_range_digest(hash, i, d);
        if (bk_bmap_append(m, std_ranges[i].first, std_ranges[i].last, give ? d : NULL, &err) != 0)
            fail_msg("bk_bmap_append failed: %s", err.msg);
    }
    /* bk_bmap_append counts the mapped blocks: 2 + 1 + 14 + 1. */
    assert_int_equal(m->mapped_blocks, 18);
    return m;
}

static void write_mem(const struct bk_bmap *m, struct vbuf *out)
{
    struct mem_sink s = {0};
    struct bk_error err;
    bk_error_clear(&err);
    if (bk_bmap_write(m, mem_sink_fn, &s, &err) != 0)
        fail_msg("write failed: %s", err.msg);
    vbuf_free(out);
    *out = s.out;
}

static struct bk_bmap *parse_mem(const struct vbuf *b)
{
    struct bk_error err;
    struct bk_bmap *m = bk_bmap_parse_buffer(b->data, b->len, "written.bmap", &err);
    if (!m)
        fail_msg("parsing the written bmap failed: %s", err.msg);
    return m;
}

/* Every field of A and B, digests included, must agree (the version is always 2.0). */
static void assert_same_map(const struct bk_bmap *a, const struct bk_bmap *b)
{
    assert_int_equal(b->version_major, 2);
    assert_int_equal(b->version_minor, 0);
    assert_int_equal(a->image_size, b->image_size);
    assert_int_equal(a->block_size, b->block_size);
    assert_int_equal(a->blocks_count, b->blocks_count);
    assert_int_equal(a->mapped_blocks, b->mapped_blocks);
    enum bk_hash ha = a->hash != BK_HASH_NONE ? a->hash : BK_HASH_SHA256;
    assert_int_equal(ha, b->hash);
    assert_true(b->has_file_checksum);
    assert_int_equal(a->range_count, b->range_count);
    for (size_t i = 0; i < a->range_count; i++) {
        assert_int_equal(a->ranges[i].first, b->ranges[i].first);
        assert_int_equal(a->ranges[i].last, b->ranges[i].last);
        const uint8_t *da = bk_bmap_digest(a, i), *db = bk_bmap_digest(b, i);
        if (!da) {
            assert_null(db);
        } else {
            assert_non_null(db);
            assert_memory_equal(da, db, bk_hash_size(ha));
        }
    }
}

/* True when LINE (with its "\n") is one of the lines of B. */
static bool has_line(const struct vbuf *b, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    return strstr(b->data, want) != NULL;
}

static void test_layout(void **state)
{
    (void)state;
    struct vbuf b = {0};
    struct bk_bmap *m = build_map(BK_HASH_SHA256, NULL);
    write_mem(m, &b);

    /* First line, LF only, one final newline, plain ASCII without tabs. */
    assert_int_equal(strncmp(b.data, "<?xml version=\"1.0\" ?>\n", 23), 0);
    assert_true(b.len > 8);
    assert_string_equal(b.data + b.len - 8, "</bmap>\n");
    assert_true(b.data[b.len - 2] != '\n');
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = (unsigned char)b.data[i];
        assert_true(c != '\r' && c != '\t' && c < 0x80);
        assert_true(c >= 0x20 || c == '\n');
    }

    assert_true(has_line(&b, "<bmap version=\"2.0\">"));
    assert_true(has_line(&b, "    <ImageSize> 100000 </ImageSize>"));
    assert_true(has_line(&b, "    <BlockSize> 4096 </BlockSize>"));
    assert_true(has_line(&b, "    <BlocksCount> 25 </BlocksCount>"));
    assert_true(has_line(&b, "    <MappedBlocksCount> 18 </MappedBlocksCount>"));
    assert_true(has_line(&b, "    <ChecksumType> sha256 </ChecksumType>"));
    assert_true(has_line(&b, "    <BlockMap>"));
    assert_true(has_line(&b, "    </BlockMap>"));

    /* The file checksum: 64 lower-case hex digits with one space each side. */
    size_t s = 0, e = 0;
    assert_true(vec_element_text(&b, "BmapFileChecksum", &s, &e));
    assert_int_equal(e - s, 66);
    assert_int_equal(b.data[s], ' ');
    assert_int_equal(b.data[e - 1], ' ');
    for (size_t i = s + 1; i < e - 1; i++)
        assert_non_null(strchr("0123456789abcdef", b.data[i]));
    assert_int_equal(strncmp(b.data + s - 23, "\n    <BmapFileChecksum>", 23), 0);

    /* Ranges: 8 spaces, chksum attribute, "A-B" or a single number. */
    for (size_t i = 0; i < STD_RANGE_COUNT; i++) {
        uint8_t d[BK_DIGEST_MAX];
        char hex[2 * BK_DIGEST_MAX + 1], line[256];
        vec_range_digest(BK_HASH_SHA256, i, d);
        bk_hex_encode(d, 32, hex);
        if (std_ranges[i].first == std_ranges[i].last)
            snprintf(line, sizeof line, "        <Range chksum=\"%s\"> %" PRIu64 " </Range>", hex,
                     std_ranges[i].first);
        else
            snprintf(line, sizeof line,
                     "        <Range chksum=\"%s\"> %" PRIu64 "-%" PRIu64 " </Range>", hex,
                     std_ranges[i].first, std_ranges[i].last);
        if (!has_line(&b, line))
            fail_msg("no line \"%s\" in:\n%s", line, b.data);
    }
    assert_non_null(strstr(b.data, "\"> 5 </Range>\n"));

    /* Each child of the root is preceded by a comment line. */
    static const char *const children[] = {
        "<ImageSize>",    "<BlockSize>",        "<BlocksCount>", "<MappedBlocksCount>",
        "<ChecksumType>", "<BmapFileChecksum>", "<BlockMap>"};
    for (size_t i = 0; i < sizeof children / sizeof children[0]; i++) {
        size_t at = vbuf_find(&b, 0, children[i]);
        assert_true(at != SIZE_MAX && at >= 8);
        assert_int_equal(strncmp(b.data + at - 8, "-->\n    ", 8), 0);
    }
    /* The children come in the reference's order. */
    for (size_t i = 1; i < sizeof children / sizeof children[0]; i++)
        assert_true(vbuf_find(&b, 0, children[i - 1]) < vbuf_find(&b, 0, children[i]));

    bk_bmap_free(m);
    vbuf_free(&b);
}

/* Check the file checksum of B the way the spec describes a reader doing it. */
static void assert_file_checksum_ok(const struct vbuf *b, enum bk_hash hash)
{
    size_t s = 0, e = 0;
    assert_true(vec_value_span(b, "BmapFileChecksum", &s, &e));
    size_t n = 2 * bk_hash_size(hash);
    assert_int_equal(e - s, n);
    /* The value's first occurrence is the element itself. */
    char value[2 * BK_DIGEST_MAX + 1];
    memcpy(value, b->data + s, n);
    value[n] = '\0';
    assert_int_equal(vbuf_find(b, 0, value), s);

    char *copy = malloc(b->len);
    assert_non_null(copy);
    memcpy(copy, b->data, b->len);
    memset(copy + s, '0', n);
    uint8_t d[BK_DIGEST_MAX];
    char hex[2 * BK_DIGEST_MAX + 1];
    vec_hash(hash, copy, b->len, d);
    bk_hex_encode(d, bk_hash_size(hash), hex);
    assert_string_equal(hex, value);
    free(copy);
}

static void test_file_checksum(void **state)
{
    (void)state;
    struct vbuf b = {0};
    struct bk_bmap *m = build_map(BK_HASH_SHA256, NULL);
    write_mem(m, &b);
    assert_file_checksum_ok(&b, BK_HASH_SHA256);

    /* Writing twice gives the same bytes. */
    struct vbuf again = {0};
    write_mem(m, &again);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);
    vbuf_free(&again);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void check_round_trip(enum bk_hash hash, const bool *with_digest)
{
    struct bk_bmap *back;
    struct vbuf b = {0}, b2 = {0};
    struct bk_bmap *m = build_map(hash, with_digest);
    write_mem(m, &b);
    back = parse_mem(&b);
    assert_same_map(m, back);
    /* Writing what was read reproduces the text exactly. */
    write_mem(back, &b2);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    bk_bmap_free(back);
    bk_bmap_free(m);
    vbuf_free(&b);
    vbuf_free(&b2);
}

static void test_round_trip(void **state)
{
    (void)state;
    check_round_trip(BK_HASH_SHA256, NULL);
}

static void test_round_trip_partial_digests(void **state)
{
    (void)state;
    static const bool some[STD_RANGE_COUNT] = {true, false, false, true};
    check_round_trip(BK_HASH_SHA256, some);
    static const bool last_only[STD_RANGE_COUNT] = {false, false, false, true};
    check_round_trip(BK_HASH_SHA384, last_only);
}

static void test_no_checksum(void **state)
{
    (void)state;
    /* What create --no-checksum produces: no chksum attributes, the rest as usual. */
    static const bool none[STD_RANGE_COUNT] = {false, false, false, false};
    struct vbuf b = {0};
    struct bk_bmap *back;
    struct bk_bmap *m = build_map(BK_HASH_SHA256, none);
    write_mem(m, &b);
    assert_null(strstr(b.data, "chksum="));
    assert_true(has_line(&b, "    <ChecksumType> sha256 </ChecksumType>"));
    assert_non_null(strstr(b.data, "<BmapFileChecksum> "));
    assert_true(has_line(&b, "        <Range> 0-1 </Range>"));
    assert_true(has_line(&b, "        <Range> 5 </Range>"));
    assert_file_checksum_ok(&b, BK_HASH_SHA256);
    back = parse_mem(&b);
    assert_same_map(m, back);
    for (size_t i = 0; i < back->range_count; i++)
        assert_null(bk_bmap_digest(back, i));
    bk_bmap_free(back);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void test_hash_none_means_sha256(void **state)
{
    (void)state;
    struct vbuf b = {0};
    struct bk_bmap *back;
    struct bk_bmap *m = build_map(BK_HASH_NONE, NULL);
    write_mem(m, &b);
    assert_true(has_line(&b, "    <ChecksumType> sha256 </ChecksumType>"));
    assert_null(strstr(b.data, "chksum="));
    assert_file_checksum_ok(&b, BK_HASH_SHA256);
    back = parse_mem(&b);
    assert_same_map(m, back);
    bk_bmap_free(back);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void check_algorithm(enum bk_hash hash)
{
    struct vbuf b = {0};
    struct bk_bmap *m = build_map(hash, NULL);
    write_mem(m, &b);
    char line[128];
    snprintf(line, sizeof line, "    <ChecksumType> %s </ChecksumType>", bk_hash_name(hash));
    assert_true(has_line(&b, line));
    assert_file_checksum_ok(&b, hash);
    /* Every chksum has the algorithm's length. */
    size_t n = 0;
    for (size_t at = vbuf_find(&b, 0, "chksum=\""); at != SIZE_MAX;
         at = vbuf_find(&b, at + 1, "chksum=\"")) {
        size_t end = vbuf_find(&b, at + 8, "\"");
        assert_int_equal(end - at - 8, 2 * bk_hash_size(hash));
        n++;
    }
    assert_int_equal(n, STD_RANGE_COUNT);
    bk_bmap_free(m);
    vbuf_free(&b);
    check_round_trip(hash, NULL);
}

static void test_sha1(void **state)
{
    (void)state;
    check_algorithm(BK_HASH_SHA1);
}

static void test_sha512(void **state)
{
    (void)state;
    check_algorithm(BK_HASH_SHA512);
}

static void test_other_algorithms(void **state)
{
    (void)state;
    check_algorithm(BK_HASH_SHA224);
    check_algorithm(BK_HASH_SHA384);
    check_algorithm(BK_HASH_MD5);
}

static void test_empty_map(void **state)
{
    (void)state;
    struct bk_bmap *back;
    struct bk_error err;
    struct vbuf b = {0};
    struct bk_bmap *m = bk_bmap_new(0, 4096, BK_HASH_SHA256, &err);
    if (!m)
        fail_msg("bk_bmap_new failed: %s", err.msg);
    assert_int_equal(m->blocks_count, 0);
    write_mem(m, &b);
    assert_true(has_line(&b, "    <BlockMap>"));
    assert_true(has_line(&b, "    <MappedBlocksCount> 0 </MappedBlocksCount>"));
    back = parse_mem(&b);
    assert_same_map(m, back);
    bk_bmap_free(back);
    bk_bmap_free(m);

    /* A map with no mapped block of a non-empty image. */
    m = bk_bmap_new(4096 * 10 + 1, 4096, BK_HASH_SHA256, &err);
    if (!m)
        fail_msg("bk_bmap_new failed: %s", err.msg);
    assert_int_equal(m->blocks_count, 11);
    write_mem(m, &b);
    back = parse_mem(&b);
    assert_same_map(m, back);
    bk_bmap_free(back);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void test_many_ranges(void **state)
{
    (void)state;
    /* Output goes out in bounded chunks however many ranges there are. */
    const size_t n = 200000;
    struct bk_bmap *back;
    struct bk_error err;
    struct bk_bmap *m = bk_bmap_new((uint64_t)(2 * n + 1) * 512 - 100, 512, BK_HASH_SHA256, &err);
    if (!m)
        fail_msg("bk_bmap_new failed: %s", err.msg);
    assert_int_equal(m->blocks_count, 2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t d[BK_DIGEST_MAX];
        vec_range_digest(BK_HASH_SHA256, i, d);
        if (bk_bmap_append(m, 2 * i + 1, 2 * i + 1 + (i == n - 1), d, &err) != 0)
            fail_msg("bk_bmap_append of range %zu failed: %s", i, err.msg);
    }
    /* One block per range, two in the last one. */
    assert_int_equal(m->mapped_blocks, n + 1);
    struct mem_sink s = {0};
    assert_int_equal(bk_bmap_write(m, mem_sink_fn, &s, &err), 0);
    assert_true(s.calls > 100);
    assert_true(s.largest <= 64 * 1024);
    back = parse_mem(&s.out);
    assert_same_map(m, back);
    assert_file_checksum_ok(&s.out, BK_HASH_SHA256);
    bk_bmap_free(back);
    bk_bmap_free(m);
    vbuf_free(&s.out);
}

static void test_sink_failure(void **state)
{
    (void)state;
    struct bk_error err;
    struct bk_bmap *m = build_map(BK_HASH_SHA256, NULL);
    struct mem_sink s = {.fail_call = 1};
    bk_error_clear(&err);
    assert_int_equal(bk_bmap_write(m, mem_sink_fn, &s, &err), -1);
    assert_int_equal(err.code, BK_E_IO);
    assert_int_equal(err.sys_errno, ENOSPC);
    assert_non_null(strstr(err.msg, "sink refused chunk 1"));
    assert_int_equal(s.calls, 1);
    vbuf_free(&s.out);
    bk_bmap_free(m);
}

static char *temp_path(void)
{
    const char *dir = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/bmapkit-test-XXXXXX", dir && *dir ? dir : "/tmp") < 0)
        abort();
    return path;
}

static void test_write_fd(void **state)
{
    (void)state;
    struct bk_bmap *back;
    struct bk_error err;
    struct vbuf b = {0};
    struct bk_bmap *m = build_map(BK_HASH_SHA256, NULL);
    write_mem(m, &b);

    char *path = temp_path();
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(bk_bmap_write_fd(m, fd, path, &err), 0);
    close(fd);
    back = bk_bmap_parse_file(path, &err);
    if (!back)
        fail_msg("parse_file: %s", err.msg);
    assert_same_map(m, back);
    bk_bmap_free(back);

    /* The file holds exactly what the memory sink got. */
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    char *file = malloc(b.len + 1);
    assert_non_null(file);
    assert_int_equal(read(fd, file, b.len + 1), (ssize_t)b.len);
    assert_memory_equal(file, b.data, b.len);
    free(file);

    /* A descriptor open for reading only cannot take the bmap. */
    bk_error_clear(&err);
    assert_int_equal(bk_bmap_write_fd(m, fd, "readonly.bmap", &err), -1);
    assert_int_equal(err.code, BK_E_IO);
    assert_int_equal(err.sys_errno, EBADF);
    assert_non_null(strstr(err.msg, "readonly.bmap"));
    close(fd);

    unlink(path);
    free(path);
    bk_bmap_free(m);
    vbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_file_checksum),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_partial_digests),
        cmocka_unit_test(test_no_checksum),
        cmocka_unit_test(test_hash_none_means_sha256),
        cmocka_unit_test(test_sha1),
        cmocka_unit_test(test_sha512),
        cmocka_unit_test(test_other_algorithms),
        cmocka_unit_test(test_empty_map),
        cmocka_unit_test(test_many_ranges),
        cmocka_unit_test(test_sink_failure),
        cmocka_unit_test(test_write_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
