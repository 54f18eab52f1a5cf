/* SPDX-License-Identifier: MIT */
/*
 * A session with one registry over common/http: the /v2/ probe (https, or
 * plain http where allowed), TLS files from certs.d/HOST/, and the
 * authentication dance: Basic from the auth file, or Bearer tokens from the
 * realm the registry names, cached per scope for their lifetime.
 */
#include "store/registry-internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

#define PROBE_CAP (64u << 10)
#define TOKEN_CAP (1u << 20)
#define MIN_TOKEN_LIFETIME 60

static void secret_free(char *p)
{
        if (p != NULL) {
                explicit_bzero(p, strlen(p));
                free(p);
        }
}

static void token_release(reg_token *t)
{
        free(t->scope);
        secret_free(t->header);
}

/* Sets s->basic_header ("Authorization: Basic base64(user:secret)"). */
static int basic_header_set(reg_session *s, const char *user, const char *secret)
{
        cleanup_free char *pair = NULL;
        char *enc;
        int r;

        if (asprintf(&pair, "%s:%s", user, secret) < 0)
                return -1;
        enc = registry_base64_encode(pair, strlen(pair));
        explicit_bzero(pair, strlen(pair));
        r = enc == NULL ? -1 : asprintf(&s->basic_header, "Authorization: Basic %s", enc);
        secret_free(enc);
        if (r < 0) {
                s->basic_header = NULL; /* asprintf leaves it undefined */
                return -1;
        }
        return 0;
}

void registry_opts_init(registry_opts *o)
{
        *o = (registry_opts){.tls_verify = -1};
}

static int stall_seconds(void)
{
        const char *v = getenv("FORGE_REGISTRY_STALL_SECONDS");
        int n = v ? atoi(v) : 0;
        return n > 0 ? n : 0;
}

/* certs.d/HOST/: ca.crt (or the first *.crt), client.cert and client.key. */
static int tls_files(const registry_opts *o, const char *host, http_options *ho, char **ret_ca,
                     char **ret_cert, char **ret_key, forge_error **err)
{
        const char *base = o->certs_dir ? o->certs_dir : "/etc/containers/certs.d";
        cleanup_free char *dir = fs_path_join(base, host);
        cleanup_closedir DIR *d = NULL;
        struct dirent *de;
        struct stat st;

        if (dir == NULL)
                return forge_error_make(err, ENOMEM, "certs");
        d = opendir(dir);
        if (d == NULL)
                return 0;
        while ((de = readdir(d)) != NULL) {
                size_t n = strlen(de->d_name);
                char **slot = NULL;
                if (strcmp(de->d_name, "ca.crt") == 0 ||
                    (*ret_ca == NULL && n > 4 && strcmp(de->d_name + n - 4, ".crt") == 0))
                        slot = ret_ca;
                else if (strcmp(de->d_name, "client.cert") == 0)
                        slot = ret_cert;
                else if (strcmp(de->d_name, "client.key") == 0)
                        slot = ret_key;
                if (slot == NULL)
                        continue;
                free(*slot);
                *slot = fs_path_join(dir, de->d_name);
                if (*slot == NULL || stat(*slot, &st) < 0 || !S_ISREG(st.st_mode)) {
                        free(*slot);
                        *slot = NULL;
                }
        }
        if ((*ret_cert == NULL) != (*ret_key == NULL))
                return forge_error_make(err, 0, "'%s' has %s but not %s", dir,
                                        *ret_cert ? "client.cert" : "client.key",
                                        *ret_cert ? "client.key" : "client.cert");
        ho->ca_file = *ret_ca;
        ho->client_cert = *ret_cert;
        ho->client_key = *ret_key;
        return 0;
}

static int session_challenge(reg_session *s, const http_response *r, forge_error **err)
{
        const char *h = http_response_header(r, "www-authenticate");
        registry_challenge c;

        if (h == NULL)
                return forge_error_make(err, 0,
                                        "registry '%s' answered 401 without a "
                                        "WWW-Authenticate header",
                                        s->host);
        if (registry_challenge_parse(h, &c, err) < 0)
                return forge_error_prefix(err, "registry '%s'", s->host);
        registry_challenge_release(&s->chal);
        s->chal = c;
        return 0;
}

