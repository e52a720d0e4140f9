/* SPDX-License-Identifier: MIT */
/* Unit tests of the bmap reader: versions, hashes, validation, file checksum, XML hazards. */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bmap/bmap_impl.h"
#include "bmapkit/bmap.h"
#include "bmapkit/digest.h"
#include "bmapkit/error.h"
#include "digest/hex.h"
#include "vectors.h"

#define NAME "test.bmap"

/* 100000 bytes in 4096-byte blocks: 25 blocks, the last one partial (1696 bytes). */
#define STD_IMAGE_SIZE 100000
#define STD_BLOCK_SIZE 4096
static const struct bk_range std_ranges[] = {{0, 1}, {3, 5}, {9, 9}, {12, 20}, {24, 24}};
#define STD_RANGE_COUNT (sizeof std_ranges / sizeof std_ranges[0])

static struct vec_opts std_opts(const char *version)
{
    struct vec_opts o = {
        .version = version,
        .image_size = STD_IMAGE_SIZE,
        .block_size = STD_BLOCK_SIZE,
        .ranges = std_ranges,
        .range_count = STD_RANGE_COUNT,
        .digests = true,
    };
    return o;
}

static void std_doc(const char *version, struct vbuf *b)
{
    struct vec_opts o = std_opts(version);
    vec_generate(&o, b);
}

static struct bk_bmap *parse_vbuf(const struct vbuf *b, struct bk_error *err)
{
    bk_error_clear(err);
    return bk_bmap_parse_buffer(b->data, b->len, NAME, err);
}

/* Parse B and insist on success, showing the library's message otherwise. */
static struct bk_bmap *parse_ok_at(int line, const struct vbuf *b)
{
    struct bk_error err;
    struct bk_bmap *m = parse_vbuf(b, &err);
    if (!m)
        fail_msg("line %d: parse failed (code %d): %s", line, (int)err.code, err.msg);
    assert_int_equal(err.code, BK_OK);
    return m;
}
#define PARSE_OK(b) parse_ok_at(__LINE__, (b))

/*
 * Parse B and insist on failure with CODE and a message that contains every string of
 * NEEDLES (NULL-terminated); no map may come back.
 */
static void expect_fail_at(int line, const struct vbuf *b, enum bk_code code,
                           const char *const *needles)
{
    struct bk_error err;
    struct bk_bmap *m = parse_vbuf(b, &err);
    if (m) {
        bk_bmap_free(m);
        fail_msg("line %d: parse succeeded, expected failure with code %d", line, (int)code);
    }
    if (err.code != code)
        fail_msg("line %d: code %d, expected %d; message: %s", line, (int)err.code, (int)code,
                 err.msg);
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(err.msg, needles[i]))
            fail_msg("line %d: message \"%s\" does not contain \"%s\"", line, err.msg, needles[i]);
    assert_null(strchr(err.msg, '\n'));
}
#define EXPECT_FAIL(b, code, ...)                                                                  \
    expect_fail_at(__LINE__, (b), (code), (const char *const[]){__VA_ARGS__, NULL})

/* "test.bmap:LINE:" for the line holding the first NEEDLE of B. */
static const char *where(const struct vbuf *b, const char *needle, char *buf, size_t cap)
{
    snprintf(buf, cap, NAME ":%lu:", vec_line_of(b, needle));
    return buf;
}

/* The public accessors report what the map holds. */
static void check_accessors(const struct bk_bmap *m)
{
    unsigned major = 0, minor = 0;
    bk_bmap_version(m, &major, &minor);
    assert_int_equal(major, m->version_major);
    assert_int_equal(minor, m->version_minor);
    assert_int_equal(bk_bmap_image_size(m), m->image_size);
    assert_int_equal(bk_bmap_block_size(m), m->block_size);
    assert_int_equal(bk_bmap_blocks_count(m), m->blocks_count);
    assert_int_equal(bk_bmap_mapped_blocks(m), m->mapped_blocks);
    assert_int_equal(bk_bmap_hash(m), m->hash);
    assert_int_equal(bk_bmap_has_file_checksum(m), m->has_file_checksum);
    assert_int_equal(bk_bmap_range_count(m), m->range_count);
    for (size_t i = 0; i < m->range_count; i++) {
        struct bk_range r = bk_bmap_range(m, i);
        assert_int_equal(r.first, m->ranges[i].first);
        assert_int_equal(r.last, m->ranges[i].last);
    }
}

/* Compare everything the parser produced with what O generated. */
static void check_matches(const struct bk_bmap *m, const struct vec_opts *o)
{
    check_accessors(m);
    enum vec_layout layout = vec_layout_of(o);
    enum bk_hash hash = vec_opts_hash(o);
    assert_int_equal(m->image_size, o->image_size);
    assert_int_equal(m->block_size, o->block_size);
    assert_int_equal(m->blocks_count, vec_blocks(o));
    assert_int_equal(m->mapped_blocks, vec_mapped(o));
    assert_int_equal(m->hash, hash);
    assert_int_equal(m->has_file_checksum, layout == VEC_LAYOUT_1_3 || layout == VEC_LAYOUT_2_0);
    assert_int_equal(m->range_count, o->range_count);
    for (size_t i = 0; i < o->range_count; i++) {
        assert_int_equal(m->ranges[i].first, o->ranges[i].first);
        assert_int_equal(m->ranges[i].last, o->ranges[i].last);
        const uint8_t *d = bk_bmap_digest(m, i);
        if (o->digests && hash != BK_HASH_NONE) {
            uint8_t want[BK_DIGEST_MAX];
            vec_range_digest(hash, i, want);
            assert_non_null(d);
            assert_memory_equal(d, want, bk_hash_size(hash));
        } else {
            assert_null(d);
        }
    }
}

static void check_version(const char *version, unsigned major, unsigned minor)
{
    struct vec_opts o = std_opts(version);
    struct vbuf b = {0};
    struct bk_bmap *m;
    vec_generate(&o, &b);
    m = PARSE_OK(&b);
    assert_int_equal(m->version_major, major);
    assert_int_equal(m->version_minor, minor);
    check_matches(m, &o);
    bk_bmap_free(m);
    vbuf_free(&b);
}

/* ---- versions ---------------------------------------------------------------------- */

static void test_version_1_0(void **state)
{
    (void)state;
    struct vbuf b = {0};
    std_doc("1.0", &b);
    /* 1.0 has no checksum of any kind. */
    assert_null(strstr(b.data, "sha1="));
    assert_null(strstr(b.data, "Checksum"));
    vbuf_free(&b);
    check_version("1.0", 1, 0);
}

static void test_version_1_1(void **state)
{
    (void)state;
    struct vbuf b = {0};
    std_doc("1.1", &b);
    assert_non_null(strstr(b.data, "<Range sha1=\""));
    vbuf_free(&b);
    check_version("1.1", 1, 1);
}

static void test_version_1_2(void **state)
{
    (void)state;
    struct vbuf b = {0};
    std_doc("1.2", &b);
    /* The generator must really put MappedBlocksCount after the map for this version. */
    assert_true(vbuf_find(&b, 0, "<MappedBlocksCount>") > vbuf_find(&b, 0, "</BlockMap>"));
    vbuf_free(&b);
    check_version("1.2", 1, 2);
}

static void test_version_1_3(void **state)
{
    (void)state;
    struct vbuf b = {0};
    std_doc("1.3", &b);
    assert_non_null(strstr(b.data, "<BmapFileSHA1>"));
    vbuf_free(&b);
    check_version("1.3", 1, 3);
}

static void test_version_1_4(void **state)
{
    (void)state;
    check_version("1.4", 1, 4);
}

static void test_version_2_0(void **state)
{
    (void)state;
    check_version("2.0", 2, 0);
}

static void test_version_2_5_accepted(void **state)
{
    (void)state;
    check_version("2.5", 2, 5);
}

static void test_version_major_3_and_4_unsupported(void **state)
{
    (void)state;
    static const char *const versions[] = {"3.0", "4.1"};
    for (size_t i = 0; i < 2; i++) {
        struct vbuf b = {0};
        std_doc(versions[i], &b);
        EXPECT_FAIL(&b, BK_E_UNSUPPORTED, versions[i], NAME ":4:");
        vbuf_free(&b);
    }
}

