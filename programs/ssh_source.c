/* SPDX-License-Identifier: MIT */
/*
 * Images, bmaps and signatures over ssh: the URL, the one round trip that asks what is
 * there, the remote cat read through bk_source_open_command, and the askpass mode that
 * hands ssh the URL's password.
 */
#include "ssh_source.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "remote.h"

extern char **environ;

/* Set only in the environment of the ssh this program starts, for its askpass. */
#define ASKPASS_ENV "BMAPKIT_ASKPASS_PASSWORD"

struct ssh_url {
    struct remote_url r; /* r.text is SHOWN */
    char shown[PATH_MAX + 512];
    char password[256]; /* "" when none */
};

bool ssh_source_is_url(const char *path)
{
    return path && strncmp(path, "ssh://", 6) == 0;
}

static bool name_char(unsigned char c, const char *more)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr(more, c));
}

/* Letters, digits and MORE, not empty and not starting with '-' (ssh would see an option). */
static bool plain(const char *s, size_t len, const char *more)
{
    if (len == 0 || s[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char((unsigned char)s[i], more))
            return false;
    return true;
}

static int hexval(char c)
{
    return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

/* The password, %XX decoded. Characters that end a URL's authority must be written %XX,
   so that every message can take the password out of the URL as written. */
static const char *parse_password(const char *p, size_t len, struct ssh_url *u)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (strchr("/?#\\\"' \t<>", c))
            return "write '/', '?', '#', '\\', quotes, spaces, '<' and '>' in a password as %XX";
        if (c == '%' && i + 2 < len && isxdigit((unsigned char)p[i + 1]) &&
            isxdigit((unsigned char)p[i + 2])) {
            c = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
            i += 2;
        }
        if ((unsigned char)c < 0x20 || c == 0x7f)
            return "the password holds a control character";
        if (n + 1 >= sizeof u->password)
            return "the password is too long";
        u->password[n++] = c;
    }
    u->password[n] = '\0';
    return n ? NULL : "the password after ':' is empty";
}

/* USER[:PASSWORD] of the LEN bytes at A. */
static const char *parse_userinfo(const char *a, size_t len, struct ssh_url *u)
{
    const char *colon = memchr(a, ':', len);
    size_t ulen = colon ? (size_t)(colon - a) : len;
    if (!plain(a, ulen, "._-") || ulen >= sizeof u->r.user)
        return "the user name must be letters, digits, '.', '_' and '-'";
    memcpy(u->r.user, a, ulen);
    u->r.user[ulen] = '\0';
    return colon ? parse_password(colon + 1, len - ulen - 1, u) : NULL;
}

/* PORT/PATH or PATH after the colon that follows the host. */
static const char *parse_after_colon(const char *s, struct ssh_url *u, const char **path)
{
    size_t digits = strspn(s, "0123456789");
    *path = s;
    if (digits == 0 || s[digits] != '/')
        return NULL; /* the reference's HOST:PATH */
    unsigned port;
    char text[8];
    if (digits >= sizeof text)
        return "the port must be a number from 1 to 65535";
    memcpy(text, s, digits);
    text[digits] = '\0';
    if (cli_parse_uint(text, 1, 65535, &port) < 0)
        return "the port must be a number from 1 to 65535";
    snprintf(u->r.port, sizeof u->r.port, "%u", port);
    *path = s + digits;
    return NULL;
}

