/* SPDX-License-Identifier: MIT */
/*
 * The build: spec -> (base image) -> one layer per spec layer, each looked
 * up in the cache first -> config -> manifest -> tag. Nothing is tagged
 * unless everything succeeded; blobs of a failed build are garbage for gc.
 */
#include "builder/pkg-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

typedef struct bstate {
        store *s;
        const builder_opts *o;
        const spec *sp;
        bmemo memo;
        json_t *prev;        /* previous build record's "layers", or NULL */
        char *prev_text;     /* the previous record as stored */
        json_t *record;      /* this build's */
        store_layer *layers; /* base + built so far */
        size_t n_layers;
        char **unpacked; /* lowerdirs for run steps, lazily filled */
        bentries *files; /* files: layers' entries from the check, or NULL */
        blinks links;    /* symlinks of layers[0 .. links_upto) */
        size_t links_upto;
        char parent_key[DIGEST_STR_SIZE + 8];
        bool have_parent;
        bool no_cache_write;
        int depth;
        pkg_lock pl;    /* packages: layers, from SPEC.lock */
        pkg_set below;  /* packages of the packages: layers so far (borrowed from pl) */
        json_t *debs;   /* their .deb digests: kept by gc with the image */
        json_t *pkgs;   /* what they are, for `forge sbom` */
        json_t *inputs; /* the other inputs (files, archives, .debs, base), for `forge sbom` */
} bstate;

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *blayer_label(const spec_layer *l)
{
        static const char *kinds[] = {"deb", "archive", "files", "run", "packages"};
        char *r = NULL;
        const char *what = l->kind == SPEC_LAYER_RUN ? l->run : l->src ? l->src : "";

        if (l->name)
                return strdup(l->name);
        if (l->kind == SPEC_LAYER_PACKAGES)
                what = l->n_packages ? l->packages[0] : "";
        if (l->kind == SPEC_LAYER_FILES)
                what = l->n_files ? l->files[0].src : "";
        if (asprintf(&r, "%s %.40s%s", kinds[l->kind], what, strlen(what) > 40 ? "..." : "") < 0)
                return NULL;
        for (char *c = r; *c; c++)
                if (*c == '\n')
                        *c = ' ';
        return r;
}

/* Puts a new layer's entries where the container will see them, through the
 * symlinks of the layers below (lower-links.c); those of layers not folded
 * in yet are read from the store first. */
static int place_entries(bstate *b, bentries *e, forge_error **err)
{
        for (; b->links_upto < b->n_layers; b->links_upto++)
                if (blinks_fold_layer(b->s, &b->layers[b->links_upto], &b->links, err) < 0)
                        return forge_error_prefix(err, "the symlinks of layer %zu",
                                                  b->links_upto + 1);
        return blinks_place(&b->links, e, (int64_t)b->sp->source_date_epoch, err);
}

static int push_layer(bstate *b, const store_layer *l, forge_error **err)
{
        store_layer *nv = realloc(b->layers, (b->n_layers + 1) * sizeof(*nv));
        char **nu = realloc(b->unpacked, (b->n_layers + 1) * sizeof(char *));
        if (nv == NULL || nu == NULL) {
                free(nv == b->layers ? NULL : nv);
                return forge_error_make(err, ENOMEM, "build");
        }
        b->layers = nv;
        b->unpacked = nu;
        b->layers[b->n_layers] = *l;
        b->unpacked[b->n_layers] = NULL;
        b->n_layers++;
        return 0;
}

/* ---- cache records ---- */

static int cache_get(bstate *b, const char *key, store_layer *ret)
{
        cleanup_free char *val = NULL;
        forge_error *e = NULL;
        json_t *j;
        const char *d, *di, *mt;
        int r = 0;

        if (store_kv_get(b->s, "cache", key, &val, &e) <= 0) {
                forge_error_release(&e);
                return 0;
        }
        j = json_loads(val, 0, NULL);
        d = json_string_value(json_object_get(j, "digest"));
        di = json_string_value(json_object_get(j, "diff_id"));
        mt = json_string_value(json_object_get(j, "media_type"));
        if (digest_valid(d) && digest_valid(di) && mt && strlen(mt) < sizeof(ret->media_type) &&
            store_blob_exists(b->s, d)) {
                memset(ret, 0, sizeof(*ret));
                memcpy(ret->digest, d, DIGEST_STR_SIZE);
                memcpy(ret->diff_id, di, DIGEST_STR_SIZE);
                ret->size = (uint64_t)json_integer_value(json_object_get(j, "size"));
                ret->usize = (uint64_t)json_integer_value(json_object_get(j, "usize"));
                snprintf(ret->media_type, sizeof(ret->media_type), "%s", mt);
                r = 1;
        }
        json_decref(j);
        return r;
}

static int cache_put(bstate *b, const char *key, const store_layer *l, forge_error **err)
{
        json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:s}", "digest", l->digest, "diff_id",
                              l->diff_id, "size", (json_int_t)l->size, "usize",
                              (json_int_t)l->usize, "media_type", l->media_type);
        cleanup_free char *txt = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(j);
        if (txt == NULL)
                return forge_error_make(err, ENOMEM, "cache");
        return store_kv_put(b->s, "cache", key, txt, err);
}

/* ---- why a layer was rebuilt ---- */

