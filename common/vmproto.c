/* SPDX-License-Identifier: MIT */
/*
 * The VM protocol's codec (common/vmproto.h, docs/vm-protocol.md). libc only:
 * forge-vminit compiles this file in.
 */
#include "common/vmproto.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing string; the first failure sticks (errno in err). */
typedef struct sbuf {
        char *p;
        size_t len, cap;
        int err;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
        if (b->err)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                char *p;

                while (cap < b->len + n + 1)
                        cap *= 2;
                p = realloc(b->p, cap);
                if (p == NULL) {
                        b->err = ENOMEM;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
        sb_add(b, s, strlen(s));
}

/* -1 with errno err (when not 0) and the buffer freed, else 0 and *ret */
static int sb_finish(sbuf *b, int err, char **ret)
{
        if (!err)
                err = b->err;
        if (!err && b->p == NULL)
                sb_add(b, "", 0);
        if (!err)
                err = b->err;
        if (err) {
                free(b->p);
                errno = err;
                return -1;
        }
        *ret = b->p;
        return 0;
}

/* Hex of the strings joined by NUL. A list of one empty string would read
 * back as the empty list: refused. */
static int sb_hex_strv(sbuf *b, const char *const *v, size_t n)
{
        static const char digits[] = "0123456789abcdef";

        if (n > VMPROTO_MAX_STRINGS)
                return E2BIG;
        if (n == 1 && v[0][0] == '\0')
                return EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        sb_add(b, "00", 2);
                for (const unsigned char *c = (const unsigned char *)v[i]; *c; c++) {
                        char h[2] = {digits[*c >> 4], digits[*c & 15]};
                        sb_add(b, h, 2);
                }
        }
        return 0;
}

int vmproto_hex_strv(const char *const *v, size_t n, char **ret)
{
        sbuf b = {0};

        return sb_finish(&b, sb_hex_strv(&b, v, n), ret);
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

void vmproto_strv_free(char **v, size_t n)
{
        if (v == NULL)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* Appends s (taken) to the NULL-terminated vector *v of *n */
static int strv_push(char ***v, size_t *n, char *s)
{
        char **nv;

        if (s == NULL)
                return -1;
        nv = realloc(*v, (*n + 2) * sizeof(char *));
        if (nv == NULL) {
                free(s);
                return -1;
        }
        nv[(*n)++] = s;
        nv[*n] = NULL;
        *v = nv;
        return 0;
}

static int unhex_bytes(const char *hex, size_t len, char *out)
{
        for (size_t i = 0; i < len / 2; i++) {
                int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -1;
                out[i] = (char)(hi << 4 | lo);
        }
        return 0;
}

int vmproto_unhex_strv(const char *hex, size_t len, char ***ret, size_t *ret_n)
{
        size_t blen = len / 2, n = 0, start = 0, count = 1;
        char **v = NULL, *bin = NULL;
        int err = EINVAL;

        if (len % 2 != 0)
                goto fail;
        v = calloc(1, sizeof(char *));
        bin = malloc(blen + 1);
        if (v == NULL || bin == NULL) {
                err = ENOMEM;
                goto fail;
        }
        if (unhex_bytes(hex, len, bin) < 0)
                goto fail;
        for (size_t i = 0; i < blen; i++)
                count += bin[i] == '\0';
        if (count > VMPROTO_MAX_STRINGS) {
                err = E2BIG;
                goto fail;
        }
        for (size_t i = 0; i <= blen && blen > 0; i++) {
                if (i < blen && bin[i] != '\0')
                        continue;
                if (strv_push(&v, &n, strndup(bin + start, i - start)) < 0) {
                        err = ENOMEM;
                        goto fail;
                }
                start = i + 1;
        }
        free(bin);
        *ret = v;
        *ret_n = n;
        return 0;
fail:
        vmproto_strv_free(v, n);
        free(bin);
        errno = err;
        return -1;
}

/* ---- the kernel command line ---- */

enum {
        K_ARGS,
        K_ENV,
        K_ENTRYPOINT,
        K_USER,
        K_WORKDIR,
        K_HOSTNAME,
        K_RO,
        K_FS,
        K_NET,
        K_TTY,
        K_ROWS,
        K_COLS,
        K_ROOT,
        K_BOOTSTAT,
        K_N
};

static const char *const run_keys[K_N] = {
    "forge.args",     "forge.env",  "forge.entrypoint", "forge.user",    "forge.workdir",
    "forge.hostname", "forge.ro",   "forge.fs",         "forge.net",     "forge.tty",
    "forge.rows",     "forge.cols", "forge.root",       "forge.bootstat"};

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The next word at or after *p (as the kernel's next_arg splits: whitespace
 * inside double quotes does not end a word); false at the end. */
static bool next_word(const char **p, const char **ret_word, size_t *ret_len)
{
        const char *s = *p;
        bool quoted = false;
        size_t i;

        while (is_space(*s))
                s++;
        if (*s == '\0')
                return false;
        for (i = 0; s[i] && (quoted || !is_space(s[i])); i++)
                if (s[i] == '"')
                        quoted = !quoted;
        *ret_word = s;
        *ret_len = i;
        *p = s + i;
        return true;
}

/* One string, hex-encoded ("" is the empty string) */
static int unhex_one(const char *v, size_t len, char **ret)
{
        char *s;

        if (len % 2 != 0)
                return EINVAL;
        s = malloc(len / 2 + 1);
        if (s == NULL)
                return ENOMEM;
        if (unhex_bytes(v, len, s) < 0 || memchr(s, '\0', len / 2) != NULL) {
                free(s);
                return EINVAL;
        }
        s[len / 2] = '\0';
        *ret = s;
        return 0;
}

static int unhex_list(const char *v, size_t len, char ***ret, size_t *ret_n)
{
        return vmproto_unhex_strv(v, len, ret, ret_n) < 0 ? errno : 0;
}

static int parse_bool(const char *v, size_t len, bool *ret)
{
        if (len != 1 || (v[0] != '0' && v[0] != '1'))
                return EINVAL;
        *ret = v[0] == '1';
        return 0;
}

/* 1-65535, digits only */
static int parse_dim(const char *v, size_t len, unsigned *ret)
{
        unsigned n = 0;

        if (len == 0 || len > 5)
                return EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (v[i] < '0' || v[i] > '9')
                        return EINVAL;
                n = n * 10 + (unsigned)(v[i] - '0');
        }
        if (n == 0 || n > 65535)
                return EINVAL;
        *ret = n;
        return 0;
}

static bool span_of(const char *v, size_t len, const char *accept)
{
        for (size_t i = 0; i < len; i++)
                if (v[i] == '\0' || strchr(accept, v[i]) == NULL)
                        return false;
        return true;
}

static bool net_valid(const char *v, size_t len)
{
        return len > 0 && len <= VMPROTO_NET_MAX && span_of(v, len, "0123456789./,");
}

/* A GPT name as the guest compares it: no spaces, quotes or control bytes */
static bool root_valid(const char *v, size_t len)
{
        if (len == 0 || len > VMPROTO_ROOT_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)v[i] <= ' ' || v[i] == '"' || v[i] == 0x7f)
                        return false;
        return true;
}

