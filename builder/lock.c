/* SPDX-License-Identifier: MIT */
/*
 * SPEC.lock: canonical JSON beside the spec (sorted keys, two-space indent,
 * one trailing newline), so that the same resolution gives the same bytes
 * and a diff reads well. The top level is an object whose parts belong to
 * their owners ("packages" here); keys this file does not know are kept.
 * Repositories are named by their `repositories:` entry, never by host, so
 * a lock moves between mirrors.
 */
#include "builder/pkg-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

#define LOCK_MAX_BYTES (64u << 20)
#define LOCK_VERSION 1

char *builder_lock_path(const spec *sp)
{
        char *p = NULL;
        if (asprintf(&p, "%s.lock", sp->path) < 0)
                return NULL;
        return p;
}

int builder_lock_load(const spec *sp, json_t **ret, forge_error **err)
{
        cleanup_free char *path = builder_lock_path(sp), *buf = NULL;
        json_error_t je;
        size_t len;
        cleanup_json json_t *j = NULL;

        if (path == NULL)
                return forge_error_make(err, ENOMEM, "lock");
        if (fs_read_all(AT_FDCWD, path, LOCK_MAX_BYTES, &buf, &len, err) < 0) {
                if ((*err)->errnum == ENOENT) {
                        forge_error_release(err);
                        return 0;
                }
                return forge_error_prefix(err, "read '%s'", path);
        }
        j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(j))
                return forge_error_usage(err, "%s:%d:%d: not a lock (%s): run 'forge lock %s'",
                                         path, je.line, je.column, j ? "not an object" : je.text,
                                         sp->path);
        *ret = take_ptr(j);
        return 1;
}

int builder_lock_save(const spec *sp, const json_t *lock, forge_error **err)
{
        cleanup_free char *path = builder_lock_path(sp), *dir = NULL, *base = NULL;
        cleanup_free char *txt = NULL, *out = NULL;
        cleanup_close int dfd = -1;
        size_t len;

        if (path == NULL || (dir = strdup(path)) == NULL || (base = strdup(path)) == NULL)
                return forge_error_make(err, ENOMEM, "lock");
        txt = json_dumps(lock, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_ENSURE_ASCII);
        if (txt == NULL)
                return forge_error_make(err, ENOMEM, "lock");
        len = strlen(txt);
        out = malloc(len + 2);
        if (out == NULL)
                return forge_error_make(err, ENOMEM, "lock");
        memcpy(out, txt, len);
        out[len] = '\n';
        dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return forge_error_make(err, errno, "write '%s'", path);
        if (fs_write_atomic(dfd, basename(base), out, len + 1, 0644, err) < 0)
                return forge_error_prefix(err, "write '%s'", path);
        return 0;
}

/* ---- the packages part ---- */

void pkg_lock_free(pkg_lock *l)
{
        free(l->arch);
        for (size_t i = 0; i < l->n_repos; i++) {
                free(l->repos[i].suite);
                cleanup_strv_fn(&l->repos[i].components);
                free(l->repos[i].date);
        }
        free(l->repos);
        for (size_t i = 0; i < l->n_layers; i++)
                pkg_set_free(&l->layers[i]);
        free(l->layers);
        memset(l, 0, sizeof(*l));
}

static json_t *strv_json(char *const *v, size_t n)
{
        json_t *a = json_array();
        for (size_t i = 0; a && (n ? i < n : v[i] != NULL); i++)
                json_array_append_new(a, json_string(v[i]));
        return a;
}

static json_t *package_json(const pkg_locked *p)
{
        return json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:b}", "name", p->name, "version",
                         p->version, "architecture", p->arch, "repository", (json_int_t)p->repo,
                         "filename", p->filename, "size", (json_int_t)p->size, "sha256", p->sha256,
                         "essential", p->essential);
}