/* HOST, [IPV6], then ':' or '/'; *PATH is set to what follows. */
static const char *parse_host(const char *h, struct ssh_url *u, const char **path)
{
    const char *end;
    if (h[0] == '[') {
        const char *close = strchr(h, ']');
        if (!close || !plain(h + 1, (size_t)(close - h - 1), ":.") ||
            (size_t)(close - h - 1) >= sizeof u->r.host)
            return "a bracketed host must be an IPv6 address, as in [::1]";
        memcpy(u->r.host, h + 1, (size_t)(close - h - 1));
        u->r.host[close - h - 1] = '\0';
        end = close + 1;
        if (*end != ':' && *end != '/')
            return "':' or '/' and a path must follow ']'";
    } else {
        end = h + strcspn(h, ":/");
        if (!plain(h, (size_t)(end - h), "._-") || (size_t)(end - h) >= sizeof u->r.host)
            return "the host must be a name or an address (letters, digits, '.', '-', '_')";
        memcpy(u->r.host, h, (size_t)(end - h));
        u->r.host[end - h] = '\0';
        if (!*end)
            return "no path after the host";
    }
    if (*end == '/') {
        *path = end;
        return NULL;
    }
    return parse_after_colon(end + 1, u, path);
}

static const char *parse_path(const char *p, struct ssh_url *u)
{
    /* "~/x" is relative to the home folder, where ssh starts the command. */
    if (strncmp(p, "~/", 2) == 0)
        p += 2;
    if (!*p)
        return "no path after the host";
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return "the path holds a control character";
    if (strlen(p) >= sizeof u->r.path)
        return "the path is too long";
    strcpy(u->r.path, p);
    return NULL;
}

/* The URL as messages show it: without ":PASSWORD". */
static void make_shown(const char *text, struct ssh_url *u, const char *at)
{
    const char *colon = at ? memchr(text + 6, ':', (size_t)(at - text - 6)) : NULL;
    if (colon)
        snprintf(u->shown, sizeof u->shown, "%.*s%s", (int)(colon - text), text, at);
    else
        snprintf(u->shown, sizeof u->shown, "%s", text);
    u->r.text = u->shown;
}

static const char *parse_url(const char *text, struct ssh_url *u)
{
    memset(u, 0, sizeof *u);
    u->r.text = text;
    if (!ssh_source_is_url(text))
        return "it does not start with ssh://";
    const char *a = text + 6;
    /* The user part ends at the last '@' before the first '/', as in other URLs. */
    size_t alen = strcspn(a, "/");
    const char *at = NULL;
    for (const char *p = a; p < a + alen; p++)
        if (*p == '@')
            at = p;
    make_shown(text, u, at);
    const char *why = at ? parse_userinfo(a, (size_t)(at - a), u) : NULL;
    const char *path = NULL;
    if (!why)
        why = parse_host(at ? at + 1 : a, u, &path);
    if (!why)
        why = parse_path(path, u);
    return why;
}

int ssh_source_check_url(const char *text)
{
    static struct ssh_url u;
    const char *why = parse_url(text, &u);
    if (!why)
        return CLI_CONTINUE;
    /* One line: control characters are shown as \xNN. */
    char shown[1024];
    size_t n = 0;
    for (const char *c = text; *c && n + 5 < sizeof shown; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            n += (size_t)snprintf(shown + n, sizeof shown - n, "\\x%02x", (unsigned char)*c);
        else
            shown[n++] = *c;
    }
    shown[n] = '\0';
    return cli_usage_error("copy",
                           "bad ssh URL '%s': %s (the forms are ssh://[USER@]HOST:PATH and "
                           "ssh://[USER@]HOST[:PORT]/PATH, USER may be followed by :PASSWORD)",
                           shown, why);
}

/* ---------------------------------------------------------------- running ssh */

/* ASKPASS_ENV=PASSWORD while ssh is started, then wiped. */
static char askpass_var[sizeof ASKPASS_ENV + 256];

/* The environment of ssh: this one, plus the askpass when the URL has a password. */
static char **ssh_env(const struct ssh_url *u, char *exe, size_t exe_cap)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 4, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "SSH_ASKPASS=", 12) != 0 &&
            strncmp(environ[i], "SSH_ASKPASS_REQUIRE=", 20) != 0 &&
            strncmp(environ[i], ASKPASS_ENV "=", sizeof ASKPASS_ENV) != 0)
            env[k++] = environ[i];
    /* ssh runs this very program as its askpass (OpenSSH 8.4 or later). */
    ssize_t len = readlink("/proc/self/exe", exe + 12, exe_cap - 13);
    if (len <= 0) {
        free(env);
        return NULL;
    }
    memcpy(exe, "SSH_ASKPASS=", 12);
    exe[12 + len] = '\0';
    env[k++] = exe;
    env[k++] = "SSH_ASKPASS_REQUIRE=force";
    snprintf(askpass_var, sizeof askpass_var, "%s=%s", ASKPASS_ENV, u->password);
    env[k++] = askpass_var;
    env[k] = NULL;
    return env;
}