static bool share_valid(const char *tag, const char *path, const char *mode)
{
        size_t tl = strlen(tag);

        return tl > 0 && tl <= VMPROTO_TAG_MAX && path[0] == '/' &&
               (strcmp(mode, "ro") == 0 || strcmp(mode, "rw") == 0);
}

/* TAG, PATH, ro|rw for each share, NUL-joined */
static int parse_shares(const char *v, size_t len, vmproto_run *r)
{
        char **s = NULL;
        size_t n = 0;
        int e = unhex_list(v, len, &s, &n);

        if (e)
                return e;
        if (n % 3 != 0 || n / 3 > VMPROTO_MAX_SHARES)
                e = EINVAL;
        for (size_t i = 0; !e && i < n; i += 3)
                if (!share_valid(s[i], s[i + 1], s[i + 2]))
                        e = EINVAL;
        for (size_t i = 0; !e && i < n; i += 3) {
                r->shares[i / 3] = (vmproto_share){s[i], s[i + 1], strcmp(s[i + 2], "ro") == 0};
                s[i] = s[i + 1] = NULL;
        }
        if (!e)
                r->n_shares = n / 3;
        vmproto_strv_free(s, n);
        return e;
}

static int dup_span(const char *v, size_t len, char **ret)
{
        *ret = strndup(v, len);
        return *ret ? 0 : ENOMEM;
}

