/* SPDX-License-Identifier: MIT */
/*
 * The spec parser: libyaml's document API, then a strict walk over the
 * node tree. Every error is "SPEC:LINE:COL: what (expected)", exit 2.
 */
#include "specs/specs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/image-name.h"

#define SPEC_MAX_BYTES (1 << 20)

typedef struct parser {
        spec *s;
        yaml_document_t *doc;
        forge_error **err;
} parser;

static spec_pos pos_of(const yaml_node_t *n)
{
        return (spec_pos){(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
}

int spec_error(forge_error **err, const spec *s, spec_pos pos, const char *fmt, ...)
{
        va_list ap;

        if (err == NULL || *err != NULL)
                return -1; /* as forge_error_usage: the first error stands */
        va_start(ap, fmt);
        forge_error_usagev(err, fmt, ap);
        va_end(ap);
        return forge_error_prefix(err, "%s:%d:%d", s->path, pos.line, pos.col);
}

#define FAIL(p, node, ...) spec_error((p)->err, (p)->s, pos_of(node), __VA_ARGS__)

static const char *type_name(const yaml_node_t *n)
{
        switch (n->type) {
        case YAML_SCALAR_NODE:
                return "a scalar";
        case YAML_SEQUENCE_NODE:
                return "a list";
        case YAML_MAPPING_NODE:
                return "a map";
        default:
                return "nothing";
        }
}

static yaml_node_t *node(parser *p, int id)
{
        return yaml_document_get_node(p->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
        return (const char *)n->data.scalar.value;
}

static int expect_scalar(parser *p, yaml_node_t *n, const char *key)
{
        if (n->type != YAML_SCALAR_NODE)
                return FAIL(p, n, "'%s' is %s (expected a string or number)", key, type_name(n));
        return 0;
}

static int expect_map(parser *p, yaml_node_t *n, const char *key)
{
        if (n->type != YAML_MAPPING_NODE)
                return FAIL(p, n, "'%s' is %s (expected a map)", key, type_name(n));
        return 0;
}

/* A list (expected says what of); its length in *ret_n */
static int expect_list(parser *p, yaml_node_t *n, const char *key, const char *expected,
                       size_t *ret_n)
{
        if (n->type != YAML_SEQUENCE_NODE)
                return FAIL(p, n, "'%s' is %s (expected %s)", key, type_name(n), expected);
        *ret_n = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        return 0;
}

/* A key the map e must have: "WHAT has no 'KEY' (expected ...)" */
static int require_key(parser *p, yaml_node_t *e, bool given, const char *what, const char *key,
                       const char *expected)
{
        if (given)
                return 0;
        return FAIL(p, e, "%s has no '%s' (expected %s)", what, key, expected);
}

typedef int (*entry_fn)(parser *p, yaml_node_t *e, void *entry);

/* An array for n entries of size, zeroed; NULL (and the error) when out of memory */
static void *new_entries(parser *p, size_t n, size_t size)
{
        void *a = calloc(n ? n : 1, size);

        if (a == NULL)
                forge_error_make(p->err, ENOMEM, "parse spec");
        return a;
}

/* Reads each entry of the list n with fn into array (from new_entries),
 * counting in *count those begun, so that spec_free frees them. */
static int read_entries(parser *p, yaml_node_t *n, void *array, size_t size, size_t *count,
                        entry_fn fn)
{
        if (array == NULL)
                return -1;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
                void *entry = (char *)array + (*count)++ * size;
                if (fn(p, node(p, *it), entry) < 0)
                        return -1;
        }
        return 0;
}

/* A scalar without a NUL byte in it. */
static int expect_string(parser *p, yaml_node_t *n, const char *key)
{
        if (expect_scalar(p, n, key) < 0)
                return -1;
        if (n->data.scalar.length != strlen(scalar(n)))
                return FAIL(p, n, "'%s' contains a NUL byte", key);
        return 0;
}

static int get_string(parser *p, yaml_node_t *n, const char *key, char **ret)
{
        if (expect_string(p, n, key) < 0)
                return -1;
        free(*ret);
        *ret = strdup(scalar(n));
        if (*ret == NULL)
                return forge_error_make(p->err, ENOMEM, "parse spec");
        return 0;
}

static int get_bool(parser *p, yaml_node_t *n, const char *key, bool *ret)
{
        const char *v;

        if (expect_scalar(p, n, key) < 0)
                return -1;
        v = scalar(n);
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
                *ret = true;
        else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
                *ret = false;
        else
                return FAIL(p, n, "'%s' is '%s' (expected true or false)", key, v);
        return 0;
}

/* Digits only in base, at most max */
static bool scan_uint(const char *v, int base, unsigned long long max, unsigned long long *ret)
{
        char *end = NULL;
        unsigned long long x;

        if (!isdigit((unsigned char)v[0]))
                return false;
        errno = 0;
        x = strtoull(v, &end, base);
        if (errno != 0 || *end != '\0' || x > max)
                return false;
        *ret = x;
        return true;
}

static int get_uint(parser *p, yaml_node_t *n, const char *key, uint64_t max, uint64_t *ret)
{
        unsigned long long x;

        if (expect_scalar(p, n, key) < 0)
                return -1;
        if (!scan_uint(scalar(n), 10, max, &x)) {
                /* -1, not FAIL()'s result: gcc can't see that is negative and
                 * warns that the callers' *ret may be unset */
                FAIL(p, n, "'%s' is '%s' (expected a whole number from 0 to %llu)", key, scalar(n),
                     (unsigned long long)max);
                return -1;
        }
        *ret = x;
        return 0;
}

/* A whole number from 1 to max; expected says so for 0 */
static int get_count(parser *p, yaml_node_t *n, const char *key, uint64_t max, const char *expected,
                     uint64_t *ret)
{
        if (get_uint(p, n, key, max, ret) < 0)
                return -1;
        if (*ret == 0)
                return FAIL(p, n, "'%s' is 0 (expected %s)", key, expected);
        return 0;
}

/* 1 to max characters, each a digit, a letter (letter) or one of punct */
static bool word_valid(const char *w, size_t max, int (*letter)(int), const char *punct)
{
        size_t len = strlen(w);

        if (len == 0 || len > max)
                return false;
        for (const char *c = w; *c; c++)
                if (!isdigit((unsigned char)*c) && !letter((unsigned char)*c) &&
                    strchr(punct, *c) == NULL)
                        return false;
        return true;
}

static int get_size(parser *p, yaml_node_t *n, const char *key, uint64_t *ret)
{
        unsigned long long v;

        if (expect_scalar(p, n, key) < 0)
                return -1;
        if (fs_parse_size(scalar(n), &v) < 0 || v == 0)
                return FAIL(p, n, "'%s' is '%s' (expected a size like 512M or 2G)", key, scalar(n));
        *ret = v;
        return 0;
}

static int get_strv(parser *p, yaml_node_t *n, const char *key, char ***ret)
{
        size_t count, i = 0;
        char **v;

        if (expect_list(p, n, key, "a list of strings, like [\"/bin/sh\"]", &count) < 0)
                return -1;
        v = calloc(count + 1, sizeof(char *));
        if (v == NULL)
                return forge_error_make(p->err, ENOMEM, "parse spec");
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
                yaml_node_t *e = node(p, *it);
                if (get_string(p, e, key, &v[i]) < 0) {
                        cleanup_strv_fn(&v);
                        return -1;
                }
                i++;
        }
        cleanup_strv_fn(ret);
        *ret = v;
        return 0;
}

static int kvs_add(spec_kvs *kvs, const char *k, const char *v)
{
        spec_kv *n = realloc(kvs->items, (kvs->n + 1) * sizeof(*n));
        if (n == NULL)
                return -1;
        kvs->items = n;
        n[kvs->n].key = strdup(k);
        n[kvs->n].value = strdup(v);
        if (n[kvs->n].key == NULL || n[kvs->n].value == NULL) {
                free(n[kvs->n].key);
                free(n[kvs->n].value);
                return -1;
        }
        kvs->n++;
        return 0;
}

/* Checks a mapping for duplicate keys and non-scalar keys. */
static int check_map_keys(parser *p, yaml_node_t *map)
{
        for (yaml_node_pair_t *a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
             a++) {
                yaml_node_t *ka = node(p, a->key);
                if (ka->type != YAML_SCALAR_NODE)
                        return FAIL(p, ka, "map key is %s (expected a string)", type_name(ka));
                for (yaml_node_pair_t *b = map->data.mapping.pairs.start; b < a; b++) {
                        yaml_node_t *kb = node(p, b->key);
                        if (strcmp(scalar(ka), scalar(kb)) == 0)
                                return FAIL(p, ka, "duplicate key '%s' (first at line %d)",
                                            scalar(ka), (int)kb->start_mark.line + 1);
                }
        }
        return 0;
}

static int get_kvs(parser *p, yaml_node_t *n, const char *key, spec_kvs *ret)
{
        if (expect_map(p, n, key) < 0 || check_map_keys(p, n) < 0)
                return -1;
        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
             pr++) {
                yaml_node_t *k = node(p, pr->key), *v = node(p, pr->value);
                if (k->data.scalar.length == 0)
                        return FAIL(p, k, "empty key in '%s'", key);
                if (v->type != YAML_SCALAR_NODE)
                        return FAIL(p, v, "'%s.%s' is %s (expected a string)", key, scalar(k),
                                    type_name(v));
                if (kvs_add(ret, scalar(k), scalar(v)) < 0)
                        return forge_error_make(p->err, ENOMEM, "parse spec");
        }
        return 0;
}