static char *why_inputs(json_t *old, json_t *new)
{
        const char *k;
        json_t *v;
        char *r = NULL;

        json_object_foreach(new, k, v)
        {
                json_t *o = json_object_get(old, k);
                if (o == NULL) {
                        if (asprintf(&r, "'%s' added", k) < 0)
                                r = NULL;
                        return r;
                }
                if (!json_equal(o, v)) {
                        if (asprintf(&r, "'%s' changed", k) < 0)
                                r = NULL;
                        return r;
                }
        }
        json_object_foreach(old, k, v)
        {
                if (json_object_get(new, k) == NULL) {
                        if (asprintf(&r, "'%s' removed", k) < 0)
                                r = NULL;
                        return r;
                }
        }
        return NULL;
}

static char *why_miss(bstate *b, size_t idx, const bkey *k, const spec_layer *l)
{
        json_t *old = json_array_get(b->prev, idx);
        const char *odef = json_string_value(json_object_get(old, "def"));
        const char *oparent = json_string_value(json_object_get(old, "parent"));
        const char *okey = json_string_value(json_object_get(old, "key"));
        char *r;

        if (b->o->no_cache)
                return strdup("--no-cache");
        if (old == NULL)
                return strdup(b->prev ? "new layer" : "no earlier build");
        if (okey && strcmp(okey, k->key) == 0)
                return strdup("cached layer was removed (gc)");
        if (odef && strcmp(odef, k->def_hash) != 0) {
                cleanup_free char *txt = NULL;
                forge_error *e = NULL;
                json_t *oin = NULL;
                if (okey && digest_valid(okey) &&
                    store_kv_get(b->s, "inputs", digest_hex(okey), &txt, &e) > 0)
                        oin = json_loads(txt, 0, NULL);
                forge_error_release(&e);
                r = oin && k->inputs ? why_inputs(oin, k->inputs) : NULL;
                json_decref(oin);
                if (r != NULL)
                        return r;
                if (l->kind == SPEC_LAYER_RUN)
                        return strdup("command or its env changed");
                return strdup("definition changed");
        }
        if (oparent && strcmp(oparent, b->have_parent ? b->parent_key : "scratch") != 0)
                return strdup("a layer below changed");
        return strdup("not in cache");
}

/* ---- run steps ---- */

static int unpack_all(bstate *b, forge_error **err)
{
        for (size_t i = 0; i < b->n_layers; i++) {
                if (b->unpacked[i] != NULL)
                        continue;
                if (store_layer_unpack(b->s, &b->layers[i], &b->unpacked[i], err) < 0)
                        return forge_error_prefix(err, "unpack layer %zu", i + 1);
        }
        return 0;
}

static char **run_env(const spec_layer *l)
{
        size_t n = l->env.n + 2;
        char **env = calloc(n + 1, sizeof(char *));
        size_t o = 0;
        bool have_path = false;

        if (env == NULL)
                return NULL;
        for (size_t i = 0; i < l->env.n; i++) {
                if (strcmp(l->env.items[i].key, "PATH") == 0)
                        have_path = true;
                if (asprintf(&env[o++], "%s=%s", l->env.items[i].key, l->env.items[i].value) < 0)
                        return NULL;
        }
        if (!have_path)
                env[o++] =
                    strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        return env;
}

static int build_run(bstate *b, const spec_layer *l, size_t idx, bentries *e, forge_error **err)
{
        cleanup_free char *tmp = NULL, *upper = NULL, *work = NULL;
        cleanup_free char **lowers = NULL; /* b->unpacked's strings, each layer once */
        cleanup_strv char **env = NULL;
        builder_run_step step = {0};
        int status = 0, r = -1;

        if (b->o->run_step == NULL)
                return spec_error(err, b->sp, l->pos, "'run' layers need the container runtime");
        if (unpack_all(b, err) < 0 || store_tmpdir(b->s, &tmp, err) < 0)
                return -1;
        upper = fs_path_join(tmp, "upper");
        work = fs_path_join(tmp, "work");
        env = run_env(l);
        if (upper == NULL || work == NULL || env == NULL) {
                forge_error_make(err, ENOMEM, "run step");
                goto out;
        }
        if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0) {
                forge_error_make(err, errno, "run step: mkdir in '%s'", tmp);
                goto out;
        }
        lowers = calloc(b->n_layers + 1, sizeof(char *));
        if (lowers == NULL) {
                forge_error_make(err, ENOMEM, "run step");
                goto out;
        }
        memcpy(lowers, b->unpacked, b->n_layers * sizeof(char *));
        step.lowerdirs = (const char *const *)lowers;
        step.n_lowerdirs = store_layer_dirs_dedupe(lowers, b->n_layers, false);
        step.upper_dir = upper;
        step.work_dir = work;
        step.command = l->run;
        step.env = env;
        step.network_host = l->network_host;
        step.network_user = l->network_user;
        step.memory = l->memory;
        step.pids = l->pids;
        step.output_fd = STDERR_FILENO;
        if (b->o->run_step(&step, &status, b->o->run_step_data, err) < 0) {
                forge_error_prefix(err, "start the step");
                goto out;
        }
        if (status != 0) {
                forge_error_make(err, 0, "the command failed with exit status %d%s", status,
                                 status == 127 ? " (command not found: does the image have "
                                                 "/bin/sh?)"
                                               : "");
                goto out;
        }
        if (bsrc_upper(b->sp, upper, e, err) < 0 ||
            bentries_finish(e, (int64_t)b->sp->source_date_epoch, err) < 0)
                goto out;
        r = 0;
