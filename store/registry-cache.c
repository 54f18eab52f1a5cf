/* SPDX-License-Identifier: MIT */
/*
 * The build's layer cache kept in a registry (forge build --cache-to REF
 * --cache-from REF): an OCI manifest whose config
 * (application/vnd.dev.forge.cache.config.v1+json) maps layer cache keys to
 * layers, and whose layers are those layers. See docs/registry.md.
 *
 * What an imported artifact says is untrusted: an entry is used only if its
 * layer is one of the manifest's descriptors (digest and size), and the blob
 * is verified when it is downloaded, like any pulled blob.
 */
#include "store/registry-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

#define CACHE_VERSION 1
#define MAX_SOURCES 16

typedef struct cache_source {
        reg_session *s;
        char *repo;
        json_t *entries; /* key -> entry object */
        json_t *sizes;   /* layer digest -> size, from the manifest */
} cache_source;

struct registry_cache {
        store *st;
        const registry_opts *o;
        cache_source src[MAX_SOURCES];
        size_t n_src;
        json_t *added;      /* [entry...] in build order */
        json_t *added_keys; /* key -> true */
};

int registry_cache_new(store *s, const registry_opts *o, registry_cache **ret, forge_error **err)
{
        registry_cache *c = calloc(1, sizeof(*c));

        /* a record appended to a NULL array would be lost without a word */
        if (c == NULL || (c->added = json_array()) == NULL ||
            (c->added_keys = json_object()) == NULL) {
                registry_cache_free(c);
                return forge_error_make(err, ENOMEM, "cache");
        }
        c->st = s;
        c->o = o;
        *ret = c;
        return 0;
}

static void cache_source_release(cache_source *src)
{
        reg_session_free(src->s);
        free(src->repo);
        json_decref(src->entries);
        json_decref(src->sizes);
        memset(src, 0, sizeof(*src));
}

void registry_cache_free(registry_cache *c)
{
        if (c == NULL)
                return;
        for (size_t i = 0; i < c->n_src; i++)
                cache_source_release(&c->src[i]);
        json_decref(c->added);
        json_decref(c->added_keys);
        free(c);
}

static bool layer_type(const char *mt)
{
        return mt != NULL &&
               (strcmp(mt, STORE_MEDIA_LAYER_ZSTD) == 0 ||
                strcmp(mt, STORE_MEDIA_LAYER_GZIP) == 0 || strcmp(mt, STORE_MEDIA_LAYER_TAR) == 0 ||
                strcmp(mt, REGISTRY_MEDIA_DOCKER_LAYER_GZIP) == 0);
}

/* Keeps the config's entries whose layer the manifest lists. */
static int read_entries(cache_source *src, const registry_manifest *m, const char *cfg, size_t len,
                        forge_error **err)
{
        cleanup_json json_t *j = json_loadb(cfg, len, 0, NULL);
        json_t *layers = json_object_get(j, "layers"), *e;
        size_t i;

        if (!json_is_integer(json_object_get(j, "forge_cache_version")) || !json_is_array(layers))
                return forge_error_make(err, EBADMSG, "the cache config is not forge's");
        src->entries = json_object();
        src->sizes = json_object();
        for (i = 0; i < m->n_layers; i++)
                json_object_set_new(src->sizes, m->layers[i].digest,
                                    json_integer((json_int_t)m->layers[i].size));
        json_array_foreach(layers, i, e)
        {
                const char *key = json_string_value(json_object_get(e, "key"));
                const char *d = json_string_value(json_object_get(e, "digest"));
                json_t *size = json_object_get(src->sizes, d ? d : "");
                if (!digest_valid(key) || !digest_valid(d) ||
                    !digest_valid(json_string_value(json_object_get(e, "diff_id"))) ||
                    !layer_type(json_string_value(json_object_get(e, "media_type"))) ||
                    size == NULL ||
                    json_integer_value(size) != json_integer_value(json_object_get(e, "size")))
                        continue;
                json_object_set(src->entries, key, e);
        }
        return 0;
}

