/* SPDX-License-Identifier: MIT */
/*
 * Streaming bmap reader on expat. Memory is the parser state plus the range array:
 * element text is collected into a small fixed buffer and ranges are appended as they
 * are seen, so the size of the document only shows up in the range count.
 */
#include "net/net.h"
#include "bmap/bmap_impl.h"
#include "bmap/bmap_input.h"
#include "bmap/versions.h"
#include "digest/hex.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <expat.h>

enum element {
    EL_NONE = 0,
    EL_IMAGE_SIZE,
    EL_BLOCK_SIZE,
    EL_BLOCKS_COUNT,
    EL_MAPPED_BLOCKS_COUNT,
    EL_CHECKSUM_TYPE,
    EL_FILE_CHECKSUM,
    EL_FILE_SHA1,
    EL_BLOCK_MAP,
    EL_RANGE,
    EL_COUNT
};

static const char *const element_names[EL_COUNT] = {
    [EL_IMAGE_SIZE] = "ImageSize",
    [EL_BLOCK_SIZE] = "BlockSize",
    [EL_BLOCKS_COUNT] = "BlocksCount",
    [EL_MAPPED_BLOCKS_COUNT] = "MappedBlocksCount",
    [EL_CHECKSUM_TYPE] = "ChecksumType",
    [EL_FILE_CHECKSUM] = "BmapFileChecksum",
    [EL_FILE_SHA1] = "BmapFileSHA1",
    [EL_BLOCK_MAP] = "BlockMap",
    [EL_RANGE] = "Range",
};

/* The elements only some versions have; the rest are in every version. */
static const enum bmap_feature element_features[EL_COUNT] = {
    [EL_CHECKSUM_TYPE] = BMAP_FEATURE_CHECKSUM_TYPE,
    [EL_FILE_CHECKSUM] = BMAP_FEATURE_FILE_CHECKSUM,
    [EL_FILE_SHA1] = BMAP_FEATURE_FILE_SHA1,
};

/* Longest element text we keep: a sha512 hex digest with generous whitespace. */
#define TEXT_MAX 256
#define READ_CHUNK (64 * 1024)

struct parser {
    XML_Parser xp;
    const char *name;
    struct bk_bmap *bmap;
    struct bk_error *err;
    bool failed;

    unsigned depth;
    unsigned skip_depth; /* inside an element we ignore when non-zero */
    bool root_seen;
    unsigned long version_line;
    enum element current; /* element whose text is being collected */
    char text[TEXT_MAX + 1];
    size_t text_len;

    bool seen[EL_COUNT];
    unsigned long line[EL_COUNT];
    uint64_t value[EL_COUNT];
    enum bk_hash declared_hash;
    char file_checksum[TEXT_MAX + 1];

    /* the Range being read */
    bool range_has_digest;
    uint8_t range_digest[BK_DIGEST_MAX];
    unsigned long last_range_line;
    uint64_t mapped_sum;
};

static unsigned long parser_line(struct parser *p)
{
    return (unsigned long)XML_GetCurrentLineNumber(p->xp);
}