out:
        /* The tar is written from upper: tmp goes with the entries. */
        e->tmp_dir = take_ptr(tmp);
        return r;
}

/* ---- packages: layers ---- */

typedef struct fetch_ud {
        bstate *b;
        const char *label;
} fetch_ud;

static void on_fetch(void *ud, size_t done, size_t total, uint64_t bytes, uint64_t bytes_total)
{
        fetch_ud *f = ud;
        if (f->b->o->fetch_progress)
                f->b->o->fetch_progress(f->label, done, total, bytes, bytes_total,
                                        f->b->o->progress_data);
}

static int below_add(bstate *b, const pkg_set *set)
{
        pkg_locked *nv = realloc(b->below.v, (b->below.n + set->n + 1) * sizeof(*nv));
        if (nv == NULL)
                return -1;
        b->below.v = nv;
        memcpy(nv + b->below.n, set->v, set->n * sizeof(*nv));
        b->below.n += set->n;
        for (size_t i = 0; i < set->n; i++) {
                json_array_append_new(b->debs, json_string(set->v[i].sha256));
                json_array_append_new(b->pkgs,
                                      json_pack("{s:s, s:s, s:s, s:s, s:I}", "name", set->v[i].name,
                                                "version", set->v[i].version, "architecture",
                                                set->v[i].arch, "sha256", set->v[i].sha256, "size",
                                                (json_int_t)set->v[i].size));
        }
        return 0;
}

static int build_packages(bstate *b, const spec_layer *l, size_t idx, const char *label,
                          bentries *e, forge_error **err)
{
        const pkg_set *set = &b->pl.layers[idx];
        fetch_ud fu = {b, label};

        if (pkg_fetch_debs(b->s, b->sp, &b->pl, set, on_fetch, &fu, err) < 0)
                return -1;
        if (!l->essential) {
                cleanup_free char *base_status = NULL;
                if (b->n_layers > 0 && (unpack_all(b, err) < 0 ||
                                        pkg_status_below((const char *const *)b->unpacked,
                                                         b->n_layers, &base_status, err) < 0))
                        return forge_error_prefix(err, "layer '%s'", label);
                /* the status below, when there is one, already lists the earlier
                 * layers' packages as they are now (a run: step may have removed one) */
                if ((base_status == NULL &&
                     pkg_fetch_debs(b->s, b->sp, &b->pl, &b->below, on_fetch, &fu, err) < 0) ||
                    pkg_install_files(b->s, b->sp, base_status ? NULL : &b->below, set, base_status,
                                      e, err) < 0)
                        return -1;
                return bentries_finish(e, (int64_t)b->sp->source_date_epoch, err);
        }
        if (b->o->run_step == NULL)
                return spec_error(err, b->sp, l->pos,
                                  "'packages' layers with 'essential: true' need the container "
                                  "runtime (maintainer scripts run in the build sandbox)");
        if (unpack_all(b, err) < 0)
                return -1;
        if (pkg_install_dpkg(b->s, b->sp, b->o, (const char *const *)b->unpacked, b->n_layers, set,
                             e, err) < 0)
                return -1;
        return bentries_finish(e, (int64_t)b->sp->source_date_epoch, err);
}

/* SPEC.lock: used when it matches the spec (a stale one is an error), else
 * (not --locked) the spec is resolved and the lock written. */
static int prepare_packages(bstate *b, forge_error **err)
{
        json_t *lock = NULL;
        bool any = false;
        int r;

        for (size_t i = 0; i < b->sp->n_layers; i++)
                any |= b->sp->layers[i].kind == SPEC_LAYER_PACKAGES;
        if (!any)
                return 0;
        r = builder_lock_load(b->sp, &lock, err);
        if (r < 0)
                return -1;
        if (r == 1 && json_object_get(lock, "packages") != NULL) {
                r = pkg_lock_from_json(b->sp, lock, &b->pl, err);
                json_decref(lock);
                return r;
        }
        if (b->o->locked) {
                json_decref(lock);
                return r == 1 ? forge_error_usage(err,
                                                  "%s.lock is out of date (it has no packages): "
                                                  "run 'forge lock %s'",
                                                  b->sp->path, b->sp->path)
                              : forge_error_usage(err,
                                                  "%s.lock is missing (--locked needs it): run "
                                                  "'forge lock %s'",
                                                  b->sp->path, b->sp->path);
        }
        if (pkg_lock_resolve(b->s, b->sp, &b->pl, err) < 0) {
                json_decref(lock);
                return -1;
        }
        /* a lock others started (a pinned base image) keeps their part */
        if (lock == NULL)
                lock = json_object();
        r = lock ? pkg_lock_to_json(b->sp, &b->pl, lock, err)
                 : forge_error_make(err, ENOMEM, "lock");
        if (r == 0)
                r = builder_lock_save(b->sp, lock, err);
        json_decref(lock);
        return r;
}

/* ---- one layer ---- */