int pkg_lock_to_json(const spec *sp, const pkg_lock *pl, json_t *obj, forge_error **err)
{
        cleanup_json json_t *part = json_object();
        json_t *repos, *layers;

        /* part owns them (set_new takes its value even when it fails) */
        if (json_object_set_new(part, "architecture", json_string(pl->arch)) < 0 ||
            json_object_set_new(part, "repositories", json_array()) < 0 ||
            json_object_set_new(part, "layers", json_array()) < 0)
                goto oom;
        repos = json_object_get(part, "repositories");
        layers = json_object_get(part, "layers");
        for (size_t i = 0; i < pl->n_repos; i++) {
                const pkg_lock_repo *r = &pl->repos[i];
                json_t *j = json_pack("{s:I, s:I, s:s, s:o, s:s, s:s}", "entry",
                                      (json_int_t)r->entry, "source", (json_int_t)r->source,
                                      "suite", r->suite, "components", strv_json(r->components, 0),
                                      "inrelease_sha256", r->inrelease_sha256, "date", r->date);
                if (j == NULL || json_array_append_new(repos, j) < 0)
                        goto oom;
        }
        for (size_t i = 0; i < sp->n_layers && i < pl->n_layers; i++) {
                const spec_layer *l = &sp->layers[i];
                json_t *pk, *j;
                if (l->kind != SPEC_LAYER_PACKAGES)
                        continue;
                pk = json_array();
                for (size_t k = 0; pk && k < pl->layers[i].n; k++)
                        json_array_append_new(pk, package_json(&pl->layers[i].v[k]));
                j = json_pack("{s:I, s:o, s:b, s:b, s:o}", "layer", (json_int_t)i, "request",
                              strv_json(l->packages, l->n_packages), "essential", l->essential,
                              "recommends", l->recommends, "packages", pk);
                if (j == NULL || json_array_append_new(layers, j) < 0)
                        goto oom;
                if (l->name)
                        json_object_set_new(j, "name", json_string(l->name));
        }
        json_object_set_new(obj, "lock_version", json_integer(LOCK_VERSION));
        json_object_set_new(obj, "packages", take_ptr(part));
        return 0;
oom:
        return forge_error_make(err, ENOMEM, "lock");
}

static int stale(forge_error **err, const spec *sp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int stale(forge_error **err, const spec *sp, const char *fmt, ...)
{
        cleanup_free char *why = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&why, fmt, ap) < 0)
                why = NULL;
        va_end(ap);
        return forge_error_usage(err, "%s.lock is out of date (%s): run 'forge lock %s'", sp->path,
                                 why ? why : "", sp->path);
}

static int bad_lock(forge_error **err, const spec *sp, const char *what)
{
        return forge_error_usage(err, "%s.lock: %s (a damaged lock?): run 'forge lock %s'",
                                 sp->path, what, sp->path);
}

static char *dup_str(const json_t *o, const char *k)
{
        const char *s = json_string_value(json_object_get(o, k));
        return s ? strdup(s) : NULL;
}

static int package_from_json(const json_t *j, size_t n_repos, pkg_locked *p)
{
        const char *sha = json_string_value(json_object_get(j, "sha256"));
        json_t *repo = json_object_get(j, "repository"), *size = json_object_get(j, "size");

        memset(p, 0, sizeof(*p));
        p->name = dup_str(j, "name");
        p->version = dup_str(j, "version");
        p->arch = dup_str(j, "architecture");
        p->filename = dup_str(j, "filename");
        p->essential = json_is_true(json_object_get(j, "essential"));
        if (!p->name || !p->version || !p->arch || !p->filename || !digest_valid(sha) ||
            !json_is_integer(repo) || json_integer_value(repo) < 0 ||
            (size_t)json_integer_value(repo) >= n_repos || !json_is_integer(size) ||
            json_integer_value(size) < 0)
                return -1;
        if (p->filename[0] == '/' || strstr(p->filename, "..") || strchr(p->filename, '\n') ||
            !pkg_name_valid(p->name) || !pkg_version_valid(p->version) || !pkg_arch_valid(p->arch))
                return -1;
        p->repo = (size_t)json_integer_value(repo);
        p->size = (uint64_t)json_integer_value(size);
        memcpy(p->sha256, sha, DIGEST_STR_SIZE);
        return 0;
}

static const char *label_of(const spec_layer *l, size_t i, char *buf, size_t len)
{
        if (l->name)
                return l->name;
        snprintf(buf, len, "%zu", i + 1);
        return buf;
}

static bool json_strv_has(const json_t *a, const char *s)
{
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) if (json_is_string(v) &&
                                        !strcmp(json_string_value(v), s)) return true;
        return false;
}

static int check_layer(const spec *sp, size_t i, const json_t *jl, forge_error **err)
{
        const spec_layer *l = &sp->layers[i];
        const json_t *req = json_object_get(jl, "request");
        char b[32];
        const char *name = label_of(l, i, b, sizeof(b));
        size_t k;
        json_t *v;

        if (jl == NULL)
                return stale(err, sp, "layer '%s' is not in it", name);
        for (k = 0; k < l->n_packages; k++)
                if (!json_strv_has(req, l->packages[k]))
                        return stale(err, sp, "layer '%s' asks for '%s'", name, l->packages[k]);
        json_array_foreach(req, k, v)
        {
                bool found = false;
                for (size_t m = 0; m < l->n_packages && !found; m++)
                        found = json_is_string(v) && !strcmp(json_string_value(v), l->packages[m]);
                if (!found)
                        return stale(err, sp, "layer '%s' no longer asks for '%s'", name,
                                     json_string_value(v) ? json_string_value(v) : "?");
        }
        if (json_is_true(json_object_get(jl, "essential")) != l->essential)
                return stale(err, sp, "layer '%s' changed 'essential'", name);
        if (json_is_true(json_object_get(jl, "recommends")) != l->recommends)
                return stale(err, sp, "layer '%s' changed 'recommends'", name);
        return 0;
}