static int check_env_keys(parser *p, yaml_node_t *n, const spec_kvs *kvs)
{
        for (size_t i = 0; i < kvs->n; i++)
                if (strchr(kvs->items[i].key, '=') != NULL)
                        return FAIL(p, n, "environment variable name '%s' contains '='",
                                    kvs->items[i].key);
        return 0;
}

/* True when abs, with "." and ".." applied textually, stays below dir
 * (absolute, without a trailing '/'). */
static bool lexically_inside(const char *abs, const char *dir)
{
        cleanup_free char *norm = fs_path_clean(abs, FS_DOTDOT_APPLY);
        size_t dlen = strlen(dir) - 1; /* dir without its leading '/' */

        if (norm == NULL)
                return false;
        if (dlen == 0)
                return true;
        return strncmp(norm, dir + 1, dlen) == 0 && (norm[dlen] == '/' || norm[dlen] == '\0');
}

/* Resolves a context-relative (or absolute) path; it must exist and stay
 * inside the context after following symlinks. */
static int resolve_input(parser *p, yaml_node_t *n, const char *key, bool must_exist,
                         char **ret_abs)
{
        const char *rel = scalar(n);
        cleanup_free char *joined = NULL;
        char *real;
        size_t clen = strlen(p->s->context_dir);

        if (rel[0] == '\0')
                return FAIL(p, n, "'%s' is empty (expected a path)", key);
        joined = rel[0] == '/' ? strdup(rel) : fs_path_join(p->s->context_dir, rel);
        if (joined == NULL)
                return forge_error_make(p->err, ENOMEM, "parse spec");
        if (!lexically_inside(joined, p->s->context_dir))
                return FAIL(p, n, "'%s': '%s' is outside the build context %s (move it inside)",
                            key, rel, p->s->context_dir);
        real = realpath(joined, NULL);
        if (real == NULL) {
                if (errno == ENOENT && !must_exist) {
                        *ret_abs = take_ptr(joined);
                        return 0;
                }
                return FAIL(p, n, "'%s': cannot read '%s': %s (paths are relative to %s)", key, rel,
                            strerror(errno), p->s->context_dir);
        }
        if (strncmp(real, p->s->context_dir, clen) != 0 ||
            (real[clen] != '/' && real[clen] != '\0' && clen > 1)) {
                free(real);
                return FAIL(p, n, "'%s': '%s' is outside the build context %s (move it inside)",
                            key, rel, p->s->context_dir);
        }
        *ret_abs = real;
        return 0;
}

static int check_abs_path(parser *p, yaml_node_t *n, const char *key)
{
        const char *v = scalar(n);
        if (v[0] != '/')
                return FAIL(p, n, "'%s' is '%s' (expected an absolute path like /opt/app)", key, v);
        if (!fs_path_is_contained(v + 1))
                return FAIL(p, n, "'%s' is '%s' (expected a path without '..')", key, v);
        return 0;
}