/* What build_layer works on: the layer, its entries and its key. */
typedef struct layer_job {
        size_t idx;
        const spec_layer *l;
        char *label;
        bentries e;
        bkey_input in;
        char *pkg_def;
        bkey k;
        char stamp[DIGEST_STR_SIZE]; /* "" when there is no fingerprint */
        bool stamped;                /* k.key (def_hash, input_sha256) from the last build */
        store_layer out;
        bool hit, remote_hit;
        char *why;
} layer_job;

static void layer_job_release(layer_job *j)
{
        free(j->why);
        free(j->pkg_def);
        free(j->label);
        bentries_free(&j->e);
        bkey_release(&j->k);
}

/* files: entries (collected by the check when there was one) and the
 * packages: definition: what the key is computed from. */
static int layer_inputs(bstate *b, layer_job *j, forge_error **err)
{
        const spec *sp = b->sp;

        if (j->l->kind == SPEC_LAYER_FILES && b->files != NULL) {
                j->e = b->files[j->idx];
                bentries_init(&b->files[j->idx]);
        } else if (j->l->kind == SPEC_LAYER_FILES &&
                   (bsrc_files_nocaps(sp, j->l, &j->e, err) < 0 ||
                    bentries_finish(&j->e, (int64_t)sp->source_date_epoch, err) < 0)) {
                return -1;
        }
        if (j->l->kind == SPEC_LAYER_PACKAGES) {
                j->pkg_def = pkg_layer_def(j->l, &b->pl.layers[j->idx]);
                if (j->pkg_def == NULL)
                        return forge_error_make(err, ENOMEM, "build");
                j->in.pkg_def = j->pkg_def;
        }
        return 0;
}

/* Inputs with the stat data of the last build: its key stands, nothing is read. */
static void layer_stamp(bstate *b, layer_job *j)
{
        json_t *old = json_array_get(b->prev, j->idx);
        const char *ostamp = json_string_value(json_object_get(old, "stamp"));
        const char *okey = json_string_value(json_object_get(old, "key"));
        const char *odef = json_string_value(json_object_get(old, "def"));
        const char *oinput = json_string_value(json_object_get(old, "input"));
        uint64_t sde = b->sp->source_date_epoch;
        bool files = j->l->kind == SPEC_LAYER_FILES;

        if (j->l->kind == SPEC_LAYER_RUN || j->l->kind == SPEC_LAYER_PACKAGES)
                return;
        if (files)
                bstamp_files(&b->memo, &j->e, j->in.parent_key, sde, j->stamp);
        else
                bstamp_input(&b->memo, j->l, j->in.parent_key, sde, j->stamp);
        if (b->o->no_cache || j->stamp[0] == '\0' || ostamp == NULL ||
            strcmp(ostamp, j->stamp) != 0 || !digest_valid(okey) || !digest_valid(odef) ||
            !(files || digest_valid(oinput)))
                return;
        memcpy(j->k.key, okey, DIGEST_STR_SIZE);
        memcpy(j->k.def_hash, odef, DIGEST_STR_SIZE);
        if (oinput)
                memcpy(j->k.input_sha256, oinput, DIGEST_STR_SIZE);
        j->stamped = true;
}

/* deb and archive layers' sha256: pin, checked against the input's hash. */
static int layer_pin(bstate *b, const layer_job *j, forge_error **err)
{
        if (j->l->sha256 && strcmp(j->k.input_sha256, j->l->sha256) != 0)
                return spec_error(err, b->sp, j->l->sha256_pos,
                                  "'%s' has sha256 %s but the spec pins %s (update the pin if "
                                  "the new file is intended)",
                                  j->l->src, digest_hex(j->k.input_sha256),
                                  digest_hex(j->l->sha256));
        return 0;
}

static int layer_key(bstate *b, layer_job *j, forge_error **err)
{
        if (j->l->kind == SPEC_LAYER_FILES && bentries_load_caps(&j->e, err) < 0)
                return -1;
        if (bkey_compute(&j->in, &j->k, err) < 0)
                return -1;
        return layer_pin(b, j, err);
}

/* The key, and whether its layer is in the local or the remote cache. The
 * key is computed only when the fingerprint does not give it, or gives one
 * whose layer is gone (gc): then it is computed, once. */
static int layer_lookup(bstate *b, layer_job *j, forge_error **err)
{
        int rr;

        layer_stamp(b, j);
        if (j->stamped && cache_get(b, j->k.key, &j->out) == 1) {
                j->hit = true;
                return layer_pin(b, j, err);
        }
        j->stamped = false;
        if (layer_key(b, j, err) < 0)
                return -1;
        if (b->o->no_cache)
                return 0;
        j->hit = cache_get(b, j->k.key, &j->out) == 1;
        if (j->hit || b->o->remote_cache == NULL)
                return 0;
        rr = registry_cache_lookup(b->o->remote_cache, j->k.key, &j->out, err);
        if (rr <= 0)
                return rr;
        j->hit = j->remote_hit = true;
        if (!b->no_cache_write && cache_put(b, j->k.key, &j->out, err) < 0)
                return -1;
        return 0;
}

