/* SPDX-License-Identifier: MIT */
/*
 * Where packages come from: a spec's `repositories:` entries, each a URL
 * with a suite and components, or `host`: the machine's apt sources in both
 * of apt's formats, the one-line sources.list and deb822 *.sources, with
 * their Signed-By keyrings. See sources.list(5).
 */
#include "builder/pkg-internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/strpair.h"

#define MAX_SOURCES 256
#define MAX_SOURCES_FILE (1u << 20)

static void source_free(pkg_source *s)
{
        free(s->uri);
        free(s->suite);
        cleanup_strv_fn(&s->components);
        cleanup_strv_fn(&s->keyrings);
        free(s->inline_key);
        free(s->origin);
}

void pkg_sources_free(pkg_sources *s)
{
        for (size_t i = 0; i < s->n; i++)
                source_free(&s->v[i]);
        free(s->v);
        s->v = NULL;
        s->n = 0;
}

const char *pkg_host_arch(void)
{
        static const struct {
                const char *machine, *arch;
        } map[] = {
            {"x86_64", "amd64"},    {"aarch64", "arm64"}, {"i686", "i386"},
            {"i586", "i386"},       {"i386", "i386"},     {"armv7l", "armhf"},
            {"ppc64le", "ppc64el"}, {"s390x", "s390x"},   {"riscv64", "riscv64"},
            {"mips64", "mips64el"},
        };
        struct utsname u;

        if (uname(&u) == 0)
                for (size_t i = 0; i < ARRAY_SIZE(map); i++)
                        if (strcmp(u.machine, map[i].machine) == 0)
                                return map[i].arch;
        return "amd64";
}

static char **strv_dup(char *const *v)
{
        size_t n = 0;
        char **r;

        while (v && v[n])
                n++;
        r = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; r && i < n; i++)
                if ((r[i] = strdup(v[i])) == NULL) {
                        cleanup_strv_fn(&r);
                        return NULL;
                }
        return r;
}

static int strv_push(char ***v, const char *s, size_t len)
{
        size_t n = 0;
        char **nv;

        while (*v && (*v)[n])
                n++;
        nv = realloc(*v, (n + 2) * sizeof(char *));
        if (nv == NULL)
                return -1;
        *v = nv;
        nv[n] = strndup(s, len);
        nv[n + 1] = NULL;
        return nv[n] ? 0 : -1;
}

/* Splits on spaces/tabs (and, with commas, on ','). */
static char **split_words(const char *s, bool commas)
{
        char **v = calloc(1, sizeof(char *));
        const char *seps = commas ? " \t\n," : " \t\n";

        while (v && *s) {
                size_t n;
                s += strspn(s, seps);
                n = strcspn(s, seps);
                if (n == 0)
                        break;
                if (strv_push(&v, s, n) < 0) {
                        cleanup_strv_fn(&v);
                        return NULL;
                }
                s += n;
        }
        return v;
}

static bool strv_has(char *const *v, const char *s)
{
        for (; v && *v; v++)
                if (strcmp(*v, s) == 0)
                        return true;
        return false;
}

static bool word_ok(const char *w)
{
        if (w[0] == '\0' || w[0] == '.' || strstr(w, "..") != NULL)
                return false;
        for (; *w; w++)
                if (!isalnum((unsigned char)*w) && !strchr("-_.+/~", *w))
                        return false;
        return true;
}

