/* SPDX-License-Identifier: MIT */
/*
 * bmapkit copy: the bmap read with its OpenPGP signature checked, when it has one
 * (clearsigned, --bmap-sig, or BMAP.asc / BMAP.sig next to it), and parsed from the
 * very bytes that were checked.
 */
#include "copy_plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ssh_source.h"

enum { MAX_FILE = 1 << 30 };

/* All of the URL PATH through the library's sources, which name it without password. */
static char *read_url(const char *path, const struct bk_fetch_options *fo, const char *what,
                      size_t *len)
{
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_source *src = bk_source_open_file_fetch(path, fo, &err);
    size_t cap = 64 * 1024, n = 0, got = 1;
    char *buf = src ? malloc(cap) : NULL;
    while (buf && got > 0) {
        if (n == cap) {
            char *bigger = cap < MAX_FILE ? realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                bk_error_set(&err, BK_E_NOMEM, 0, "out of memory");
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        if (bk_source_read(src, buf + n, cap - n, &got, &err) < 0) {
            free(buf);
            buf = NULL;
        }
        n += got;
    }
    bk_source_close(src);
    if (!buf) {
        cli_error("cannot read the %s: %s", what, cli_message(&err));
        return NULL;
    }
    *len = n;
    return buf;
}

/* The whole file PATH (WHAT names it in errors) into a buffer the caller frees. */
static char *read_whole(const char *path, const struct bk_fetch_options *fo, const char *what,
                        size_t *len)
{
    if (ssh_source_is_url(path)) {
        struct bk_error err;
        bk_error_clear(&err);
        char *buf = ssh_read_whole(path, len, &err);
        if (!buf)
            cli_error("cannot read the %s: %s", what, cli_message(&err));
        return buf;
    }
    if (cli_is_url(path))
        return read_url(path, fo, what, len);
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("cannot open the %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    size_t cap = 64 * 1024, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || ferror(f))
            break;
        /* The bmap parser's own limit: nothing larger is a bmap or its signature. */
        char *bigger = cap < MAX_FILE ? realloc(buf, cap * 2) : NULL;
        if (!bigger)
            free(buf);
        buf = bigger;
        cap *= 2;
    }
    bool bad = !buf || ferror(f);
    if (bad)
        cli_error("cannot read the %s %s: %s", what, path, buf ? strerror(errno) : "out of memory");
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Whether the file PATH begins with the OpenPGP signed-message header. */
static bool file_clearsigned(const char *path, const struct bk_fetch_options *fo)
{
    char head[64];
    if (ssh_source_is_url(path)) {
        /* Read whole: the parse that follows gets it from the cache, no second call. */
        size_t len = 0;
        struct bk_error err;
        bk_error_clear(&err);
        char *buf = ssh_read_whole(path, &len, &err); /* the parse that follows says why not */
        bool clear = buf && bk_signature_is_clearsigned(buf, len < sizeof head ? len : sizeof head);
        free(buf);
        return clear;
    }
    if (cli_is_url(path)) {
        struct bk_error err;
        bk_error_clear(&err);
        struct bk_source *src = bk_source_open_file_fetch(path, fo, &err);
        size_t n = 0, got = 1;
        while (src && n < sizeof head && got > 0 &&
               bk_source_read(src, head + n, sizeof head - n, &got, &err) == 0)
            n += got;
        bk_source_close(src);
        return bk_signature_is_clearsigned(head, n); /* the parse that follows says why not */
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        return false; /* the parse that follows says why */
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return bk_signature_is_clearsigned(head, n);
}

/*
 * Whether the signature PATH is there. A URL that cannot be asked counts as there, so
 * that reading it fails with the reason rather than the check being left out.
 */
static bool sig_exists(const char *path, const struct bk_fetch_options *fo)
{
    if (!cli_is_url(path))
        return access(path, F_OK) == 0;
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_source *src = bk_source_open_file_fetch(path, fo, &err);
    bk_source_close(src);
    return src || err.sys_errno != ENOENT;
}

/* The detached signature: --bmap-sig, else BMAP.asc, else BMAP.sig next to the bmap. */
static void find_signature(struct copy_plan *plan)
{
    if (plan->bmap_sig) {
        plan->sig_path = plan->bmap_sig;
        return;
    }
    static const char *const suffixes[] = {".asc", ".sig"};
    if (ssh_source_is_url(plan->bmap_path)) {
        /* One question to the host for both names. */
        int i = ssh_find_signature(plan->bmap_path, suffixes, 2);
        if (i >= 0) {
            snprintf(plan->sig_found, sizeof plan->sig_found, "%s%s", plan->bmap_path, suffixes[i]);
            plan->sig_path = plan->sig_found;
            cli_debug("using bmap signature %s", plan->sig_path);
        }
        return;
    }
    for (size_t i = 0; i < 2; i++) {
        int n =
            snprintf(plan->sig_found, sizeof plan->sig_found, "%s%s", plan->bmap_path, suffixes[i]);
        if (n > 0 && (size_t)n < sizeof plan->sig_found &&
            sig_exists(plan->sig_found, &plan->fetch)) {
            plan->sig_path = plan->sig_found;
            cli_debug("using bmap signature %s", plan->sig_path);
            return;
        }
    }
}

/* A failed check of the bmap's signature, with what the command can do about it. */
static int sig_fail(const struct copy_plan *plan, const struct bk_error *err)
{
    char where[PATH_MAX + 32];
    if (plan->sig_path)
        snprintf(where, sizeof where, "signature %s", plan->sig_path);
    else
        snprintf(where, sizeof where, "clearsigned bmap %s", plan->bmap_path);
    cli_error("%s: %s%s", where, cli_message(err),
              err->code == BK_E_UNSUPPORTED
                  ? "; use --no-sig-verify to copy without checking the signature"
                  : "");
    return EXIT_ERROR;
}

/* Check the signature of the bmap text BUF; CLEAR: the text is clearsigned (and replaced
 * by its signed part, LEN updated). */
static int check_signature(struct copy_plan *plan, char *buf, size_t *len, bool clear)
{
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_signature_options o;
    bk_signature_options_init(&o);
    o.keyring = plan->keyring;
    o.fingerprint = plan->fingerprint;
    bk_signature_result_init(&plan->signature);
    int rc;
    if (clear) {
        rc = bk_signature_verify_clearsigned(buf, *len, &o, &plan->signature, buf, *len, len, &err);
    } else {
        size_t sig_len = 0;
        char *sig = read_whole(plan->sig_path, &plan->fetch, "bmap signature", &sig_len);
        if (!sig)
            return EXIT_ERROR;
        rc = bk_signature_verify_detached(buf, *len, sig, sig_len, &o, &plan->signature, &err);
        free(sig);
    }
    if (rc < 0)
        return sig_fail(plan, &err);
    plan->sig_verified = true;
    const char *who = plan->signature.signer[0] ? plan->signature.signer : "an unnamed key";
    cli_info("successfully verified bmap file signature of %s (fingerprint %s)", who,
             plan->signature.fingerprint);
    return EXIT_OK;
}

/* Parse a signed bmap from the very bytes whose signature was checked. */
static int parse_signed(struct copy_plan *plan, bool clear)
{
    size_t len = 0;
    char *buf = read_whole(plan->bmap_path, &plan->fetch, "bmap", &len);
    if (!buf)
        return EXIT_ERROR;
    int rc = EXIT_OK;
    if (!plan->no_sig_verify) {
        rc = check_signature(plan, buf, &len, clear);
    } else {
        struct bk_error err;
        bk_error_clear(&err);
        if (bk_signature_clearsigned_text(buf, len, buf, len, &len, &err) < 0)
            rc = sig_fail(plan, &err);
    }
    if (rc == EXIT_OK) {
        struct bk_error err;
        bk_error_clear(&err);
        /* Line numbers of a clearsigned bmap count in its signed text. */
        char name[PATH_MAX + 32];
        snprintf(name, sizeof name, clear ? "%s (signed text)" : "%s", plan->bmap_path);
        plan->bmap = bk_bmap_parse_buffer(buf, len, name, &err);
        if (!plan->bmap)
            rc = cli_fail(&err);
    }
    free(buf);
    return rc;
}

int copy_load_bmap(struct copy_plan *plan)
{
    bool clear = file_clearsigned(plan->bmap_path, &plan->fetch);
    if (clear && plan->bmap_sig) {
        cli_error("the bmap %s is clearsigned and holds its signature already, so --bmap-sig "
                  "cannot be used with it",
                  plan->bmap_path);
        return EXIT_ERROR;
    }
    if (!clear && !plan->no_sig_verify)
        find_signature(plan);
    if (clear || plan->sig_path)
        return parse_signed(plan, clear);
    if (plan->fingerprint || plan->keyring) {
        cli_error("no signature found but %s given: the bmap %s is not clearsigned and has no "
                  "%s.asc or %s.sig next to it",
                  plan->fingerprint ? "--fingerprint" : "--keyring", plan->bmap_path,
                  plan->bmap_path, plan->bmap_path);
        return EXIT_ERROR;
    }
    struct bk_error err;
    bk_error_clear(&err);
    if (ssh_source_is_url(plan->bmap_path) || cli_is_net_url(plan->bmap_path)) {
        /* Fetched here, so that the fetch options apply to the bmap too. */
        size_t len = 0;
        char *buf = read_whole(plan->bmap_path, &plan->fetch, "bmap", &len);
        if (!buf)
            return EXIT_ERROR;
        plan->bmap = bk_bmap_parse_buffer(buf, len, plan->bmap_path, &err);
        free(buf);
    } else {
        plan->bmap = bk_bmap_parse_file(plan->bmap_path, &err);
    }
    return plan->bmap ? EXIT_OK : cli_fail(&err);
}