static void test_version_nonexistent(void **state)
{
    (void)state;
    static const char *const versions[] = {"0.9", "1.7", "1.5", "0.0"};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        struct vbuf b = {0};
        std_doc(versions[i], &b);
        EXPECT_FAIL(&b, BK_E_FORMAT, versions[i], "version");
        vbuf_free(&b);
    }
}

static void test_version_garbage(void **state)
{
    (void)state;
    static const char *const versions[] = {
        "abc",
        "",
        "2",
        "2.",
        ".0",
        "2.0.1",
        "-1.0",
        "2.0x",
        "2 .0",
        "v2.0",
        "99999999999999999999.0",
    };
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        struct vbuf b = {0};
        std_doc(versions[i], &b);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", versions[i]);
        EXPECT_FAIL(&b, BK_E_FORMAT, quoted, "MAJOR.MINOR");
        vbuf_free(&b);
    }
}

static void test_version_missing(void **state)
{
    (void)state;
    struct vbuf b = {0};
    std_doc("2.0", &b);
    assert_true(vec_replace(&b, "<bmap version=\"2.0\">", "<bmap>"));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "no version attribute", NAME ":4:");
    vbuf_free(&b);
}

/* ---- content that contradicts the declared version --------------------------------- */

/*
 * B, with its version attribute set to DECLARED and its file checksum made right again,
 * must be refused as malformed at the line of AT, naming WHAT and the version.
 */
static void expect_contradiction_at(int line, struct vbuf *b, const char *declared, const char *at,
                                    const char *what, const char *who_has)
{
    size_t s = vbuf_find(b, 0, "<bmap version=\"");
    assert_true(s != SIZE_MAX);
    s += strlen("<bmap version=\"");
    size_t e = vbuf_find(b, s, "\"");
    vbuf_splice(b, s, e - s, declared, strlen(declared));
    vec_fix_checksum(b);
    char loc[64], msg[256];
    where(b, at, loc, sizeof loc);
    if (vec_line_of(b, at) == 0)
        fail_msg("line %d: the document has no \"%s\"", line, at);
    snprintf(msg, sizeof msg, "%s contradicts bmap format version %s declared on line %lu (%s)",
             what, declared, vec_line_of(b, "<bmap version="), who_has);
    expect_fail_at(line, b, BK_E_FORMAT, (const char *const[]){loc, msg, NULL});
}
#define EXPECT_CONTRADICTION(b, declared, at, what, who_has)                                       \
    expect_contradiction_at(__LINE__, (b), (declared), (at), (what), (who_has))

#define NEW_ONLY "only versions 1.4 and 2.x have it"
#define SHA1_ONLY "only versions 1.1 to 1.3 have it"
#define V13_ONLY "only version 1.3 has it"

static void test_contradiction_checksum_type(void **state)
{
    (void)state;
    /* A 2.0 (or 1.4) bmap whose version was lowered: its checksums must not be dropped. */
    static const char *const older[] = {"1.0", "1.1", "1.2", "1.3"};
    for (size_t i = 0; i < sizeof older / sizeof older[0]; i++) {
        struct vbuf b = {0};
        std_doc("2.0", &b);
        EXPECT_CONTRADICTION(&b, older[i], "<ChecksumType>", "<ChecksumType>", NEW_ONLY);
        std_doc("1.4", &b);
        EXPECT_CONTRADICTION(&b, older[i], "<ChecksumType>", "<ChecksumType>", NEW_ONLY);
        vbuf_free(&b);
    }
}

static void test_contradiction_file_checksum(void **state)
{
    (void)state;
    struct vbuf b = {0};
    /* Without ChecksumType, the next thing only 2.0 has is the file checksum... */
    std_doc("2.0", &b);
    assert_true(vec_remove_element(&b, "ChecksumType"));
    EXPECT_CONTRADICTION(&b, "1.2", "<BmapFileChecksum>", "<BmapFileChecksum>", NEW_ONLY);
    /* ... and without both, the chksum attribute of the first range. */
    std_doc("2.0", &b);
    assert_true(vec_remove_element(&b, "ChecksumType"));
    assert_true(vec_remove_element(&b, "BmapFileChecksum"));
    EXPECT_CONTRADICTION(&b, "1.1", "<Range chksum=", "Range attribute chksum", NEW_ONLY);
    EXPECT_CONTRADICTION(&b, "1.0", "<Range chksum=", "Range attribute chksum", NEW_ONLY);
    vbuf_free(&b);
}

static void test_contradiction_file_sha1(void **state)
{
    (void)state;
    /* BmapFileSHA1 exists in 1.3 only: lowered, raised or renumbered as 2.x, it is refused. */
    static const char *const others[] = {"1.0", "1.1", "1.2", "1.4", "2.0", "2.5"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        struct vbuf b = {0};
        std_doc("1.3", &b);
        EXPECT_CONTRADICTION(&b, others[i], "<BmapFileSHA1>", "<BmapFileSHA1>", V13_ONLY);
        vbuf_free(&b);
    }
}

static void test_contradiction_range_sha1(void **state)
{
    (void)state;
    struct vbuf b = {0};
    /* 1.1 and 1.2 have nothing but their sha1 attributes to show their version. */
    std_doc("1.1", &b);
    EXPECT_CONTRADICTION(&b, "1.0", "<Range sha1=", "Range attribute sha1", SHA1_ONLY);
    std_doc("1.2", &b);
    EXPECT_CONTRADICTION(&b, "1.0", "<Range sha1=", "Range attribute sha1", SHA1_ONLY);
    std_doc("1.2", &b);
    EXPECT_CONTRADICTION(&b, "2.0", "<Range sha1=", "Range attribute sha1", SHA1_ONLY);
    std_doc("1.2", &b);
    EXPECT_CONTRADICTION(&b, "1.4", "<Range sha1=", "Range attribute sha1", SHA1_ONLY);
    /* One range of a 2.0 bmap with a sha1 attribute besides its chksum. */
    std_doc("2.0", &b);
    assert_true(vec_replace(&b, "> 9 </Range>", "> 9 </Range>\n        <Range> 10 </Range>"));
    assert_true(vec_replace(&b, "<Range> 10 <",
                            "<Range sha1=\"da39a3ee5e6b4b0d3255bfef95601890afd80709\"> 10 <"));
    EXPECT_CONTRADICTION(&b, "2.0", "<Range sha1=", "Range attribute sha1", SHA1_ONLY);
    /* A chksum attribute added to a range of a 1.0 bmap. */
    std_doc("1.0", &b);
    assert_true(vec_replace(&b, "<Range> 9 <", "<Range chksum=\"00\"> 9 <"));
    EXPECT_CONTRADICTION(&b, "1.0", "<Range chksum=", "Range attribute chksum", NEW_ONLY);
    vbuf_free(&b);
}

static void test_contradiction_not_in_meaningless_places(void **state)
{
    (void)state;
    /* Inside an element the format does not define, names carry no meaning at any version;
       other Range attributes neither. */
    struct vbuf b = {0};
    struct bk_bmap *m;
    std_doc("1.0", &b);
    assert_true(vec_insert_before(&b, "    <!-- Image size",
                                  "    <Origin><ChecksumType> sha256 </ChecksumType>"
                                  "<BmapFileSHA1> 0 </BmapFileSHA1>"
                                  "<Range chksum=\"00\"> 1 </Range></Origin>\n"));
    assert_true(vec_replace(&b, "<Range> 9 <", "<Range note=\"kept\" sha=\"1\"> 9 <"));
    m = PARSE_OK(&b);
    struct vec_opts o = std_opts("1.0");
    check_matches(m, &o);
    bk_bmap_free(m);
    vbuf_free(&b);
}

/* ---- hash types -------------------------------------------------------------------- */