/* A cache miss: the entries from the layer's source, placed, written. */
static int layer_make(bstate *b, layer_job *j, forge_error **err)
{
        const spec *sp = b->sp;
        const spec_layer *l = j->l;

        j->why = why_miss(b, j->idx, &j->k, l);
        if (l->kind == SPEC_LAYER_DEB || l->kind == SPEC_LAYER_ARCHIVE) {
                cleanup_free char *spool = fs_path_join(store_root(b->s), "tmp");
                if (spool == NULL || bsrc_archive(sp, l, spool, &j->e, err) < 0 ||
                    bentries_finish(&j->e, (int64_t)sp->source_date_epoch, err) < 0)
                        return -1;
        } else if (l->kind == SPEC_LAYER_RUN) {
                if (build_run(b, l, j->idx, &j->e, err) < 0)
                        return -1;
        } else if (l->kind == SPEC_LAYER_PACKAGES) {
                if (build_packages(b, l, j->idx, j->label ? j->label : "", &j->e, err) < 0)
                        return -1;
        }
        /* a run: step, and dpkg in the sandbox, wrote through the container's view already */
        if (l->kind != SPEC_LAYER_RUN && !(l->kind == SPEC_LAYER_PACKAGES && l->essential) &&
            b->n_layers > 0 && place_entries(b, &j->e, err) < 0)
                return -1;
        if (btar_write(b->s, &j->e, &j->out, err) < 0)
                return -1;
        if (!b->no_cache_write && cache_put(b, j->k.key, &j->out, err) < 0)
                return -1;
        return 0;
}

/* The layer joins the image (and the symlinks map, when just built). */
static int layer_push(bstate *b, layer_job *j, forge_error **err)
{
        if (push_layer(b, &j->out, err) < 0)
                return -1;
        if (b->o->remote_cache != NULL &&
            registry_cache_add(b->o->remote_cache, j->k.key, &j->out, err) < 0)
                return -1;
        if (!j->hit && b->links_upto == b->n_layers - 1) {
                if (blinks_fold_entries(&b->links, &j->e) < 0)
                        return forge_error_make(err, ENOMEM, "layer symlinks");
                b->links_upto++;
        }
        if (j->l->kind == SPEC_LAYER_PACKAGES && below_add(b, &b->pl.layers[j->idx]) < 0)
                return forge_error_make(err, ENOMEM, "build");
        return 0;
}

/* For `forge sbom` (the image's inputs) and the next build (its record). */
static void layer_record(bstate *b, const layer_job *j)
{
        static const char *kinds[] = {"deb", "archive", "files", "run", "packages"};
        const bkey *k = &j->k;
        json_t *rec = json_pack("{s:s, s:s, s:s}", "key", k->key, "parent",
                                b->have_parent ? b->parent_key : "scratch", "def", k->def_hash);

        if (j->l->kind != SPEC_LAYER_PACKAGES) {
                json_t *inp = json_pack("{s:s, s:I, s:s}", "kind", kinds[j->l->kind], "layer",
                                        (json_int_t)j->idx, "diff_id", j->out.diff_id);
                if (j->l->src)
                        json_object_set_new(inp, "name", json_string(j->l->src));
                if (digest_valid(k->input_sha256))
                        json_object_set_new(inp, "sha256", json_string(k->input_sha256));
                json_array_append_new(b->inputs, inp);
        }
        if (j->stamp[0])
                json_object_set_new(rec, "stamp", json_string(j->stamp));
        if (digest_valid(k->input_sha256))
                json_object_set_new(rec, "input", json_string(k->input_sha256));
        json_array_append_new(b->record, rec);
        if (k->inputs && !b->no_cache_write) {
                /* what the inputs were, for naming a changed file next time */
                cleanup_free char *txt = json_dumps(k->inputs, JSON_COMPACT | JSON_SORT_KEYS);
                forge_error *e2 = NULL;
                if (txt == NULL || store_kv_put(b->s, "inputs", digest_hex(k->key), txt, &e2) < 0)
                        forge_error_release(&e2);
        }
}

static void layer_report(bstate *b, const layer_job *j, double t0)
{
        builder_layer_event ev = {0};

        if (b->o->progress == NULL)
                return;
        ev.index = j->idx;
        ev.count = b->sp->n_layers;
        ev.name = j->label ? j->label : "";
        ev.cached = j->hit;
        ev.cached_remote = j->remote_hit;
        ev.why = j->why;
        ev.digest = j->out.digest;
        ev.size = j->out.size;
        ev.usize = j->out.usize;
        ev.seconds = now() - t0;
        b->o->progress(&ev, b->o->progress_data);
}

static int build_layer(bstate *b, size_t idx, forge_error **err)
{
        const spec_layer *l = &b->sp->layers[idx];
        layer_job j = {.idx = idx, .l = l, .label = blayer_label(l)};
        double t0 = now();
        int r = -1;

        bentries_init(&j.e);
        j.in = (bkey_input){b->sp, l, b->have_parent ? b->parent_key : NULL, &j.e, &b->memo, NULL};
        if (layer_inputs(b, &j, err) < 0 || layer_lookup(b, &j, err) < 0 ||
            (!j.hit && layer_make(b, &j, err) < 0) || layer_push(b, &j, err) < 0)
                goto out;
        layer_record(b, &j);
        memcpy(b->parent_key, j.k.key, DIGEST_STR_SIZE);
        b->have_parent = true;
        layer_report(b, &j, t0);
        r = 0;
out:
        /* Spec errors already say SPEC:LINE:COL, which must stay first. */
        if (r < 0 && j.label && *err && (*err)->status != FORGE_EXIT_USAGE)
                forge_error_prefix(err, "build layer %zu '%s'", idx + 1, j.label);
        layer_job_release(&j);
        return r;
}