static int probe(reg_session *s, const char *scheme, forge_error **err)
{
        cleanup_http_response http_response r = {0};
        cleanup_free char *url = NULL;
        http_request rq;

        free(s->base);
        if (asprintf(&s->base, "%s://%s", scheme, s->host) < 0) {
                s->base = NULL;
                return forge_error_make(err, ENOMEM, "registry");
        }
        if (asprintf(&url, "%s/v2/", s->base) < 0)
                return forge_error_make(err, ENOMEM, "registry");
        http_request_init(&rq, url);
        rq.max_body = PROBE_CAP;
        rq.max_redirects = 3;
        /* a plain-HTTP server fails the TLS handshake at once: no retries
         * before falling back to http */
        rq.no_retry = strcmp(scheme, "https") == 0;
        if (http_request_do(s->http, &rq, &r, err) < 0)
                return -1;
        if (r.status == 401)
                return session_challenge(s, &r, err);
        if (r.status != 200)
                return reg_status_error(err, &r, "probe /v2/ (is this an OCI registry?)");
        return 0;
}

int reg_session_open(const char *host, const registry_opts *o, reg_session **ret, forge_error **err)
{
        reg_session *s = calloc(1, sizeof(*s));
        cleanup_free char *ca = NULL, *cert = NULL, *key = NULL;
        http_options ho;
        forge_error *e = NULL;
        bool plain_ok = registry_host_is_loopback(host) || o->tls_verify == 0;

        if (s == NULL)
                return forge_error_make(err, ENOMEM, "registry");
        pthread_mutex_init(&s->lock, NULL);
        s->o = o;
        s->host = strdup(host);
        s->auth_file = o->auth_file ? strdup(o->auth_file) : registry_auth_file_path();
        if (s->host == NULL) {
                reg_session_free(s);
                return forge_error_make(err, ENOMEM, "registry");
        }
        http_options_init(&ho);
        ho.tls_verify = o->tls_verify != 0;
        ho.low_speed_time_s = stall_seconds();
        ho.connect_timeout_s = ho.low_speed_time_s;
        if (tls_files(o, host, &ho, &ca, &cert, &key, err) < 0 ||
            http_client_new(&ho, &s->http, err) < 0) {
                reg_session_free(s);
                return -1;
        }
        if (probe(s, "https", &e) < 0) {
                if (!plain_ok) {
                        *err = e;
                        forge_error_prefix(err,
                                           "registry '%s' (plain HTTP is used only for "
                                           "localhost and 127.0.0.0/8, or with "
                                           "--tls-verify=false)",
                                           host);
                        reg_session_free(s);
                        return -1;
                }
                if (probe(s, "http", err) < 0) {
                        /* both failed: the https reason is usually the one to fix */
                        forge_error_prefix(err, "registry '%s': https: %s; http", host,
                                           e && e->msg ? e->msg : "failed");
                        forge_error_release(&e);
                        reg_session_free(s);
                        return -1;
                }
                forge_error_release(&e);
        }
        *ret = s;
        return 0;
}

void reg_session_free(reg_session *s)
{
        if (s == NULL)
                return;
        http_client_free(s->http);
        for (size_t i = 0; i < s->n_tokens; i++)
                token_release(&s->tokens[i]);
        secret_free(s->basic_header);
        registry_challenge_release(&s->chal);
        registry_cred_release(&s->cred);
        free(s->auth_file);
        free(s->base);
        free(s->host);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

/* ---- credentials and tokens (called with s->lock held) ---- */

static int load_cred(reg_session *s, forge_error **err)
{
        int r;

        if (s->cred_loaded)
                return 0;
        r = registry_auth_lookup(s->auth_file, s->host, &s->cred, err);
        if (r < 0)
                return -1;
        s->cred_loaded = true;
        if (r > 0 && !s->cred.identity_token &&
            basic_header_set(s, s->cred.user, s->cred.secret) < 0)
                return forge_error_make(err, ENOMEM, "credentials");
        return 0;
}

static void pct_append(char **out, size_t *len, size_t *cap, const char *v)
{
        static const char hex[] = "0123456789ABCDEF";
        for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
                if (*len + 4 >= *cap) {
                        char *g = realloc(*out, *cap * 2);
                        if (g == NULL)
                                return;
                        *out = g;
                        *cap *= 2;
                }
                if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
                        (*out)[(*len)++] = (char)*p;
                } else {
                        (*out)[(*len)++] = '%';
                        (*out)[(*len)++] = hex[*p >> 4];
                        (*out)[(*len)++] = hex[*p & 15];
                }
                (*out)[*len] = '\0';
        }
}