int pkg_source_add(pkg_sources *out, const char *uri, const char *suite, char *const *comps,
                   char *const *keyrings, const char *inline_key, const char *origin,
                   forge_error **err)
{
        pkg_source *nv, *s;
        size_t ul = strlen(uri);
        const char *why;

        if (out->n >= MAX_SOURCES)
                return forge_error_make(err, 0, "%s: more than %d apt sources", origin,
                                        MAX_SOURCES);
        if ((why = spec_repo_url_problem(uri)) != NULL && why[0] == 'i')
                return forge_error_usage(err, "%s: URI '%s' %s", origin, uri, why);
        if (why != NULL) /* not echoed: control characters */
                return forge_error_usage(err, "%s: a URI %s", origin, why);
        if (!word_ok(suite) || comps == NULL || comps[0] == NULL)
                return forge_error_usage(err,
                                         "%s: suite '%s' is not valid or has no "
                                         "components (flat repositories are not supported)",
                                         origin, suite);
        for (char *const *c = comps; *c; c++)
                if (!word_ok(*c) || strchr(*c, '/'))
                        return forge_error_usage(err, "%s: component '%s' is not valid", origin,
                                                 *c);
        nv = realloc(out->v, (out->n + 1) * sizeof(*nv));
        if (nv == NULL)
                return forge_error_make(err, ENOMEM, "apt sources");
        out->v = nv;
        s = &nv[out->n];
        memset(s, 0, sizeof(*s));
        while (ul > 0 && uri[ul - 1] == '/')
                ul--;
        s->uri = strndup(uri, ul);
        s->suite = strdup(suite);
        s->components = strv_dup(comps);
        s->keyrings = strv_dup(keyrings);
        s->inline_key = inline_key ? strdup(inline_key) : NULL;
        s->origin = strdup(origin);
        s->check_valid_until = true;
        s->source = out->n;
        out->n++;
        if (!s->uri || !s->suite || !s->components || !s->keyrings || !s->origin ||
            (inline_key && !s->inline_key))
                return forge_error_make(err, ENOMEM, "apt sources");
        return 0;
}

/* `[opt=v,v opt=v]` of a one-line entry. */
static int list_options(const char *opts, const char *arch, bool *ret_arch_ok, char ***ret_keyrings,
                        forge_error **err)
{
        cleanup_strv char **words = split_words(opts, false);

        *ret_arch_ok = true;
        if (words == NULL)
                return forge_error_make(err, ENOMEM, "apt sources");
        for (char **w = words; *w; w++) {
                char *eq = strchr(*w, '=');
                if (eq == NULL)
                        continue;
                *eq = '\0';
                if (strcmp(*w, "arch") == 0) {
                        cleanup_strv char **a = split_words(eq + 1, true);
                        *ret_arch_ok = a && strv_has(a, arch);
                } else if (strcmp(*w, "signed-by") == 0) {
                        cleanup_strv_fn(ret_keyrings);
                        *ret_keyrings = split_words(eq + 1, true);
                        if (*ret_keyrings == NULL)
                                return forge_error_make(err, ENOMEM, "apt sources");
                }
        }
        return 0;
}

int pkg_apt_parse_list(const char *text, const char *file, const char *arch,
                       char *const *default_keyrings, pkg_sources *out, forge_error **err)
{
        const char *line = text;
        int lineno = 0;

        while (*line) {
                size_t n = strcspn(line, "\n");
                cleanup_free char *l = strndup(line, n);
                cleanup_strv char **w = NULL, **keyrings = NULL;
                char origin[512], *hash, *rest;
                bool arch_ok = true;

                line += n + (line[n] == '\n');
                lineno++;
                if (l == NULL)
                        return forge_error_make(err, ENOMEM, "apt sources");
                if ((hash = strchr(l, '#')) != NULL)
                        *hash = '\0';
                snprintf(origin, sizeof(origin), "%s:%d", file, lineno);
                rest = l + strspn(l, " \t\r");
                if (*rest == '\0')
                        continue;
                if (strncmp(rest, "deb", 3) != 0 || !strchr(" \t[", rest[3]))
                        continue; /* deb-src, or not ours */
                rest += 3;
                rest += strspn(rest, " \t");
                keyrings = strv_dup(default_keyrings);
                if (keyrings == NULL)
                        return forge_error_make(err, ENOMEM, "apt sources");
                if (*rest == '[') {
                        char *end = strchr(rest, ']');
                        if (end == NULL)
                                return forge_error_usage(err, "%s: '[' without ']'", origin);
                        *end = '\0';
                        if (list_options(rest + 1, arch, &arch_ok, &keyrings, err) < 0)
                                return -1;
                        rest = end + 1;
                }
                w = split_words(rest, false);
                if (w == NULL)
                        return forge_error_make(err, ENOMEM, "apt sources");
                if (w[0] == NULL || w[1] == NULL)
                        return forge_error_usage(err, "%s: expected 'deb URI SUITE COMPONENT...'",
                                                 origin);
                if (!arch_ok || strncmp(w[0], "cdrom:", 6) == 0)
                        continue;
                if (pkg_source_add(out, w[0], w[1], w + 2, keyrings, NULL, origin, err) < 0)
                        return -1;
        }
        return 0;
}

/* ---- deb822 ---- */

typedef struct stanza {
        strpair *f; /* values: continuation lines joined with '\n'; " ." lines become "" */
        size_t n;
        int line;
} stanza;