/* ---- base image, vm, the whole build ---- */

static int build_rec(store *s, const char *path, const builder_opts *o, int depth,
                     bool no_cache_write, bool tag, char ret[DIGEST_STR_SIZE], forge_error **err);

static int load_base(bstate *b, const builder_opts *o, int depth, store_image **ret,
                     forge_error **err)
{
        const spec *sp = b->sp;
        char digest[DIGEST_STR_SIZE];
        forge_error *e = NULL;

        *ret = NULL;
        if (sp->from_kind == SPEC_FROM_SCRATCH)
                return 0;
        if (sp->from_kind == SPEC_FROM_SPEC) {
                if (build_rec(b->s, sp->from_path, o, depth + 1, b->no_cache_write,
                              !b->no_cache_write, digest, err) < 0)
                        return forge_error_prefix(err, "%s:%d:%d: from '%s'", sp->path,
                                                  sp->from_pos.line, sp->from_pos.col, sp->from);
        } else if (sp->from_kind == SPEC_FROM_REMOTE) {
                if (bfrom_remote(b->s, sp, o, digest, err) < 0)
                        return -1;
        } else if (store_resolve(b->s, sp->from, digest, &e) < 0) {
                int r = spec_error(err, sp, sp->from_pos, "'from': %s", e->msg);
                forge_error_release(&e);
                return r;
        }
        if (store_image_load(b->s, digest, ret, err) < 0)
                return forge_error_prefix(err, "from '%s'", sp->from);
        for (size_t i = 0; i < (*ret)->n_layers; i++)
                if (push_layer(b, &(*ret)->layers[i], err) < 0)
                        return -1;
        snprintf(b->parent_key, sizeof(b->parent_key), "%s", digest);
        b->have_parent = true;
        return 0;
}

/* Stores the kernel inputs as blobs; returns {"vm": {...}, "blobs": [...]}. */
static int vm_ext(bstate *b, json_t **ret, forge_error **err)
{
        const spec_vm *vm = &b->sp->vm;
        json_t *ext, *v, *blobs;
        char d[DIGEST_STR_SIZE];

        *ret = NULL;
        if (!vm->present)
                return 0;
        ext = json_object();
        v = json_object();
        blobs = json_array();
        json_object_set_new(ext, "vm", v);
        json_object_set_new(ext, "blobs", blobs);
        *ret = ext;
        if (vm->kernel_deb || vm->kernel_bzimage) {
                const char *p = vm->kernel_deb ? vm->kernel_deb : vm->kernel_bzimage;
                cleanup_close int fd = open(p, O_RDONLY | O_CLOEXEC);
                char h[DIGEST_STR_SIZE];
                if (fd < 0)
                        return spec_error(err, b->sp, b->sp->vm.kernel_pos, "cannot read '%s': %s",
                                          p, strerror(errno));
                if (vm->kernel_sha256) {
                        if (bhash_file(&b->memo, p, h, err) < 0)
                                return -1;
                        if (strcmp(h, vm->kernel_sha256) != 0)
                                return spec_error(err, b->sp, b->sp->vm.kernel_pos,
                                                  "kernel '%s' has sha256 %s but the spec pins %s",
                                                  p, digest_hex(h), digest_hex(vm->kernel_sha256));
                }
                if (store_blob_put_fd(b->s, fd, d, NULL, err) < 0)
                        return forge_error_prefix(err, "store kernel '%s'", p);
                json_object_set_new(v, vm->kernel_deb ? "kernel_deb" : "kernel_bzimage",
                                    json_string(d));
                json_array_append_new(blobs, json_string(d));
        }
        if (vm->kernel_modules) {
                /* The modules tree as a layer-format blob, placed at lib/modules/VERSION. */
                const char *base = strrchr(vm->kernel_modules, '/');
                spec_file f = {0};
                spec_layer l = {0};
                bentries e;
                store_layer out;
                cleanup_free char *dest = NULL;
                int r;
                if (asprintf(&dest, "/lib/modules/%s/", base ? base + 1 : vm->kernel_modules) < 0)
                        return forge_error_make(err, ENOMEM, "vm");
                f.src = vm->kernel_modules;
                f.src_path = vm->kernel_modules;
                f.dest = dest;
                f.mode = -1;
                f.pos = vm->kernel_pos;
                l.kind = SPEC_LAYER_FILES;
                l.files = &f;
                l.n_files = 1;
                bentries_init(&e);
                r = bsrc_files(b->sp, &l, &e, err);
                if (r == 0)
                        r = bentries_finish(&e, (int64_t)b->sp->source_date_epoch, err);
                if (r == 0)
                        r = btar_write(b->s, &e, &out, err);
                bentries_free(&e);
                if (r < 0)
                        return forge_error_prefix(err, "store kernel modules");
                json_object_set_new(v, "kernel_modules", json_string(out.digest));
                json_array_append_new(blobs, json_string(out.digest));
        }
        if (vm->memory)
                json_object_set_new(v, "memory", json_integer((json_int_t)vm->memory));
        if (vm->cpus)
                json_object_set_new(v, "cpus", json_integer(vm->cpus));
        if (vm->disk_size)
                json_object_set_new(v, "disk_size", json_integer((json_int_t)vm->disk_size));
        if (vm->cmdline)
                json_object_set_new(v, "cmdline", json_string(vm->cmdline));
        return 0;
}