static int repos_from_json(const spec *sp, const json_t *a, pkg_lock *pl, forge_error **err)
{
        size_t i;
        json_t *j;

        pl->repos = calloc(json_array_size(a) + 1, sizeof(*pl->repos));
        if (pl->repos == NULL)
                return forge_error_make(err, ENOMEM, "lock");
        json_array_foreach(a, i, j)
        {
                pkg_lock_repo *r = &pl->repos[pl->n_repos++];
                json_t *e = json_object_get(j, "entry"), *s = json_object_get(j, "source");
                json_t *comps = json_object_get(j, "components");
                const char *d = json_string_value(json_object_get(j, "inrelease_sha256"));
                size_t ci;
                json_t *c;
                if (!json_is_integer(e) || !json_is_integer(s) || json_integer_value(e) < 0 ||
                    json_integer_value(s) < 0 || !digest_valid(d) || !json_is_array(comps))
                        return bad_lock(err, sp, "a repository without entry, source or digest");
                r->entry = (size_t)json_integer_value(e);
                r->source = (size_t)json_integer_value(s);
                r->suite = dup_str(j, "suite");
                r->date = dup_str(j, "date");
                memcpy(r->inrelease_sha256, d, DIGEST_STR_SIZE);
                r->components = calloc(json_array_size(comps) + 1, sizeof(char *));
                if (!r->suite || !r->date || !r->components)
                        return bad_lock(err, sp, "a repository without suite or date");
                json_array_foreach(
                    comps, ci,
                    c) if ((r->components[ci] =
                                strdup(json_string_value(c) ? json_string_value(c) : "")) ==
                           NULL) return forge_error_make(err, ENOMEM, "lock");
                if (r->entry >= sp->n_repos)
                        return stale(err, sp, "it names repository entry %zu, the spec has %zu",
                                     r->entry, sp->n_repos);
                if (!sp->repos[r->entry].host) {
                        const spec_repo *sr = &sp->repos[r->entry];
                        bool same = strcmp(sr->suite, r->suite) == 0;
                        for (size_t k = 0; same && (sr->components[k] || r->components[k]); k++)
                                same = sr->components[k] && r->components[k] &&
                                       !strcmp(sr->components[k], r->components[k]);
                        if (!same)
                                return stale(err, sp, "repository %zu changed suite or components",
                                             r->entry);
                }
        }
        return 0;
}

int pkg_lock_from_json(const spec *sp, const json_t *obj, pkg_lock *ret, forge_error **err)
{
        const json_t *part = json_object_get(obj, "packages");
        const json_t *layers = json_object_get(part, "layers");
        const char *arch = json_string_value(json_object_get(part, "architecture"));
        const char *want = sp->architecture ? sp->architecture : pkg_host_arch();
        pkg_lock pl = {0};
        size_t i;
        json_t *jl;

        if (!json_is_object(part) || !json_is_array(layers) || arch == NULL)
                return bad_lock(err, sp, "no 'packages' part");
        if (strcmp(arch, want) != 0)
                return stale(err, sp, "it is for architecture %s, the image is %s", arch, want);
        if ((pl.arch = strdup(arch)) == NULL ||
            (pl.layers = calloc(sp->n_layers + 1, sizeof(*pl.layers))) == NULL) {
                pkg_lock_free(&pl);
                return forge_error_make(err, ENOMEM, "lock");
        }
        pl.n_layers = sp->n_layers;
        if (repos_from_json(sp, json_object_get(part, "repositories"), &pl, err) < 0)
                goto fail;
        json_array_foreach(layers, i, jl)
        {
                json_t *idx = json_object_get(jl, "layer");
                size_t li = json_is_integer(idx) ? (size_t)json_integer_value(idx) : SIZE_MAX;
                if (li >= sp->n_layers || sp->layers[li].kind != SPEC_LAYER_PACKAGES) {
                        stale(err, sp, "layer %zu is no longer a packages layer",
                              li == SIZE_MAX ? 0 : li + 1);
                        goto fail;
                }
        }
        for (size_t li = 0; li < sp->n_layers; li++) {
                const json_t *found = NULL, *pk;
                size_t k;
                json_t *jp;
                if (sp->layers[li].kind != SPEC_LAYER_PACKAGES)
                        continue;
                json_array_foreach(layers, i,
                                   jl) if (json_integer_value(json_object_get(jl, "layer")) ==
                                           (json_int_t)li) found = jl;
                if (check_layer(sp, li, found, err) < 0)
                        goto fail;
                pk = json_object_get(found, "packages");
                pl.layers[li].v = calloc(json_array_size(pk) + 1, sizeof(pkg_locked));
                if (pl.layers[li].v == NULL) {
                        forge_error_make(err, ENOMEM, "lock");
                        goto fail;
                }
                json_array_foreach(pk, k, jp)
                {
                        pl.layers[li].n++;
                        if (package_from_json(jp, pl.n_repos, &pl.layers[li].v[k]) < 0) {
                                bad_lock(err, sp,
                                         "a package without name, version, "
                                         "repository, filename, size or sha256");
                                goto fail;
                        }
                }
        }
        *ret = pl;
        return 0;
fail:
        pkg_lock_free(&pl);
        return -1;
}