static void check_hash(enum bk_hash hash)
{
    struct vec_opts o = std_opts("2.0");
    o.hash = hash;
    struct vbuf b = {0};
    struct bk_bmap *m;
    vec_generate(&o, &b);
    char tag[64];
    snprintf(tag, sizeof tag, "<ChecksumType> %s </ChecksumType>", bk_hash_name(hash));
    assert_non_null(strstr(b.data, tag));
    m = PARSE_OK(&b);
    assert_int_equal(m->hash, hash);
    assert_true(m->has_file_checksum);
    check_matches(m, &o);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void test_hash_sha1(void **state)
{
    (void)state;
    check_hash(BK_HASH_SHA1);
}

static void test_hash_sha224(void **state)
{
    (void)state;
    check_hash(BK_HASH_SHA224);
}

static void test_hash_sha256(void **state)
{
    (void)state;
    check_hash(BK_HASH_SHA256);
}

static void test_hash_sha384(void **state)
{
    (void)state;
    check_hash(BK_HASH_SHA384);
}

static void test_hash_sha512(void **state)
{
    (void)state;
    check_hash(BK_HASH_SHA512);
}

static void test_hash_md5(void **state)
{
    (void)state;
    check_hash(BK_HASH_MD5);
}

static void test_hash_without_range_digests(void **state)
{
    (void)state;
    /* What create --no-checksum writes: ChecksumType and file checksum, no chksum. */
    struct vec_opts o = std_opts("2.0");
    o.digests = false;
    o.hash = BK_HASH_SHA512;
    struct vbuf b = {0};
    struct bk_bmap *m;
    vec_generate(&o, &b);
    assert_null(strstr(b.data, "chksum="));
    m = PARSE_OK(&b);
    assert_int_equal(m->hash, BK_HASH_SHA512);
    check_matches(m, &o);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void test_hash_unknown_type(void **state)
{
    (void)state;
    static const char *const names[] = {"crc32", "sha3-256", "blake2b", "none", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct vbuf b = {0};
        char text[64], quoted[64], at[64];
        std_doc("2.0", &b);
        snprintf(text, sizeof text, " %s ", names[i]);
        snprintf(quoted, sizeof quoted, "\"%s\"", names[i]);
        assert_true(vec_set_text(&b, "ChecksumType", text));
        vec_fix_checksum(&b);
        EXPECT_FAIL(&b, BK_E_FORMAT, "ChecksumType", quoted, where(&b, "<ChecksumType>", at, 64));
        vbuf_free(&b);
    }
}

static void test_hash_chksum_of_other_algorithm(void **state)
{
    (void)state;
    /* Range digests are SHA-1 sized while ChecksumType says sha256. */
    struct vec_opts o = std_opts("2.0");
    o.hash = BK_HASH_SHA1;
    struct vbuf b = {0};
    vec_generate(&o, &b);
    assert_true(vec_set_text(&b, "ChecksumType", " sha256 "));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "sha256", "ChecksumType");
    vbuf_free(&b);
}

static void test_hash_chksum_bad_length(void **state)
{
    (void)state;
    /* A digest one hex digit short is no algorithm's length. */
    struct vbuf b = {0};
    char at[64];
    std_doc("2.0", &b);
    size_t s = vbuf_find(&b, 0, "chksum=\"") + 8;
    size_t e = vbuf_find(&b, s, "\"");
    assert_int_equal(e - s, 64);
    vbuf_splice(&b, s, 1, "", 0);
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "chksum", "not a hex digest", where(&b, "<Range chksum", at, 64));
    vbuf_free(&b);
}

static void test_hash_chksum_not_hex(void **state)
{
    (void)state;
    struct vbuf b = {0};
    std_doc("2.0", &b);
    size_t s = vbuf_find(&b, 0, "chksum=\"") + 8;
    vbuf_splice(&b, s, 1, "g", 1);
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "chksum", "not a hex digest");
    vbuf_free(&b);
}

static void test_hash_chksum_mixed_lengths(void **state)
{
    (void)state;
    /* The second range carries a SHA-1 sized digest among sha256 ones. */
    struct vbuf b = {0};
    char at[64];
    std_doc("2.0", &b);
    size_t s = vbuf_find(&b, vbuf_find(&b, 0, "<Range") + 1, "<Range") + 15;
    vbuf_splice(&b, s, 24, "", 0);
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "40 hex digits", "64", where(&b, "> 3-5 <", at, 64));
    vbuf_free(&b);
}

/* ---- structural validation --------------------------------------------------------- */

static void test_validate_blocks_count_mismatch(void **state)
{
    (void)state;
    struct vbuf b = {0};
    char at[64];
    std_doc("2.0", &b);
    assert_true(vec_set_text(&b, "BlocksCount", " 24 "));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "BlocksCount is 24", "25", where(&b, "<BlocksCount>", at, 64));
    assert_true(vec_set_text(&b, "BlocksCount", " 25 "));

    /* An image that is an exact multiple of the block size has no extra block. */
    assert_true(vec_set_text(&b, "ImageSize", " 102400 "));
    vec_fix_checksum(&b);
    struct bk_bmap *m = PARSE_OK(&b);
    assert_int_equal(m->blocks_count, 25);
    bk_bmap_free(m);
    assert_true(vec_set_text(&b, "ImageSize", " 102401 "));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "BlocksCount is 25", "26");
    vbuf_free(&b);
}

static void test_validate_block_size_zero(void **state)
{
    (void)state;
    struct vbuf b = {0};
    char at[64];
    std_doc("2.0", &b);
    assert_true(vec_set_text(&b, "BlockSize", " 0 "));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "BlockSize 0", where(&b, "<BlockSize>", at, 64));
    vbuf_free(&b);
}

static void test_validate_range_descending(void **state)
{
    (void)state;
    struct vbuf b = {0};
    char at[64];
    std_doc("2.0", &b);
    assert_true(vec_replace(&b, "> 3-5 <", "> 5-3 <"));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "5-3", "descending", where(&b, "> 5-3 <", at, 64));
    vbuf_free(&b);
}

static void test_validate_range_overlapping(void **state)
{
    (void)state;
    struct vbuf b = {0};
    char at[64];
    std_doc("2.0", &b);
    /* 3-5 followed by 5-9 shares block 5; the counts are kept consistent. */
    assert_true(vec_replace(&b, "> 9 <", "> 5-9 <"));
    assert_true(vec_set_text(&b, "MappedBlocksCount", " 20 "));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "5-9", "3-5", where(&b, "> 5-9 <", at, 64));
    vbuf_free(&b);
}

static void test_validate_range_not_ascending(void **state)
{
    (void)state;
    struct vbuf b = {0};
    char at[64];
    std_doc("2.0", &b);
    /* Disjoint but out of order: 12-20 then 9. */
    assert_true(vec_replace(&b, "> 9 <", "> TMP <"));
    assert_true(vec_replace(&b, "> 12-20 <", "> 9 <"));
    assert_true(vec_replace(&b, "> TMP <", "> 12-20 <"));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "Range 9-9", "12-20", "ascending", where(&b, "> 9 <", at, 64));
    vbuf_free(&b);
}

static void test_validate_range_beyond_end(void **state)
{
    (void)state;
    struct vbuf b = {0};
    char at[64];
    std_doc("2.0", &b);
    /* Block 25 does not exist in a 25-block image. */
    assert_true(vec_replace(&b, "> 24 <", "> 24-25 <"));
    assert_true(vec_set_text(&b, "MappedBlocksCount", " 17 "));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "24-25", "last block 24", where(&b, "> 24-25 <", at, 64));
    vbuf_free(&b);
}

static void test_validate_mapped_count_mismatch(void **state)
{
    (void)state;
    struct vbuf b = {0};
    char at[64];
    std_doc("2.0", &b);
    assert_true(vec_set_text(&b, "MappedBlocksCount", " 17 "));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "MappedBlocksCount is 17", "hold 16",
                where(&b, "<MappedBlocksCount>", at, 64));
    vbuf_free(&b);
}

static void check_missing(const char *version, const char *element)
{
    struct vbuf b = {0};
    char what[64];
    std_doc(version, &b);
    assert_true(vec_remove_element(&b, element));
    vec_fix_checksum(&b);
    snprintf(what, sizeof what, "<%s> is missing", element);
    EXPECT_FAIL(&b, BK_E_FORMAT, what);
    vbuf_free(&b);
}

static void test_missing_image_size(void **state)
{
    (void)state;
    check_missing("2.0", "ImageSize");
    check_missing("1.0", "ImageSize");
}