static int get_sha256(parser *p, yaml_node_t *n, char **ret)
{
        const char *v;
        cleanup_free char *norm = NULL;

        if (expect_scalar(p, n, "sha256") < 0)
                return -1;
        v = scalar(n);
        if (strncmp(v, "sha256:", 7) == 0)
                v += 7;
        if (asprintf(&norm, "sha256:%s", v) < 0)
                return forge_error_make(p->err, ENOMEM, "parse spec");
        for (char *c = norm + 7; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        if (!digest_valid(norm))
                return FAIL(p, n, "'sha256' is '%s' (expected 64 hex digits)", scalar(n));
        free(*ret);
        *ret = take_ptr(norm);
        return 0;
}

typedef int (*key_fn)(parser *p, void *obj, yaml_node_t *key, yaml_node_t *value);

/* What a key's value is: most keys are read straight into a field of the
 * object (at offset), then checked by fn if there is one; the others
 * (KEY_FN) have a function of their own. */
typedef enum key_type {
        KEY_FN,       /* fn reads it */
        KEY_STRING,   /* char * */
        KEY_BOOL,     /* bool: true/false, yes/no, on/off */
        KEY_SIZE,     /* uint64_t: a size like 512M, not 0 */
        KEY_STRV,     /* char **: a list of strings */
        KEY_KVS,      /* spec_kvs: a map of strings */
        KEY_ENV,      /* spec_kvs: environment variables, no '=' in a name */
        KEY_ABS_PATH, /* char *: an absolute path without ".." */
        KEY_SHA256,   /* char *: a pin, normalised to "sha256:HEX" */
        KEY_INPUT,    /* char *: a file in the build context, resolved */
        KEY_PIDS,     /* int64_t: a process limit, 1 to 4194304 */
        KEY_NETWORK,  /* spec_network */
        KEY_PORTS,    /* char **: port mappings */
} key_type;

typedef struct key_handler {
        const char *name;
        key_type type;
        size_t offset;
        key_fn fn;
} key_handler;

#define KEY(name, type, obj_type, field)                                                           \
        {                                                                                          \
                name, type, offsetof(obj_type, field), NULL                                        \
        }
#define KEY_CALL(name, fn)                                                                         \
        {                                                                                          \
                name, KEY_FN, 0, fn                                                                \
        }
#define KEY_CHECK(name, type, obj_type, field, fn)                                                 \
        {                                                                                          \
                name, type, offsetof(obj_type, field), fn                                          \
        }

static int get_pids(parser *p, yaml_node_t *v, int64_t *ret)
{
        uint64_t n;
        if (get_count(p, v, "pids", 4194304, "a positive number of processes", &n) < 0)
                return -1;
        *ret = (int64_t)n;
        return 0;
}

static int parse_network(parser *p, yaml_node_t *v, spec_network *ret);
static int parse_ports(parser *p, yaml_node_t *v, char ***ret);

static int read_key(parser *p, const key_handler *h, void *field, yaml_node_t *v)
{
        switch (h->type) {
        case KEY_FN:
                break;
        case KEY_STRING:
                return get_string(p, v, h->name, field);
        case KEY_BOOL:
                return get_bool(p, v, h->name, field);
        case KEY_SIZE:
                return get_size(p, v, h->name, field);
        case KEY_STRV:
                return get_strv(p, v, h->name, field);
        case KEY_KVS:
                return get_kvs(p, v, h->name, field);
        case KEY_ENV:
                if (get_kvs(p, v, h->name, field) < 0)
                        return -1;
                return check_env_keys(p, v, field);
        case KEY_ABS_PATH:
                if (get_string(p, v, h->name, field) < 0)
                        return -1;
                return check_abs_path(p, v, h->name);
        case KEY_SHA256:
                return get_sha256(p, v, field);
        case KEY_INPUT:
                if (expect_string(p, v, h->name) < 0)
                        return -1;
                return resolve_input(p, v, h->name, true, field);
        case KEY_PIDS:
                return get_pids(p, v, field);
        case KEY_NETWORK:
                return parse_network(p, v, field);
        case KEY_PORTS:
                return parse_ports(p, v, field);
        }
        return forge_error_make(p->err, EINVAL, "parse spec: key '%s'", h->name);
}

static int set_key(parser *p, const key_handler *h, void *obj, yaml_node_t *k, yaml_node_t *v)
{
        if (h->type != KEY_FN && read_key(p, h, (char *)obj + h->offset, v) < 0)
                return -1;
        return h->fn ? h->fn(p, obj, k, v) : 0;
}

static int walk_map(parser *p, yaml_node_t *map, const char *what, const key_handler *h, size_t nh,
                    void *obj)
{
        if (expect_map(p, map, what) < 0 || check_map_keys(p, map) < 0)
                return -1;
        for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
             pr++) {
                yaml_node_t *k = node(p, pr->key), *v = node(p, pr->value);
                size_t i;
                for (i = 0; i < nh; i++)
                        if (strcmp(h[i].name, scalar(k)) == 0)
                                break;
                if (i == nh) {
                        cleanup_free char *keys = NULL;
                        size_t len = 0;
                        for (size_t j = 0; j < nh; j++)
                                len += strlen(h[j].name) + 2;
                        keys = calloc(1, len + 1);
                        for (size_t j = 0; keys && j < nh; j++) {
                                strcat(keys, h[j].name);
                                if (j + 1 < nh)
                                        strcat(keys, ", ");
                        }
                        return FAIL(p, k, "unknown key '%s' in %s (expected one of: %s)", scalar(k),
                                    what, keys ? keys : "");
                }
                if (set_key(p, &h[i], obj, k, v) < 0)
                        return -1;
        }
        return 0;
}

#define KEYFN(name) static int name(parser *p, void *obj, yaml_node_t *k, yaml_node_t *v)

/* ---- layers ---- */

static int set_source(parser *p, spec_layer *l, yaml_node_t *k, spec_layer_kind kind)
{
        static const char *names[] = {"deb", "archive", "files", "run", "packages"};
        if (l->src_pos.line != 0)
                return FAIL(p, k,
                            "layer has two sources, '%s' and '%s' (expected exactly one "
                            "of deb, archive, files, run, packages)",
                            names[l->kind], names[kind]);
        l->kind = kind;
        l->src_pos = pos_of(k);
        return 0;
}

/* A deb or archive layer: the path as written and resolved in the context. */
static int set_source_file(parser *p, spec_layer *l, yaml_node_t *k, yaml_node_t *v,
                           spec_layer_kind kind)
{
        const char *key = scalar(k);

        if (set_source(p, l, k, kind) < 0 || get_string(p, v, key, &l->src) < 0)
                return -1;
        l->src_pos = pos_of(v);
        return resolve_input(p, v, key, true, &l->src_path);
}

KEYFN(l_deb)
{
        return set_source_file(p, obj, k, v, SPEC_LAYER_DEB);
}

KEYFN(l_archive)
{
        return set_source_file(p, obj, k, v, SPEC_LAYER_ARCHIVE);
}

KEYFN(l_sha256)
{
        ((spec_layer *)obj)->sha256_pos = pos_of(v);
        return 0;
}

KEYFN(l_run)
{
        spec_layer *l = obj;
        if (set_source(p, l, k, SPEC_LAYER_RUN) < 0 || get_string(p, v, "run", &l->run) < 0)
                return -1;
        if (l->run[0] == '\0')
                return FAIL(p, v, "'run' is empty (expected a shell command)");
        return 0;
}

KEYFN(l_network)
{
        spec_layer *l = obj;
        if (expect_scalar(p, v, "network") < 0)
                return -1;
        l->network_host = strcmp(scalar(v), "host") == 0;
        l->network_user = strcmp(scalar(v), "user") == 0;
        if (!l->network_host && !l->network_user && strcmp(scalar(v), "none") != 0)
                return FAIL(p, v, "'network' is '%s' (expected none, host or user)", scalar(v));
        return 0;
}

static int parse_mode(parser *p, yaml_node_t *v, int *ret)
{
        unsigned long long m;

        if (expect_scalar(p, v, "mode") < 0)
                return -1;
        if (!scan_uint(scalar(v), 8, 07777, &m))
                return FAIL(p, v, "'mode' is '%s' (expected an octal mode like \"0755\")",
                            scalar(v));
        *ret = (int)m;
        return 0;
}

static int parse_owner(parser *p, yaml_node_t *v, uid_t *uid, gid_t *gid)
{
        const char *s;
        unsigned long u, g;
        char *end = NULL;

        if (expect_scalar(p, v, "owner") < 0)
                return -1;
        s = scalar(v);
        errno = 0;
        if (!isdigit((unsigned char)s[0]))
                goto bad;
        u = strtoul(s, &end, 10);
        if (errno || *end != ':' || !isdigit((unsigned char)end[1]))
                goto bad;
        g = strtoul(end + 1, &end, 10);
        if (errno || *end != '\0' || u > 0xfffffffeUL || g > 0xfffffffeUL)
                goto bad;
        *uid = (uid_t)u;
        *gid = (gid_t)g;
        return 0;
bad:
        return FAIL(p, v, "'owner' is '%s' (expected numeric \"uid:gid\" like \"0:0\")", s);
}

