/* SPDX-License-Identifier: MIT */
/*
 * The VM protocol's codec (common/vmproto.h, docs/vm-protocol.md). libc only:
 * forge-vminit compiles this file in.
 */
#include "common/vmproto.h"

#include <errno.h>
#include <stddef.h>
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

static const char hex_digits[] = "0123456789abcdef";

/* Hex of the strings joined by NUL. A list of one empty string would read
 * back as the empty list: refused. */
static int sb_hex_strv(sbuf *b, const char *const *v, size_t n)
{

        if (n > VMPROTO_MAX_STRINGS)
                return E2BIG;
        if (n == 1 && v[0][0] == '\0')
                return EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        sb_add(b, "00", 2);
                for (const unsigned char *c = (const unsigned char *)v[i]; *c; c++) {
                        char h[2] = {hex_digits[*c >> 4], hex_digits[*c & 15]};
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

/* The value of a hex digit in either case, -1 for anything else */
static int hexval(char c)
{
        const char *d;

        if (c >= 'A' && c <= 'F')
                c = (char)(c - 'A' + 'a');
        d = memchr(hex_digits, c, 16);
        return d ? (int)(d - hex_digits) : -1;
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

/* ---- KEY=VALUE lists: the kernel command line and /.forge/run ---- */

/* What a key's value is, and where it goes in the object decoded */
typedef enum kv_type {
        KV_LIST,     /* char ** at, its size_t count at n: hex of the strings, NUL-joined */
        KV_LIST_SET, /* KV_LIST; the bool at set marks it given (an empty list counts) */
        KV_HEX,      /* char *: hex of one string ("" is the empty string) */
        KV_WORD,     /* char *: as written, when valid() */
        KV_TEXT,     /* char *: as written; "" or one with a NUL byte: unset */
        KV_BOOL,     /* bool: 0 or 1 */
        KV_DIM,      /* unsigned: 1-65535 */
        KV_COUNT,    /* size_t: 0 to the size_t at n (a key before it) */
        KV_SHARES,   /* vmproto_share[VMPROTO_MAX_SHARES] at, its size_t count at n */
} kv_type;

typedef struct kv_key {
        const char *name;
        kv_type type;
        size_t at, n, set;
        bool (*valid)(const char *v, size_t len);
} kv_key;

/* Rows of a key table, for the object type KV_OBJ names */
#define KV_AT(f) offsetof(KV_OBJ, f)
#define KV_(name, type, f, n, set, valid)                                                          \
        {                                                                                          \
                name, type, KV_AT(f), n, set, valid                                                \
        }
#define LIST_SET(name, f, n, set) KV_(name, KV_LIST_SET, f, KV_AT(n), KV_AT(set), NULL)
#define LIST(name, f, n) KV_(name, KV_LIST, f, KV_AT(n), 0, NULL)
#define HEX(name, f) KV_(name, KV_HEX, f, 0, 0, NULL)
#define WORD(name, f, valid) KV_(name, KV_WORD, f, 0, 0, valid)
#define TEXT(name, f) KV_(name, KV_TEXT, f, 0, 0, NULL)
#define BOOL(name, f) KV_(name, KV_BOOL, f, 0, 0, NULL)
#define DIM(name, f) KV_(name, KV_DIM, f, 0, 0, NULL)
#define COUNT(name, f, bound) KV_(name, KV_COUNT, f, KV_AT(bound), 0, NULL)
#define SHARES(name, f, n) KV_(name, KV_SHARES, f, KV_AT(n), 0, NULL)

/* KEY=VALUE units of a text (words of a command line, lines of a file), at
 * most MAX_KEYS keys, parsed in the table's order */
#define MAX_KEYS 16
typedef struct kv_format {
        bool (*next)(const char **p, const char **ret_unit, size_t *ret_len);
        const kv_key *keys;
        size_t n_keys;
        size_t size; /* of the object */
} kv_format;

static void *field(void *obj, size_t at)
{
        return (char *)obj + at;
}

static const void *cfield(const void *obj, size_t at)
{
        return (const char *)obj + at;
}

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

/* At most digits decimal digits, value min to max */
static int parse_decimal(const char *v, size_t len, size_t digits, size_t min, size_t max,
                         size_t *ret)
{
        size_t n = 0;

        if (len == 0 || len > digits)
                return EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (v[i] < '0' || v[i] > '9')
                        return EINVAL;
                n = n * 10 + (size_t)(v[i] - '0');
        }
        if (n < min || n > max)
                return EINVAL;
        *ret = n;
        return 0;
}

static int parse_dim(const char *v, size_t len, unsigned *ret)
{
        size_t n;
        int e = parse_decimal(v, len, 5, 1, 65535, &n);

        if (!e)
                *ret = (unsigned)n;
        return e;
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
static int parse_shares(const char *v, size_t len, vmproto_share *ret, size_t *ret_n)
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
                ret[i / 3] = (vmproto_share){s[i], s[i + 1], strcmp(s[i + 2], "ro") == 0};
                s[i] = s[i + 1] = NULL;
        }
        if (!e)
                *ret_n = n / 3;
        vmproto_strv_free(s, n);
        return e;
}

static int dup_span(const char *v, size_t len, char **ret)
{
        *ret = strndup(v, len);
        return *ret ? 0 : ENOMEM;
}

/* text: "" is unset */
static int dup_text(const char *v, size_t len, char **ret)
{
        if (len == 0 || memchr(v, '\0', len) != NULL)
                return 0;
        return dup_span(v, len, ret);
}

static int kv_parse(const kv_key *k, const char *v, size_t len, void *obj)
{
        void *f = field(obj, k->at);

        switch (k->type) {
        case KV_LIST_SET:
                *(bool *)field(obj, k->set) = true;
                /* fall through */
        case KV_LIST:
                return unhex_list(v, len, f, field(obj, k->n));
        case KV_HEX:
                return unhex_one(v, len, f);
        case KV_WORD:
                return k->valid(v, len) ? dup_span(v, len, f) : EINVAL;
        case KV_TEXT:
                return dup_text(v, len, f);
        case KV_BOOL:
                return parse_bool(v, len, f);
        case KV_DIM:
                return parse_dim(v, len, f);
        case KV_COUNT:
                return parse_decimal(v, len, 9, 0, *(size_t *)field(obj, k->n), f);
        case KV_SHARES:
                return parse_shares(v, len, f, field(obj, k->n));
        }
        return EINVAL;
}

static void shares_free(vmproto_share *sh, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(sh[i].tag);
                free(sh[i].path);
        }
}