static void test_missing_block_size(void **state)
{
    (void)state;
    check_missing("2.0", "BlockSize");
}

static void test_missing_blocks_count(void **state)
{
    (void)state;
    check_missing("2.0", "BlocksCount");
}

static void test_missing_mapped_blocks_count(void **state)
{
    (void)state;
    check_missing("2.0", "MappedBlocksCount");
    check_missing("1.2", "MappedBlocksCount");
}

static void test_missing_block_map(void **state)
{
    (void)state;
    check_missing("2.0", "BlockMap");
}

static void test_missing_checksum_type(void **state)
{
    (void)state;
    check_missing("2.0", "ChecksumType");
    check_missing("1.4", "ChecksumType");
}

static void test_missing_file_checksum(void **state)
{
    (void)state;
    check_missing("2.0", "BmapFileChecksum");
    check_missing("1.4", "BmapFileChecksum");
}

static void test_missing_file_sha1(void **state)
{
    (void)state;
    check_missing("1.3", "BmapFileSHA1");
}

static void test_duplicate_elements(void **state)
{
    (void)state;
    static const char *const elements[] = {
        "ImageSize", "BlockSize",        "BlocksCount",  "MappedBlocksCount",
        "BlockMap",  "BmapFileChecksum", "ChecksumType",
    };
    for (size_t i = 0; i < sizeof elements / sizeof elements[0]; i++) {
        struct vbuf b = {0};
        char what[64], first[64];
        std_doc("2.0", &b);
        char open[40];
        snprintf(open, sizeof open, "<%s>", elements[i]);
        snprintf(first, sizeof first, "first on line %lu", vec_line_of(&b, open));
        assert_true(vec_duplicate_element(&b, elements[i]));
        vec_fix_checksum(&b);
        snprintf(what, sizeof what, "<%s> appears twice", elements[i]);
        EXPECT_FAIL(&b, BK_E_FORMAT, what, first);
        vbuf_free(&b);
    }
}

static void test_non_numeric_values(void **state)
{
    (void)state;
    static const char *const elements[] = {"ImageSize", "BlockSize", "BlocksCount",
                                           "MappedBlocksCount"};
    static const char *const values[] = {"abc", "12a", "-5",  "+5",   "0x10",
                                         "1e3", "",    "4.5", "1 000"};
    for (size_t i = 0; i < sizeof elements / sizeof elements[0]; i++) {
        for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
            struct vbuf b = {0};
            char text[64], quoted[64], open[40], at[64];
            std_doc("2.0", &b);
            snprintf(text, sizeof text, " %s ", values[k]);
            snprintf(quoted, sizeof quoted, "\"%s\"", values[k]);
            snprintf(open, sizeof open, "<%s>", elements[i]);
            assert_true(vec_set_text(&b, elements[i], text));
            vec_fix_checksum(&b);
            EXPECT_FAIL(&b, BK_E_FORMAT, elements[i], quoted, "not a decimal number",
                        where(&b, open, at, 64));
            vbuf_free(&b);
        }
    }
}

static void test_numbers_overflowing_64_bits(void **state)
{
    (void)state;
    static const char *const values[] = {"18446744073709551616", "18446744073709551620",
                                         "99999999999999999999", "184467440737095516150"};
    for (size_t k = 0; k < sizeof values / sizeof values[0]; k++) {
        struct vbuf b = {0};
        std_doc("2.0", &b);
        assert_true(vec_set_text(&b, "ImageSize", values[k]));
        vec_fix_checksum(&b);
        EXPECT_FAIL(&b, BK_E_FORMAT, "ImageSize", values[k]);

        /* The same in a range. */
        char text[64];
        std_doc("2.0", &b);
        snprintf(text, sizeof text, "> 3-%s <", values[k]);
        assert_true(vec_replace(&b, "> 3-5 <", text));
        vec_fix_checksum(&b);
        EXPECT_FAIL(&b, BK_E_FORMAT, "Range", values[k]);
        vbuf_free(&b);
    }
}

static void test_numbers_at_64_bit_limit(void **state)
{
    (void)state;
    /* The largest value fits: 2^64-1 bytes in 4096-byte blocks is 2^52 blocks. */
    struct vec_opts o = std_opts("2.0");
    o.image_size = UINT64_MAX;
    static const struct bk_range far[] = {{0, 0}, {4503599627370495ull, 4503599627370495ull}};
    o.ranges = far;
    o.range_count = 2;
    struct vbuf b = {0};
    struct bk_bmap *m;
    vec_generate(&o, &b);
    assert_non_null(strstr(b.data, "18446744073709551615"));
    m = PARSE_OK(&b);
    check_matches(m, &o);
    assert_int_equal(m->blocks_count, 4503599627370496ull);
    /* The partial last block holds 4095 bytes. */
    assert_int_equal(bk_bmap_range_bytes(m, 1), 4095);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void test_range_text_malformed(void **state)
{
    (void)state;
    static const char *const texts[] = {"abc", "1-2-3", "-3",  "3-",  "1,2",  "",
                                        "1 2", "1--2",  "0x3", "3_5", "3 5-7"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        struct vbuf b = {0};
        char text[64], quoted[64], at[64];
        std_doc("2.0", &b);
        snprintf(text, sizeof text, "> %s <", texts[k]);
        assert_true(vec_replace(&b, "> 3-5 <", text));
        vec_fix_checksum(&b);
        snprintf(quoted, sizeof quoted, "Range \"%s\"", texts[k]);
        EXPECT_FAIL(&b, BK_E_FORMAT, quoted, where(&b, text, at, 64));
        vbuf_free(&b);
    }
    /* Control characters of the input do not break the message into lines. */
    struct vbuf b = {0};
    std_doc("2.0", &b);
    assert_true(vec_replace(&b, "> 3-5 <", ">3\n4\t-5<"));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "Range \"3 4 -5\"");
    vbuf_free(&b);
}

static void test_range_bytes_partial_last_block(void **state)
{
    (void)state;
    struct vbuf b = {0};
    struct bk_bmap *m;
    std_doc("2.0", &b);
    m = PARSE_OK(&b);
    assert_int_equal(bk_bmap_range_bytes(m, 0), 2 * 4096);
    assert_int_equal(bk_bmap_range_bytes(m, 2), 4096);
    assert_int_equal(bk_bmap_range_bytes(m, 4), STD_IMAGE_SIZE - 24 * 4096);
    assert_int_equal(bk_bmap_mapped_bytes(m), 15 * 4096 + (STD_IMAGE_SIZE - 24 * 4096));
    /* Range 1 (3-5) starts at block 3. */
    assert_int_equal(bk_bmap_range_start(m, 1), 3 * 4096);
    bk_bmap_free(m);
    vbuf_free(&b);
}

/* ---- the file checksum ------------------------------------------------------------- */

/*
 * Flip one bit of every byte in turn: each variant must be refused. The one exception
 * is an edit of the version into one that has no file checksum (1.3 -> 1.2): the format
 * gives nothing to check such a file against.
 */
static void check_every_byte_matters(const char *version)
{
    struct vbuf b = {0};
    std_doc(version, &b);
    char *copy = malloc(b.len);
    assert_non_null(copy);
    size_t checksum_failures = 0;
    size_t version_at = vbuf_find(&b, 0, "<bmap version=\"") + 15;
    for (size_t i = 0; i < b.len; i++) {
        memcpy(copy, b.data, b.len);
        /* XOR 1 never only changes letter case, which hex decoding would ignore. */
        copy[i] = (char)(copy[i] ^ 1);
        struct bk_error err;
        struct bk_bmap *m = bk_bmap_parse_buffer(copy, b.len, NAME, &err);
        if (m) {
            bool downgrade = i >= version_at && i < version_at + strlen(version) &&
                             !m->has_file_checksum && m->version_major == 1 && m->version_minor < 3;
            bk_bmap_free(m);
            if (downgrade)
                continue;
            fail_msg("version %s: changing byte %zu ('%c') was not detected", version, i,
                     b.data[i]);
        }
        checksum_failures += err.code == BK_E_CHECKSUM;
    }
    /* Most edits (comments, whitespace, digests) are caught by the checksum alone. */
    assert_true(checksum_failures > b.len / 2);
    free(copy);
    vbuf_free(&b);
}