KEYFN(f_src)
{
        return resolve_input(p, v, "src", true, &((spec_file *)obj)->src_path);
}

KEYFN(f_mode)
{
        return parse_mode(p, v, &((spec_file *)obj)->mode);
}

KEYFN(f_owner)
{
        spec_file *f = obj;
        return parse_owner(p, v, &f->uid, &f->gid);
}

static const key_handler file_keys[] = {
    KEY_CHECK("src", KEY_STRING, spec_file, src, f_src),
    KEY("dest", KEY_ABS_PATH, spec_file, dest),
    KEY_CALL("mode", f_mode),
    KEY_CALL("owner", f_owner),
};

static int parse_file(parser *p, yaml_node_t *e, void *entry)
{
        spec_file *f = entry;

        f->mode = -1;
        f->pos = pos_of(e);
        if (walk_map(p, e, "a files entry", file_keys, ARRAY_SIZE(file_keys), f) < 0 ||
            require_key(p, e, f->src != NULL, "files entry", "src", "src and dest") < 0 ||
            require_key(p, e, f->dest != NULL, "files entry", "dest", "src and dest") < 0)
                return -1;
        return 0;
}

KEYFN(l_files)
{
        spec_layer *l = obj;
        size_t n;

        if (set_source(p, l, k, SPEC_LAYER_FILES) < 0 ||
            expect_list(p, v, "files", "a list of {src, dest}", &n) < 0)
                return -1;
        if (n == 0)
                return FAIL(p, v, "'files' is empty (expected at least one {src, dest})");
        l->files = new_entries(p, n, sizeof(*l->files));
        return read_entries(p, v, l->files, sizeof(*l->files), &l->n_files, parse_file);
}

/* "NAME", "NAME:ARCH" or "NAME (OP VERSION)" with OP one of = >= <= >> <<. */
static bool package_request_valid(const char *r)
{
        const char *c = r;

        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c))
                return false;
        while (islower((unsigned char)*c) || isdigit((unsigned char)*c) ||
               (*c && strchr("+-.", *c)))
                c++;
        if (c - r < 2)
                return false;
        if (*c == ':') {
                const char *a = ++c;
                while (islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-')
                        c++;
                if (c == a)
                        return false;
        }
        if (*c == '\0')
                return true;
        if (strncmp(c, " (", 2) != 0)
                return false;
        c += 2;
        if (!strncmp(c, ">=", 2) || !strncmp(c, "<=", 2) || !strncmp(c, ">>", 2) ||
            !strncmp(c, "<<", 2))
                c += 2;
        else if (*c == '=')
                c++;
        else
                return false;
        while (*c == ' ')
                c++;
        if (!isalnum((unsigned char)*c))
                return false;
        while (isalnum((unsigned char)*c) || (*c && strchr(".+~:-", *c)))
                c++;
        return strcmp(c, ")") == 0;
}

KEYFN(l_packages)
{
        spec_layer *l = obj;
        size_t n;

        if (set_source(p, l, k, SPEC_LAYER_PACKAGES) < 0 ||
            get_strv(p, v, "packages", &l->packages) < 0)
                return -1;
        l->src_pos = pos_of(v);
        n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (n == 0)
                return FAIL(p, v, "'packages' is empty (expected at least one package name)");
        l->package_pos = calloc(n, sizeof(*l->package_pos));
        if (l->package_pos == NULL)
                return forge_error_make(p->err, ENOMEM, "parse spec");
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *e = node(p, v->data.sequence.items.start[i]);
                l->package_pos[i] = pos_of(e);
                if (!package_request_valid(l->packages[i]))
                        return FAIL(p, e,
                                    "package '%s' is not valid (expected a name like curl, or a "
                                    "pin like \"curl (= 7.88.1-10)\")",
                                    l->packages[i]);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(l->packages[i], l->packages[j]) == 0)
                                return FAIL(p, e, "package '%s' is listed twice", l->packages[i]);
        }
        l->n_packages = n;
        return 0;
}

static const key_handler layer_keys[] = {
    KEY("name", KEY_STRING, spec_layer, name),
    KEY_CALL("deb", l_deb),
    KEY_CALL("archive", l_archive),
    KEY_CALL("files", l_files),
    KEY_CALL("run", l_run),
    KEY_CHECK("sha256", KEY_SHA256, spec_layer, sha256, l_sha256),
    KEY("dest", KEY_ABS_PATH, spec_layer, dest),
    KEY("env", KEY_ENV, spec_layer, env),
    KEY_CALL("network", l_network),
    KEY("memory", KEY_SIZE, spec_layer, memory),
    KEY("pids", KEY_PIDS, spec_layer, pids),
    KEY_CALL("packages", l_packages),
    KEY("essential", KEY_BOOL, spec_layer, essential),
    KEY("recommends", KEY_BOOL, spec_layer, recommends),
};

/* Keys allowed with each source, beyond name. */
static int check_layer_keys(parser *p, spec_layer *l, yaml_node_t *map)
{
        static const char *allowed[] = {
            [SPEC_LAYER_DEB] = " sha256 ",
            [SPEC_LAYER_ARCHIVE] = " sha256 dest ",
            [SPEC_LAYER_FILES] = " ",
            [SPEC_LAYER_RUN] = " env network memory pids ",
            [SPEC_LAYER_PACKAGES] = " essential recommends ",
        };
        static const char *names[] = {"deb", "archive", "files", "run", "packages"};

        for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
             pr++) {
                yaml_node_t *k = node(p, pr->key);
                char pat[32];
                const char *name = scalar(k);
                if (!strcmp(name, "name") || !strcmp(name, names[l->kind]))
                        continue;
                snprintf(pat, sizeof(pat), " %s ", name);
                if (strstr(allowed[l->kind], pat) == NULL)
                        return FAIL(p, k, "'%s' does not apply to a '%s' layer", name,
                                    names[l->kind]);
        }
        return 0;
}

static int parse_layer(parser *p, yaml_node_t *e, void *entry)
{
        spec_layer *l = entry;

        l->pos = pos_of(e);
        l->essential = true;
        if (walk_map(p, e, "a layer", layer_keys, ARRAY_SIZE(layer_keys), l) < 0)
                return -1;
        if (l->src_pos.line == 0)
                return FAIL(p, e,
                            "layer has no source (expected exactly one of deb, "
                            "archive, files, run, packages)");
        if (check_layer_keys(p, l, e) < 0)
                return -1;
        if (l->kind == SPEC_LAYER_ARCHIVE && l->dest == NULL && (l->dest = strdup("/")) == NULL)
                return forge_error_make(p->err, ENOMEM, "parse spec");
        return 0;
}

static int parse_layers(parser *p, yaml_node_t *v)
{
        spec *s = p->s;
        size_t n;

        if (expect_list(p, v, "layers", "a list of layers", &n) < 0)
                return -1;
        if (n > 1000)
                return FAIL(p, v, "%zu layers (at most 1000 are supported)", n);
        s->layers = new_entries(p, n, sizeof(*s->layers));
        return read_entries(p, v, s->layers, sizeof(*s->layers), &s->n_layers, parse_layer);
}

