/* SPDX-License-Identifier: MIT */
/*
 * What every transfer of a URL shares, whoever runs it: the options of its easy handle,
 * reading the response's headers, the checks that the file did not change and that the
 * range asked for came back, which failures are worth a retry, and the error text.
 */
#include "net/net_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void net_header_line(struct net_response *r, const char *data, size_t len)
{
    char line[NET_FIELD + 32];
    size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, data, l);
    while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
        l--;
    line[l] = '\0';
    if (strncmp(line, "HTTP/", 5) == 0) {
        *r = (struct net_response){.range_total = -1};
        return;
    }
    char *colon = strchr(line, ':');
    if (!colon)
        return;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (strcasecmp(line, "ETag") == 0) {
        snprintf(r->etag, sizeof r->etag, "%s", v);
    } else if (strcasecmp(line, "Last-Modified") == 0) {
        snprintf(r->modified, sizeof r->modified, "%s", v);
    } else if (strcasecmp(line, "Content-Range") == 0) {
        unsigned long long a, b, total;
        if (sscanf(v, "bytes %llu-%llu/%llu", &a, &b, &total) == 3) {
            r->has_range = true;
            r->range_start = a;
            r->range_total = (int64_t)total;
        } else if (sscanf(v, "bytes %llu-%llu/*", &a, &b) == 2) {
            r->has_range = true;
            r->range_start = a;
        }
    }
}

/* A validator of this response that differs from the first response's. */
static bool changed(const char *first, const char *now)
{
    return first[0] && now[0] && strcmp(first, now) != 0;
}

int net_check_response(const struct bk_net *n, const struct net_response *r, long code,
                       uint64_t want, struct bk_error *fail)
{
    if (changed(n->etag, r->etag))
        return bk_error_set(fail, BK_E_IO, 0,
                            "%s: the file changed on the server (ETag %s, now %s), %" PRIu64
                            " bytes received",
                            n->name, n->etag, r->etag, net_received(n));
    if (changed(n->modified, r->modified))
        return bk_error_set(
            fail, BK_E_IO, 0,
            "%s: the file changed on the server (Last-Modified %s, now %s), %" PRIu64
            " bytes received",
            n->name, n->modified, r->modified, net_received(n));
    bool partial = code == 206 && r->has_range;
    if (n->ranges && (!partial || r->range_start != want))
        return bk_error_set(
            fail, BK_E_IO, 0,
            "%s: the server answered HTTP status %ld to a request from byte %" PRIu64
            " without that range, %" PRIu64 " bytes received",
            n->name, code, want, net_received(n));
    return 0;
}

bool net_transient(const struct bk_net *n, CURL *e, CURLcode rc)
{
    long code = 0;
    switch (rc) {
    case CURLE_HTTP_RETURNED_ERROR:
        n->lib.curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        return code >= 500;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    case CURLE_COULDNT_CONNECT:
        /* Refused on the first request: nobody listens. Later: the server restarts. */
        return net_received(n) > 0;
    default:
        return false;
    }
}

int net_transfer_error(const struct bk_net *n, CURL *e, CURLcode rc, const char *errbuf,
                       unsigned tries, struct bk_error *err)
{
    long code = 0;
    n->lib.curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    char again[64] = "";
    if (tries > 0)
        snprintf(again, sizeof again, " (tried %u times)", tries + 1);
    int rc_out;
    if (rc == CURLE_HTTP_RETURNED_ERROR || (n->http && code >= 400))
        rc_out = bk_error_set(err, BK_E_IO, 0, "%s: HTTP status %ld%s, %" PRIu64 " bytes received",
                              n->name, code, again, net_received(n));
    else
        rc_out = bk_error_set(err, BK_E_IO, 0, "%s: %s%s, %" PRIu64 " bytes received", n->name,
                              errbuf[0] ? errbuf : n->lib.curl_easy_strerror(rc), again,
                              net_received(n));
    if (err && (rc == CURLE_REMOTE_FILE_NOT_FOUND || code == 404 || code == 410))
        err->sys_errno = ENOENT;
    return rc_out;
}

void net_setup_easy(const struct bk_net *n, CURL *e, char *errbuf)
{
    n->lib.curl_easy_setopt(e, CURLOPT_URL, n->url);
    n->lib.curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,ftp,ftps");
    n->lib.curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https,ftp,ftps");
    n->lib.curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    n->lib.curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    n->lib.curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
    n->lib.curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    n->lib.curl_easy_setopt(e, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
    n->lib.curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, n->o.connect_timeout_ms);
    n->lib.curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    n->lib.curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, n->o.stall_seconds);
    n->lib.curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    n->lib.curl_easy_setopt(e, CURLOPT_USERAGENT, "bmapkit");
    /* Bytes as stored: a server's compression would break ranges and sizes. */
    n->lib.curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    if (n->o.ca_file)
        n->lib.curl_easy_setopt(e, CURLOPT_CAINFO, n->o.ca_file);
}
