/* SPDX-License-Identifier: MIT */
/*
 * Registry credentials as podman and docker keep them: an auth file with
 * "auths": {HOST: {"auth": base64(user:password)} | {"identitytoken": T}},
 * "credHelpers": {HOST: NAME} and "credsStore": NAME (docker-credential-NAME
 * get, the host on stdin, JSON on stdout). Secrets are wiped from memory when
 * released and never put in messages.
 */
#include "store/registry.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

#define MAX_AUTH_FILE (1 << 20)
#define MAX_HELPER_OUTPUT (64 << 10)

extern char **environ;

static void wipe_free(char *p)
{
        if (p != NULL) {
                explicit_bzero(p, strlen(p));
                free(p);
        }
}

static void cleanup_secret_fn(char **p)
{
        wipe_free(*p);
}
#define cleanup_secret __attribute__((cleanup(cleanup_secret_fn)))

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *registry_base64_encode(const void *buf, size_t len)
{
        const unsigned char *p = buf;
        char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

        if (out == NULL)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                unsigned v = (unsigned)p[i] << 16;
                if (i + 1 < len)
                        v |= (unsigned)p[i + 1] << 8;
                if (i + 2 < len)
                        v |= p[i + 2];
                *o++ = b64[(v >> 18) & 63];
                *o++ = b64[(v >> 12) & 63];
                *o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
                *o++ = i + 2 < len ? b64[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

static int b64_value(char c)
{
        const char *p = c ? strchr(b64, c) : NULL;
        return p ? (int)(p - b64) : -1;
}

int registry_base64_decode(const char *s, char **ret, size_t *ret_len)
{
        size_t len = strlen(s), o = 0, cap;
        unsigned acc = 0;
        int bits = 0;
        char *out;

        while (len > 0 && s[len - 1] == '=')
                len--;
        if (strlen(s) - len > 2)
                return -1;
        cap = len * 3 / 4 + 1;
        out = malloc(cap);
        if (out == NULL)
                return -1;
        for (size_t i = 0; i < len; i++) {
                int v = b64_value(s[i]);
                if (v < 0)
                        goto bad;
                acc = (acc << 6) | (unsigned)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (char)((acc >> bits) & 0xff);
                }
        }
        if (bits >= 6) /* a lone trailing character encodes no byte */
                goto bad;
        out[o] = '\0';
        *ret = out;
        if (ret_len)
                *ret_len = o;
        return 0;
bad:
        explicit_bzero(out, cap); /* what was decoded may be a secret */
        free(out);
        return -1;
}

/* ---- the auth file ---- */

char *registry_auth_file_path(void)
{
        const char *v = getenv("REGISTRY_AUTH_FILE");
        char *r;

        if (v != NULL && v[0] != '\0')
                return strdup(v);
        r = fs_env_path("XDG_RUNTIME_DIR", "containers/auth.json");
        return r != NULL ? r : fs_env_path("HOME", ".docker/config.json");
}

/* Reads the auth file: NULL with *ret == NULL when it does not exist. */
static int auth_file_load(const char *path, json_t **ret, forge_error **err)
{
        cleanup_free char *buf = NULL;
        size_t len;
        json_error_t je;
        forge_error *e = NULL;
        cleanup_json json_t *j = NULL;

        *ret = NULL;
        if (fs_read_all(AT_FDCWD, path, MAX_AUTH_FILE, &buf, &len, &e) < 0) {
                if (e->errnum == ENOENT) {
                        forge_error_release(&e);
                        return 0;
                }
                *err = e;
                return forge_error_prefix(err, "read auth file '%s'", path);
        }
        j = json_loadb(buf, len, 0, &je);
        explicit_bzero(buf, len);
        if (j == NULL || !json_is_object(j))
                return forge_error_make(err, EBADMSG,
                                        "auth file '%s' is not a JSON object (line "
                                        "%d): fix or remove it",
                                        path, je.line);
        *ret = take_ptr(j);
        return 0;
}

/* "https://host/v1/" and "host" both name host. */
static bool key_matches(const char *key, const char *host)
{
        size_t n;

        if (strncmp(key, "https://", 8) == 0)
                key += 8;
        else if (strncmp(key, "http://", 7) == 0)
                key += 7;
        n = strcspn(key, "/");
        return strlen(host) == n && strncmp(key, host, n) == 0;
}

static json_t *find_host(json_t *obj, const char *host)
{
        const char *k;
        json_t *v;
        json_t *exact = json_object_get(obj, host);

        if (exact != NULL)
                return exact;
        json_object_foreach(obj, k, v)
        {
                if (key_matches(k, host))
                        return v;
        }
        return NULL;
}

static int cred_from_entry(json_t *entry, const char *path, const char *host, registry_cred *ret,
                           forge_error **err)
{
        const char *auth = json_string_value(json_object_get(entry, "auth"));
        const char *tok = json_string_value(json_object_get(entry, "identitytoken"));
        cleanup_secret char *plain = NULL;
        char *colon;

        if (tok != NULL && tok[0] != '\0') {
                ret->secret = strdup(tok);
                ret->identity_token = true;
                return ret->secret ? 1 : forge_error_make(err, ENOMEM, "credentials");
        }
        if (auth == NULL || auth[0] == '\0')
                return 0;
        if (registry_base64_decode(auth, &plain, NULL) < 0 || (colon = strchr(plain, ':')) == NULL)
                return forge_error_make(err, EBADMSG,
                                        "auth file '%s': the entry for '%s' is not "
                                        "base64 of USER:PASSWORD (run 'forge login "
                                        "%s' again)",
                                        path, host, host);
        *colon = '\0';
        ret->user = strdup(plain);
        ret->secret = strdup(colon + 1);
        if (ret->user == NULL || ret->secret == NULL) {
                registry_cred_release(ret);
                return forge_error_make(err, ENOMEM, "credentials");
        }
        return 1;
}

static bool helper_name_ok(const char *n)
{
        if (n == NULL || n[0] == '\0' || strlen(n) > 64)
                return false;
        for (const char *c = n; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
                        return false;
        return n[0] != '.';
}

/* Writes s to a pipe whose reader may be gone, without dying of SIGPIPE (a
 * helper that exits without reading is judged by its exit status). */
static void write_quietly(int fd, const char *s)
{
        sigset_t pipe_set, old;
        struct timespec zero = {0, 0};

        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
        if (fs_write_all(fd, s, strlen(s)) < 0 && errno == EPIPE)
                sigtimedwait(&pipe_set, NULL, &zero);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Runs docker-credential-NAME get with host on stdin; its stdout in *ret_out. */
static int helper_run(const char *name, const char *host, char **ret_out, int *ret_status,
                      forge_error **err)
{
        char prog[96];
        int in[2] = {-1, -1}, out[2] = {-1, -1};
        posix_spawn_file_actions_t fa;
        char *argv[] = {prog, "get", NULL};
        cleanup_free char *buf = malloc(MAX_HELPER_OUTPUT + 1);
        size_t used = 0;
        pid_t pid;
        int rc, st;

        snprintf(prog, sizeof(prog), "docker-credential-%s", name);
        if (buf == NULL)
                return forge_error_make(err, ENOMEM, "credential helper");
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
                rc = errno;
                goto fail_pipes;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(out[1]);
        in[0] = out[1] = -1;
        if (rc != 0)
                goto fail_pipes;
        write_quietly(in[1], host);
        close(in[1]);
        in[1] = -1;
        for (;;) {
                ssize_t n = read(out[0], buf + used, MAX_HELPER_OUTPUT - used);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                used += (size_t)n;
                if (used == MAX_HELPER_OUTPUT)
                        break;
        }
        close(out[0]);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        buf[used] = '\0';
        *ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        *ret_out = take_ptr(buf);
        return 0;
fail_pipes:
        for (int i = 0; i < 2; i++) {
                if (in[i] >= 0)
                        close(in[i]);
                if (out[i] >= 0)
                        close(out[i]);
        }
        return forge_error_make(err, rc, "run credential helper '%s'", prog);
}

static int cred_from_helper(const char *name, const char *host, registry_cred *ret,
                            forge_error **err)
{
        cleanup_secret char *out = NULL;
        cleanup_json json_t *j = NULL;
        const char *user, *secret;
        int status;

        if (!helper_name_ok(name))
                return forge_error_make(err, EINVAL, "credential helper name '%s' is not valid",
                                        name ? name : "");
        if (helper_run(name, host, &out, &status, err) < 0)
                return -1;
        if (status != 0) {
                /* "credentials not found" is how helpers say there are none */
                if (strstr(out, "not found") != NULL)
                        return 0;
                return forge_error_make(err, 0,
                                        "credential helper 'docker-credential-%s' failed "
                                        "for '%s' (exit %d)",
                                        name, host, status);
        }
        j = json_loads(out, 0, NULL);
        user = json_string_value(json_object_get(j, "Username"));
        secret = json_string_value(json_object_get(j, "Secret"));
        if (secret == NULL)
                return forge_error_make(err, EBADMSG,
                                        "credential helper 'docker-credential-%s' "
                                        "printed no Secret for '%s'",
                                        name, host);
        if (user == NULL || strcmp(user, "<token>") == 0) {
                ret->identity_token = true;
        } else {
                ret->user = strdup(user);
                if (ret->user == NULL)
                        return forge_error_make(err, ENOMEM, "credentials");
        }
        ret->secret = strdup(secret);
        if (j != NULL) {
                /* the parsed copy of the secret: wipe it before it is freed */
                json_t *s = json_object_get(j, "Secret");
                size_t n = json_string_length(s);
                explicit_bzero((char *)json_string_value(s), n);
        }
        if (ret->secret == NULL) {
                registry_cred_release(ret);
                return forge_error_make(err, ENOMEM, "credentials");
        }
        return 1;
}

int registry_auth_lookup(const char *auth_file, const char *host, registry_cred *ret,
                         forge_error **err)
{
        cleanup_json json_t *j = NULL;
        json_t *helpers, *entry;
        const char *store_name;
        registry_cred c = {0};
        int r;

        if (auth_file == NULL)
                return 0;
        if (auth_file_load(auth_file, &j, err) < 0)
                return -1;
        if (j == NULL)
                return 0;
        helpers = json_object_get(j, "credHelpers");
        entry = find_host(helpers, host);
        if (json_is_string(entry))
                r = cred_from_helper(json_string_value(entry), host, &c, err);
        else
                r = cred_from_entry(find_host(json_object_get(j, "auths"), host), auth_file, host,
                                    &c, err);
        if (r == 0 && (store_name = json_string_value(json_object_get(j, "credsStore"))) != NULL)
                r = cred_from_helper(store_name, host, &c, err);
        {
                /* wipe the file's secrets held by the parsed document */
                json_t *auths = json_object_get(j, "auths"), *v;
                const char *k;
                json_object_foreach(auths, k, v)
                {
                        json_t *a = json_object_get(v, "auth");
                        if (json_is_string(a))
                                explicit_bzero((char *)json_string_value(a), json_string_length(a));
                }
        }
        if (r < 0)
                return forge_error_prefix(err, "credentials for '%s'", host);
        if (r > 0)
                *ret = c;
        return r;
}

static int write_auth_file(const char *path, json_t *j, forge_error **err)
{
        cleanup_free char *dir_copy = strdup(path), *base_copy = strdup(path);
        cleanup_secret char *txt = NULL;
        cleanup_close int dfd = -1;
        const char *dir, *base;

        if (dir_copy == NULL || base_copy == NULL)
                return forge_error_make(err, ENOMEM, "auth file");
        dir = dirname(dir_copy);
        base = basename(base_copy);
        if (fs_mkdir_p(dir, 0700, err) < 0)
                return forge_error_prefix(err, "auth file '%s'", path);
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return forge_error_make(err, errno, "auth file directory '%s'", dir);
        txt = json_dumps(j, JSON_INDENT(8) | JSON_SORT_KEYS);
        if (txt == NULL)
                return forge_error_make(err, ENOMEM, "auth file");
        if (fs_write_atomic(dfd, base, txt, strlen(txt), 0600, err) < 0)
                return forge_error_prefix(err, "write auth file '%s'", path);
        return 0;
}

int registry_auth_store(const char *auth_file, const char *host, const char *user,
                        const char *password, forge_error **err)
{
        cleanup_json json_t *j = NULL;
        json_t *auths;
        cleanup_secret char *pair = NULL, *enc = NULL;

        if (auth_file == NULL)
                return forge_error_make(err, 0, "no auth file: set REGISTRY_AUTH_FILE or HOME");
        if (auth_file_load(auth_file, &j, err) < 0)
                return -1;
        if (j == NULL && (j = json_object()) == NULL)
                return forge_error_make(err, ENOMEM, "auth file");
        auths = json_object_get(j, "auths");
        if (!json_is_object(auths)) {
                auths = json_object();
                json_object_set_new(j, "auths", auths);
        }
        if (user == NULL) {
                const char *k;
                json_t *v, *tmp;
                bool found = false;
                json_object_foreach_safe(auths, tmp, k, v)
                {
                        if (key_matches(k, host)) {
                                json_object_del(auths, k);
                                found = true;
                        }
                }
                if (!found) {
                        forge_error_make(err, 0, "not logged in to '%s' (no entry in '%s')", host,
                                         auth_file);
                        (*err)->errnum = ENOENT;
                        return -1;
                }
        } else {
                if (strchr(user, ':') != NULL)
                        return forge_error_usage(err, "the user name must not contain ':'");
                if (asprintf(&pair, "%s:%s", user, password) < 0 ||
                    (enc = registry_base64_encode(pair, strlen(pair))) == NULL)
                        return forge_error_make(err, ENOMEM, "auth file");
                json_object_set_new(auths, host, json_pack("{s:s}", "auth", enc));
        }
        return write_auth_file(auth_file, j, err);
}

void registry_cred_release(registry_cred *c)
{
        wipe_free(c->user);
        wipe_free(c->secret);
        c->user = c->secret = NULL;
        c->identity_token = false;
}

/* ---- WWW-Authenticate ---- */

void registry_challenge_release(registry_challenge *c)
{
        free(c->realm);
        free(c->service);
        free(c->scope);
        c->realm = c->service = c->scope = NULL;
}

static const char *skip_ws(const char *p)
{
        while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
        return p;
}

/* key=value or key="quoted \" value"; advances *pp. */
static int param(const char **pp, char *key, size_t klen, char **ret_val)
{
        const char *p = skip_ws(*pp), *k = p;
        size_t n;
        char *v;

        while (isalnum((unsigned char)*p) || *p == '_' || *p == '-')
                p++;
        n = (size_t)(p - k);
        if (n == 0 || n >= klen || *p != '=')
                return -1;
        memcpy(key, k, n);
        key[n] = '\0';
        for (size_t i = 0; i < n; i++)
                key[i] = (char)tolower((unsigned char)key[i]);
        p++;
        v = malloc(strlen(p) + 1);
        if (v == NULL)
                return -1;
        n = 0;
        if (*p == '"') {
                for (p++; *p && *p != '"'; p++) {
                        if (*p == '\\' && p[1])
                                p++;
                        v[n++] = *p;
                }
                if (*p != '"') {
                        free(v);
                        return -1;
                }
                p++;
        } else {
                while (*p && *p != ',' && *p != ' ')
                        v[n++] = *p++;
        }
        v[n] = '\0';
        *pp = p;
        *ret_val = v;
        return 0;
}

int registry_challenge_parse(const char *header, registry_challenge *ret, forge_error **err)
{
        registry_challenge c = {0};
        const char *p = skip_ws(header), *s = p;
        size_t n;

        while (isalpha((unsigned char)*p))
                p++;
        n = (size_t)(p - s);
        if (n == 0 || n >= sizeof(c.scheme))
                return forge_error_make(err, EBADMSG, "malformed WWW-Authenticate header");
        for (size_t i = 0; i < n; i++)
                c.scheme[i] = (char)tolower((unsigned char)s[i]);
        if (strcmp(c.scheme, "basic") != 0 && strcmp(c.scheme, "bearer") != 0)
                return forge_error_make(err, ENOTSUP, "unsupported authentication scheme '%s'",
                                        c.scheme);
        for (int count = 0; *skip_ws(p) != '\0' && count < 32; count++) {
                char key[32];
                char *val = NULL;
                if (param(&p, key, sizeof(key), &val) < 0)
                        break; /* another challenge follows, or garbage: keep what we have */
                char **slot = !strcmp(key, "realm")     ? &c.realm
                              : !strcmp(key, "service") ? &c.service
                              : !strcmp(key, "scope")   ? &c.scope
                                                        : NULL;
                if (slot != NULL && *slot == NULL)
                        *slot = val;
                else
                        free(val);
        }
        if (strcmp(c.scheme, "bearer") == 0 && (c.realm == NULL || c.realm[0] == '\0')) {
                registry_challenge_release(&c);
                return forge_error_make(err, EBADMSG, "Bearer challenge without a realm");
        }
        *ret = c;
        return 0;
}