/* ---- config ---- */

KEYFN(c_entrypoint)
{
        ((spec_config *)obj)->has_entrypoint = true;
        return 0;
}

KEYFN(c_cmd)
{
        ((spec_config *)obj)->has_cmd = true;
        return 0;
}

KEYFN(c_user)
{
        if (((spec_config *)obj)->user[0] == '\0')
                return FAIL(p, v, "'user' is empty (expected \"uid:gid\" or a user name)");
        return 0;
}

KEYFN(c_hostname)
{
        spec_config *c = obj;
        if (!word_valid(c->hostname, 63, isalpha, "-."))
                return FAIL(p, v, "'hostname' is '%s' (expected 1-63 letters, digits, '-' or '.')",
                            c->hostname);
        return 0;
}

static const key_handler config_keys[] = {
    KEY_CHECK("entrypoint", KEY_STRV, spec_config, entrypoint, c_entrypoint),
    KEY_CHECK("cmd", KEY_STRV, spec_config, cmd, c_cmd),
    KEY("env", KEY_ENV, spec_config, env),
    KEY("workdir", KEY_ABS_PATH, spec_config, workdir),
    KEY_CHECK("user", KEY_STRING, spec_config, user, c_user),
    KEY_CHECK("hostname", KEY_STRING, spec_config, hostname, c_hostname),
    KEY("labels", KEY_KVS, spec_config, labels),
};

/* ---- container ---- */

KEYFN(k_cpus)
{
        spec_container *c = obj;
        const char *s;
        char *end = NULL;
        double d;

        if (expect_scalar(p, v, "cpus") < 0)
                return -1;
        s = scalar(v);
        errno = 0;
        d = strtod(s, &end);
        if (!isdigit((unsigned char)s[0]) || errno || *end != '\0' || d < 0.01 || d > 4096)
                return FAIL(p, v, "'cpus' is '%s' (expected a number of CPUs like 1.5)", s);
        c->cpus_milli = (uint32_t)(d * 1000 + 0.5);
        return 0;
}

static int parse_network(parser *p, yaml_node_t *v, spec_network *ret)
{
        if (expect_scalar(p, v, "network") < 0)
                return -1;
        if (strcmp(scalar(v), "none") == 0)
                *ret = SPEC_NETWORK_NONE;
        else if (strcmp(scalar(v), "host") == 0)
                *ret = SPEC_NETWORK_HOST;
        else if (strcmp(scalar(v), "user") == 0)
                *ret = SPEC_NETWORK_USER;
        else
                return FAIL(p, v, "'network' is '%s' (expected none, host or user)", scalar(v));
        return 0;
}

/* Digits only, at most 5, value in [min, max]; advances *s. */
static bool take_num(const char **s, unsigned min, unsigned max)
{
        unsigned v = 0;
        int n = 0;

        while (**s >= '0' && **s <= '9' && n < 6) {
                v = v * 10 + (unsigned)(**s - '0');
                (*s)++;
                n++;
        }
        return n > 0 && n < 6 && v >= min && v <= max;
}

/* "[IP:]HOSTPORT:PORT[/tcp|udp]" (forge run -p; runtime_port_parse reads it) */
static bool port_spec_valid(const char *s)
{
        const char *c = s;
        int colons = 0;

        for (const char *q = s; *q; q++)
                colons += *q == ':';
        if (colons == 2) {
                for (int i = 0; i < 4; i++)
                        if (!take_num(&c, 0, 255) || *c++ != (i < 3 ? '.' : ':'))
                                return false;
        } else if (colons != 1) {
                return false;
        }
        if (!take_num(&c, 1, 65535) || *c++ != ':' || !take_num(&c, 1, 65535))
                return false;
        return *c == '\0' || strcmp(c, "/tcp") == 0 || strcmp(c, "/udp") == 0;
}

static int parse_ports(parser *p, yaml_node_t *v, char ***ret)
{
        if (get_strv(p, v, "ports", ret) < 0)
                return -1;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
                yaml_node_t *e = node(p, *it);

                if (!port_spec_valid(scalar(e)))
                        return FAIL(p, e,
                                    "port '%s' is not [IP:]HOSTPORT:PORT[/tcp|udp] (ports 1 to "
                                    "65535, an IPv4 address)",
                                    scalar(e));
        }
        return 0;
}

KEYFN(v_network)
{
        spec_vm *vm = obj;

        if (parse_network(p, v, &vm->network) < 0)
                return -1;
        if (vm->network == SPEC_NETWORK_HOST)
                return FAIL(p, v, "a VM's 'network' is none or user (host is for containers)");
        return 0;
}

/* src: a host path the container sees, inside the context like every input */
static const key_handler mount_keys[] = {
    KEY("src", KEY_INPUT, spec_mount, src),
    KEY("dest", KEY_ABS_PATH, spec_mount, dest),
    KEY("ro", KEY_BOOL, spec_mount, ro),
};

static int parse_mount(parser *p, yaml_node_t *e, void *entry)
{
        spec_mount *m = entry;

        m->pos = pos_of(e);
        if (walk_map(p, e, "a mount", mount_keys, ARRAY_SIZE(mount_keys), m) < 0)
                return -1;
        if (m->src == NULL || m->dest == NULL)
                return FAIL(p, e, "mount needs 'src' and 'dest'");
        return 0;
}

KEYFN(k_mounts)
{
        spec_container *c = obj;
        size_t n;

        if (expect_list(p, v, "mounts", "a list of {src, dest, ro}", &n) < 0)
                return -1;
        c->mounts = new_entries(p, n, sizeof(*c->mounts));
        return read_entries(p, v, c->mounts, sizeof(*c->mounts), &c->n_mounts, parse_mount);
}

static const key_handler container_keys[] = {
    KEY("memory", KEY_SIZE, spec_container, memory),
    KEY_CALL("cpus", k_cpus),
    KEY("pids", KEY_PIDS, spec_container, pids),
    KEY("network", KEY_NETWORK, spec_container, network),
    KEY("read_only", KEY_BOOL, spec_container, read_only),
    KEY_CALL("mounts", k_mounts),
    KEY("ports", KEY_PORTS, spec_container, ports),
};

/* ---- vm ---- */

/* deb or bzimage: whichever comes second is the error */
static int set_kernel(parser *p, spec_vm *vm, yaml_node_t *k, yaml_node_t *v, char **ret)
{
        if (vm->kernel_deb != NULL || vm->kernel_bzimage != NULL)
                return FAIL(p, k, "kernel has both 'deb' and 'bzimage' (expected one)");
        if (expect_string(p, v, scalar(k)) < 0)
                return -1;
        return resolve_input(p, v, scalar(k), true, ret);
}

KEYFN(kk_deb)
{
        return set_kernel(p, obj, k, v, &((spec_vm *)obj)->kernel_deb);
}

KEYFN(kk_bzimage)
{
        return set_kernel(p, obj, k, v, &((spec_vm *)obj)->kernel_bzimage);
}