__attribute__((format(printf, 2, 3))) static void parser_fail(struct parser *p, const char *fmt,
                                                              ...)
{
    if (p->failed)
        return;
    char msg[BK_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bk_error_set(p->err, BK_E_FORMAT, 0, "%s:%lu: %.900s", p->name, parser_line(p), msg);
    p->failed = true;
    XML_StopParser(p->xp, XML_FALSE);
}

/* Trim ASCII whitespace in place; returns the start of the trimmed text. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Parse a decimal number that fills S completely. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (*s != '\0')
        return -1;
    *out = v;
    return 0;
}

static void parse_version(struct parser *p, const char *value)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", value);
    char *v = trim(buf);
    char *dot = strchr(v, '.');
    uint64_t major, minor;
    if (!dot) {
        parser_fail(p, "bmap version \"%s\" is not of the form MAJOR.MINOR", value);
        return;
    }
    *dot = '\0';
    if (parse_u64(v, &major) < 0 || parse_u64(dot + 1, &minor) < 0 || major > 1000 ||
        minor > 1000) {
        parser_fail(p, "bmap version \"%s\" is not of the form MAJOR.MINOR", value);
        return;
    }
    if (major >= 3) {
        bk_error_set(p->err, BK_E_UNSUPPORTED, 0,
                     "%s:%lu: bmap format version %" PRIu64 ".%" PRIu64
                     " is not supported (this tool reads versions 1.0 to 2.x)",
                     p->name, parser_line(p), major, minor);
        p->failed = true;
        XML_StopParser(p->xp, XML_FALSE);
        return;
    }
    if (major == 0 || (major == 1 && minor > 4)) {
        parser_fail(p, "bmap format version %" PRIu64 ".%" PRIu64 " does not exist", major, minor);
        return;
    }
    p->bmap->version_major = (unsigned)major;
    p->bmap->version_minor = (unsigned)minor;
}

/* Fail unless the declared version defines F; WHAT names it in the message. */
static bool version_allows(struct parser *p, enum bmap_feature f, const char *what)
{
    const struct bk_bmap *b = p->bmap;
    if (bmap_version_has(b->version_major, b->version_minor, f))
        return true;
    parser_fail(p, "%s contradicts bmap format version %u.%u declared on line %lu (%s)", what,
                b->version_major, b->version_minor, p->version_line, bmap_feature_versions(f));
    return false;
}

/* Take the range digest ATTR="HEX"; its length names the algorithm. */
static void read_range_digest(struct parser *p, const char *attr, const char *value)
{
    const char *hex = value;
    size_t n = strlen(hex);
    while (n > 0 && isspace((unsigned char)hex[n - 1]))
        n--;
    while (n > 0 && isspace((unsigned char)*hex)) {
        hex++;
        n--;
    }
    enum bk_hash h = BK_HASH_NONE;
    static const enum bk_hash all[] = {BK_HASH_SHA1,   BK_HASH_SHA224, BK_HASH_SHA256,
                                       BK_HASH_SHA384, BK_HASH_SHA512, BK_HASH_MD5};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (n == 2 * bk_hash_size(all[k]))
            h = all[k];
    if (h == BK_HASH_NONE || bk_hex_decode(hex, n / 2, p->range_digest) < 0) {
        parser_fail(p, "Range %s=\"%.140s\" is not a hex digest", attr, value);
        return;
    }
    if (p->bmap->hash == BK_HASH_NONE) {
        p->bmap->hash = h;
    } else if (p->bmap->hash != h) {
        parser_fail(p, "Range %s has %zu hex digits where earlier ranges had %zu", attr, n,
                    2 * bk_hash_size(p->bmap->hash));
        return;
    }
    p->range_has_digest = true;
}

static void start_range(struct parser *p, const XML_Char **attrs)
{
    p->range_has_digest = false;
    for (size_t i = 0; attrs[i] && !p->failed; i += 2) {
        enum bmap_feature f = bmap_range_attribute(attrs[i]);
        if (f == BMAP_FEATURE_NONE)
            continue;
        char what[64];
        snprintf(what, sizeof what, "Range attribute %s", attrs[i]);
        /* No version has both digest attributes, so one that passes is the version's own. */
        if (version_allows(p, f, what))
            read_range_digest(p, attrs[i], attrs[i + 1]);
    }
}

static enum element element_from_name(const char *name)
{
    for (int e = EL_IMAGE_SIZE; e < EL_COUNT; e++)
        if (strcmp(element_names[e], name) == 0)
            return (enum element)e;
    return EL_NONE;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct parser *p = ud;
    p->depth++;
    if (p->depth > BK_BMAP_MAX_DEPTH) {
        parser_fail(p, "elements nested deeper than %d levels", BK_BMAP_MAX_DEPTH);
        return;
    }
    if (p->skip_depth)
        return;

    if (p->depth == 1) {
        if (strcmp(name, "bmap") != 0) {
            parser_fail(p, "root element is <%.100s>, expected <bmap>", name);
            return;
        }
        const char *version = NULL;
        for (size_t i = 0; attrs[i]; i += 2)
            if (strcmp(attrs[i], "version") == 0)
                version = attrs[i + 1];
        if (!version) {
            parser_fail(p, "<bmap> has no version attribute");
            return;
        }
        p->root_seen = true;
        p->version_line = parser_line(p);
        parse_version(p, version);
        return;
    }

    if (p->current != EL_NONE && p->current != EL_BLOCK_MAP) {
        parser_fail(p, "unexpected element <%.100s> inside <%s>", name, element_names[p->current]);
        return;
    }

    enum element e = element_from_name(name);
    bool in_block_map = p->current == EL_BLOCK_MAP;
    if (in_block_map ? e != EL_RANGE : (e == EL_NONE || e == EL_RANGE)) {
        /* Elements the format does not define carry no meaning; skip their subtree. */
        p->skip_depth = p->depth;
        return;
    }
    if (e != EL_RANGE) {
        char what[64];
        snprintf(what, sizeof what, "<%s>", element_names[e]);
        if (!version_allows(p, element_features[e], what))
            return;
        if (p->seen[e]) {
            parser_fail(p, "<%s> appears twice (first on line %lu)", element_names[e], p->line[e]);
            return;
        }
        p->seen[e] = true;
        p->line[e] = parser_line(p);
    }
    p->current = e;
    p->text_len = 0;
    if (e == EL_RANGE)
        start_range(p, attrs);
}

/* Parse "N" or "A-B" (whitespace allowed around numbers and the dash). */
static int parse_range_text(char *text, uint64_t *first, uint64_t *last)
{
    char *dash = strchr(text, '-');
    if (dash)
        *dash = '\0';
    if (parse_u64(trim(text), first) < 0)
        return -1;
    if (!dash) {
        *last = *first;
        return 0;
    }
    return parse_u64(trim(dash + 1), last);
}

static void end_range(struct parser *p, char *text)
{
    struct bk_bmap *b = p->bmap;
    uint64_t first, last;
    /* Parsing cuts the text at the dash; keep it whole for the message. */
    char shown[TEXT_MAX + 1];
    snprintf(shown, sizeof shown, "%s", text);
    if (parse_range_text(text, &first, &last) < 0) {
        parser_fail(p, "Range \"%.100s\" is not a block number or FIRST-LAST", shown);
        return;
    }
    if (first > last) {
        parser_fail(p, "Range %" PRIu64 "-%" PRIu64 " is descending", first, last);
        return;
    }
    if (b->range_count > 0) {
        const struct bk_range *prev = &b->ranges[b->range_count - 1];
        if (first <= prev->last) {
            parser_fail(p,
                        "Range %" PRIu64 "-%" PRIu64 " overlaps or precedes range %" PRIu64
                        "-%" PRIu64 " (ranges must be ascending and disjoint)",
                        first, last, prev->first, prev->last);
            return;
        }
    }
    uint64_t count = last - first + 1;
    if (count == 0 || p->mapped_sum > UINT64_MAX - count) {
        parser_fail(p, "Range %" PRIu64 "-%" PRIu64 " is too large", first, last);
        return;
    }
    p->mapped_sum += count;
    p->last_range_line = parser_line(p);
    if (bk_bmap_add(b, first, last, p->range_has_digest ? p->range_digest : NULL, p->err) < 0) {
        p->failed = true;
        XML_StopParser(p->xp, XML_FALSE);
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct parser *p = ud;
    (void)name;
    unsigned depth = p->depth--;
    if (p->skip_depth) {
        if (depth == p->skip_depth)
            p->skip_depth = 0;
        return;
    }
    enum element e = p->current;
    if (e == EL_NONE)
        return;
    p->text[p->text_len] = '\0';
    char *text = trim(p->text);

    switch (e) {
    case EL_RANGE:
        end_range(p, text);
        p->current = EL_BLOCK_MAP;
        return;
    case EL_BLOCK_MAP:
        break;
    case EL_CHECKSUM_TYPE:
        p->declared_hash = bk_hash_from_name(text);
        if (p->declared_hash == BK_HASH_NONE)
            parser_fail(p,
                        "ChecksumType \"%.100s\" is not one of sha1, sha224, sha256, "
                        "sha384, sha512, md5",
                        text);
        break;
    case EL_FILE_CHECKSUM:
    case EL_FILE_SHA1:
        snprintf(p->file_checksum, sizeof p->file_checksum, "%s", text);
        break;
    default:
        if (parse_u64(text, &p->value[e]) < 0)
            parser_fail(p, "<%s> value \"%.100s\" is not a decimal number", element_names[e], text);
        break;
    }
    p->current = EL_NONE;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct parser *p = ud;
    if (p->skip_depth || p->current == EL_NONE || p->current == EL_BLOCK_MAP)
        return;
    if (p->text_len + (size_t)len > TEXT_MAX) {
        parser_fail(p, "text of <%s> is longer than %d bytes", element_names[p->current], TEXT_MAX);
        return;
    }
    memcpy(p->text + p->text_len, s, (size_t)len);
    p->text_len += (size_t)len;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    parser_fail(ud, "document type declarations are not allowed in a bmap");
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_len, const XML_Char *base,
                                   const XML_Char *sysid, const XML_Char *pubid,
                                   const XML_Char *notation)
{
    (void)name;
    (void)is_param;
    (void)value;
    (void)value_len;
    (void)base;
    (void)sysid;
    (void)pubid;
    (void)notation;
    parser_fail(ud, "entity declarations are not allowed in a bmap");
}

/* Checks that need the whole document, in the order a reader would want to hear them. */
static int parser_validate(struct parser *p)
{
    struct bk_bmap *b = p->bmap;
    const char *n = p->name;
    struct bk_error *err = p->err;

    if (!p->root_seen)
        return bk_error_set(err, BK_E_FORMAT, 0, "%s: no <bmap> element", n);

    static const enum element always[] = {EL_IMAGE_SIZE, EL_BLOCK_SIZE, EL_BLOCKS_COUNT,
                                          EL_MAPPED_BLOCKS_COUNT, EL_BLOCK_MAP};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        if (!p->seen[always[i]])
            return bk_error_set(err, BK_E_FORMAT, 0, "%s: <%s> is missing", n,
                                element_names[always[i]]);

    enum element checksum_el = EL_NONE;
    if (bmap_version_is_2_0_layout(b->version_major, b->version_minor)) {
        if (!p->seen[EL_CHECKSUM_TYPE])
            return bk_error_set(err, BK_E_FORMAT, 0, "%s: <ChecksumType> is missing", n);
        checksum_el = EL_FILE_CHECKSUM;
        if (b->hash != BK_HASH_NONE && b->hash != p->declared_hash)
            return bk_error_set(err, BK_E_FORMAT, 0,
                                "%s: range checksums are not %s digests as ChecksumType "
                                "(line %lu) says",
                                n, bk_hash_name(p->declared_hash), p->line[EL_CHECKSUM_TYPE]);
        b->hash = p->declared_hash;
    } else if (b->version_major == 1 && b->version_minor >= 1) {
        if (b->hash != BK_HASH_NONE && b->hash != BK_HASH_SHA1)
            return bk_error_set(err, BK_E_FORMAT, 0,
                                "%s: range sha1 attributes must be SHA-1 digests", n);
        b->hash = BK_HASH_SHA1;
        if (b->version_minor == 3)
            checksum_el = EL_FILE_SHA1;
    }
    if (checksum_el != EL_NONE && !p->seen[checksum_el])
        return bk_error_set(err, BK_E_FORMAT, 0, "%s: <%s> is missing (required by version %u.%u)",
                            n, element_names[checksum_el], b->version_major, b->version_minor);
    b->has_file_checksum = checksum_el != EL_NONE;

    uint64_t image_size = p->value[EL_IMAGE_SIZE];
    uint64_t block_size = p->value[EL_BLOCK_SIZE];
    if (block_size == 0 || block_size > (1u << 30))
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s:%lu: BlockSize %" PRIu64 " is not between 1 and 1 GiB", n,
                            p->line[EL_BLOCK_SIZE], block_size);
    uint64_t blocks = image_size / block_size + (image_size % block_size != 0);
    if (p->value[EL_BLOCKS_COUNT] != blocks)
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "%s:%lu: BlocksCount is %" PRIu64 " but ImageSize %" PRIu64
                            " in blocks of %" PRIu64 " needs %" PRIu64,
                            n, p->line[EL_BLOCKS_COUNT], p->value[EL_BLOCKS_COUNT], image_size,
                            block_size, blocks);
    if (b->range_count > 0) {
        const struct bk_range *last = &b->ranges[b->range_count - 1];
        if (last->last >= blocks)
            return bk_error_set(
                err, BK_E_FORMAT, 0,
                "%s:%lu: Range %" PRIu64 "-%" PRIu64 " lies beyond the image's last block %" PRIu64,
                n, p->last_range_line, last->first, last->last, blocks ? blocks - 1 : 0);
    }
    if (p->value[EL_MAPPED_BLOCKS_COUNT] != p->mapped_sum)
        return bk_error_set(
            err, BK_E_FORMAT, 0,
            "%s:%lu: MappedBlocksCount is %" PRIu64 " but the ranges hold %" PRIu64 " blocks", n,
            p->line[EL_MAPPED_BLOCKS_COUNT], p->value[EL_MAPPED_BLOCKS_COUNT], p->mapped_sum);

    b->image_size = image_size;
    b->block_size = (uint32_t)block_size;
    b->blocks_count = blocks;
    b->mapped_blocks = p->mapped_sum;
    return 0;
}