static void history(json_t *cfg, const spec *sp, size_t n_base)
{
        json_t *h = json_array();
        json_t *base = json_object_get(cfg, "history");
        const char *created = json_string_value(json_object_get(cfg, "created"));
        size_t i;
        json_t *v;

        json_array_foreach(base, i, v) if (i < n_base) json_array_append(h, v);
        for (i = 0; i < sp->n_layers; i++) {
                char *label = blayer_label(&sp->layers[i]), *by = NULL;
                if (asprintf(&by, "forge: %s", label ? label : "") >= 0)
                        json_array_append_new(
                            h, json_pack("{s:s, s:s}", "created", created, "created_by", by));
                free(by);
                free(label);
        }
        json_object_set_new(cfg, "history", h);
}

/* The spec's name:tag (or --tag) names the image; a tag already naming it
 * is left as it is (no write, no fsync on a no-change rebuild). */
static int tag_image(bstate *b, const char digest[DIGEST_STR_SIZE], forge_error **err)
{
        const char *name = b->sp->name, *t = b->sp->tag;
        cleanup_free char *copy = NULL;
        char cur[DIGEST_STR_SIZE];
        forge_error *e = NULL;

        if (b->o->tag && b->depth == 0) {
                char *colon;
                copy = strdup(b->o->tag);
                if (copy == NULL)
                        return forge_error_make(err, ENOMEM, "tag");
                colon = strchr(copy, ':');
                if (colon) {
                        *colon = '\0';
                        name = copy;
                        t = colon + 1;
                } else {
                        t = copy;
                }
        }
        if (store_tag_get(b->s, name, t, cur, &e) == 0 && strcmp(cur, digest) == 0)
                return 0;
        forge_error_release(&e);
        return store_tag_set(b->s, name, t, digest, err);
}

static int finish_image(bstate *b, const store_image *base, bool tag, char ret[DIGEST_STR_SIZE],
                        forge_error **err)
{
        const spec *sp = b->sp;
        json_t *ext = NULL, *cfg;
        int r;

        if (vm_ext(b, &ext, err) < 0) {
                json_decref(ext);
                return -1;
        }
        if (json_array_size(b->debs) > 0) {
                json_t *blobs;
                if (ext == NULL)
                        ext = json_object();
                blobs = json_object_get(ext, "blobs");
                if (blobs == NULL) {
                        blobs = json_array();
                        json_object_set_new(ext, "blobs", blobs);
                }
                json_array_extend(blobs, b->debs);
                json_object_set(ext, "packages", b->pkgs);
        }
        if (json_array_size(b->inputs) > 0 || sp->from_kind != SPEC_FROM_SCRATCH) {
                if (ext == NULL)
                        ext = json_object();
                if (base != NULL)
                        /* by digest only: from a spec or from its tag is the same image */
                        json_array_insert_new(
                            b->inputs, 0,
                            json_pack("{s:s, s:s}", "kind", "image", "digest", base->digest));
                json_object_set(ext, "inputs", b->inputs);
        }
        cfg = bconfig_make(sp, base ? base->config : NULL, ext);
        json_decref(ext);
        if (cfg == NULL)
                return forge_error_make(err, ENOMEM, "image config");
        if (base && json_is_array(json_object_get(base->config, "history")))
                json_object_set(cfg, "history", json_object_get(base->config, "history"));
        history(cfg, sp, base ? json_array_size(json_object_get(base->config, "history")) : 0);
        r = store_image_put(b->s, cfg, b->layers, b->n_layers, NULL, ret, err);
        json_decref(cfg);
        if (r < 0)
                return -1;
        return tag ? tag_image(b, ret, err) : 0;
}

static void bstate_release(bstate *b)
{
        free(b->below.v);
        pkg_lock_free(&b->pl);
        json_decref(b->debs);
        json_decref(b->pkgs);
        json_decref(b->inputs);
        bmemo_release(&b->memo);
        json_decref(b->prev);
        free(b->prev_text);
        json_decref(b->record);
        for (size_t i = 0; i < b->n_layers; i++)
                free(b->unpacked[i]);
        free(b->unpacked);
        free(b->layers);
        for (size_t i = 0; b->files != NULL && i < b->sp->n_layers; i++)
                bentries_free(&b->files[i]);
        free(b->files);
        blinks_release(&b->links);
}

static int load_prev(bstate *b, char *rec_key, size_t len)
{
        cleanup_free char *val = NULL;
        forge_error *e = NULL;
        json_t *j;

        snprintf(rec_key, len, "%s:%s", b->sp->name, b->sp->tag);
        if (store_kv_get(b->s, "builds", rec_key, &val, &e) <= 0) {
                forge_error_release(&e);
                return 0;
        }
        j = json_loads(val, 0, NULL);
        b->prev = json_incref(json_object_get(j, "layers"));
        json_decref(j);
        b->prev_text = take_ptr(val);
        return 0;
}