static const key_handler kernel_keys[] = {
    KEY_CALL("deb", kk_deb),
    KEY_CALL("bzimage", kk_bzimage),
    KEY("modules", KEY_INPUT, spec_vm, kernel_modules),
    KEY("sha256", KEY_SHA256, spec_vm, kernel_sha256),
};

KEYFN(v_kernel)
{
        spec_vm *vm = obj;
        vm->kernel_pos = pos_of(v);
        if (walk_map(p, v, "vm.kernel", kernel_keys, ARRAY_SIZE(kernel_keys), vm) < 0)
                return -1;
        if (vm->kernel_deb == NULL && vm->kernel_bzimage == NULL)
                return FAIL(p, v, "kernel has no source (expected deb, or bzimage and modules)");
        if (vm->kernel_deb != NULL && vm->kernel_modules != NULL)
                return FAIL(p, v, "'modules' goes with 'bzimage' (a deb brings its own modules)");
        return 0;
}

KEYFN(v_cpus)
{
        uint64_t n;
        if (get_count(p, v, "cpus", 255, "1 to 255", &n) < 0)
                return -1;
        ((spec_vm *)obj)->cpus = (uint32_t)n;
        return 0;
}

KEYFN(v_cmdline)
{
        if (strlen(((spec_vm *)obj)->cmdline) > 2048)
                return FAIL(p, v, "'cmdline' is longer than 2048 bytes");
        return 0;
}

static const key_handler vm_keys[] = {
    KEY_CALL("kernel", v_kernel),
    KEY("memory", KEY_SIZE, spec_vm, memory),
    KEY_CALL("cpus", v_cpus),
    KEY("disk_size", KEY_SIZE, spec_vm, disk_size),
    KEY_CHECK("cmdline", KEY_STRING, spec_vm, cmdline, v_cmdline),
    KEY_CALL("network", v_network),
    KEY("ports", KEY_PORTS, spec_vm, ports),
};

/* ---- top level ---- */

KEYFN(t_forge)
{
        uint64_t ver;
        if (get_uint(p, v, "forge", 1000, &ver) < 0)
                return -1;
        if (ver != 1)
                return FAIL(p, v, "spec format version %llu is not supported (expected forge: 1)",
                            (unsigned long long)ver);
        p->s->version = 1;
        return 0;
}

KEYFN(t_name)
{
        if (!image_name_valid(p->s->name))
                return FAIL(p, v, "name '%s' is not valid (expected [a-z0-9][a-z0-9._-]{0,127})",
                            p->s->name);
        return 0;
}

KEYFN(t_tag)
{
        if (!image_tag_valid(p->s->tag))
                return FAIL(p, v,
                            "tag '%s' is not valid (expected [A-Za-z0-9_][A-Za-z0-9._-]{0,127})",
                            p->s->tag);
        return 0;
}

bool spec_path_named(const char *p)
{
        size_t n = strlen(p);

        return (n > 5 && strcmp(p + n - 5, ".yaml") == 0) ||
               (n > 4 && strcmp(p + n - 4, ".yml") == 0);
}

bool spec_path_is_spec(const char *arg)
{
        struct stat st;

        return stat(arg, &st) == 0 && S_ISREG(st.st_mode) &&
               (spec_path_named(arg) || strchr(arg, '/') != NULL);
}

/* A registry reference (HOST has a '.' or ':' or is localhost, as
 * store/registry.h has it) that does not look like a spec file. */
static bool from_is_remote(const char *f)
{
        size_t n = strcspn(f, "/");

        if (f[n] != '/' || n == 0 || (n == 1 && f[0] == '.') || (n == 2 && !strncmp(f, "..", 2)) ||
            spec_path_named(f))
                return false;
        return (n == 9 && !strncmp(f, "localhost", 9)) || memchr(f, '.', n) || memchr(f, ':', n);
}

KEYFN(t_from)
{
        spec *s = p->s;
        const char *f;

        s->from_pos = pos_of(v);
        f = s->from;
        if (strcmp(f, "scratch") == 0) {
                s->from_kind = SPEC_FROM_SCRATCH;
                return 0;
        }
        if (from_is_remote(f)) {
                s->from_kind = SPEC_FROM_REMOTE; /* the builder checks the whole reference */
                return 0;
        }
        if (strchr(f, '/') != NULL || spec_path_named(f)) {
                cleanup_free char *joined =
                    f[0] == '/' ? strdup(f) : fs_path_join(s->context_dir, f);
                if (joined == NULL)
                        return forge_error_make(p->err, ENOMEM, "parse spec");
                s->from_path = realpath(joined, NULL);
                if (s->from_path == NULL)
                        return FAIL(p, v, "'from': cannot read spec '%s': %s", f, strerror(errno));
                s->from_kind = SPEC_FROM_SPEC;
                return 0;
        }
        if (strncmp(f, "sha256:", 7) == 0) {
                if (!digest_valid(f))
                        return FAIL(p, v, "'from' is '%s' (expected sha256: and 64 hex digits)", f);
        } else {
                cleanup_free char *name = strdup(f);
                char *colon = name ? strchr(name, ':') : NULL;
                if (name == NULL)
                        return forge_error_make(p->err, ENOMEM, "parse spec");
                if (colon)
                        *colon = '\0';
                if (!image_name_valid(name) || (colon && !image_tag_valid(colon + 1)))
                        return FAIL(p, v,
                                    "'from' is '%s' (expected scratch, NAME[:TAG], "
                                    "sha256:HEX or a path to a spec)",
                                    f);
        }
        s->from_kind = SPEC_FROM_IMAGE;
        return 0;
}

KEYFN(t_sde)
{
        return get_uint(p, v, "source_date_epoch", 253402300799ULL, &p->s->source_date_epoch);
}

KEYFN(t_layers)
{
        return parse_layers(p, v);
}

KEYFN(t_config)
{
        return walk_map(p, v, "config", config_keys, ARRAY_SIZE(config_keys), &p->s->config);
}

KEYFN(t_container)
{
        return walk_map(p, v, "container", container_keys, ARRAY_SIZE(container_keys),
                        &p->s->container);
}

KEYFN(t_vm)
{
        spec_vm *vm = &p->s->vm;
        vm->present = true;
        vm->pos = pos_of(k);
        if (walk_map(p, v, "vm", vm_keys, ARRAY_SIZE(vm_keys), vm) < 0)
                return -1;
        if (vm->kernel_deb == NULL && vm->kernel_bzimage == NULL)
                return FAIL(p, v,
                            "vm has no 'kernel' (expected kernel: {deb: ...} or "
                            "{bzimage: ..., modules: ...})");
        return 0;
}

/* ---- repositories ---- */

const char *spec_repo_url_problem(const char *u)
{
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0 &&
            strncmp(u, "file:/", 6) != 0)
                return "is not an http://, https:// or file:/// URL";
        for (const char *c = u; *c; c++)
                if ((unsigned char)*c <= ' ' || *c == 0x7f)
                        return "contains a space or control character";
        return NULL;
}