static int import_ref(registry_cache *c, const registry_ref *ref, cache_source *src,
                      forge_error **err)
{
        cleanup_registry_manifest registry_manifest m = {0};
        cleanup_free char *body = NULL, *cfg = NULL;
        char digest[DIGEST_STR_SIZE];
        size_t len, clen;
        forge_error *e = NULL;

        if (reg_session_open(ref->host, c->o, &src->s, err) < 0)
                return -1;
        if (reg_manifest_get(
                c->st, src->s, c->o, ref->repo, ref->digest[0] ? ref->digest : ref->tag,
                ref->digest[0] ? ref->digest : NULL, &m, digest, &body, &len, &e) < 0) {
                if (e->errnum == ENOENT) { /* no cache there yet */
                        forge_error_release(&e);
                        return 0;
                }
                *err = e;
                return -1;
        }
        if (m.kind != REGISTRY_KIND_IMAGE ||
            strcmp(m.config.media_type, REGISTRY_MEDIA_CACHE_CONFIG) != 0)
                return forge_error_make(err, EBADMSG, "it is not a forge cache (config '%s')",
                                        m.config.media_type);
        if (reg_blob_fetch(c->st, src->s, c->o, ref->repo, &m.config, REGISTRY_MAX_CONFIG, err) <
                0 ||
            store_blob_read(c->st, m.config.digest, REGISTRY_MAX_CONFIG, &cfg, &clen, err) < 0)
                return -1;
        src->repo = strdup(ref->repo);
        if (src->repo == NULL)
                return forge_error_make(err, ENOMEM, "cache");
        return read_entries(src, &m, cfg, clen, err);
}

int registry_cache_import(registry_cache *c, const char *refstr, forge_error **err)
{
        cleanup_registry_ref registry_ref ref = {0};
        cache_source *src;

        if (registry_ref_parse(refstr, &ref, err) < 0)
                return -1;
        if (c->n_src == MAX_SOURCES)
                return forge_error_usage(err, "at most %d --cache-from", MAX_SOURCES);
        src = &c->src[c->n_src];
        memset(src, 0, sizeof(*src));
        if (import_ref(c, &ref, src, err) < 0) {
                cache_source_release(src);
                return forge_error_prefix(err, "cache from '%s'", refstr);
        }
        if (src->entries == NULL) {
                cache_source_release(src);
                return 0;
        }
        c->n_src++;
        return 0;
}

static void entry_layer(json_t *e, store_layer *l)
{
        memset(l, 0, sizeof(*l));
        snprintf(l->digest, sizeof(l->digest), "%s",
                 json_string_value(json_object_get(e, "digest")));
        snprintf(l->diff_id, sizeof(l->diff_id), "%s",
                 json_string_value(json_object_get(e, "diff_id")));
        snprintf(l->media_type, sizeof(l->media_type), "%s",
                 json_string_value(json_object_get(e, "media_type")));
        l->size = (uint64_t)json_integer_value(json_object_get(e, "size"));
        l->usize = (uint64_t)json_integer_value(json_object_get(e, "usize"));
}

int registry_cache_lookup(registry_cache *c, const char *key, store_layer *ret, forge_error **err)
{
        for (size_t i = 0; i < c->n_src; i++) {
                json_t *e = json_object_get(c->src[i].entries, key);
                registry_descriptor d = {0};
                store_layer l;
                if (e == NULL)
                        continue;
                entry_layer(e, &l);
                memcpy(d.digest, l.digest, DIGEST_STR_SIZE);
                snprintf(d.media_type, sizeof(d.media_type), "%s", l.media_type);
                d.size = l.size;
                if (reg_blob_fetch(c->st, c->src[i].s, c->o, c->src[i].repo, &d, 0, err) < 0)
                        return forge_error_prefix(err, "cache layer %s", l.digest);
                *ret = l;
                return 1;
        }
        return 0;
}

int registry_cache_add(registry_cache *c, const char *key, const store_layer *l, forge_error **err)
{
        json_t *e;

        if (json_object_get(c->added_keys, key) != NULL)
                return 0;
        e = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "key", key, "digest", l->digest, "diff_id",
                      l->diff_id, "size", (json_int_t)l->size, "usize", (json_int_t)l->usize,
                      "media_type", l->media_type[0] ? l->media_type : STORE_MEDIA_LAYER_ZSTD);
        if (e == NULL || json_array_append_new(c->added, e) < 0)
                return forge_error_make(err, ENOMEM, "cache");
        json_object_set_new(c->added_keys, key, json_true());
        return 0;
}

#define DEFAULT_MAX_ENTRIES 1024

/* At most this many entries in an artifact (FORGE_REGISTRY_CACHE_ENTRIES
 * changes it, for tests): the oldest go first. */
static size_t max_entries(void)
{
        const char *v = getenv("FORGE_REGISTRY_CACHE_ENTRIES");
        long n = v ? strtol(v, NULL, 10) : 0;
        return n > 0 && n <= 65536 ? (size_t)n : DEFAULT_MAX_ENTRIES;
}

/* The entries of the cache already at ref, oldest first (a key -> entry
 * object, checked as an import checks them), or NULL when there is none. A
 * ref that holds something else is an error: it is not overwritten. */
static int existing_entries(registry_cache *c, const registry_ref *ref, json_t **ret,
                            forge_error **err)
{
        cache_source src = {0};
        int r;

        *ret = NULL;
        r = import_ref(c, ref, &src, err);
        if (r == 0)
                *ret = take_ptr(src.entries);
        cache_source_release(&src);
        if (r < 0)
                return forge_error_prefix(err, "the artifact there (it is not overwritten)");
        return 0;
}