static void test_checksum_every_byte_2_0(void **state)
{
    (void)state;
    check_every_byte_matters("2.0");
}

static void test_checksum_every_byte_1_3(void **state)
{
    (void)state;
    check_every_byte_matters("1.3");
}

static void test_checksum_tampered(void **state)
{
    (void)state;
    static const char *const versions[] = {"1.3", "1.4", "2.0"};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        struct vbuf b = {0};
        /* One byte in a comment. */
        std_doc(versions[i], &b);
        assert_true(vec_replace(&b, "Block size", "Block sizE"));
        EXPECT_FAIL(&b, BK_E_CHECKSUM, NAME, "checksum does not match");
        /* One hex digit of a range digest: still a well-formed bmap. */
        std_doc(versions[i], &b);
        size_t s = vbuf_find(&b, vbuf_find(&b, 0, "<Range"), "=\"") + 2;
        b.data[s] = b.data[s] == '0' ? '1' : '0';
        EXPECT_FAIL(&b, BK_E_CHECKSUM, "checksum does not match");
        /* The line ending of the last line. */
        std_doc(versions[i], &b);
        vbuf_splice(&b, b.len - 1, 1, "\r\n", 2);
        EXPECT_FAIL(&b, BK_E_CHECKSUM, "checksum does not match");
        /* One more byte of whitespace between two elements. */
        std_doc(versions[i], &b);
        assert_true(vec_replace(&b, "</BlockMap>", "</BlockMap> "));
        EXPECT_FAIL(&b, BK_E_CHECKSUM, "checksum does not match");
        vbuf_free(&b);
    }
}

static void test_checksum_absent_before_1_3(void **state)
{
    (void)state;
    /* Versions without a file checksum cannot notice edits; they must still parse. */
    static const char *const versions[] = {"1.0", "1.1", "1.2"};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        struct vbuf b = {0};
        struct bk_bmap *m;
        std_doc(versions[i], &b);
        assert_true(vec_replace(&b, "Block size", "Block sizE"));
        m = PARSE_OK(&b);
        assert_false(m->has_file_checksum);
        bk_bmap_free(m);
        vbuf_free(&b);
    }
}

static void test_checksum_wrong_length(void **state)
{
    (void)state;
    static const char *const values[] = {
        " da39a3ee5e6b4b0d3255bfef95601890afd80709 ", /* sha1 length in a sha256 file */
        " 0 ",
        "  ",
        " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550 ",
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        struct vbuf b = {0};
        std_doc("2.0", &b);
        assert_true(vec_set_text(&b, "BmapFileChecksum", values[i]));
        EXPECT_FAIL(&b, BK_E_FORMAT, "file checksum", "not a sha256 hex digest");
        vbuf_free(&b);
    }
    /* BmapFileSHA1 holding a sha256-sized value. */
    struct vbuf b = {0};
    std_doc("1.3", &b);
    assert_true(vec_set_text(&b, "BmapFileSHA1", values[3]));
    EXPECT_FAIL(&b, BK_E_FORMAT, "not a sha1 hex digest");
    /* Right length, not hex. */
    std_doc("2.0", &b);
    size_t s = 0, e = 0;
    assert_true(vec_value_span(&b, "BmapFileChecksum", &s, &e));
    b.data[s + 10] = 'x';
    EXPECT_FAIL(&b, BK_E_FORMAT, "not a sha256 hex digest");
    vbuf_free(&b);
}

/* Hex digest of B with the 2*DSIZE bytes at OFF set to '0'. */
static void hash_with_zeros(const struct vbuf *b, enum bk_hash h, size_t off, char *hex)
{
    size_t n = 2 * bk_hash_size(h);
    char *copy = malloc(b->len);
    assert_non_null(copy);
    memcpy(copy, b->data, b->len);
    memset(copy + off, '0', n);
    uint8_t d[BK_DIGEST_MAX];
    vec_hash(h, copy, b->len, d);
    bk_hex_encode(d, bk_hash_size(h), hex);
    free(copy);
}

/* The digest the library computed, taken from its "content gives HEX" message. */
static void computed_from_message(const struct bk_error *err, char *hex, size_t n)
{
    const char *p = strstr(err->msg, "content gives ");
    assert_non_null(p);
    p += strlen("content gives ");
    assert_true(strlen(p) >= n);
    memcpy(hex, p, n);
    hex[n] = '\0';
}

/*
 * Build a document holding the file checksum value twice: in a comment inserted before
 * INSERT_BEFORE and in the element. Both were zeros while hashing, so only a reader that
 * replaced every occurrence would accept it. Sets *FIRST and *ELEMENT to the offsets.
 */
static void build_double_value(struct vbuf *b, const char *insert_before, size_t pad, size_t *first,
                               size_t *element)
{
    std_doc("2.0", b);
    struct vbuf c = {0};
    vbuf_puts(&c, "    <!-- ");
    for (size_t i = 0; i < pad; i++)
        vbuf_add(&c, &"pqrstuvwxyz"[i % 11], 1);
    vbuf_puts(&c, " copy: 0000000000000000000000000000000000000000000000000000000000000000 -->\n");
    assert_true(vec_insert_before(b, insert_before, c.data));
    vbuf_free(&c);
    size_t s = 0, e = 0;
    assert_true(vec_value_span(b, "BmapFileChecksum", &s, &e));
    assert_int_equal(e - s, 64);
    memset(b->data + s, '0', 64);
    size_t copy = vbuf_find(b, 0, " copy: ") + 7;
    uint8_t d[BK_DIGEST_MAX];
    char hex[2 * BK_DIGEST_MAX + 1];
    vec_hash(BK_HASH_SHA256, b->data, b->len, d);
    bk_hex_encode(d, 32, hex);
    memcpy(b->data + s, hex, 64);
    memcpy(b->data + copy, hex, 64);
    *first = copy < s ? copy : s;
    *element = s;
}

static void check_double_value(const char *insert_before, size_t pad)
{
    struct vbuf b = {0};
    size_t first, element;
    build_double_value(&b, insert_before, pad, &first, &element);

    struct bk_error err;
    assert_null(parse_vbuf(&b, &err));
    assert_int_equal(err.code, BK_E_CHECKSUM);

    /* The library must have zeroed exactly the first occurrence. */
    char got[65], want[65], other[65];
    computed_from_message(&err, got, 64);
    hash_with_zeros(&b, BK_HASH_SHA256, first, want);
    assert_string_equal(got, want);
    size_t second = first == element ? vbuf_find(&b, element + 1, " copy: ") + 7 : element;
    hash_with_zeros(&b, BK_HASH_SHA256, second, other);
    assert_string_not_equal(got, other);
    vbuf_free(&b);
}

static void test_checksum_value_in_earlier_comment(void **state)
{
    (void)state;
    check_double_value("    <!-- Checksum of this file", 0);
}

static void test_checksum_value_in_later_comment(void **state)
{
    (void)state;
    check_double_value("    </BlockMap>", 0);
}

static void test_checksum_zeros_in_earlier_comment(void **state)
{
    (void)state;
    /* A comment holding the placeholder zeros is just content; the element's value is
       the first occurrence of the digest and the file verifies. */
    struct vbuf b = {0};
    struct bk_bmap *m;
    std_doc("2.0", &b);
    assert_true(vec_insert_before(
        &b, "    <!-- Checksum of this file",
        "    <!-- 0000000000000000000000000000000000000000000000000000000000000000 -->\n"));
    vec_fix_checksum(&b);
    m = PARSE_OK(&b);
    struct vec_opts o = std_opts("2.0");
    check_matches(m, &o);
    bk_bmap_free(m);
    vbuf_free(&b);
}

#define CHECKER_CHUNK (256 * 1024)

static char *temp_path(void)
{
    const char *dir = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/bmapkit-test-XXXXXX", dir && *dir ? dir : "/tmp") < 0)
        abort();
    return path;
}

static char *write_temp(const struct vbuf *b)
{
    char *path = temp_path();
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b->data, b->len), (ssize_t)b->len);
    assert_int_equal(close(fd), 0);
    return path;
}