static struct bk_bmap *parse_source(struct bk_bmap_input *src, const char *name,
                                    struct bk_error *err)
{
    struct bk_bmap *bmap = bk_bmap_alloc(err);
    if (!bmap)
        return NULL;
    src->name = name; /* read errors name the file too */
    struct parser p = {.name = name, .bmap = bmap, .err = err};

    p.xp = XML_ParserCreate(NULL);
    if (!p.xp) {
        bk_bmap_free(bmap);
        bk_error_set(err, BK_E_NOMEM, 0, "%s: cannot create an XML parser", name);
        return NULL;
    }
    XML_SetUserData(p.xp, &p);
    XML_SetElementHandler(p.xp, on_start, on_end);
    XML_SetCharacterDataHandler(p.xp, on_text);
    XML_SetStartDoctypeDeclHandler(p.xp, on_doctype);
    XML_SetEntityDeclHandler(p.xp, on_entity_decl);
    XML_SetParamEntityParsing(p.xp, XML_PARAM_ENTITY_PARSING_NEVER);

    int rc = 0;
    uint64_t offset = 0;
    for (;;) {
        void *buf = XML_GetBuffer(p.xp, READ_CHUNK);
        if (!buf) {
            rc = bk_error_set(err, BK_E_NOMEM, 0, "%s: out of memory while parsing", name);
            break;
        }
        size_t got;
        if (bk_bmap_input_read(src, offset, buf, READ_CHUNK, &got, err) < 0) {
            rc = -1;
            break;
        }
        offset += got;
        if (offset > BK_BMAP_MAX_FILE_SIZE) {
            rc = bk_error_set(err, BK_E_FORMAT, 0,
                              "%s: larger than the %" PRIu64 " MiB a bmap may have", name,
                              BK_BMAP_MAX_FILE_SIZE >> 20);
            break;
        }
        if (XML_ParseBuffer(p.xp, (int)got, got == 0) != XML_STATUS_OK) {
            if (!p.failed)
                bk_error_set(err, BK_E_FORMAT, 0, "%s:%lu: not well-formed XML: %s", name,
                             (unsigned long)XML_GetCurrentLineNumber(p.xp),
                             XML_ErrorString(XML_GetErrorCode(p.xp)));
            rc = -1;
            break;
        }
        if (got == 0)
            break;
    }
    XML_ParserFree(p.xp);