/* What the new artifact lists: the old entries this build did not make
 * again (in their order), then this build's (the newest win a key), the
 * oldest dropped beyond the cap. */
static json_t *merge_entries(registry_cache *c, json_t *old)
{
        cleanup_json json_t *all = json_array();
        json_t *e, *out;
        const char *key;
        size_t i, max = max_entries(), skip;

        if (all == NULL)
                return NULL;
        json_object_foreach(old, key, e)
        {
                if (json_object_get(c->added_keys, key) == NULL)
                        json_array_append(all, e);
        }
        json_array_extend(all, c->added);
        skip = json_array_size(all) > max ? json_array_size(all) - max : 0;
        out = json_array();
        json_array_foreach(all, i, e)
        {
                if (i >= skip && out != NULL)
                        json_array_append(out, e);
        }
        return out;
}

int registry_cache_export(registry_cache *c, const char *refstr, forge_error **err)
{
        cleanup_registry_ref registry_ref ref = {0};
        cleanup_json json_t *cfg = NULL, *man = NULL, *old = NULL, *entries = NULL;
        cleanup_json json_t *descs = json_array(), *seen = json_object();
        json_t *e;
        cleanup_free char *cfg_txt = NULL, *man_txt = NULL;
        cleanup_free char(*digests)[DIGEST_STR_SIZE] = NULL;
        cleanup_free uint64_t *sizes = NULL;
        char cfg_digest[DIGEST_STR_SIZE], man_digest[DIGEST_STR_SIZE];
        size_t cfg_len, man_len, n = 1, i;
        bool was_locked = c->st->lock_mode != 0;
        int r = -1;

        if (registry_ref_parse(refstr, &ref, err) < 0)
                return -1;
        if (!was_locked && store_lock_shared(c->st, err) < 0)
                goto out;
        if (existing_entries(c, &ref, &old, err) < 0)
                goto unlock;
        entries = merge_entries(c, old);
        cfg = entries ? json_pack("{s:i, s:s, s:O}", "forge_cache_version", CACHE_VERSION,
                                  "mediaType", REGISTRY_MEDIA_CACHE_CONFIG, "layers", entries)
                      : NULL;
        digests = entries ? calloc(json_array_size(entries) + 1, sizeof(*digests)) : NULL;
        sizes = entries ? calloc(json_array_size(entries) + 1, sizeof(*sizes)) : NULL;
        cfg_txt = cfg ? store_json_canonical(cfg, &cfg_len) : NULL;
        if (cfg_txt == NULL || digests == NULL || sizes == NULL || descs == NULL || seen == NULL) {
                forge_error_make(err, ENOMEM, "cache");
                goto unlock;
        }
        if (store_blob_put(c->st, cfg_txt, cfg_len, cfg_digest, err) < 0)
                goto unlock;
        memcpy(digests[0], cfg_digest, DIGEST_STR_SIZE);
        sizes[0] = cfg_len;
        json_array_foreach(entries, i, e)
        {
                const char *d = json_string_value(json_object_get(e, "digest"));
                if (json_object_get(seen, d) != NULL)
                        continue;
                json_object_set_new(seen, d, json_true());
                json_array_append_new(descs,
                                      json_pack("{s:s, s:s, s:O}", "mediaType",
                                                json_string_value(json_object_get(e, "media_type")),
                                                "digest", d, "size", json_object_get(e, "size")));
                /* an old entry's layer may be only in the registry */
                sizes[n] = (uint64_t)json_integer_value(json_object_get(e, "size"));
                memcpy(digests[n++], d, DIGEST_STR_SIZE);
        }
        man = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType",
                        STORE_MEDIA_MANIFEST, "artifactType", REGISTRY_MEDIA_CACHE_CONFIG, "config",
                        "mediaType", REGISTRY_MEDIA_CACHE_CONFIG, "digest", cfg_digest, "size",
                        (json_int_t)cfg_len, "layers", descs);
        man_txt = man ? store_json_canonical(man, &man_len) : NULL;
        if (man_txt == NULL) {
                forge_error_make(err, ENOMEM, "cache");
                goto unlock;
        }
        if (store_blob_put(c->st, man_txt, man_len, man_digest, err) < 0)
                goto unlock;
        r = reg_push_manifest(c->st, &ref, (const char(*)[DIGEST_STR_SIZE])digests, sizes, n,
                              man_txt, man_len, STORE_MEDIA_MANIFEST, man_digest, c->o, err);
unlock:
        if (!was_locked)
                store_unlock(c->st);
out:
        if (r < 0)
                return forge_error_prefix(err, "cache to '%s'", refstr);
        return 0;
}