static int parse_run_key(int k, const char *v, size_t len, void *out)
{
        vmproto_run *r = out;

        switch (k) {
        case K_ARGS:
                r->has_args = true;
                return unhex_list(v, len, &r->args, &r->n_args);
        case K_ENV:
                return unhex_list(v, len, &r->env, &r->n_env);
        case K_ENTRYPOINT:
                return unhex_one(v, len, &r->entrypoint);
        case K_USER:
                return unhex_one(v, len, &r->user);
        case K_WORKDIR:
                return unhex_one(v, len, &r->workdir);
        case K_HOSTNAME:
                return unhex_one(v, len, &r->hostname);
        case K_RO:
                return parse_bool(v, len, &r->read_only);
        case K_FS:
                return parse_shares(v, len, r);
        case K_NET:
                return net_valid(v, len) ? dup_span(v, len, &r->net) : EINVAL;
        case K_TTY:
                return parse_bool(v, len, &r->tty);
        case K_ROWS:
                return parse_dim(v, len, &r->rows);
        case K_COLS:
                return parse_dim(v, len, &r->cols);
        case K_ROOT:
                return root_valid(v, len) ? dup_span(v, len, &r->root) : EINVAL;
        case K_BOOTSTAT:
                return parse_bool(v, len, &r->bootstat);
        }
        return EINVAL;
}

/* KEY=VALUE units of a text (words of a command line, lines of a file), at
 * most MAX_KEYS keys */
#define MAX_KEYS 16
typedef struct kv_format {
        bool (*next)(const char **p, const char **ret_unit, size_t *ret_len);
        const char *const *keys;
        int n_keys;
        int (*parse)(int k, const char *v, size_t len, void *out);
        void (*release)(void *out); /* what parse filled in, on failure */
} kv_format;

/* Each key's value (the last one counts) parsed in key order; on failure
 * errno and the key in *ret_bad */
static int kv_decode(const kv_format *f, const char *text, size_t max, void *out,
                     const char **ret_bad)
{
        const char *val[MAX_KEYS] = {0}, *p = text, *u;
        size_t vlen[MAX_KEYS] = {0}, len;

        *ret_bad = NULL;
        if (strnlen(text, max + 1) > max) {
                errno = E2BIG;
                return -1;
        }
        while (f->next(&p, &u, &len)) {
                const char *eq = memchr(u, '=', len);
                for (int k = 0; eq && k < f->n_keys; k++)
                        if (strlen(f->keys[k]) == (size_t)(eq - u) &&
                            memcmp(u, f->keys[k], (size_t)(eq - u)) == 0) {
                                val[k] = eq + 1;
                                vlen[k] = len - (size_t)(eq - u) - 1;
                        }
        }
        for (int k = 0; k < f->n_keys; k++) {
                int e = val[k] ? f->parse(k, val[k], vlen[k], out) : 0;
                if (e) {
                        f->release(out);
                        *ret_bad = f->keys[k];
                        errno = e;
                        return -1;
                }
        }
        return 0;
}

static void release_run(void *r)
{
        vmproto_run_free(r);
}

int vmproto_run_decode(const char *cmdline, vmproto_run *ret, const char **ret_bad)
{
        static const kv_format f = {next_word, run_keys, K_N, parse_run_key, release_run};

        *ret = (vmproto_run){0};
        return kv_decode(&f, cmdline, VMPROTO_CMDLINE_MAX, ret, ret_bad);
}

void vmproto_run_free(vmproto_run *r)
{
        vmproto_strv_free(r->args, r->n_args);
        vmproto_strv_free(r->env, r->n_env);
        free(r->entrypoint);
        free(r->user);
        free(r->workdir);
        free(r->hostname);
        for (size_t i = 0; i < r->n_shares; i++) {
                free(r->shares[i].tag);
                free(r->shares[i].path);
        }
        free(r->net);
        free(r->root);
        *r = (vmproto_run){0};
}

/* "KEY=", after a space when something comes before */
static void word_key(sbuf *b, int k)
{
        if (b->len > 0)
                sb_add(b, " ", 1);
        sb_str(b, run_keys[k]);
        sb_add(b, "=", 1);
}

/* KEY=HEX of the strings */
static int word_hex(sbuf *b, int k, const char *const *v, size_t n)
{
        word_key(b, k);
        return sb_hex_strv(b, v, n);
}

/* one string: its hex ("" for the empty string) */
static int word_hex_one(sbuf *b, int k, const char *s)
{
        if (s == NULL)
                return 0;
        if (s[0] == '\0') {
                word_key(b, k);
                return 0;
        }
        return word_hex(b, k, &s, 1);
}

static void word_text(sbuf *b, int k, const char *value)
{
        word_key(b, k);
        sb_str(b, value);
}

static void word_uint(sbuf *b, int k, unsigned v)
{
        char n[16];

        snprintf(n, sizeof(n), "%u", v);
        word_text(b, k, n);
}