    if (rc == 0)
        rc = parser_validate(&p);
    if (rc == 0 && bmap->has_file_checksum)
        rc = bk_bmap_verify_file_checksum(src, name, bmap->hash, p.file_checksum, err);
    if (rc < 0) {
        bk_bmap_free(bmap);
        return NULL;
    }
    return bmap;
}

struct bk_bmap *bk_bmap_parse_buffer(const void *data, size_t len, const char *name,
                                     struct bk_error *err)
{
    struct bk_bmap_input src = {.fd = -1, .data = data, .len = len};
    return parse_source(&src, name, err);
}

struct bk_bmap *bk_bmap_parse_fd(int fd, const char *name, struct bk_error *err)
{
    struct bk_bmap_input src = {.fd = fd};
    return parse_source(&src, name, err);
}

/* A bmap at an http, https or ftp URL: fetched whole (it is small), then parsed. */
static struct bk_bmap *parse_url(const char *url, struct bk_error *err)
{
    char *data = NULL;
    size_t len = 0;
    if (bk_net_fetch_all(url, NULL, (size_t)1 << 30, &data, &len, err) < 0) {
        bk_error_prefix(err, "cannot read bmap");
        return NULL;
    }
    char *name = strdup(url);
    if (name)
        bk_redact_passwords(name);
    struct bk_bmap *bmap = bk_bmap_parse_buffer(data, len, name ? name : "bmap", err);
    free(name);
    free(data);
    return bmap;
}

struct bk_bmap *bk_bmap_parse_file(const char *path, struct bk_error *err)
{
    if (bk_net_is_url(path))
        return parse_url(path, err);
    char local[4096];
    if (bk_net_file_path(path, local, sizeof local))
        path = local;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        bk_error_set(err, BK_E_IO, errno, "cannot open bmap %s", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        bk_error_set(err, BK_E_INVALID, 0, "bmap %s is a directory", path);
        return NULL;
    }
    struct bk_bmap *bmap = bk_bmap_parse_fd(fd, path, err);
    close(fd);
    return bmap;
}