KEYFN(r_url)
{
        spec_repo *r = obj;
        const char *why = spec_repo_url_problem(r->url);

        if (why != NULL && why[0] == 'i')
                return FAIL(p, v, "'url' is '%s' (expected an http://, https:// or file:/// URL)",
                            r->url);
        if (why != NULL)
                return FAIL(p, v, "'url' %s", why);
        /* one base: no trailing slash */
        for (size_t n = strlen(r->url); n > 8 && r->url[n - 1] == '/'; n--)
                r->url[n - 1] = '\0';
        return 0;
}

static bool archive_word_valid(const char *w)
{
        return w[0] != '.' && word_valid(w, 128, isalpha, "-_.+/") && strstr(w, "..") == NULL &&
               strstr(w, "//") == NULL;
}

KEYFN(r_suite)
{
        spec_repo *r = obj;
        if (!archive_word_valid(r->suite))
                return FAIL(p, v, "'suite' is '%s' (expected a suite like bookworm)", r->suite);
        return 0;
}

KEYFN(r_components)
{
        spec_repo *r = obj;
        if (r->components[0] == NULL)
                return FAIL(p, v, "'components' is empty (expected a list like [main])");
        for (char **c = r->components; *c; c++)
                if (!archive_word_valid(*c) || strchr(*c, '/') != NULL)
                        return FAIL(p, v, "component '%s' is not valid (expected a name like main)",
                                    *c);
        return 0;
}

static const key_handler repo_keys[] = {
    KEY_CHECK("url", KEY_STRING, spec_repo, url, r_url),
    KEY_CHECK("suite", KEY_STRING, spec_repo, suite, r_suite),
    KEY_CHECK("components", KEY_STRV, spec_repo, components, r_components),
    KEY("keyring", KEY_INPUT, spec_repo, keyring),
    KEY("check_valid_until", KEY_BOOL, spec_repo, check_valid_until),
};

static int parse_repo(parser *p, yaml_node_t *e, void *entry)
{
        spec_repo *r = entry;

        r->pos = pos_of(e);
        r->check_valid_until = true;
        if (e->type == YAML_SCALAR_NODE) {
                if (strcmp(scalar(e), "host") != 0)
                        return FAIL(p, e,
                                    "repository '%s' is not known (expected host or "
                                    "{url, suite, components, keyring})",
                                    scalar(e));
                r->host = true;
                return 0;
        }
        if (walk_map(p, e, "a repository", repo_keys, ARRAY_SIZE(repo_keys), r) < 0 ||
            require_key(p, e, r->url != NULL, "repository", "url", "url, suite, keyring") < 0 ||
            require_key(p, e, r->suite != NULL, "repository", "suite", "a suite like bookworm") <
                0 ||
            require_key(p, e, r->keyring != NULL, "repository", "keyring",
                        "the OpenPGP key file that signs its InRelease") < 0)
                return -1;
        if (r->components == NULL) {
                r->components = calloc(2, sizeof(char *));
                if (r->components == NULL || (r->components[0] = strdup("main")) == NULL)
                        return forge_error_make(p->err, ENOMEM, "parse spec");
        }
        return 0;
}

KEYFN(t_repositories)
{
        spec *s = p->s;
        size_t n;

        s->repos_pos = pos_of(k);
        if (expect_list(p, v, "repositories", "a list like [host]", &n) < 0)
                return -1;
        if (n == 0 || n > 64)
                return FAIL(p, v, "'repositories' has %zu entries (expected 1 to 64)", n);
        s->repos = new_entries(p, n, sizeof(*s->repos));
        return read_entries(p, v, s->repos, sizeof(*s->repos), &s->n_repos, parse_repo);
}

KEYFN(t_architecture)
{
        spec *s = p->s;
        s->arch_pos = pos_of(v);
        if (!word_valid(s->architecture, 32, islower, "-"))
                return FAIL(p, v,
                            "'architecture' is '%s' (expected a Debian architecture like amd64)",
                            s->architecture);
        return 0;
}

static const key_handler top_keys[] = {
    KEY_CALL("repositories", t_repositories),
    KEY_CHECK("architecture", KEY_STRING, spec, architecture, t_architecture),
    KEY_CALL("forge", t_forge),
    KEY_CHECK("name", KEY_STRING, spec, name, t_name),
    KEY_CHECK("tag", KEY_STRING, spec, tag, t_tag),
    KEY_CHECK("from", KEY_STRING, spec, from, t_from),
    KEY_CALL("source_date_epoch", t_sde),
    KEY_CALL("layers", t_layers),
    KEY_CALL("config", t_config),
    KEY_CALL("container", t_container),
    KEY_CALL("vm", t_vm),
};

static int parse_document(parser *p)
{
        yaml_node_t *root = yaml_document_get_root_node(p->doc);
        spec *s = p->s;

        if (root == NULL)
                return spec_error(p->err, s, (spec_pos){1, 1},
                                  "the spec is empty (expected at least 'forge: 1' and 'name')");
        if (root->type != YAML_MAPPING_NODE)
                return FAIL(p, root, "the spec is %s (expected a map of keys like 'forge: 1')",
                            type_name(root));
        if (walk_map(p, root, "the spec", top_keys, ARRAY_SIZE(top_keys), s) < 0)
                return -1;
        if (s->version == 0)
                return FAIL(p, root, "missing 'forge: 1' (the spec format version)");
        if (s->name == NULL)
                return FAIL(p, root, "missing 'name' (expected [a-z0-9][a-z0-9._-]{0,127})");
        for (size_t i = 0; i < s->n_layers; i++)
                if (s->layers[i].kind == SPEC_LAYER_PACKAGES && s->n_repos == 0)
                        return spec_error(p->err, s, s->layers[i].pos,
                                          "a 'packages' layer needs 'repositories' (expected "
                                          "e.g. 'repositories: [host]' at the top level)");
        return 0;
}

static int resolve_epoch(spec *s, forge_error **err, bool have)
{
        const char *env;
        unsigned long long v;

        if (have)
                return 0;
        env = getenv("SOURCE_DATE_EPOCH");
        if (env == NULL || env[0] == '\0')
                return 0;
        if (!scan_uint(env, 10, ULLONG_MAX, &v))
                return forge_error_usage(err,
                                         "SOURCE_DATE_EPOCH is '%s' (expected seconds since "
                                         "1970 as a whole number)",
                                         env);
        s->source_date_epoch = v;
        return 0;
}

static bool has_key(yaml_document_t *doc, const char *key)
{
        yaml_node_t *root = yaml_document_get_root_node(doc);
        if (root == NULL || root->type != YAML_MAPPING_NODE)
                return false;
        for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
             pr < root->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = yaml_document_get_node(doc, pr->key);
                if (k->type == YAML_SCALAR_NODE && strcmp(scalar(k), key) == 0)
                        return true;
        }
        return false;
}

