/* SPDX-License-Identifier: MIT */
/* The HTTP client over libcurl: one easy handle per request, connections,
 * DNS and TLS sessions shared between requests (and threads) through a
 * curl share object.
 *
 * libcurl is loaded with dlopen() on the first http_client_new(), as systemd
 * loads its optional libraries: it brings two dozen shared libraries, and
 * most forge commands (a container start above all) never touch the network,
 * so they should not pay for mapping and relocating them. */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/http.h"
#include "common/pool.h"

#define MEM_BODY_DEFAULT_CAP (16u << 20)
#define MAX_HEADERS 256
#define MAX_HEADER_LINE 8192

struct http_client {
        http_options opts;
        char *ca_file, *ca_dir, *client_cert, *client_key, *user_agent;
        CURLSH *share;
        pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

/* The libcurl functions forge uses, resolved from the library at run time. */
#define CURL_FUNCS(X)                                                                              \
        X(global_init)                                                                             \
        X(share_init)                                                                              \
        X(share_setopt)                                                                            \
        X(share_cleanup)                                                                           \
        X(easy_init)                                                                               \
        X(easy_setopt)                                                                             \
        X(easy_perform)                                                                            \
        X(easy_getinfo)                                                                            \
        X(easy_cleanup)                                                                            \
        X(easy_strerror)                                                                           \
        X(slist_append)                                                                            \
        X(slist_free_all)

static struct {
#define DECLARE(f) __typeof__(curl_##f) *f;
        CURL_FUNCS(DECLARE)
#undef DECLARE
} lc;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static char global_error[256];

static void global_init(void)
{
        void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        CURLcode rc;

        if (h == NULL) {
                snprintf(global_error, sizeof(global_error),
                         "cannot load libcurl (install the libcurl4 package): %s", dlerror());
                return;
        }
#define RESOLVE(f)                                                                                 \
        if ((*(void **)&lc.f = dlsym(h, "curl_" #f)) == NULL) {                                    \
                snprintf(global_error, sizeof(global_error), "libcurl lacks curl_%s", #f);         \
                return;                                                                            \
        }
        CURL_FUNCS(RESOLVE)
#undef RESOLVE
        rc = lc.global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK)
                snprintf(global_error, sizeof(global_error), "initialise libcurl: %s",
                         lc.easy_strerror(rc));
}

void http_options_init(http_options *o)
{
        *o = (http_options){.tls_verify = true, .retries = 3};
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userptr)
{
        http_client *c = userptr;

        (void)h;
        (void)access;
        if ((unsigned)data < CURL_LOCK_DATA_LAST)
                pthread_mutex_lock(&c->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userptr)
{
        http_client *c = userptr;

        (void)h;
        if ((unsigned)data < CURL_LOCK_DATA_LAST)
                pthread_mutex_unlock(&c->locks[data]);
}

static int dup_opt(char **dst, const char *src)
{
        if (src == NULL)
                return 0;
        *dst = strdup(src);
        return *dst == NULL ? -1 : 0;
}

static const char *env_nonempty(const char *name)
{
        const char *v = getenv(name);
        return v != NULL && v[0] != '\0' ? v : NULL;
}

int http_client_new(const http_options *o, http_client **ret, forge_error **err)
{
        http_client *c;

        pthread_once(&global_once, global_init);
        if (global_error[0] != '\0')
                return forge_error_make(err, 0, "%s", global_error);
        c = calloc(1, sizeof(*c));
        if (c == NULL)
                return forge_error_make(err, ENOMEM, "http client");
        if (o != NULL)
                c->opts = *o;
        else
                http_options_init(&c->opts);
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
                pthread_mutex_init(&c->locks[i], NULL);
        /* OpenSSL's variables, as openssl, Python and Go read them: a private
         * CA without editing the machine's trust store. */
        if (c->opts.ca_file == NULL)
                c->opts.ca_file = env_nonempty("SSL_CERT_FILE");
        if (c->opts.ca_dir == NULL)
                c->opts.ca_dir = env_nonempty("SSL_CERT_DIR");
        if (dup_opt(&c->ca_file, c->opts.ca_file) < 0 || dup_opt(&c->ca_dir, c->opts.ca_dir) < 0 ||
            dup_opt(&c->client_cert, c->opts.client_cert) < 0 ||
            dup_opt(&c->client_key, c->opts.client_key) < 0 ||
            dup_opt(&c->user_agent, c->opts.user_agent) < 0) {
                http_client_free(c);
                return forge_error_make(err, ENOMEM, "http client");
        }
        c->share = lc.share_init();
        if (c->share == NULL) {
                http_client_free(c);
                return forge_error_make(err, ENOMEM, "http client: curl share");
        }
        lc.share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
        lc.share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
        lc.share_setopt(c->share, CURLSHOPT_USERDATA, c);
        lc.share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        lc.share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        lc.share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
        *ret = c;
        return 0;
}

void http_client_free(http_client *c)
{
        if (c == NULL)
                return;
        if (c->share != NULL)
                lc.share_cleanup(c->share);
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
                pthread_mutex_destroy(&c->locks[i]);
        free(c->ca_file);
        free(c->ca_dir);
        free(c->client_cert);
        free(c->client_key);
        free(c->user_agent);
        free(c);
}

void http_request_init(http_request *rq, const char *url)
{
        *rq = (http_request){.url = url, .out_fd = -1, .body_fd = -1};
}

char *http_url_redact(const char *url)
{
        const char *scheme = strstr(url, "://");
        const char *host, *at, *end;
        char *out;

        if (scheme == NULL)
                return strdup(url);
        host = scheme + 3;
        end = host + strcspn(host, "/?#");
        at = memchr(host, '@', (size_t)(end - host));
        if (at == NULL)
                return strdup(url);
        out = malloc(strlen(url) + 1);
        if (out == NULL)
                return NULL;
        memcpy(out, url, (size_t)(host - url));
        strcpy(out + (host - url), at + 1);
        return out;
}

/* ---- one attempt ---- */

#define ERROR_BODY_CAP (64u << 10)

typedef struct attempt {
        const http_request *rq;
        http_response *resp;
        CURL *h;
        uint64_t cap;
        bool capped;
        bool header_overflow;
        int write_errno;
        /* response body to out_fd: decided at the first byte from the status */
        bool status_seen;
        bool to_fd;
        off_t base;          /* offset of byte 0 of the resource in out_fd, or -1 */
        uint64_t range_from; /* asked of this attempt */
        /* request body */
        uint64_t body_pos;
} attempt;

static void headers_clear(http_response *r)
{
        strpair_array_free(r->headers, r->n_headers);
        r->headers = NULL;
        r->n_headers = 0;
}

static size_t on_header(char *buf, size_t size, size_t n, void *userdata)
{
        attempt *a = userdata;
        size_t len = size * n;
        const char *colon;
        char *name, *value;
        size_t vlen;
        http_header *grown;

        if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
                /* a new response (after a redirect or 100 Continue) */
                headers_clear(a->resp);
                return len;
        }
        if (len > MAX_HEADER_LINE || a->resp->n_headers >= MAX_HEADERS) {
                a->header_overflow = true;
                return 0;
        }
        colon = memchr(buf, ':', len);
        if (colon == NULL)
                return len; /* the blank line, or junk */
        name = strndup(buf, (size_t)(colon - buf));
        colon++;
        while (colon < buf + len && (*colon == ' ' || *colon == '\t'))
                colon++;
        vlen = (size_t)(buf + len - colon);
        while (vlen > 0 && isspace((unsigned char)colon[vlen - 1]))
                vlen--;
        value = strndup(colon, vlen);
        grown = realloc(a->resp->headers, (a->resp->n_headers + 1) * sizeof(*grown));
        if (name == NULL || value == NULL || grown == NULL) {
                free(name);
                free(value);
                if (grown != NULL)
                        a->resp->headers = grown;
                return 0;
        }
        for (char *p = name; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        a->resp->headers = grown;
        a->resp->headers[a->resp->n_headers++] = (http_header){name, value};
        return len;
}

/* At the first byte of a body for out_fd: only a 2xx body goes to the fd (an
 * error page is kept in memory, capped); a full 200 answer to a range request
 * replaces what the fd held of the resource. */
static int body_start(attempt *a)
{
        long st = 0;

        a->status_seen = true;
        lc.easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &st);
        a->to_fd = st == 0 || (st >= 200 && st < 300);
        if (a->to_fd && st == 200 && a->range_from > 0) {
                if (a->base < 0 || ftruncate(a->rq->out_fd, a->base) < 0 ||
                    lseek(a->rq->out_fd, a->base, SEEK_SET) < 0) {
                        a->write_errno = a->base < 0 ? ESPIPE : errno;
                        return -1;
                }
                a->resp->written = 0;
        }
        return 0;
}

static size_t on_body(char *buf, size_t size, size_t n, void *userdata)
{
        attempt *a = userdata;
        size_t len = size * n;
        http_response *r = a->resp;
        uint64_t have;

        if (a->rq->out_fd >= 0 && !a->status_seen && body_start(a) < 0)
                return 0;
        if (a->rq->out_fd >= 0 && !a->to_fd) {
                if (r->body_len + len > ERROR_BODY_CAP)
                        return len; /* the rest of an error page: dropped */
        } else {
                have = a->rq->out_fd >= 0 ? r->written : r->body_len;
                if (a->cap > 0 && have + len > a->cap) {
                        a->capped = true;
                        return 0;
                }
        }
        if (a->rq->out_fd >= 0 && a->to_fd) {
                if (fs_write_all(a->rq->out_fd, buf, len) < 0) {
                        a->write_errno = errno;
                        return 0;
                }
                r->written += len;
                return len;
        }
        {
                char *grown = realloc(r->body, r->body_len + len + 1);

                if (grown == NULL) {
                        a->write_errno = ENOMEM;
                        return 0;
                }
                r->body = grown;
                memcpy(r->body + r->body_len, buf, len);
                r->body_len += len;
                r->body[r->body_len] = '\0';
        }
        return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *userdata)
{
        attempt *a = userdata;
        const http_request *rq = a->rq;
        size_t want = size * n;
        uint64_t left = rq->body_len - a->body_pos;

        if (want > left)
                want = (size_t)left;
        if (want == 0)
                return 0;
        if (rq->body_kind == HTTP_BODY_BUFFER) {
                memcpy(buf, (const char *)rq->body + a->body_pos, want);
        } else {
                ssize_t got;

                do
                        got = pread(rq->body_fd, buf, want, rq->body_offset + (off_t)a->body_pos);
                while (got < 0 && errno == EINTR);
                if (got <= 0)
                        return CURL_READFUNC_ABORT;
                want = (size_t)got;
        }
        a->body_pos += want;
        return want;
}

static int on_seek(void *userdata, curl_off_t offset, int origin)
{
        attempt *a = userdata;

        if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > a->rq->body_len)
                return CURL_SEEKFUNC_CANTSEEK;
        a->body_pos = (uint64_t)offset;
        return CURL_SEEKFUNC_OK;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
        attempt *a = userdata;

        if (a->rq->progress == NULL)
                return 0;
        if (a->rq->body_kind != HTTP_BODY_NONE)
                a->rq->progress(a->rq->userdata, (uint64_t)ulnow, (uint64_t)ultotal);
        else
                a->rq->progress(a->rq->userdata, (uint64_t)dlnow, (uint64_t)dltotal);
        return 0;
}

static bool is_method(const char *m, const char *want)
{
        return m != NULL && strcmp(m, want) == 0;
}

static struct curl_slist *build_headers(const http_request *rq, uint64_t range_from, bool *ret_ok)
{
        struct curl_slist *list = NULL, *t;
        char range[64];

        *ret_ok = false;
        if (rq->headers != NULL)
                for (const char *const *h = rq->headers; *h != NULL; h++) {
                        t = lc.slist_append(list, *h);
                        if (t == NULL)
                                goto fail;
                        list = t;
                }
        /* no 100-continue round trip on uploads */
        t = lc.slist_append(list, "Expect:");
        if (t == NULL)
                goto fail;
        list = t;
        if (range_from > 0) {
                snprintf(range, sizeof(range), "Range: bytes=%llu-",
                         (unsigned long long)range_from);
                t = lc.slist_append(list, range);
                if (t == NULL)
                        goto fail;
                list = t;
        }
        *ret_ok = true;
        return list;
fail:
        lc.slist_free_all(list);
        return NULL;
}

static void setup_method(CURL *h, const http_request *rq)
{
        const char *m = rq->method != NULL ? rq->method : "GET";
        bool has_body = rq->body_kind != HTTP_BODY_NONE;

        if (is_method(m, "GET"))
                return;
        if (is_method(m, "HEAD")) {
                lc.easy_setopt(h, CURLOPT_NOBODY, 1L);
                return;
        }
        if (is_method(m, "POST")) {
                lc.easy_setopt(h, CURLOPT_POST, 1L);
                lc.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                               has_body ? (curl_off_t)rq->body_len : (curl_off_t)0);
                if (!has_body)
                        lc.easy_setopt(h, CURLOPT_POSTFIELDS, "");
                /* keep POST on 301/302/303 */
                lc.easy_setopt(h, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
                return;
        }
        /* PUT, PATCH, DELETE, ...: an upload with a custom verb */
        if (has_body || is_method(m, "PUT") || is_method(m, "PATCH")) {
                lc.easy_setopt(h, CURLOPT_UPLOAD, 1L);
                lc.easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                               has_body ? (curl_off_t)rq->body_len : (curl_off_t)0);
        }
        if (!is_method(m, "PUT"))
                lc.easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
}

static bool transient_curl(CURLcode rc)
{
        switch (rc) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SSL_CONNECT_ERROR:
                return true;
        default:
                return false;
        }
}