/* A spec error must leave the store as it was: everything that can be
 * checked (for the specs of the from: chain too) is, before the first write.
 * The files: entries collected on the way are kept for the build. */
static int check_all(bstate *b, forge_error **err)
{
        size_t n = b->sp->n_layers;

        b->files = calloc(n ? n : 1, sizeof(*b->files));
        if (b->files == NULL)
                return forge_error_make(err, ENOMEM, "build");
        for (size_t i = 0; i < n; i++)
                bentries_init(&b->files[i]);
        return bcheck_spec(b->s, b->sp, b->o, &b->memo, b->files, err);
}

static int build_rec(store *s, const char *path, const builder_opts *o, int depth,
                     bool no_cache_write, bool tag, char ret[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_spec spec *sp = NULL;
        cleanup_store_image store_image *base = NULL;
        bstate b = {0};
        char rec_key[300];
        int r = -1;

        if (depth > BUILDER_MAX_FROM_DEPTH)
                return forge_error_usage(err, "%s: 'from' specs nest more than %d deep (a loop?)",
                                         path, BUILDER_MAX_FROM_DEPTH);
        if (spec_load(path, &sp, err) < 0)
                return -1;
        b.s = s;
        b.o = o;
        b.sp = sp;
        b.depth = depth;
        b.no_cache_write = no_cache_write;
        b.record = json_array();
        b.debs = json_array();
        b.pkgs = json_array();
        b.inputs = json_array();
        if (b.record == NULL || b.debs == NULL || b.pkgs == NULL || b.inputs == NULL) {
                forge_error_make(err, ENOMEM, "build");
                goto out;
        }
        bmemo_init(s, sp, &b.memo);
        if (depth == 0 && check_all(&b, err) < 0)
                goto out;
        if (prepare_packages(&b, err) < 0)
                goto out;
        load_prev(&b, rec_key, sizeof(rec_key));
        if (load_base(&b, o, depth, &base, err) < 0)
                goto out;
        for (size_t i = 0; i < sp->n_layers; i++)
                if (build_layer(&b, i, err) < 0)
                        goto out;
        if (finish_image(&b, base, tag, ret, err) < 0)
                goto out;
        if (!no_cache_write) {
                json_t *rec = json_pack("{s:O}", "layers", b.record);
                cleanup_free char *txt =
                    rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                forge_error *e = NULL;
                json_decref(rec);
                /* Records only improve messages: failing to write them fails nothing. */
                if (txt != NULL && (b.prev_text == NULL || strcmp(txt, b.prev_text) != 0) &&
                    store_kv_put(s, "builds", rec_key, txt, &e) < 0)
                        forge_error_release(&e);
                if (bmemo_save(s, &b.memo, &e) < 0)
                        forge_error_release(&e);
        }
        r = 0;
out:
        bstate_release(&b);
        return r;
}

int builder_build(store *s, const char *spec_path, const builder_opts *opts,
                  char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        int r;

        if (store_lock_shared(s, err) < 0)
                return -1;
        r = build_rec(s, spec_path, opts, 0, false, true, ret_digest, err);
        store_unlock(s);
        return r;
}

int builder_rebuild_untagged(store *s, const char *spec_path, const builder_opts *opts,
                             char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        builder_opts o = *opts;
        int r;

        o.no_cache = true;
        if (store_lock_shared(s, err) < 0)
                return -1;
        r = build_rec(s, spec_path, &o, 0, true, false, ret_digest, err);
        store_unlock(s);
        return r;
}

int builder_lock(store *s, const char *spec_path, size_t *ret_n, forge_error **err)
{
        cleanup_spec spec *sp = NULL;
        pkg_lock pl = {0};
        json_t *lock = NULL;
        size_t n = 0;
        int r;

        if (spec_load(spec_path, &sp, err) < 0)
                return -1;
        for (size_t i = 0; i < sp->n_layers; i++)
                n += sp->layers[i].kind == SPEC_LAYER_PACKAGES;
        if (n == 0 && sp->from_kind != SPEC_FROM_REMOTE)
                return forge_error_usage(err,
                                         "%s: no 'packages' layers and no registry 'from': "
                                         "nothing to lock",
                                         spec_path);
        if (store_lock_shared(s, err) < 0)
                return -1;
        r = builder_lock_load(sp, &lock, err);
        if (r == 0)
                lock = json_object();
        if (r >= 0 && lock == NULL)
                r = forge_error_make(err, ENOMEM, "lock");
        if (r >= 0 && n > 0)
                r = pkg_lock_resolve(s, sp, &pl, err);
        if (r >= 0 && n > 0)
                r = pkg_lock_to_json(sp, &pl, lock, err);
        if (r >= 0 && sp->from_kind == SPEC_FROM_REMOTE)
                r = bfrom_pin(s, sp, NULL, lock, err);
        if (r >= 0)
                r = builder_lock_save(sp, lock, err);
        store_unlock(s);
        n = 0;
        for (size_t i = 0; i < pl.n_layers; i++)
                n += pl.layers[i].n;
        pkg_lock_free(&pl);
        json_decref(lock);
        if (r < 0)
                return -1;
        if (ret_n)
                *ret_n = n;
        return 0;
}
