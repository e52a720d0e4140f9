/* SPDX-License-Identifier: MIT */
/*
 * Reading the JSON-lines events of the other host's bmapkit: the members of one flat
 * object, enough to relay them and to take the numbers a summary needs.
 */
#include "remote.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

/* P at an opening quote: just past the closing one, or NULL. */
static const char *skip_string(const char *p)
{
    for (p++; *p; p++) {
        if (*p == '\\' && p[1])
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Just past the value at P (a string, number, literal, object or array), or NULL. */
static const char *skip_value(const char *p)
{
    if (*p == '"')
        return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') {
                p = skip_string(p);
                if (!p)
                    return NULL;
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    const char *start = p;
    while (*p && !strchr(",}] \t\r\n", *p))
        p++;
    return p > start ? p : NULL;
}

typedef bool (*member_fn)(void *ctx, const char *key, size_t klen, const char *val, size_t vlen);

/* FN for each member of the object OBJ until it returns false; false if OBJ is no object. */
static bool each_member(const char *obj, member_fn fn, void *ctx)
{
    const char *p = skip_ws(obj);
    if (*p++ != '{')
        return false;
    p = skip_ws(p);
    if (*p == '}')
        return true;
    for (;;) {
        if (*p != '"')
            return false;
        const char *kend = skip_string(p);
        if (!kend)
            return false;
        const char *v = skip_ws(kend);
        if (*v++ != ':')
            return false;
        v = skip_ws(v);
        const char *vend = skip_value(v);
        if (!vend)
            return false;
        if (!fn(ctx, p + 1, (size_t)(kend - p - 2), v, (size_t)(vend - v)))
            return true;
        p = skip_ws(vend);
        if (*p == '}')
            return true;
        if (*p++ != ',')
            return false;
        p = skip_ws(p);
    }
}

struct find {
    const char *key;
    const char *val;
    size_t len;
};

static bool find_one(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct find *f = ctx;
    if (strlen(f->key) != klen || memcmp(f->key, key, klen) != 0)
        return true;
    f->val = val;
    f->len = vlen;
    return false;
}

bool json_member(const char *obj, const char *key, const char **val, size_t *len)
{
    struct find f = {.key = key};
    if (!each_member(obj, find_one, &f) || !f.val)
        return false;
    *val = f.val;
    *len = f.len;
    return true;
}

bool json_member_u64(const char *obj, const char *key, uint64_t *out)
{
    const char *v;
    size_t len;
    char text[32];
    if (!json_member(obj, key, &v, &len) || len == 0 || len >= sizeof text || v[0] == '-')
        return false;
    memcpy(text, v, len);
    text[len] = '\0';
    char *end;
    unsigned long long n = strtoull(text, &end, 10);
    if (*end)
        return false;
    *out = n;
    return true;
}

/* The code point of the four hex digits at P, or -1. */
static long hex4(const char *p)
{
    char text[5];
    memcpy(text, p, 4);
    text[4] = '\0';
    char *end;
    long v = strtol(text, &end, 16);
    return *end || !p[0] || !p[1] || !p[2] || !p[3] ? -1 : v;
}

/* One character of a \u escape as UTF-8 (surrogates, which bmapkit never writes, as '?'). */
static size_t put_utf8(char *out, long c)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xc0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c >= 0xd800 && c < 0xe000) {
        out[0] = '?';
        return 1;
    }
    out[0] = (char)(0xe0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
    out[2] = (char)(0x80 | (c & 0x3f));
    return 3;
}

bool json_member_string(const char *obj, const char *key, char *out, size_t cap)
{
    const char *v;
    size_t len;
    if (cap == 0 || !json_member(obj, key, &v, &len) || len < 2 || v[0] != '"')
        return false;
    size_t n = 0;
    for (const char *p = v + 1; p < v + len - 1 && n + 4 < cap; p++) {
        if (*p != '\\') {
            out[n++] = *p;
            continue;
        }
        p++;
        const char *plain = strchr("\"\\/bfnrt", *p);
        if (*p == 'u') {
            long c = hex4(p + 1);
            if (c < 0)
                return false;
            n += put_utf8(out + n, c);
            p += 4;
        } else if (plain && *p) {
            out[n++] = "\"\\/\b\f\n\r\t"[plain - "\"\\/bfnrt"];
        } else {
            return false;
        }
    }
    out[n] = '\0';
    return true;
}

struct except {
    char *out;
    size_t cap;
    size_t len;
};

static bool copy_member(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct except *e = ctx;
    /* What progress_event writes itself. */
    static const char *const own[] = {"event", "schema", "time"};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        if (strlen(own[i]) == klen && memcmp(key, own[i], klen) == 0)
            return true;
    size_t need = (e->len ? 1 : 0) + klen + 3 + vlen;
    if (e->len + need + 1 > e->cap)
        return false;
    e->len += (size_t)snprintf(e->out + e->len, e->cap - e->len, "%s\"%.*s\":%.*s",
                               e->len ? "," : "", (int)klen, key, (int)vlen, val);
    return true;
}

bool json_members_except_event(const char *obj, char *out, size_t cap)
{
    struct except e = {.out = out, .cap = cap};
    out[0] = '\0';
    return each_member(obj, copy_member, &e);
}