/* Frees what the keys of f hold in obj (strings, lists, shares; the other
 * types hold no memory), and zeroes it */
static void kv_release(const kv_format *f, void *obj)
{
        for (size_t i = 0; i < f->n_keys; i++) {
                const kv_key *k = &f->keys[i];
                void *at = field(obj, k->at);

                if (k->type == KV_LIST || k->type == KV_LIST_SET)
                        vmproto_strv_free(*(char ***)at, *(size_t *)field(obj, k->n));
                else if (k->type == KV_SHARES)
                        shares_free(at, *(size_t *)field(obj, k->n));
                else if (k->type == KV_HEX || k->type == KV_WORD || k->type == KV_TEXT)
                        free(*(char **)at);
        }
        memset(obj, 0, f->size);
}

/* Each key's value (the last one counts) parsed in key order; on failure
 * errno and the key in *ret_bad */
static int kv_decode(const kv_format *f, const char *text, size_t max, void *out,
                     const char **ret_bad)
{
        const char *val[MAX_KEYS] = {0}, *p = text, *u;
        size_t vlen[MAX_KEYS] = {0}, len;

        memset(out, 0, f->size);
        *ret_bad = NULL;
        if (strnlen(text, max + 1) > max) {
                errno = E2BIG;
                return -1;
        }
        while (f->next(&p, &u, &len)) {
                const char *eq = memchr(u, '=', len);
                for (size_t k = 0; eq && k < f->n_keys; k++)
                        if (strlen(f->keys[k].name) == (size_t)(eq - u) &&
                            memcmp(u, f->keys[k].name, (size_t)(eq - u)) == 0) {
                                val[k] = eq + 1;
                                vlen[k] = len - (size_t)(eq - u) - 1;
                        }
        }
        for (size_t k = 0; k < f->n_keys; k++) {
                int e = val[k] ? kv_parse(&f->keys[k], val[k], vlen[k], out) : 0;
                if (e) {
                        kv_release(f, out);
                        *ret_bad = f->keys[k].name;
                        errno = e;
                        return -1;
                }
        }
        return 0;
}

/* ---- the kernel command line ---- */

#define KV_OBJ vmproto_run
/* in the order vmproto_run_encode writes them */
static const kv_key run_keys[] = {
    LIST_SET("forge.args", args, n_args, has_args),
    LIST("forge.env", env, n_env),
    HEX("forge.entrypoint", entrypoint),
    HEX("forge.user", user),
    HEX("forge.workdir", workdir),
    HEX("forge.hostname", hostname),
    BOOL("forge.ro", read_only),
    SHARES("forge.fs", shares, n_shares),
    WORD("forge.net", net, net_valid),
    BOOL("forge.tty", tty),
    DIM("forge.rows", rows),
    DIM("forge.cols", cols),
    WORD("forge.root", root, root_valid),
    BOOL("forge.bootstat", bootstat),
};
#undef KV_OBJ
_Static_assert(sizeof(run_keys) / sizeof(run_keys[0]) <= MAX_KEYS, "too many keys");

