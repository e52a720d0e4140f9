/* SPDX-License-Identifier: MIT */
/* The text inside an OpenPGP cleartext signature (RFC 4880, section 7), no verifier needed. */
#include <stdbool.h>
#include <string.h>

#include "bmapkit/signature.h"

#define SIGNED_HEADER "-----BEGIN PGP SIGNED MESSAGE-----"
#define SIG_BEGIN "-----BEGIN PGP SIGNATURE-----"
#define SIG_END "-----END PGP SIGNATURE-----"

/* One line of the input: [start, start+len) without its ending, next: after the ending. */
struct line {
    const char *start;
    size_t len;  /* without the line ending */
    size_t full; /* with it */
    size_t number;
};

struct cursor {
    const char *p;
    size_t left;
    size_t number;
};

/* Take the next line from C into L; false at the end of the input. */
static bool next_line(struct cursor *c, struct line *l)
{
    if (c->left == 0)
        return false;
    const char *nl = memchr(c->p, '\n', c->left);
    size_t full = nl ? (size_t)(nl - c->p) + 1 : c->left;
    size_t len = nl ? full - 1 : full;
    if (len > 0 && c->p[len - 1] == '\r')
        len--;
    *l = (struct line){.start = c->p, .len = len, .full = full, .number = ++c->number};
    c->p += full;
    c->left -= full;
    return true;
}

/* Whether L is WORD followed only by spaces or tabs (trailing blanks are not signed). */
static bool line_is(const struct line *l, const char *word)
{
    size_t n = strlen(word);
    if (l->len < n || memcmp(l->start, word, n) != 0)
        return false;
    for (size_t i = n; i < l->len; i++)
        if (l->start[i] != ' ' && l->start[i] != '\t')
            return false;
    return true;
}

static bool line_blank(const struct line *l)
{
    return line_is(l, "");
}

bool bk_signature_is_clearsigned(const void *data, size_t len)
{
    size_t n = strlen(SIGNED_HEADER);
    return data && len >= n && memcmp(data, SIGNED_HEADER, n) == 0;
}

/* The armor headers ("Hash: SHA256") up to the blank line that ends them. */
static int skip_headers(struct cursor *c, struct bk_error *err)
{
    struct line l;
    if (!next_line(c, &l) || !line_is(&l, SIGNED_HEADER))
        return bk_error_set(err, BK_E_FORMAT, 0,
                            "line 1: not the OpenPGP signed-message header alone");
    while (next_line(c, &l)) {
        if (line_blank(&l))
            return 0;
        if (!memchr(l.start, ':', l.len))
            return bk_error_set(err, BK_E_FORMAT, 0,
                                "line %zu: not an armor header of the signed message", l.number);
    }
    return bk_error_set(err, BK_E_FORMAT, 0, "the signed message has no text");
}

/* The signature block, and nothing but blank lines after it. */
static int check_signature_block(struct cursor *c, struct bk_error *err)
{
    struct line l;
    bool ended = false;
    while (next_line(c, &l)) {
        if (ended && !line_blank(&l))
            return bk_error_set(err, BK_E_FORMAT, 0,
                                "line %zu: text after the end of the signature", l.number);
        if (line_is(&l, SIG_END))
            ended = true;
    }
    if (!ended)
        return bk_error_set(err, BK_E_FORMAT, 0, "the signature block has no end line");
    return 0;
}

int bk_signature_clearsigned_text(const void *data, size_t len, void *out, size_t out_size,
                                  size_t *out_len, struct bk_error *err)
{
    if (!data || !out || !out_len)
        return bk_error_set(err, BK_E_INVALID, 0, "clearsigned text: NULL argument");
    if (out_size < len)
        return bk_error_set(err, BK_E_INVALID, 0,
                            "clearsigned text: %zu bytes of room for a %zu-byte message", out_size,
                            len);
    struct cursor c = {.p = data, .left = len};
    if (skip_headers(&c, err) < 0)
        return -1;
    char *o = out;
    size_t n = 0;
    struct line l;
    for (;;) {
        if (!next_line(&c, &l))
            return bk_error_set(err, BK_E_FORMAT, 0, "the signed message has no signature");
        if (line_is(&l, SIG_BEGIN))
            break;
        size_t skip = 0;
        if (l.len > 0 && l.start[0] == '-') {
            /* Every signed line that begins with a dash is escaped as "- ". */
            if (l.len < 2 || l.start[1] != ' ')
                return bk_error_set(err, BK_E_FORMAT, 0,
                                    "line %zu: an unescaped dash line in the signed text",
                                    l.number);
            skip = 2;
        }
        memmove(o + n, l.start + skip, l.full - skip); /* OUT may be DATA itself */
        n += l.full - skip;
    }
    if (check_signature_block(&c, err) < 0)
        return -1;
    *out_len = n;
    return 0;
}