static bool transient_status(long status)
{
        return status == 429 || status == 502 || status == 503 || status == 504;
}

/* One attempt; returns the curl code, leaves details in a. */
static CURLcode perform(http_client *c, const http_request *rq, uint64_t range_from, attempt *a,
                        char *errbuf)
{
        CURL *h = lc.easy_init();
        struct curl_slist *hdrs;
        bool ok;
        CURLcode rc;
        long status = 0;
        char *eff = NULL;
        bool is_file = strncmp(rq->url, "file:", 5) == 0;

        if (h == NULL)
                return CURLE_OUT_OF_MEMORY;
        a->h = h;
        a->range_from = range_from;
        hdrs = build_headers(rq, range_from, &ok);
        if (!ok) {
                lc.easy_cleanup(h);
                return CURLE_OUT_OF_MEMORY;
        }
        errbuf[0] = '\0';
        lc.easy_setopt(h, CURLOPT_URL, rq->url);
        lc.easy_setopt(h, CURLOPT_SHARE, c->share);
        lc.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        lc.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        lc.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
        lc.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        lc.easy_setopt(h, CURLOPT_FOLLOWLOCATION, rq->max_redirects > 0 ? 1L : 0L);
        lc.easy_setopt(h, CURLOPT_MAXREDIRS, (long)rq->max_redirects);
        lc.easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
                       c->opts.connect_timeout_s > 0 ? c->opts.connect_timeout_s : 30L);
        lc.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        lc.easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                       c->opts.low_speed_time_s > 0 ? c->opts.low_speed_time_s : 60L);
        lc.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->opts.tls_verify ? 1L : 0L);
        lc.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->opts.tls_verify ? 2L : 0L);
        if (c->ca_file != NULL)
                lc.easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        if (c->ca_dir != NULL)
                lc.easy_setopt(h, CURLOPT_CAPATH, c->ca_dir);
        if (c->client_cert != NULL)
                lc.easy_setopt(h, CURLOPT_SSLCERT, c->client_cert);
        if (c->client_key != NULL)
                lc.easy_setopt(h, CURLOPT_SSLKEY, c->client_key);
        lc.easy_setopt(h, CURLOPT_USERAGENT,
                       c->user_agent != NULL ? c->user_agent : "forge/" FORGE_VERSION);
        lc.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        lc.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        lc.easy_setopt(h, CURLOPT_HEADERDATA, a);
        lc.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        lc.easy_setopt(h, CURLOPT_WRITEDATA, a);
        lc.easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        lc.easy_setopt(h, CURLOPT_READDATA, a);
        lc.easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        lc.easy_setopt(h, CURLOPT_SEEKDATA, a);
        lc.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        lc.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        lc.easy_setopt(h, CURLOPT_XFERINFODATA, a);
        /* servers may compress what they send only if they are asked to */
        lc.easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
        if (is_file && range_from > 0) {
                char r[48];

                snprintf(r, sizeof(r), "%llu-", (unsigned long long)range_from);
                lc.easy_setopt(h, CURLOPT_RANGE, r);
        }
        setup_method(h, rq);

        rc = lc.easy_perform(h);
        lc.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        lc.easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
        if (is_file) {
                if (rc == CURLE_FILE_COULDNT_READ_FILE) {
                        rc = CURLE_OK;
                        status = 404;
                } else if (rc == CURLE_OK) {
                        status = range_from > 0 ? 206 : 200;
                }
        }
        a->resp->status = status;
        free(a->resp->effective_url);
        a->resp->effective_url = eff != NULL ? strdup(eff) : NULL;
        lc.slist_free_all(hdrs);
        lc.easy_cleanup(h);
        return rc;
}