/* The length of the UTF-8 sequence at p (at most n bytes), 0 if invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
        size_t len;
        uint32_t cp;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                len = 2, cp = p[0] & 0x1f;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                len = 3, cp = p[0] & 0x0f;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                len = 4, cp = p[0] & 0x07;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return len;
}

/* libyaml reports bad UTF-8 at 1:1: say where it is. */
static int check_utf8(spec *s, const char *buf, size_t len, forge_error **err)
{
        const unsigned char *p = (const unsigned char *)buf;
        spec_pos pos = {1, 1};

        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq(p + i, len - i);
                if (n == 0)
                        return spec_error(err, s, pos,
                                          "byte 0x%02x is not UTF-8 (a spec is UTF-8 text: "
                                          "re-encode it, e.g. with iconv -f latin1 -t utf-8)",
                                          p[i]);
                if (p[i] == '\n') {
                        pos.line++;
                        pos.col = 1;
                } else {
                        pos.col++;
                }
                i += n;
        }
        return 0;
}

/* The column of a tab in the indentation of the line holding index at, or 0. */
static int indent_tab(const char *buf, size_t len, size_t at)
{
        size_t start = at < len ? at : len;

        while (start > 0 && buf[start - 1] != '\n')
                start--;
        for (size_t i = start; i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '-'); i++)
                if (buf[i] == '\t')
                        return (int)(i - start) + 1;
        return 0;
}

static int load_yaml(spec *s, const char *buf, size_t len, yaml_document_t *doc, forge_error **err)
{
        yaml_parser_t yp;
        yaml_document_t extra;
        int r = 0;

        if (check_utf8(s, buf, len, err) < 0)
                return -1;
        if (!yaml_parser_initialize(&yp))
                return forge_error_make(err, ENOMEM, "yaml parser");
        yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
        if (!yaml_parser_load(&yp, doc)) {
                spec_pos pos = {(int)yp.problem_mark.line + 1, (int)yp.problem_mark.column + 1};
                int tab = indent_tab(buf, len, yp.problem_mark.index);
                if (tab > 0) {
                        pos.col = tab;
                        r = spec_error(err, s, pos,
                                       "a tab character in the indentation (YAML indents "
                                       "with spaces only)");
                } else {
                        r = spec_error(err, s, pos, "YAML syntax error: %s%s%s",
                                       yp.problem ? yp.problem : "invalid YAML",
                                       yp.context ? " " : "", yp.context ? yp.context : "");
                }
                yaml_parser_delete(&yp);
                return r;
        }
        /* One document only. */
        if (yaml_parser_load(&yp, &extra)) {
                if (yaml_document_get_root_node(&extra) != NULL) {
                        spec_pos pos = {(int)extra.start_mark.line + 1,
                                        (int)extra.start_mark.column + 1};
                        r = spec_error(err, s, pos, "a second YAML document (expected one)");
                }
                yaml_document_delete(&extra);
        }
        yaml_parser_delete(&yp);
        if (r < 0)
                yaml_document_delete(doc);
        return r;
}

int spec_load(const char *path, spec **ret, forge_error **err)
{
        spec *s = calloc(1, sizeof(*s));
        cleanup_free char *buf = NULL, *dir = NULL, *real = NULL;
        size_t len = 0;
        yaml_document_t doc;
        parser p = {s, &doc, err};
        char *slash;

        if (s == NULL)
                return forge_error_make(err, ENOMEM, "load spec");
        s->path = strdup(path);
        if (s->path == NULL)
                goto oom;
        if (fs_read_all(AT_FDCWD, path, SPEC_MAX_BYTES, &buf, &len, err) < 0) {
                if ((*err)->errnum == EFBIG) {
                        forge_error_release(err);
                        forge_error_usage(err, "%s: larger than 1 MiB: not a spec", path);
                } else {
                        (*err)->status = FORGE_EXIT_USAGE;
                        forge_error_prefix(err, "read spec");
                }
                goto fail;
        }
        real = realpath(path, NULL);
        if (real == NULL) {
                forge_error_make(err, errno, "read spec '%s'", path);
                (*err)->status = FORGE_EXIT_USAGE;
                goto fail;
        }
        slash = strrchr(real, '/');
        dir = slash == real ? strdup("/") : strndup(real, (size_t)(slash - real));
        if (dir == NULL)
                goto oom;
        s->context_dir = take_ptr(dir);
        if (load_yaml(s, buf, len, &doc, err) < 0)
                goto fail;
        if (parse_document(&p) < 0 ||
            resolve_epoch(s, err, has_key(&doc, "source_date_epoch")) < 0) {
                yaml_document_delete(&doc);
                goto fail;
        }
        yaml_document_delete(&doc);
        if (s->tag == NULL && (s->tag = strdup("latest")) == NULL)
                goto oom;
        if (s->from == NULL && (s->from = strdup("scratch")) == NULL)
                goto oom;
        *ret = s;
        return 0;
oom:
        forge_error_make(err, ENOMEM, "load spec");
fail:
        spec_free(s);
        return -1;
}

static void kvs_free(spec_kvs *kvs)
{
        for (size_t i = 0; i < kvs->n; i++) {
                free(kvs->items[i].key);
                free(kvs->items[i].value);
        }
        free(kvs->items);
}

/* Frees what the typed keys of h read into obj */
static void free_keys(const key_handler *h, size_t nh, void *obj)
{
        for (size_t i = 0; i < nh; i++) {
                void *field = (char *)obj + h[i].offset;

                switch (h[i].type) {
                case KEY_STRING:
                case KEY_ABS_PATH:
                case KEY_SHA256:
                case KEY_INPUT:
                        free(*(char **)field);
                        break;
                case KEY_STRV:
                case KEY_PORTS:
                        cleanup_strv_fn(field);
                        break;
                case KEY_KVS:
                case KEY_ENV:
                        kvs_free(field);
                        break;
                case KEY_FN:
                case KEY_BOOL:
                case KEY_SIZE:
                case KEY_PIDS:
                case KEY_NETWORK:
                        break;
                }
        }
}

#define FREE_KEYS(keys, obj) free_keys(keys, ARRAY_SIZE(keys), obj)

/* What the key functions (KEY_FN, checks) of a layer filled in too */
static void layer_free(spec_layer *l)
{
        FREE_KEYS(layer_keys, l);
        free(l->src);
        free(l->src_path);
        for (size_t i = 0; i < l->n_files; i++) {
                FREE_KEYS(file_keys, &l->files[i]);
                free(l->files[i].src_path);
        }
        free(l->files);
        free(l->run);
        cleanup_strv_fn(&l->packages);
        free(l->package_pos);
}

void spec_free(spec *s)
{
        if (s == NULL)
                return;
        FREE_KEYS(top_keys, s);
        free(s->path);
        free(s->context_dir);
        free(s->from_path);
        for (size_t i = 0; i < s->n_layers; i++)
                layer_free(&s->layers[i]);
        free(s->layers);
        FREE_KEYS(config_keys, &s->config);
        for (size_t i = 0; i < s->container.n_mounts; i++)
                FREE_KEYS(mount_keys, &s->container.mounts[i]);
        free(s->container.mounts);
        FREE_KEYS(container_keys, &s->container);
        FREE_KEYS(vm_keys, &s->vm);
        FREE_KEYS(kernel_keys, &s->vm);
        free(s->vm.kernel_deb);
        free(s->vm.kernel_bzimage);
        for (size_t i = 0; i < s->n_repos; i++)
                FREE_KEYS(repo_keys, &s->repos[i]);
        free(s->repos);
        free(s);
}