static int words_shares(sbuf *b, const vmproto_run *r)
{
        const char *v[3 * VMPROTO_MAX_SHARES];

        if (r->n_shares > VMPROTO_MAX_SHARES)
                return E2BIG;
        for (size_t i = 0; i < r->n_shares; i++) {
                v[3 * i] = r->shares[i].tag;
                v[3 * i + 1] = r->shares[i].path;
                v[3 * i + 2] = r->shares[i].ro ? "ro" : "rw";
                if (!share_valid(v[3 * i], v[3 * i + 1], v[3 * i + 2]))
                        return EINVAL;
        }
        return r->n_shares ? word_hex(b, K_FS, v, 3 * r->n_shares) : 0;
}

static int words_lists(sbuf *b, const vmproto_run *r)
{
        int e = 0;

        if (r->has_args)
                e = word_hex(b, K_ARGS, (const char *const *)r->args, r->n_args);
        if (!e && r->n_env)
                e = word_hex(b, K_ENV, (const char *const *)r->env, r->n_env);
        if (!e)
                e = word_hex_one(b, K_ENTRYPOINT, r->entrypoint);
        if (!e)
                e = word_hex_one(b, K_USER, r->user);
        if (!e)
                e = word_hex_one(b, K_WORKDIR, r->workdir);
        if (!e)
                e = word_hex_one(b, K_HOSTNAME, r->hostname);
        return e;
}

static int words_flags(sbuf *b, const vmproto_run *r)
{
        int e;

        if (r->read_only)
                word_text(b, K_RO, "1");
        if ((e = words_shares(b, r)) != 0)
                return e;
        if (r->net) {
                if (!net_valid(r->net, strlen(r->net)))
                        return EINVAL;
                word_text(b, K_NET, r->net);
        }
        if (r->tty)
                word_text(b, K_TTY, "1");
        if (r->rows > 65535 || r->cols > 65535)
                return EINVAL;
        if (r->rows)
                word_uint(b, K_ROWS, r->rows);
        if (r->cols)
                word_uint(b, K_COLS, r->cols);
        if (r->root) {
                if (!root_valid(r->root, strlen(r->root)))
                        return EINVAL;
                word_text(b, K_ROOT, r->root);
        }
        if (r->bootstat)
                word_text(b, K_BOOTSTAT, "1");
        return 0;
}

/* Whether the words after s would be read as words: an odd number of
 * double quotes leaves the rest of the line inside one */
static bool quotes_balanced(const char *s)
{
        bool in = false;

        for (; s && *s; s++)
                in ^= *s == '"';
        return !in;
}

int vmproto_run_encode(const vmproto_run *r, const char *base, char **ret)
{
        sbuf b = {0};
        int e;

        if (!quotes_balanced(base))
                return sb_finish(&b, EINVAL, ret);
        sb_str(&b, base ? base : "");
        e = words_lists(&b, r);
        if (!e)
                e = words_flags(&b, r);
        if (!e && b.len > VMPROTO_CMDLINE_MAX)
                e = E2BIG;
        return sb_finish(&b, e, ret);
}

/* ---- /.forge/run ---- */

static bool line_safe(const char *s)
{
        return s == NULL || strchr(s, '\n') == NULL;
}

static void line_text(sbuf *b, const char *key, const char *value)
{
        if (value == NULL || value[0] == '\0')
                return;
        sb_str(b, key);
        sb_add(b, "=", 1);
        sb_str(b, value);
        sb_add(b, "\n", 1);
}

int vmproto_image_encode(const vmproto_image *im, char **ret)
{
        sbuf b = {0};
        char n[32];
        int e = 0;

        if (im->n_entrypoint > im->argc || !line_safe(im->workdir) || !line_safe(im->user) ||
            !line_safe(im->hostname))
                return sb_finish(&b, EINVAL, ret);
        sb_str(&b, "argv=");
        e = sb_hex_strv(&b, (const char *const *)im->argv, im->argc);
        snprintf(n, sizeof(n), "\nentrypoint=%zu\nenv=", im->n_entrypoint);
        sb_str(&b, n);
        if (!e)
                e = sb_hex_strv(&b, (const char *const *)im->env, im->n_env);
        sb_add(&b, "\n", 1);
        line_text(&b, "workdir", im->workdir);
        line_text(&b, "user", im->user);
        line_text(&b, "hostname", im->hostname);
        return sb_finish(&b, e, ret);
}

enum { I_ARGV, I_ENTRYPOINT, I_ENV, I_WORKDIR, I_USER, I_HOSTNAME, I_N };
static const char *const image_keys[I_N] = {"argv",    "entrypoint", "env",
                                            "workdir", "user",       "hostname"};