static void stanza_clear(stanza *s)
{
        strpair_array_free(s->f, s->n);
        memset(s, 0, sizeof(*s));
}

static const char *stanza_get(const stanza *s, const char *name)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcasecmp(s->f[i].name, name) == 0)
                        return s->f[i].value;
        return NULL;
}

static int stanza_source(const stanza *st, const char *file, const char *arch,
                         char *const *default_keyrings, pkg_sources *out, forge_error **err)
{
        const char *types = stanza_get(st, "Types"), *uris = stanza_get(st, "URIs");
        const char *suites = stanza_get(st, "Suites"), *comps = stanza_get(st, "Components");
        const char *signed_by = stanza_get(st, "Signed-By"),
                   *archs = stanza_get(st, "Architectures");
        const char *enabled = stanza_get(st, "Enabled");
        cleanup_strv char **t = NULL, **u = NULL, **s = NULL, **c = NULL, **k = NULL;
        const char *inline_key = NULL;
        char origin[512];

        snprintf(origin, sizeof(origin), "%s:%d", file, st->line);
        if (enabled && strcasecmp(enabled, "no") == 0)
                return 0;
        if (types == NULL || uris == NULL || suites == NULL)
                return forge_error_usage(err, "%s: a stanza without Types, URIs or Suites", origin);
        t = split_words(types, false);
        if (t == NULL)
                return forge_error_make(err, ENOMEM, "apt sources");
        if (!strv_has(t, "deb"))
                return 0;
        if (archs) {
                cleanup_strv char **a = split_words(archs, false);
                if (a == NULL || !strv_has(a, arch))
                        return 0;
        }
        u = split_words(uris, false);
        s = split_words(suites, false);
        c = split_words(comps ? comps : "", false);
        if (signed_by && strstr(signed_by, "-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
                inline_key = signed_by;
                k = calloc(1, sizeof(char *));
        } else {
                k = signed_by ? split_words(signed_by, false) : strv_dup(default_keyrings);
        }
        if (u == NULL || s == NULL || c == NULL || k == NULL)
                return forge_error_make(err, ENOMEM, "apt sources");
        for (char **ui = u; *ui; ui++)
                for (char **si = s; *si; si++)
                        if (pkg_source_add(out, *ui, *si, c, k, inline_key, origin, err) < 0)
                                return -1;
        return 0;
}

static int stanza_add(stanza *st, const char *name, size_t nlen, const char *value, size_t vlen)
{
        strpair *nf = realloc(st->f, (st->n + 1) * sizeof(*nf));
        if (nf == NULL)
                return -1;
        st->f = nf;
        nf[st->n].name = strndup(name, nlen);
        nf[st->n].value = strndup(value, vlen);
        if (!nf[st->n].name || !nf[st->n].value) {
                free(nf[st->n].name);
                free(nf[st->n].value);
                return -1;
        }
        st->n++;
        return 0;
}

static int stanza_continue(stanza *st, const char *l, size_t n)
{
        strpair *f = &st->f[st->n - 1];
        size_t old = strlen(f->value);
        char *nv;

        l++, n--; /* the leading space */
        if (n == 1 && l[0] == '.')
                n = 0;
        nv = realloc(f->value, old + n + 2);
        if (nv == NULL)
                return -1;
        nv[old] = '\n';
        memcpy(nv + old + 1, l, n);
        nv[old + 1 + n] = '\0';
        f->value = nv;
        return 0;
}

int pkg_apt_parse_deb822(const char *text, const char *file, const char *arch,
                         char *const *default_keyrings, pkg_sources *out, forge_error **err)
{
        stanza st = {0};
        const char *line = text;
        int lineno = 0, r = 0;

        for (;;) {
                size_t n = strcspn(line, "\n");
                bool end = *line == '\0';
                const char *colon;

                lineno++;
                while (n > 0 && line[n - 1] == '\r')
                        n--;
                if (end || n == 0 || strspn(line, " \t") == n) {
                        if (st.n > 0 &&
                            (r = stanza_source(&st, file, arch, default_keyrings, out, err)) < 0)
                                break;
                        stanza_clear(&st);
                } else if (line[0] == '#') {
                        /* comment */
                } else if (line[0] == ' ' || line[0] == '\t') {
                        if (st.n == 0) {
                                r = forge_error_usage(err,
                                                      "%s:%d: a continuation line outside "
                                                      "a field",
                                                      file, lineno);
                                break;
                        }
                        if (stanza_continue(&st, line, n) < 0) {
                                r = forge_error_make(err, ENOMEM, "apt sources");
                                break;
                        }
                } else if ((colon = memchr(line, ':', n)) == NULL) {
                        r = forge_error_usage(err, "%s:%d: expected 'Field: value'", file, lineno);
                        break;
                } else {
                        const char *v = colon + 1;
                        size_t vl = n - (size_t)(v - line);
                        while (vl > 0 && (*v == ' ' || *v == '\t'))
                                v++, vl--;
                        if (st.n == 0)
                                st.line = lineno;
                        if (stanza_add(&st, line, (size_t)(colon - line), v, vl) < 0) {
                                r = forge_error_make(err, ENOMEM, "apt sources");
                                break;
                        }
                }
                if (end)
                        break;
                line += strcspn(line, "\n");
                if (*line == '\n')
                        line++;
        }
        stanza_clear(&st);
        return r;
}

/* ---- the host's configuration ---- */

static int default_keyrings(const char *root, char ***ret, forge_error **err)
{
        cleanup_free char *main = fs_path_join(root, "etc/apt/trusted.gpg");
        cleanup_free char *dir = fs_path_join(root, "etc/apt/trusted.gpg.d");
        cleanup_strv char **names = NULL;
        char **v = calloc(1, sizeof(char *));

        if (v == NULL || main == NULL || dir == NULL)
                goto oom;
        if (access(main, R_OK) == 0 && strv_push(&v, main, strlen(main)) < 0)
                goto oom;
        if (fs_dir_list_sorted(AT_FDCWD, dir, &names, err) < 0) {
                forge_error_release(err);
                *ret = v;
                return 0;
        }
        for (char **n = names; *n; n++) {
                size_t l = strlen(*n);
                cleanup_free char *p = NULL;
                if (l < 5 || (strcmp(*n + l - 4, ".gpg") && strcmp(*n + l - 4, ".asc")))
                        continue;
                p = fs_path_join(dir, *n);
                if (p == NULL || strv_push(&v, p, strlen(p)) < 0)
                        goto oom;
        }
        *ret = v;
        return 0;
oom:
        cleanup_strv_fn(&v);
        return forge_error_make(err, ENOMEM, "apt sources");
}

static int parse_file(const char *path, bool deb822, const char *arch, char *const *keys,
                      pkg_sources *out, forge_error **err)
{
        cleanup_free char *text = NULL;
        size_t len;

        if (fs_read_all(AT_FDCWD, path, MAX_SOURCES_FILE, &text, &len, err) < 0) {
                if ((*err)->errnum == ENOENT) {
                        forge_error_release(err);
                        return 0;
                }
                return forge_error_prefix(err, "apt sources");
        }
        if (strlen(text) != len)
                return forge_error_usage(err, "%s: contains a NUL byte", path);
        return deb822 ? pkg_apt_parse_deb822(text, path, arch, keys, out, err)
                      : pkg_apt_parse_list(text, path, arch, keys, out, err);
}

int pkg_apt_host(const char *root, const char *arch, pkg_sources *out, forge_error **err)
{
        cleanup_strv char **keys = NULL, **names = NULL;
        cleanup_free char *list = fs_path_join(root, "etc/apt/sources.list");
        cleanup_free char *dir = fs_path_join(root, "etc/apt/sources.list.d");

        if (list == NULL || dir == NULL)
                return forge_error_make(err, ENOMEM, "apt sources");
        if (default_keyrings(root, &keys, err) < 0 ||
            parse_file(list, false, arch, keys, out, err) < 0)
                return -1;
        if (fs_dir_list_sorted(AT_FDCWD, dir, &names, err) < 0) {
                forge_error_release(err);
                return 0;
        }
        for (char **n = names; *n; n++) {
                size_t l = strlen(*n);
                cleanup_free char *p = fs_path_join(dir, *n);
                if (p == NULL)
                        return forge_error_make(err, ENOMEM, "apt sources");
                if (l > 5 && strcmp(*n + l - 5, ".list") == 0) {
                        if (parse_file(p, false, arch, keys, out, err) < 0)
                                return -1;
                } else if (l > 8 && strcmp(*n + l - 8, ".sources") == 0) {
                        if (parse_file(p, true, arch, keys, out, err) < 0)
                                return -1;
                }
        }
        return 0;
}