static const kv_format run_format = {next_word, run_keys, sizeof(run_keys) / sizeof(run_keys[0]),
                                     sizeof(vmproto_run)};

int vmproto_run_decode(const char *cmdline, vmproto_run *ret, const char **ret_bad)
{
        return kv_decode(&run_format, cmdline, VMPROTO_CMDLINE_MAX, ret, ret_bad);
}

void vmproto_run_free(vmproto_run *r)
{
        kv_release(&run_format, r);
}

/* "KEY=", after a space when something comes before */
static void word_key(sbuf *b, const char *key)
{
        if (b->len > 0)
                sb_add(b, " ", 1);
        sb_str(b, key);
        sb_add(b, "=", 1);
}

/* KEY=HEX of the strings */
static int word_hex(sbuf *b, const char *key, const char *const *v, size_t n)
{
        word_key(b, key);
        return sb_hex_strv(b, v, n);
}

/* one string: its hex ("" for the empty string) */
static int word_hex_one(sbuf *b, const char *key, const char *s)
{
        if (s == NULL)
                return 0;
        if (s[0] == '\0') {
                word_key(b, key);
                return 0;
        }
        return word_hex(b, key, &s, 1);
}

static void word_text(sbuf *b, const char *key, const char *value)
{
        word_key(b, key);
        sb_str(b, value);
}

static int word_shares(sbuf *b, const char *key, const vmproto_share *sh, size_t n)
{
        const char *v[3 * VMPROTO_MAX_SHARES];

        if (n > VMPROTO_MAX_SHARES)
                return E2BIG;
        for (size_t i = 0; i < n; i++) {
                v[3 * i] = sh[i].tag;
                v[3 * i + 1] = sh[i].path;
                v[3 * i + 2] = sh[i].ro ? "ro" : "rw";
                if (!share_valid(v[3 * i], v[3 * i + 1], v[3 * i + 2]))
                        return EINVAL;
        }
        return n ? word_hex(b, key, v, 3 * n) : 0;
}

/* A valid word as written */
static int word_checked(sbuf *b, const kv_key *k, const char *s)
{
        if (s == NULL)
                return 0;
        if (!k->valid(s, strlen(s)))
                return EINVAL;
        word_text(b, k->name, s);
        return 0;
}

static int word_dim(sbuf *b, const char *key, unsigned v)
{
        char n[16];

        if (v > 65535)
                return EINVAL;
        snprintf(n, sizeof(n), "%u", v);
        if (v)
                word_text(b, key, n);
        return 0;
}

/* The word of key k, if r gives it */
static int word_encode(sbuf *b, const kv_key *k, const vmproto_run *r)
{
        const void *at = cfield(r, k->at);
        const size_t *n = cfield(r, k->n);

        switch (k->type) {
        case KV_LIST_SET:
                if (!*(const bool *)cfield(r, k->set))
                        return 0;
                return word_hex(b, k->name, (const char *const *)*(char *const *const *)at, *n);
        case KV_LIST:
                if (*n == 0)
                        return 0;
                return word_hex(b, k->name, (const char *const *)*(char *const *const *)at, *n);
        case KV_HEX:
                return word_hex_one(b, k->name, *(char *const *)at);
        case KV_WORD:
                return word_checked(b, k, *(char *const *)at);
        case KV_BOOL:
                if (*(const bool *)at)
                        word_text(b, k->name, "1");
                return 0;
        case KV_DIM:
                return word_dim(b, k->name, *(const unsigned *)at);
        case KV_SHARES:
                return word_shares(b, k->name, at, *n);
        case KV_TEXT:
        case KV_COUNT:
                break; /* /.forge/run's */
        }
        return EINVAL;
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
        int e = 0;

        if (!quotes_balanced(base))
                return sb_finish(&b, EINVAL, ret);
        sb_str(&b, base ? base : "");
        for (size_t k = 0; !e && k < run_format.n_keys; k++)
                e = word_encode(&b, &run_keys[k], r);
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

#define KV_OBJ vmproto_image
/* argv before entrypoint: the count is checked against it */
static const kv_key image_keys[] = {
    LIST("argv", argv, argc), COUNT("entrypoint", n_entrypoint, argc),
    LIST("env", env, n_env),  TEXT("workdir", workdir),
    TEXT("user", user),       TEXT("hostname", hostname),
};
#undef KV_OBJ

static const kv_format image_format = {
    next_line, image_keys, sizeof(image_keys) / sizeof(image_keys[0]), sizeof(vmproto_image)};

int vmproto_image_decode(const char *text, vmproto_image *ret, const char **ret_bad)
{
        return kv_decode(&image_format, text, VMPROTO_RUN_FILE_MAX, ret, ret_bad);
}

void vmproto_image_free(vmproto_image *im)
{
        kv_release(&image_format, im);
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