static void str_append(char **out, size_t *len, size_t *cap, const char *v)
{
        size_t n = strlen(v);
        if (*len + n + 1 >= *cap) {
                size_t nc = (*len + n + 1) * 2;
                char *g = realloc(*out, nc);
                if (g == NULL)
                        return;
                *out = g;
                *cap = nc;
        }
        memcpy(*out + *len, v, n + 1);
        *len += n;
}

/* "service=S&scope=A&scope=B" (scope is space-separated). */
static char *token_query(const registry_challenge *c, const char *scope)
{
        size_t len = 0, cap = 256;
        char *q = malloc(cap);
        cleanup_free char *sc = scope ? strdup(scope) : NULL;
        char *save = NULL;

        if (q == NULL)
                return NULL;
        q[0] = '\0';
        if (c->service != NULL) {
                str_append(&q, &len, &cap, "service=");
                pct_append(&q, &len, &cap, c->service);
        }
        for (char *t = sc ? strtok_r(sc, " ", &save) : NULL; t; t = strtok_r(NULL, " ", &save)) {
                str_append(&q, &len, &cap, len ? "&scope=" : "scope=");
                pct_append(&q, &len, &cap, t);
        }
        return q;
}

static int fetch_token(reg_session *s, const char *scope, reg_token *ret, forge_error **err)
{
        cleanup_http_response http_response r = {0};
        cleanup_free char *q = token_query(&s->chal, scope), *url = NULL, *form = NULL;
        const char *hdrs[3] = {NULL, NULL, NULL};
        cleanup_json json_t *j = NULL;
        json_t *tok, *exp;
        const char *t;
        http_request rq;
        int life = MIN_TOKEN_LIFETIME;

        if (q == NULL)
                return forge_error_make(err, ENOMEM, "token");
        if (strncmp(s->chal.realm, "https://", 8) != 0 &&
            !(strncmp(s->chal.realm, "http://", 7) == 0 &&
              (registry_host_is_loopback(s->chal.realm + 7) || s->o->tls_verify == 0)))
                return forge_error_make(err, 0,
                                        "registry '%s': token realm '%s' is not https "
                                        "(credentials are not sent over plain HTTP)",
                                        s->host, s->chal.realm);
        if (s->cred.identity_token) {
                /* OAuth2 refresh-token grant, as docker does with identity tokens */
                size_t len = 0, cap = 256;
                form = malloc(cap);
                if (form == NULL)
                        return forge_error_make(err, ENOMEM, "token");
                form[0] = '\0';
                str_append(&form, &len, &cap, "grant_type=refresh_token&client_id=forge&");
                str_append(&form, &len, &cap, q);
                str_append(&form, &len, &cap, "&refresh_token=");
                pct_append(&form, &len, &cap, s->cred.secret);
                url = strdup(s->chal.realm);
                http_request_init(&rq, url);
                rq.method = "POST";
                rq.body_kind = HTTP_BODY_BUFFER;
                rq.body = form;
                rq.body_len = strlen(form);
                rq.no_retry = true;
                hdrs[0] = "Content-Type: application/x-www-form-urlencoded";
        } else {
                if (asprintf(&url, "%s%s%s", s->chal.realm, strchr(s->chal.realm, '?') ? "&" : "?",
                             q) < 0)
                        return forge_error_make(err, ENOMEM, "token");
                http_request_init(&rq, url);
                hdrs[0] = s->basic_header;
        }
        rq.headers = hdrs;
        rq.max_body = TOKEN_CAP;
        rq.max_redirects = 3;
        if (http_request_do(s->http, &rq, &r, err) < 0) {
                if (form)
                        explicit_bzero(form, strlen(form));
                return forge_error_prefix(err, "registry '%s': get a token", s->host);
        }
        if (form)
                explicit_bzero(form, strlen(form));
        if (r.status == 401 || r.status == 403)
                return forge_error_make(err, EACCES,
                                        "registry '%s': the token server refused "
                                        "%s (HTTP %ld): check the credentials "
                                        "('forge login %s')",
                                        s->host,
                                        s->basic_header || s->cred.identity_token
                                            ? "the credentials"
                                            : "anonymous access",
                                        r.status, s->host);
        if (r.status != 200)
                return reg_status_error(err, &r, "get a token");
        j = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
        tok = json_object_get(j, "token");
        if (!json_is_string(tok) || json_string_length(tok) == 0)
                tok = json_object_get(j, "access_token");
        t = json_string_value(tok);
        if (t == NULL || t[0] == '\0' || strpbrk(t, "\r\n") != NULL)
                return forge_error_make(err, EBADMSG,
                                        "registry '%s': the token server sent no "
                                        "usable token",
                                        s->host);
        exp = json_object_get(j, "expires_in");
        if (json_is_integer(exp) && json_integer_value(exp) > life)
                life = json_integer_value(exp) > 86400 ? 86400 : (int)json_integer_value(exp);
        ret->expires = time(NULL) + life - 10;
        if (asprintf(&ret->header, "Authorization: Bearer %s", t) < 0)
                ret->header = NULL;
        explicit_bzero((char *)t, strlen(t));
        if (r.body)
                explicit_bzero(r.body, r.body_len);
        ret->scope = strdup(scope ? scope : "");
        if (ret->header == NULL || ret->scope == NULL) {
                token_release(ret);
                return forge_error_make(err, ENOMEM, "token");
        }
        return 0;
}