/* ---- resolving ---- */

int pkg_lock_resolve(store *s, const spec *sp, pkg_lock *ret, forge_error **err)
{
        const char *arch = sp->architecture ? sp->architecture : pkg_host_arch();
        pkg_sources srcs = {0};
        cleanup_pkg_fetcher pkg_fetcher *f = NULL;
        pkg_index *ix = NULL;
        pkg_solver *ps = NULL;
        pkg_lock pl = {0};
        pkg_set below = {0};
        bool have_essential = false;
        int r = -1;

        if (pkg_sources_from_spec(sp, arch, &srcs, err) < 0)
                return -1;
        ix = calloc(srcs.n + 1, sizeof(*ix));
        pl.repos = calloc(srcs.n + 1, sizeof(*pl.repos));
        pl.layers = calloc(sp->n_layers + 1, sizeof(*pl.layers));
        pl.arch = strdup(arch);
        if (!ix || !pl.repos || !pl.layers || !pl.arch) {
                forge_error_make(err, ENOMEM, "resolve");
                goto out;
        }
        pl.n_layers = sp->n_layers;
        if (pkg_fetcher_new(s, &f, err) < 0)
                goto out;
        for (size_t i = 0; i < srcs.n; i++) {
                pkg_lock_repo *lr = &pl.repos[i];
                if (pkg_index_fetch(f, &srcs.v[i], arch, &ix[i], err) < 0)
                        goto out;
                pl.n_repos++;
                lr->entry = srcs.v[i].entry;
                lr->source = srcs.v[i].source;
                lr->suite = strdup(srcs.v[i].suite);
                lr->components = calloc(1, sizeof(char *));
                lr->date = strdup(ix[i].date);
                memcpy(lr->inrelease_sha256, ix[i].inrelease_sha256, DIGEST_STR_SIZE);
                for (char **c = srcs.v[i].components; lr->components && *c; c++) {
                        size_t n = 0;
                        while (lr->components[n])
                                n++;
                        char **nv = realloc(lr->components, (n + 2) * sizeof(char *));
                        if (nv == NULL)
                                break;
                        lr->components = nv;
                        nv[n] = strdup(*c);
                        nv[n + 1] = NULL;
                }
                if (!lr->suite || !lr->components || !lr->date) {
                        forge_error_make(err, ENOMEM, "resolve");
                        goto out;
                }
        }
        if (pkg_solver_new(ix, srcs.n, arch, &ps, err) < 0)
                goto out;
        for (size_t i = 0; i < sp->n_layers; i++) {
                const spec_layer *l = &sp->layers[i];
                pkg_locked *nv;
                if (l->kind != SPEC_LAYER_PACKAGES)
                        continue;
                if (pkg_solver_layer(ps, sp, l, &below, l->essential && !have_essential,
                                     &pl.layers[i], err) < 0)
                        goto out;
                have_essential |= l->essential;
                nv = realloc(below.v, (below.n + pl.layers[i].n + 1) * sizeof(*nv));
                if (nv == NULL) {
                        forge_error_make(err, ENOMEM, "resolve");
                        goto out;
                }
                below.v = nv;
                /* borrowed: below only points at the layers' strings */
                memcpy(below.v + below.n, pl.layers[i].v, pl.layers[i].n * sizeof(*nv));
                below.n += pl.layers[i].n;
        }
        *ret = pl;
        memset(&pl, 0, sizeof(pl));
        r = 0;
out:
        free(below.v);
        pkg_solver_free(ps);
        for (size_t i = 0; ix && i < srcs.n; i++)
                pkg_index_release(&ix[i]);
        free(ix);
        pkg_lock_free(&pl);
        pkg_sources_free(&srcs);
        return r;
}