/* COMMAND run on U's host over ssh, its output as a source named after U. */
static struct bk_source *run_remote(const struct ssh_url *u, const char *command,
                                    struct bk_error *err)
{
    char **argv = remote_argv(&u->r, command, -1);
    char exe[PATH_MAX + 16];
    char **env = NULL;
    if (argv && u->password[0])
        env = ssh_env(u, exe, sizeof exe);
    if (!argv || (u->password[0] && !env)) {
        remote_argv_free(argv);
        bk_error_set(err, BK_E_NOMEM, 0, "%s: cannot prepare the ssh command", u->shown);
        return NULL;
    }
    cli_debug("running: %s %s",
              getenv("BMAPKIT_SSH_COMMAND") ? getenv("BMAPKIT_SSH_COMMAND") : "ssh", command);
    fflush(NULL);
    struct bk_source *src = bk_source_open_command(argv, env, u->shown, err);
    /* The password lives on only in ssh's environment. */
    explicit_bzero(askpass_var, sizeof askpass_var);
    free(env);
    remote_argv_free(argv);
    return src;
}

/* Read all of SRC (at most MAX bytes) into a buffer the caller frees; closes SRC. */
static char *slurp(struct bk_source *src, size_t max, size_t *len, struct bk_error *err)
{
    size_t cap = 64 * 1024, n = 0, got = 1;
    char *buf = malloc(cap + 1);
    while (buf && got > 0) {
        if (n == cap) {
            char *bigger = cap < max ? realloc(buf, cap * 2 + 1) : NULL;
            if (!bigger) {
                bk_error_set(err, BK_E_NOMEM, 0, "%s: too large or out of memory",
                             bk_source_name(src));
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        if (bk_source_read(src, buf + n, cap - n, &got, err) < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        n += got;
    }
    bk_source_close(src);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* ---------------------------------------------------------------- what is there */

/* The last probe's answer about a bmap's signature, so that it is asked only once. */
static struct {
    char bmap[PATH_MAX + 512];
    int sig; /* index of the suffix found, -1 for none */
} sig_cache = {.sig = -1};

static const char *const sig_suffixes[] = {".asc", ".sig"};

/* The names bk_bmap_find tries for PATH: PATH.bmap, then one extension after another off. */
static size_t bmap_candidates(const char *path, char out[][PATH_MAX + 8], size_t max)
{
    const char *slash = strrchr(path, '/');
    size_t name_start = slash ? (size_t)(slash - path) + 1 : 0;
    size_t len = strlen(path), n = 0;
    while (n < max) {
        snprintf(out[n++], PATH_MAX + 8, "%.*s.bmap", (int)len, path);
        size_t dot = len;
        while (dot > name_start && path[dot - 1] != '.')
            dot--;
        if (dot <= name_start + 1)
            break;
        len = dot - 1;
    }
    return n;
}

/* The probe's script: the kind of PATH, then the first bmap found and its signature. */
static void probe_script(struct rbuf *s, const char *path, char cands[][PATH_MAX + 8], size_t n)
{
    rbuf_add(s, "p=", 2);
    rbuf_add_quoted(s, path);
    rbuf_addf(s, "; if [ -d \"$p\" ]; then echo dir; elif [ ! -e \"$p\" ]; then echo missing; "
                 "elif [ ! -r \"$p\" ]; then echo unreadable; else echo file; fi; i=0; for c in");
    for (size_t i = 0; i < n; i++)
        rbuf_add_word(s, cands[i]);
    rbuf_addf(s, "; do if [ -f \"$c\" ]; then echo \"bmap $i\"; j=0; for x in");
    for (size_t i = 0; i < sizeof sig_suffixes / sizeof *sig_suffixes; i++)
        rbuf_add_word(s, sig_suffixes[i]);
    rbuf_addf(s, "; do if [ -f \"$c$x\" ]; then echo \"sig $j\"; break; fi; j=$((j+1)); done; "
                 "break; fi; i=$((i+1)); done; true");
}

/* The URL U with its path replaced by PATH (absolute, or relative to the home folder). */
static void url_with_path(const struct ssh_url *u, const char *path, char *out, size_t cap)
{
    const char *text = u->shown;
    /* The original text up to where its path starts, so user, port and form stay. */
    size_t keep = strlen(text) - strlen(u->r.path);
    if (strncmp(text + keep, u->r.path, strlen(u->r.path)) != 0)
        keep = 0;
    snprintf(out, cap, "%.*s%s", (int)keep, text, path);
}

/* The same, but from the URL as the user gave it (with its password, for later use). */
static void given_with_path(const char *given, const struct ssh_url *u, const char *path, char *out,
                            size_t cap)
{
    size_t keep = strlen(given) - strlen(u->r.path);
    snprintf(out, cap, "%.*s%s", (int)keep, given, path);
}

int ssh_check_image(const char *url, bool find_bmap, char *found, size_t cap)
{
    static struct ssh_url u;
    static char cands[8][PATH_MAX + 8];
    if (cap > 0)
        found[0] = '\0';
    const char *why = parse_url(url, &u);
    if (why) {
        cli_error("bad ssh URL '%s': %s", u.shown, why);
        return EXIT_ERROR;
    }
    size_t n = find_bmap ? bmap_candidates(u.r.path, cands, 8) : 0;
    struct rbuf script = {0};
    probe_script(&script, u.r.path, cands, n);
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_source *src = script.failed ? NULL : run_remote(&u, script.data, &err);
    rbuf_free(&script);
    size_t len = 0;
    char *out = src ? slurp(src, 1 << 16, &len, &err) : NULL;
    if (!out)
        return cli_fail(&err);
    int bmap = -1, sig = -1;
    char kind[16] = "";
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (sscanf(line, "bmap %d", &bmap) == 1 || sscanf(line, "sig %d", &sig) == 1)
            continue;
        snprintf(kind, sizeof kind, "%s", line);
    }
    free(out);
    const char *problem = strcmp(kind, "file") == 0         ? NULL
                          : strcmp(kind, "missing") == 0    ? "no such file there"
                          : strcmp(kind, "dir") == 0        ? "a directory there, not an image"
                          : strcmp(kind, "unreadable") == 0 ? "permission denied there"
                                                            : "the remote shell gave no answer";
    if (problem) {
        cli_error("%s: %s", u.shown, problem);
        return EXIT_ERROR;
    }
    if (bmap >= 0 && (size_t)bmap < n) {
        given_with_path(url, &u, cands[bmap], found, cap);
        char shown[sizeof sig_cache.bmap];
        url_with_path(&u, cands[bmap], shown, sizeof shown);
        snprintf(sig_cache.bmap, sizeof sig_cache.bmap, "%s", found);
        sig_cache.sig = sig >= 0 && (size_t)sig < 2 ? sig : -1;
        cli_debug("found bmap %s over ssh", shown);
    }
    return EXIT_OK;
}

int ssh_found_bmap(const char *image_url, const char *found, struct bk_error *err)
{
    if (found[0])
        return 0;
    struct ssh_url u;
    parse_url(image_url, &u);
    bk_error_set(err, BK_E_IO, ENOENT,
                 "no bmap found for %s (looked for %s.bmap and names with extensions removed)",
                 u.shown, u.shown);
    return -1;
}

int ssh_find_signature(const char *bmap_url, const char *const *suffixes, size_t count)
{
    if (count == 2 && strcmp(suffixes[0], sig_suffixes[0]) == 0 &&
        strcmp(suffixes[1], sig_suffixes[1]) == 0 && strcmp(bmap_url, sig_cache.bmap) == 0)
        return sig_cache.sig;
    /* A bmap given with --bmap: ask whether its signatures are there, in one call. */
    static struct ssh_url u;
    if (parse_url(bmap_url, &u))
        return -1;
    struct rbuf script = {0};
    rbuf_add(&script, "i=0; for c in", 13);
    for (size_t i = 0; i < count; i++) {
        char name[PATH_MAX + 16];
        snprintf(name, sizeof name, "%s%s", u.r.path, suffixes[i]);
        rbuf_add_word(&script, name);
    }
    rbuf_addf(&script, "; do if [ -f \"$c\" ]; then echo $i; break; fi; i=$((i+1)); done; true");
    struct bk_error err;
    bk_error_clear(&err);
    struct bk_source *src = script.failed ? NULL : run_remote(&u, script.data, &err);
    rbuf_free(&script);
    size_t len = 0;
    char *out = src ? slurp(src, 4096, &len, &err) : NULL;
    int found = -1;
    /* A host that cannot be asked counts as having the first, so reading it says why. */
    if (!out)
        found = 0;
    else if (sscanf(out, "%d", &found) != 1 || found < 0 || (size_t)found >= count)
        found = -1;
    free(out);
    return found;
}

/* ---------------------------------------------------------------- reading */

struct bk_source *ssh_open_file(const char *url, struct bk_error *err)
{
    static struct ssh_url u;
    const char *why = parse_url(url, &u);
    if (why) {
        bk_error_set(err, BK_E_INVALID, 0, "bad ssh URL '%s': %s", u.shown, why);
        return NULL;
    }
    struct rbuf cmd = {0};
    rbuf_addf(&cmd, "exec cat --");
    rbuf_add_word(&cmd, u.r.path);
    struct bk_source *src = NULL;
    if (cmd.failed)
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    else
        src = run_remote(&u, cmd.data, err);
    rbuf_free(&cmd);
    return src;
}

struct bk_source *ssh_open_image(const char *url, enum bk_format *format, struct bk_error *err)
{
    struct bk_source *raw = ssh_open_file(url, err);
    if (!raw)
        return NULL;
    struct ssh_url u;
    parse_url(url, &u);
    return bk_source_decode(raw, u.r.path, format, err);
}

static struct {
    char url[PATH_MAX + 512];
    char *data;
    size_t len;
} whole_cache;

char *ssh_read_whole(const char *url, size_t *len, struct bk_error *err)
{
    if (!whole_cache.data || strcmp(whole_cache.url, url) != 0) {
        struct bk_source *src = ssh_open_file(url, err);
        size_t n = 0;
        char *data = src ? slurp(src, 1u << 30, &n, err) : NULL;
        if (!data)
            return NULL;
        free(whole_cache.data);
        whole_cache.data = data;
        whole_cache.len = n;
        snprintf(whole_cache.url, sizeof whole_cache.url, "%s", url);
    }
    char *copy = malloc(whole_cache.len + 1);
    if (!copy) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    memcpy(copy, whole_cache.data, whole_cache.len + 1);
    *len = whole_cache.len;
    return copy;
}

/* ---------------------------------------------------------------- askpass */

int ssh_askpass(int argc, char **argv)
{
    const char *pass = getenv(ASKPASS_ENV);
    if (!pass || argc != 2 || argv[1][0] == '-' || strcmp(argv[1], "copy") == 0 ||
        strcmp(argv[1], "create") == 0 || strcmp(argv[1], "list") == 0)
        return -1;
    /* Only a password prompt gets it: a host key to confirm or a key's passphrase is
       declined, and ssh goes on as the user's configuration says. */
    if (!strcasestr(argv[1], "password"))
        return 1;
    printf("%s\n", pass);
    return fflush(stdout) == 0 ? 0 : 1;
}