static reg_token *find_token(reg_session *s, const char *scope)
{
        time_t now = time(NULL);
        for (size_t i = 0; i < s->n_tokens; i++)
                if (strcmp(s->tokens[i].scope, scope ? scope : "") == 0 &&
                    s->tokens[i].expires > now)
                        return &s->tokens[i];
        return NULL;
}

static void remove_token(reg_session *s, size_t i)
{
        token_release(&s->tokens[i]);
        s->tokens[i] = s->tokens[--s->n_tokens];
}

static void drop_token(reg_session *s, const char *scope)
{
        for (size_t i = 0; i < s->n_tokens; i++)
                if (strcmp(s->tokens[i].scope, scope ? scope : "") == 0) {
                        remove_token(s, i);
                        return;
                }
}

/* The Authorization header for scope (a malloc'd copy, since other threads may
 * replace the cached one), or NULL for none. */
static int auth_header(reg_session *s, const char *scope, bool refresh, char **ret,
                       forge_error **err)
{
        reg_token *t;
        int r = 0;

        *ret = NULL;
        pthread_mutex_lock(&s->lock);
        if (s->chal.scheme[0] == '\0')
                goto out;
        if (load_cred(s, err) < 0) {
                r = -1;
                goto out;
        }
        if (strcmp(s->chal.scheme, "basic") == 0) {
                if (s->basic_header)
                        *ret = strdup(s->basic_header);
                goto out;
        }
        if (refresh)
                drop_token(s, scope);
        t = find_token(s, scope);
        if (t == NULL) {
                reg_token nt = {0};
                drop_token(s, scope);
                if (fetch_token(s, scope, &nt, err) < 0) {
                        r = -1;
                        goto out;
                }
                if (s->n_tokens == REG_MAX_TOKENS)
                        remove_token(s, 0);
                s->tokens[s->n_tokens] = nt;
                t = &s->tokens[s->n_tokens++];
        }
        *ret = strdup(t->header);
out:
        pthread_mutex_unlock(&s->lock);
        return r;
}

static bool same_origin(const reg_session *s, const char *url)
{
        size_t n = strlen(s->base);
        return strncmp(url, s->base, n) == 0 && (url[n] == '/' || url[n] == '\0');
}

void reg_repo_init(reg_repo *r, store *st, reg_session *s, const registry_opts *o, const char *repo,
                   const char *actions)
{
        *r = (reg_repo){.st = st, .s = s, .o = o, .repo = repo};
        snprintf(r->scope, sizeof(r->scope), "repository:%s:%s", repo, actions);
}