/*
 * A document over 300 KiB whose file checksum value starts BEFORE bytes ahead of the
 * checker's chunk boundary, so the value is split across two reads.
 */
static void build_straddling(struct vbuf *b, size_t before)
{
    std_doc("2.0", b);
    size_t s = 0, e = 0;
    assert_true(vec_value_span(b, "BmapFileChecksum", &s, &e));
    size_t pad = CHECKER_CHUNK - before - s;
    struct vbuf c = {0};
    vbuf_puts(&c, "    <!-- ");
    for (size_t i = 0; i < pad - 14; i++)
        vbuf_add(&c, &"pqrstuvwxyz"[i % 11], 1);
    vbuf_puts(&c, " -->\n");
    assert_int_equal(c.len, pad);
    assert_true(vec_insert_before(b, "    <!-- Image size", c.data));
    /* More padding after the value so the file goes well past the boundary. */
    c.len = 0;
    vbuf_puts(&c, "    <!-- ");
    for (size_t i = 0; i < 64 * 1024; i++)
        vbuf_add(&c, &"pqrstuvwxyz"[i % 7], 1);
    vbuf_puts(&c, " -->\n");
    assert_true(vec_insert_before(b, "</bmap>", c.data));
    vbuf_free(&c);
    vec_fix_checksum(b);
    assert_true(vec_value_span(b, "BmapFileChecksum", &s, &e));
    assert_int_equal(s, CHECKER_CHUNK - before);
    assert_true(b->len > 300 * 1024);
}

static void check_straddling(size_t before)
{
    struct vbuf b = {0};
    struct bk_bmap *m;
    struct bk_error err;
    struct vec_opts o = std_opts("2.0");
    build_straddling(&b, before);

    m = PARSE_OK(&b);
    check_matches(m, &o);
    bk_bmap_free(m);

    char *path = write_temp(&b);
    bk_error_clear(&err);
    m = bk_bmap_parse_file(path, &err);
    if (!m)
        fail_msg("split %zu: parse_file failed: %s", before, err.msg);
    check_matches(m, &o);
    bk_bmap_free(m);

    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    m = bk_bmap_parse_fd(fd, "straddle.bmap", &err);
    if (!m)
        fail_msg("split %zu: parse_fd failed: %s", before, err.msg);
    check_matches(m, &o);
    bk_bmap_free(m);
    close(fd);

    /* An edit past the boundary is still seen, from memory and from the file. */
    size_t at = vbuf_find(&b, CHECKER_CHUNK + 100, "pqr");
    b.data[at] = 'z';
    EXPECT_FAIL(&b, BK_E_CHECKSUM, "checksum does not match");
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "z", 1, (off_t)at), 1);
    close(fd);
    assert_null(bk_bmap_parse_file(path, &err));
    assert_int_equal(err.code, BK_E_CHECKSUM);
    assert_non_null(strstr(err.msg, path));

    unlink(path);
    free(path);
    vbuf_free(&b);
}

static void test_checksum_straddles_chunk_boundary(void **state)
{
    (void)state;
    static const size_t splits[] = {1, 2, 31, 32, 33, 63};
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++)
        check_straddling(splits[i]);
}

static void test_checksum_touches_chunk_boundary(void **state)
{
    (void)state;
    /* The value ends exactly at the boundary, or starts exactly on it. */
    check_straddling(64);
    check_straddling(0);
}

static void test_checksum_first_occurrence_straddles(void **state)
{
    (void)state;
    /* The earlier copy of the value sits across the checker's boundary. */
    struct vbuf b = {0};
    size_t first, element;
    std_doc("2.0", &b);
    size_t base = vbuf_find(&b, 0, "    <!-- Checksum of this file");
    /* Comment overhead up to the copy: "    <!-- " + pad + " copy: " = pad + 16. */
    size_t pad = CHECKER_CHUNK - 20 - base - 16;
    vbuf_free(&b);
    build_double_value(&b, "    <!-- Checksum of this file", pad, &first, &element);
    assert_int_equal(first, CHECKER_CHUNK - 20);
    assert_true(element > CHECKER_CHUNK);

    char *path = write_temp(&b);
    struct bk_error err;
    assert_null(bk_bmap_parse_file(path, &err));
    assert_int_equal(err.code, BK_E_CHECKSUM);
    char got[65], want[65];
    computed_from_message(&err, got, 64);
    hash_with_zeros(&b, BK_HASH_SHA256, first, want);
    assert_string_equal(got, want);
    unlink(path);
    free(path);
    vbuf_free(&b);
}

/* ---- XML hazards ------------------------------------------------------------------- */

static void expect_text_fails(const char *text, enum bk_code code, const char *needle)
{
    struct vbuf b = {0};
    vbuf_puts(&b, text);
    EXPECT_FAIL(&b, code, needle);
    vbuf_free(&b);
}

static void test_xml_unclosed_tags(void **state)
{
    (void)state;
    struct vbuf b = {0};
    std_doc("2.0", &b);
    /* Cut the document before its end tag. */
    b.len = vbuf_find(&b, 0, "</bmap>");
    b.data[b.len] = '\0';
    EXPECT_FAIL(&b, BK_E_FORMAT, "not well-formed");
    /* A Range whose end tag is misspelt. */
    std_doc("2.0", &b);
    assert_true(vec_replace(&b, "> 9 </Range>", "> 9 </Rnage>"));
    vec_fix_checksum(&b);
    char at[64];
    EXPECT_FAIL(&b, BK_E_FORMAT, "not well-formed", where(&b, "</Rnage>", at, 64));
    vbuf_free(&b);
    expect_text_fails("<bmap version=\"2.0\"><ImageSize> 5 </ImageSize>", BK_E_FORMAT,
                      "not well-formed");
}

static void test_xml_wrong_root(void **state)
{
    (void)state;
    struct vbuf b = {0};
    std_doc("2.0", &b);
    assert_true(vec_replace(&b, "<bmap version", "<bmop version"));
    assert_true(vec_replace(&b, "</bmap>", "</bmop>"));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "root element", "<bmop>", NAME ":4:");
    vbuf_free(&b);
}

static void test_xml_text_after_root(void **state)
{
    (void)state;
    struct vbuf b = {0};
    std_doc("2.0", &b);
    vbuf_puts(&b, "trailing words\n");
    EXPECT_FAIL(&b, BK_E_FORMAT, "not well-formed");
    /* A second root element. */
    std_doc("2.0", &b);
    vbuf_puts(&b, "<bmap version=\"2.0\"/>\n");
    EXPECT_FAIL(&b, BK_E_FORMAT, "not well-formed");
    vbuf_free(&b);
}

static void test_xml_empty_input(void **state)
{
    (void)state;
    struct bk_error err;
    assert_null(bk_bmap_parse_buffer("", 0, NAME, &err));
    assert_int_equal(err.code, BK_E_FORMAT);
    assert_non_null(strstr(err.msg, NAME));
    expect_text_fails("  \n\n", BK_E_FORMAT, "not well-formed");
    expect_text_fails("<?xml version=\"1.0\" ?>\n", BK_E_FORMAT, "not well-formed");
    expect_text_fails("<!-- only a comment -->\n", BK_E_FORMAT, "not well-formed");
}

static void test_xml_billion_laughs(void **state)
{
    (void)state;
    struct vbuf b = {0};
    vbuf_puts(&b, "<?xml version=\"1.0\"?>\n<!DOCTYPE bmap [\n <!ENTITY l0 \"ha\">\n");
    for (int i = 1; i < 10; i++) {
        vbuf_printf(&b, " <!ENTITY l%d \"", i);
        for (int k = 0; k < 10; k++)
            vbuf_printf(&b, "&l%d;", i - 1);
        vbuf_puts(&b, "\">\n");
    }
    vbuf_puts(&b, "]>\n<bmap version=\"2.0\"><ImageSize>&l9;</ImageSize></bmap>\n");
    EXPECT_FAIL(&b, BK_E_FORMAT, "document type", NAME ":2:");
    vbuf_free(&b);
}