static void response_reset_body(http_response *r)
{
        free(r->body);
        r->body = NULL;
        r->body_len = 0;
}

static void backoff(unsigned attempt_no)
{
        struct timespec ts;
        long ms = 200L << (attempt_no < 5 ? attempt_no : 5);

        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (ms % 1000) * 1000000L;
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int attempt_error(const http_request *rq, const attempt *a, CURLcode rc, const char *errbuf,
                         forge_error **err)
{
        cleanup_free char *url = http_url_redact(rq->url);
        const char *u = url != NULL ? url : "(url)";

        if (a->capped)
                return forge_error_make(err, EFBIG, "%s: response larger than %llu bytes", u,
                                        (unsigned long long)a->cap);
        if (a->header_overflow)
                return forge_error_make(err, 0, "%s: response headers too many or too long", u);
        if (a->write_errno != 0)
                return forge_error_make(err, a->write_errno, "%s: write response", u);
        if (rc == CURLE_TOO_MANY_REDIRECTS)
                return forge_error_make(err, 0, "%s: too many redirects (more than %d)", u,
                                        rq->max_redirects);
        if (rc == CURLE_PEER_FAILED_VERIFICATION)
                return forge_error_make(err, 0,
                                        "%s: %s (the server's certificate is not trusted: add "
                                        "its CA to the system's trust store, or name a CA "
                                        "bundle in SSL_CERT_FILE)",
                                        u, errbuf[0] ? errbuf : lc.easy_strerror(rc));
        return forge_error_make(err, 0, "%s: %s", u, errbuf[0] ? errbuf : lc.easy_strerror(rc));
}

int http_request_do(http_client *c, const http_request *rq, http_response *ret, forge_error **err)
{
        http_response resp = {0};
        char errbuf[CURL_ERROR_SIZE];
        off_t start = -1;
        uint64_t range_from = rq->range_from;
        unsigned tries = rq->no_retry ? 0 : c->opts.retries;
        CURLcode rc = CURLE_OK;
        attempt a;

        if (rq->url == NULL)
                return forge_error_make(err, EINVAL, "http request without a URL");
        if (rq->out_fd >= 0)
                start = lseek(rq->out_fd, 0, SEEK_CUR);
        for (unsigned i = 0;; i++) {
                a = (attempt){.rq = rq, .resp = &resp, .base = -1};
                if (start >= 0 && (uint64_t)start >= rq->range_from)
                        a.base = start - (off_t)rq->range_from;
                a.cap = rq->max_body;
                if (a.cap == 0 && rq->out_fd < 0)
                        a.cap = MEM_BODY_DEFAULT_CAP;
                rc = perform(c, rq, range_from, &a, errbuf);
                if (rc == CURLE_OK && !transient_status(resp.status))
                        break;
                if (i >= tries || a.capped || a.header_overflow || a.write_errno != 0 ||
                    (rc != CURLE_OK && !transient_curl(rc)))
                        break;
                /* prepare the retry */
                if (rq->out_fd >= 0 && resp.written > 0) {
                        const char *ar = http_response_header(&resp, "accept-ranges");
                        bool resumable = rc != CURLE_OK && start >= 0 && ar != NULL &&
                                         strcasecmp(ar, "bytes") == 0 &&
                                         (resp.status == 200 || resp.status == 206);

                        if (resumable) {
                                range_from = rq->range_from + resp.written;
                        } else if (start >= 0) {
                                if (ftruncate(rq->out_fd, start) < 0 ||
                                    lseek(rq->out_fd, start, SEEK_SET) < 0)
                                        break;
                                resp.written = 0;
                                range_from = rq->range_from;
                        } else {
                                break; /* a pipe: what was written cannot be taken back */
                        }
                }
                response_reset_body(&resp);
                headers_clear(&resp);
                backoff(i);
        }
        if (rc != CURLE_OK) {
                attempt_error(rq, &a, rc, errbuf, err);
                http_response_free(&resp);
                return -1;
        }
        *ret = resp;
        return 0;
}

void http_response_free(http_response *r)
{
        if (r == NULL)
                return;
        response_reset_body(r);
        headers_clear(r);
        free(r->effective_url);
        r->effective_url = NULL;
}

const char *http_response_header(const http_response *r, const char *name)
{
        for (size_t i = 0; i < r->n_headers; i++)
                if (strcasecmp(r->headers[i].name, name) == 0)
                        return r->headers[i].value;
        return NULL;
}

/* ---- parallel downloads ---- */

typedef struct fetch_pool {
        http_client *c;
        http_fetch *items;
        size_t n, done;
        uint64_t bytes_done, bytes_total;
        uint64_t *item_now;
        http_fetch_progress_fn progress;
        void *userdata;
        pthread_mutex_t lock;
} fetch_pool;

typedef struct fetch_ctx {
        fetch_pool *pool;
        size_t index;
} fetch_ctx;

static void fetch_progress(void *userdata, uint64_t now, uint64_t total)
{
        fetch_ctx *fc = userdata;
        fetch_pool *p = fc->pool;
        uint64_t sum = 0;

        (void)total;
        if (p->progress == NULL)
                return;
        pthread_mutex_lock(&p->lock);
        p->item_now[fc->index] = now;
        for (size_t i = 0; i < p->n; i++)
                sum += p->item_now[i];
        p->progress(p->userdata, p->done, sum, p->bytes_total);
        pthread_mutex_unlock(&p->lock);
}

static int fetch_verify(http_fetch *it, off_t start, forge_error **err)
{
        cleanup_free char *url = http_url_redact(it->url);
        const char *u = url != NULL ? url : "(url)";

        if (it->expect_size > 0 && it->written != it->expect_size)
                return forge_error_make(err, 0, "%s: got %llu bytes, expected %llu", u,
                                        (unsigned long long)it->written,
                                        (unsigned long long)it->expect_size);
        if (it->expect_sha256 != NULL) {
                char got[DIGEST_STR_SIZE];

                if (lseek(it->out_fd, start, SEEK_SET) < 0)
                        return forge_error_make(err, errno, "%s: rewind download", u);
                if (hash_sha256_fd(it->out_fd, got, err) < 0)
                        return forge_error_prefix(err, "%s", u);
                if (strcmp(digest_hex(got), it->expect_sha256) != 0)
                        return forge_error_make(err, 0, "%s: sha256 mismatch: got %s, expected %s",
                                                u, digest_hex(got), it->expect_sha256);
        }
        return 0;
}

static void fetch_one(fetch_pool *p, size_t i)
{
        http_fetch *it = &p->items[i];
        fetch_ctx fc = {p, i};
        http_request rq;
        http_response resp = {0};
        off_t start = lseek(it->out_fd, 0, SEEK_CUR);

        http_request_init(&rq, it->url);
        rq.out_fd = it->out_fd;
        rq.max_body = it->max_body;
        if (rq.max_body == 0 && it->expect_size > 0)
                rq.max_body = it->expect_size;
        rq.max_redirects = 10;
        rq.progress = fetch_progress;
        rq.userdata = &fc;
        if (http_request_do(p->c, &rq, &resp, &it->err) < 0)
                return;
        it->status = resp.status;
        it->written = resp.written;
        if (resp.status != 200) {
                cleanup_free char *url = http_url_redact(it->url);

                forge_error_make(&it->err, 0, "%s: HTTP status %ld", url != NULL ? url : "(url)",
                                 resp.status);
        } else {
                fetch_verify(it, start < 0 ? 0 : start, &it->err);
        }
        http_response_free(&resp);
}

/* One item of the pool; its failure is its own (it->err), not the pool's. */
static int fetch_item(void *ctx, size_t i, forge_error **err)
{
        fetch_pool *p = ctx;

        (void)err;
        fetch_one(p, i);
        pthread_mutex_lock(&p->lock);
        p->done++;
        if (p->progress != NULL) {
                uint64_t sum = 0;

                p->item_now[i] = p->items[i].written;
                for (size_t k = 0; k < p->n; k++)
                        sum += p->item_now[k];
                p->progress(p->userdata, p->done, sum, p->bytes_total);
        }
        pthread_mutex_unlock(&p->lock);
        return 0;
}

int http_fetch_many(http_client *c, http_fetch *items, size_t n, unsigned parallel,
                    http_fetch_progress_fn progress, void *userdata, forge_error **err)
{
        fetch_pool p = {.c = c, .items = items, .n = n, .progress = progress, .userdata = userdata};
        int r;

        for (size_t i = 0; i < n; i++) {
                items[i].status = 0;
                items[i].written = 0;
                items[i].err = NULL;
                p.bytes_total += items[i].expect_size;
        }
        if (n == 0)
                return 0;
        p.item_now = calloc(n, sizeof(*p.item_now));
        if (p.item_now == NULL)
                return forge_error_make(err, ENOMEM, "downloads");
        pthread_mutex_init(&p.lock, NULL);
        r = pool_run(n, parallel, fetch_item, &p, err);
        pthread_mutex_destroy(&p.lock);
        free(p.item_now);
        return r;
}