int reg_do(reg_session *s, const char *scope, http_request *rq, http_response *ret,
           forge_error **err)
{
        cleanup_free char *url = NULL;
        const char *orig_url = rq->url;
        const char *const *orig_headers = rq->headers;
        const char *hdrs[16];
        size_t n = 0;
        int r = -1;

        if (rq->url[0] == '/') {
                if (asprintf(&url, "%s%s", s->base, rq->url) < 0)
                        return forge_error_make(err, ENOMEM, "registry");
                rq->url = url;
        }
        for (const char *const *h = orig_headers; h && *h && n < ARRAY_SIZE(hdrs) - 2; h++)
                hdrs[n++] = *h;
        for (int attempt = 0; attempt < 2; attempt++) {
                char *auth = NULL;
                /* credentials go only to the registry itself, never to a
                 * Location elsewhere (blob storage) */
                if (same_origin(s, rq->url) && auth_header(s, scope, attempt > 0, &auth, err) < 0)
                        break;
                hdrs[n] = auth;
                hdrs[n + 1] = NULL;
                rq->headers = hdrs;
                r = http_request_do(s->http, rq, ret, err);
                secret_free(auth);
                if (r < 0 || ret->status != 401 || attempt > 0)
                        break;
                /* learn (or re-learn) how to authenticate, then try once more */
                pthread_mutex_lock(&s->lock);
                r = session_challenge(s, ret, err);
                if (r == 0 && load_cred(s, err) < 0)
                        r = -1;
                bool have = strcmp(s->chal.scheme, "bearer") == 0 || s->basic_header != NULL;
                pthread_mutex_unlock(&s->lock);
                if (r < 0) {
                        http_response_free(ret);
                        break;
                }
                if (!have)
                        break; /* Basic without credentials: the caller reports the 401 */
                http_response_free(ret);
                *ret = (http_response){0};
        }
        rq->url = orig_url;
        rq->headers = orig_headers;
        return r;
}

static void sanitize(char *p)
{
        for (; *p; p++)
                if (!isprint((unsigned char)*p))
                        *p = '?';
}

int reg_status_error(forge_error **err, const http_response *r, const char *what)
{
        char detail[240] = "";
        const char *hint = "";
        cleanup_json json_t *j = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
        json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
        const char *code = json_string_value(json_object_get(e0, "code"));
        const char *msg = json_string_value(json_object_get(e0, "message"));
        cleanup_free char *url = r->effective_url ? http_url_redact(r->effective_url) : NULL;

        if (code || msg)
                snprintf(detail, sizeof(detail), ": %s%s%s", code ? code : "",
                         code && msg ? " " : "", msg ? msg : "");
        sanitize(detail);
        switch (r->status) {
        case 401:
                hint = " (authentication required: run 'forge login HOST')";
                break;
        case 403:
                hint = " (access denied)";
                break;
        case 404:
                hint = " (not found)";
                break;
        default:
                if (r->status >= 500)
                        hint = " (the registry failed: try again later)";
        }
        forge_error_make(err, 0, "%s: HTTP %ld%s%s%s%s", what, r->status, hint, detail,
                         url ? " at " : "", url ? url : "");
        (*err)->errnum = r->status == 404                       ? ENOENT
                         : r->status == 401 || r->status == 403 ? EACCES
                                                                : EIO;
        return -1;
}

char *reg_resolve_location(reg_session *s, const char *loc)
{
        char *out = NULL;

        if (loc == NULL)
                return NULL;
        if (strncmp(loc, "http://", 7) == 0 || strncmp(loc, "https://", 8) == 0)
                return strdup(loc);
        if (loc[0] != '/')
                return NULL;
        if (asprintf(&out, "%s%s", s->base, loc) < 0)
                return NULL;
        return out;
}

int registry_login_check(const char *host, const char *user, const char *password,
                         const registry_opts *o, forge_error **err)
{
        cleanup_reg_session reg_session *s = NULL;
        cleanup_http_response http_response r = {0};
        http_request rq;

        if (reg_session_open(host, o, &s, err) < 0)
                return -1;
        s->cred_loaded = true;
        s->cred.user = strdup(user);
        s->cred.secret = strdup(password);
        if (s->cred.user == NULL || s->cred.secret == NULL ||
            basic_header_set(s, user, password) < 0)
                return forge_error_make(err, ENOMEM, "login");
        if (s->chal.scheme[0] == '\0')
                return 0; /* the registry asks for no credentials */
        http_request_init(&rq, "/v2/");
        rq.max_body = PROBE_CAP;
        if (reg_do(s, NULL, &rq, &r, err) < 0)
                return forge_error_prefix(err, "login to '%s'", host);
        if (r.status == 401 || r.status == 403)
                return forge_error_make(err, EACCES,
                                        "login to '%s': the registry refused the "
                                        "user name or password",
                                        host);
        if (r.status != 200)
                return reg_status_error(err, &r, "login");
        return 0;
}