static void test_xml_external_entity(void **state)
{
    (void)state;
    expect_text_fails("<?xml version=\"1.0\"?>\n"
                      "<!DOCTYPE bmap [ <!ENTITY x SYSTEM \"file:///etc/passwd\"> ]>\n"
                      "<bmap version=\"2.0\"><ImageSize>&x;</ImageSize></bmap>\n",
                      BK_E_FORMAT, "document type");
    expect_text_fails("<?xml version=\"1.0\"?>\n"
                      "<!DOCTYPE bmap SYSTEM \"http://example.invalid/bmap.dtd\">\n"
                      "<bmap version=\"2.0\"/>\n",
                      BK_E_FORMAT, "document type");
    expect_text_fails("<?xml version=\"1.0\"?>\n"
                      "<!DOCTYPE bmap [ <!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p; ]>\n"
                      "<bmap version=\"2.0\"/>\n",
                      BK_E_FORMAT, "document type");
}

static void test_xml_undefined_entity(void **state)
{
    (void)state;
    struct vbuf b = {0};
    char at[64];
    std_doc("2.0", &b);
    assert_true(vec_set_text(&b, "ImageSize", " &size; "));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "undefined entity", where(&b, "&size;", at, 64));
    vbuf_free(&b);
}

static void nested_doc(struct vbuf *b, int levels)
{
    std_doc("2.0", b);
    struct vbuf c = {0};
    for (int i = 0; i < levels; i++)
        vbuf_puts(&c, "<x>");
    for (int i = 0; i < levels; i++)
        vbuf_puts(&c, "</x>");
    vbuf_puts(&c, "\n");
    assert_true(vec_insert_before(b, "    <!-- Image size", c.data));
    vbuf_free(&c);
    vec_fix_checksum(b);
}

static void test_xml_nesting_limit(void **state)
{
    (void)state;
    struct vbuf b = {0};
    struct bk_bmap *m;
    /* The root plus 15 levels is exactly the limit and fine. */
    nested_doc(&b, BK_BMAP_MAX_DEPTH - 1);
    m = PARSE_OK(&b);
    bk_bmap_free(m);
    nested_doc(&b, BK_BMAP_MAX_DEPTH);
    EXPECT_FAIL(&b, BK_E_FORMAT, "nested deeper than 16");
    nested_doc(&b, 10000);
    EXPECT_FAIL(&b, BK_E_FORMAT, "nested deeper than 16");
    vbuf_free(&b);
}

static void test_xml_element_inside_value(void **state)
{
    (void)state;
    struct vbuf b = {0};
    std_doc("2.0", &b);
    assert_true(vec_set_text(&b, "BlockSize", " <b>4096</b> "));
    vec_fix_checksum(&b);
    EXPECT_FAIL(&b, BK_E_FORMAT, "<b>", "BlockSize");
    vbuf_free(&b);
}

/* ---- accepted variations ----------------------------------------------------------- */