/* decimal, at most max */
static int parse_count(const char *v, size_t len, size_t max, size_t *ret)
{
        size_t n = 0;

        if (len == 0 || len > 9)
                return EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (v[i] < '0' || v[i] > '9')
                        return EINVAL;
                n = n * 10 + (size_t)(v[i] - '0');
        }
        if (n > max)
                return EINVAL;
        *ret = n;
        return 0;
}

/* text: "" is unset */
static int dup_text(const char *v, size_t len, char **ret)
{
        if (len == 0 || memchr(v, '\0', len) != NULL)
                return 0;
        return dup_span(v, len, ret);
}

static int parse_image_key(int k, const char *v, size_t len, void *out)
{
        vmproto_image *im = out;

        switch (k) {
        case I_ARGV:
                return unhex_list(v, len, &im->argv, &im->argc);
        case I_ENTRYPOINT:
                return parse_count(v, len, im->argc, &im->n_entrypoint);
        case I_ENV:
                return unhex_list(v, len, &im->env, &im->n_env);
        case I_WORKDIR:
                return dup_text(v, len, &im->workdir);
        case I_USER:
                return dup_text(v, len, &im->user);
        case I_HOSTNAME:
                return dup_text(v, len, &im->hostname);
        }
        return EINVAL;
}

static bool next_line(const char **p, const char **ret_line, size_t *ret_len)
{
        if (**p == '\0')
                return false;
        *ret_line = *p;
        *ret_len = strcspn(*p, "\n");
        *p += *ret_len;
        *p += **p == '\n';
        return true;
}

static void release_image(void *im)
{
        vmproto_image_free(im);
}

int vmproto_image_decode(const char *text, vmproto_image *ret, const char **ret_bad)
{
        /* argv before entrypoint: the count is checked against it */
        static const kv_format f = {next_line, image_keys, I_N, parse_image_key, release_image};

        *ret = (vmproto_image){0};
        return kv_decode(&f, text, VMPROTO_RUN_FILE_MAX, ret, ret_bad);
}

void vmproto_image_free(vmproto_image *im)
{
        vmproto_strv_free(im->argv, im->argc);
        vmproto_strv_free(im->env, im->n_env);
        free(im->workdir);
        free(im->user);
        free(im->hostname);
        *im = (vmproto_image){0};
}

static int strv_dup_append(char ***v, size_t *n, char *const *add, size_t n_add)
{
        for (size_t i = 0; i < n_add; i++)
                if (strv_push(v, n, strdup(add[i])) < 0)
                        return -1;
        return 0;
}

/* drops argv[keep...] */
static void strv_truncate(char **v, size_t *n, size_t keep)
{
        if (keep >= *n)
                return;
        for (size_t i = keep; i < *n; i++)
                free(v[i]);
        *n = keep;
        v[keep] = NULL;
}

/* K=V replaces the image's K, else is appended */
static int env_merge(vmproto_image *im, char *const *over, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                size_t klen = strcspn(over[i], "=");
                size_t j = 0;

                while (j < im->n_env &&
                       !(strncmp(im->env[j], over[i], klen) == 0 && im->env[j][klen] == '='))
                        j++;
                if (j < im->n_env) {
                        char *s = strdup(over[i]);
                        if (s == NULL)
                                return -1;
                        free(im->env[j]);
                        im->env[j] = s;
                } else if (strv_push(&im->env, &im->n_env, strdup(over[i])) < 0) {
                        return -1;
                }
        }
        return 0;
}

/* an override of workdir, user or hostname: "" keeps the image's */
static int override(char **field, const char *value)
{
        char *s;

        if (value == NULL || value[0] == '\0')
                return 0;
        s = strdup(value);
        if (s == NULL)
                return -1;
        free(*field);
        *field = s;
        return 0;
}

int vmproto_image_apply(vmproto_image *im, const vmproto_run *r)
{
        if (r->entrypoint) { /* replaces the entrypoint, drops the cmd */
                strv_truncate(im->argv, &im->argc, 0);
                if (r->entrypoint[0] &&
                    strv_dup_append(&im->argv, &im->argc, &r->entrypoint, 1) < 0)
                        return -1;
                im->n_entrypoint = im->argc;
        }
        if (r->has_args) { /* replaces the cmd */
                strv_truncate(im->argv, &im->argc, im->n_entrypoint);
                if (strv_dup_append(&im->argv, &im->argc, r->args, r->n_args) < 0)
                        return -1;
        }
        if (env_merge(im, r->env, r->n_env) < 0 || override(&im->workdir, r->workdir) < 0 ||
            override(&im->user, r->user) < 0 || override(&im->hostname, r->hostname) < 0)
                return -1;
        return 0;
}