static void test_accept_crlf(void **state)
{
    (void)state;
    struct vec_opts o = std_opts("2.0");
    o.crlf = true;
    struct vbuf b = {0};
    struct bk_bmap *m;
    vec_generate(&o, &b);
    assert_non_null(strstr(b.data, "</ImageSize>\r\n"));
    m = PARSE_OK(&b);
    check_matches(m, &o);
    bk_bmap_free(m);

    /* The checksum covers the CRs: the same text with LF endings no longer matches. */
    struct vbuf lf = {0};
    for (size_t i = 0; i < b.len; i++)
        if (b.data[i] != '\r')
            vbuf_add(&lf, &b.data[i], 1);
    EXPECT_FAIL(&lf, BK_E_CHECKSUM, "checksum does not match");
    vbuf_free(&lf);

    /* 1.3 with CRLF too. */
    o = std_opts("1.3");
    o.crlf = true;
    vec_generate(&o, &b);
    m = PARSE_OK(&b);
    check_matches(m, &o);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void test_accept_odd_whitespace(void **state)
{
    (void)state;
    struct vbuf b = {0};
    struct bk_bmap *m;
    std_doc("2.0", &b);
    assert_true(vec_set_text(&b, "ImageSize", "\t\n  100000\n\t"));
    assert_true(vec_set_text(&b, "BlockSize", "4096"));
    assert_true(vec_set_text(&b, "BlocksCount", "\n25\n"));
    assert_true(vec_set_text(&b, "ChecksumType", "\tsha256\r\n"));
    assert_true(vec_replace(&b, "> 3-5 <", ">3 - 5<"));
    assert_true(vec_replace(&b, "> 12-20 <", ">\t12\t-\n20\n<"));
    assert_true(vec_replace(&b, "> 24 <", ">24<"));
    assert_true(vec_replace(&b, "<Range chksum", "<Range\n\t chksum"));
    assert_true(vec_replace(&b, "<BlockSize>", "<BlockSize   >"));
    vec_fix_checksum(&b);
    m = PARSE_OK(&b);
    struct vec_opts o = std_opts("2.0");
    check_matches(m, &o);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void test_accept_unusual_order(void **state)
{
    (void)state;
    /* Every child in reverse order, ChecksumType and the file checksum last. */
    struct vec_opts o = std_opts("2.0");
    struct vbuf gen = {0}, b = {0};
    struct bk_bmap *m;
    vec_generate(&o, &gen);
    size_t s = 0, e = 0;
    assert_true(vec_find_element(&gen, "BlockMap", &s, &e));
    vbuf_puts(&b, "<?xml version=\"1.0\"?>\n<bmap version=\"2.0\">\n");
    vbuf_add(&b, gen.data + s, e - s);
    vbuf_puts(&b, "\n<ChecksumType>sha256</ChecksumType>\n"
                  "<MappedBlocksCount>16</MappedBlocksCount>\n"
                  "<BlocksCount>25</BlocksCount>\n"
                  "<BlockSize>4096</BlockSize>\n"
                  "<ImageSize>100000</ImageSize>\n"
                  "<BmapFileChecksum>0</BmapFileChecksum>\n"
                  "</bmap>\n");
    vec_fix_checksum(&b);
    m = PARSE_OK(&b);
    check_matches(m, &o);
    bk_bmap_free(m);
    vbuf_free(&gen);
    vbuf_free(&b);
}

static void test_accept_unknown_elements(void **state)
{
    (void)state;
    struct vbuf b = {0};
    struct bk_bmap *m;
    std_doc("2.0", &b);
    assert_true(vec_replace(&b, "<ImageSize>", "<ImageSize unit=\"bytes\">"));
    /* Known names inside unknown elements mean nothing and must not count. */
    assert_true(vec_insert_before(&b, "    <!-- Image size",
                                  "    <Generator name=\"x\"><ImageSize> 5 </ImageSize>"
                                  "<Range> 99 </Range><Deep><Deeper/></Deep></Generator>\n"
                                  "    <Empty/>\n"));
    assert_true(vec_insert_before(&b, "        <Range", "        <Note>text</Note>\n"));
    assert_true(vec_insert_before(&b, "    </BlockMap>",
                                  "        <Range2> 30 </Range2><ImageSize> 1 </ImageSize>\n"));
    assert_true(vec_insert_before(&b, "</bmap>", "    <Range> 40 </Range>\n"));
    vec_fix_checksum(&b);
    m = PARSE_OK(&b);
    struct vec_opts o = std_opts("2.0");
    check_matches(m, &o);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void test_accept_comments_anywhere(void **state)
{
    (void)state;
    struct vbuf b = {0};
    struct bk_bmap *m;
    std_doc("2.0", &b);
    assert_true(vec_insert_before(&b, "<bmap version", "<!-- before the root -->\n"));
    assert_true(vec_replace(&b, "<ImageSize> ", "<ImageSize><!-- leading --> "));
    assert_true(vec_replace(&b, " </BlockSize>", " <!-- trailing --></BlockSize>"));
    assert_true(vec_replace(&b, "> 9 </Range>", "><!-- a --> 9 <!-- b --></Range>"));
    assert_true(vec_insert_before(&b, "        <Range", "        <!-- between ranges -->\n"));
    assert_true(vec_insert_before(&b, "</bmap>", "<?processing instruction?>\n"));
    vbuf_puts(&b, "<!-- after the root -->\n");
    vec_fix_checksum(&b);
    m = PARSE_OK(&b);
    struct vec_opts o = std_opts("2.0");
    check_matches(m, &o);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void test_accept_no_ranges(void **state)
{
    (void)state;
    struct vec_opts o = std_opts("2.0");
    o.range_count = 0;
    struct vbuf b = {0};
    struct bk_bmap *m;
    vec_generate(&o, &b);
    m = PARSE_OK(&b);
    check_matches(m, &o);
    assert_int_equal(m->mapped_blocks, 0);
    bk_bmap_free(m);
    vbuf_free(&b);
}

static void test_million_ranges(void **state)
{
    (void)state;
    const size_t n = 1000000;
    struct bk_range *r = malloc(n * sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < n; i++) {
        r[i].first = 3 * i;
        r[i].last = 3 * i + (i % 2);
    }
    struct vec_opts o = std_opts("2.0");
    o.digests = false;
    o.ranges = r;
    o.range_count = n;
    o.image_size = (uint64_t)3 * n * 4096;
    struct vbuf b = {0};
    struct bk_bmap *m;
    vec_generate(&o, &b);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    m = PARSE_OK(&b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("parsed %zu ranges (%zu bytes of XML) in %.3f s\n", m->range_count, b.len, secs);

    assert_int_equal(m->range_count, n);
    assert_int_equal(m->mapped_blocks, n + n / 2);
    assert_int_equal(m->ranges[n - 1].first, 3 * (n - 1));
    assert_int_equal(m->ranges[n - 1].last, 3 * (n - 1) + 1);
    check_matches(m, &o);
    bk_bmap_free(m);
    vbuf_free(&b);
    free(r);
}

/* ---- file and descriptor entry points ---------------------------------------------- */

static void test_parse_file_and_fd(void **state)
{
    (void)state;
    struct vbuf b = {0};
    struct bk_bmap *m;
    struct bk_error err;
    struct vec_opts o = std_opts("1.3");
    vec_generate(&o, &b);
    char *path = write_temp(&b);
    m = bk_bmap_parse_file(path, &err);
    if (!m)
        fail_msg("parse_file: %s", err.msg);
    check_matches(m, &o);
    bk_bmap_free(m);

    /* A broken file names itself (the path) in the message. */
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "<bmap>", 6), 6);
    close(fd);
    assert_null(bk_bmap_parse_file(path, &err));
    assert_int_equal(err.code, BK_E_FORMAT);
    assert_non_null(strstr(err.msg, path));

    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_null(bk_bmap_parse_fd(fd, "via-fd.bmap", &err));
    assert_non_null(strstr(err.msg, "via-fd.bmap:1:"));
    close(fd);
    unlink(path);
    free(path);
    vbuf_free(&b);
}

static void test_parse_file_errors(void **state)
{
    (void)state;
    struct bk_error err;
    assert_null(bk_bmap_parse_file("/nonexistent/dir/x.bmap", &err));
    assert_int_equal(err.code, BK_E_IO);
    assert_int_equal(err.sys_errno, ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.bmap"));

    char *dir = temp_path();
    assert_non_null(mkdtemp(dir));
    assert_null(bk_bmap_parse_file(dir, &err));
    assert_int_equal(err.code, BK_E_INVALID);
    assert_non_null(strstr(err.msg, "directory"));
    rmdir(dir);
    free(dir);

    /* A pipe cannot be read twice; the failure must be clean. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[1]);
    assert_null(bk_bmap_parse_fd(p[0], "pipe.bmap", &err));
    assert_int_equal(err.code, BK_E_IO);
    assert_non_null(strstr(err.msg, "pipe.bmap"));
    close(p[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_1_0),
        cmocka_unit_test(test_version_1_1),
        cmocka_unit_test(test_version_1_2),
        cmocka_unit_test(test_version_1_3),
        cmocka_unit_test(test_version_1_4),
        cmocka_unit_test(test_version_2_0),
        cmocka_unit_test(test_version_2_5_accepted),
        cmocka_unit_test(test_version_major_3_and_4_unsupported),
        cmocka_unit_test(test_version_nonexistent),
        cmocka_unit_test(test_version_garbage),
        cmocka_unit_test(test_version_missing),
        cmocka_unit_test(test_contradiction_checksum_type),
        cmocka_unit_test(test_contradiction_file_checksum),
        cmocka_unit_test(test_contradiction_file_sha1),
        cmocka_unit_test(test_contradiction_range_sha1),
        cmocka_unit_test(test_contradiction_not_in_meaningless_places),
        cmocka_unit_test(test_hash_sha1),
        cmocka_unit_test(test_hash_sha224),
        cmocka_unit_test(test_hash_sha256),
        cmocka_unit_test(test_hash_sha384),
        cmocka_unit_test(test_hash_sha512),
        cmocka_unit_test(test_hash_md5),
        cmocka_unit_test(test_hash_without_range_digests),
        cmocka_unit_test(test_hash_unknown_type),
        cmocka_unit_test(test_hash_chksum_of_other_algorithm),
        cmocka_unit_test(test_hash_chksum_bad_length),
        cmocka_unit_test(test_hash_chksum_not_hex),
        cmocka_unit_test(test_hash_chksum_mixed_lengths),
        cmocka_unit_test(test_validate_blocks_count_mismatch),
        cmocka_unit_test(test_validate_block_size_zero),
        cmocka_unit_test(test_validate_range_descending),
        cmocka_unit_test(test_validate_range_overlapping),
        cmocka_unit_test(test_validate_range_not_ascending),
        cmocka_unit_test(test_validate_range_beyond_end),
        cmocka_unit_test(test_validate_mapped_count_mismatch),
        cmocka_unit_test(test_missing_image_size),
        cmocka_unit_test(test_missing_block_size),
        cmocka_unit_test(test_missing_blocks_count),
        cmocka_unit_test(test_missing_mapped_blocks_count),
        cmocka_unit_test(test_missing_block_map),
        cmocka_unit_test(test_missing_checksum_type),
        cmocka_unit_test(test_missing_file_checksum),
        cmocka_unit_test(test_missing_file_sha1),
        cmocka_unit_test(test_duplicate_elements),
        cmocka_unit_test(test_non_numeric_values),
        cmocka_unit_test(test_numbers_overflowing_64_bits),
        cmocka_unit_test(test_numbers_at_64_bit_limit),
        cmocka_unit_test(test_range_text_malformed),
        cmocka_unit_test(test_range_bytes_partial_last_block),
        cmocka_unit_test(test_checksum_every_byte_2_0),
        cmocka_unit_test(test_checksum_every_byte_1_3),
        cmocka_unit_test(test_checksum_tampered),
        cmocka_unit_test(test_checksum_absent_before_1_3),
        cmocka_unit_test(test_checksum_wrong_length),
        cmocka_unit_test(test_checksum_value_in_earlier_comment),
        cmocka_unit_test(test_checksum_value_in_later_comment),
        cmocka_unit_test(test_checksum_zeros_in_earlier_comment),
        cmocka_unit_test(test_checksum_straddles_chunk_boundary),
        cmocka_unit_test(test_checksum_touches_chunk_boundary),
        cmocka_unit_test(test_checksum_first_occurrence_straddles),
        cmocka_unit_test(test_xml_unclosed_tags),
        cmocka_unit_test(test_xml_wrong_root),
        cmocka_unit_test(test_xml_text_after_root),
        cmocka_unit_test(test_xml_empty_input),
        cmocka_unit_test(test_xml_billion_laughs),
        cmocka_unit_test(test_xml_external_entity),
        cmocka_unit_test(test_xml_undefined_entity),
        cmocka_unit_test(test_xml_nesting_limit),
        cmocka_unit_test(test_xml_element_inside_value),
        cmocka_unit_test(test_accept_crlf),
        cmocka_unit_test(test_accept_odd_whitespace),
        cmocka_unit_test(test_accept_unusual_order),
        cmocka_unit_test(test_accept_unknown_elements),
        cmocka_unit_test(test_accept_comments_anywhere),
        cmocka_unit_test(test_accept_no_ranges),
        cmocka_unit_test(test_million_ranges),
        cmocka_unit_test(test_parse_file_and_fd),
        cmocka_unit_test(test_parse_file_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
