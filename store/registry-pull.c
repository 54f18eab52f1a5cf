/* SPDX-License-Identifier: MIT */
/*
 * forge pull: manifest (an index resolved to this host's platform), config,
 * layers in parallel. A blob is downloaded into tmp/pull-HEX (kept across
 * crashes, so the next pull resumes it with a Range request), hashed, and
 * renamed into blobs/ only when its digest and size are the descriptor's.
 * The manifest is stored last, the tag after it: a pull killed at any moment
 * leaves the store consistent.
 */
#include "store/registry-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/image-name.h"
#include "common/pool.h"

#define ACCEPT_MANIFESTS                                                                           \
        "Accept: application/vnd.oci.image.manifest.v1+json, "                                     \
        "application/vnd.oci.image.index.v1+json, "                                                \
        "application/vnd.docker.distribution.manifest.v2+json, "                                   \
        "application/vnd.docker.distribution.manifest.list.v2+json"
#define MAX_REDIRECTS 5

typedef struct pull_ctx {
        reg_repo r;
        const registry_descriptor *layers;
        size_t n_layers;
} pull_ctx;

static void emit(const registry_opts *o, const char *what, size_t index, size_t count,
                 const char *digest, uint64_t now, uint64_t total, const char *state)
{
        registry_progress_event ev = {what, index, count, digest, now, total, state};
        if (o->progress)
                o->progress(&ev, o->userdata);
}

static bool layer_media_ok(const char *mt)
{
        return strcmp(mt, STORE_MEDIA_LAYER_TAR) == 0 || strcmp(mt, STORE_MEDIA_LAYER_GZIP) == 0 ||
               strcmp(mt, STORE_MEDIA_LAYER_ZSTD) == 0 ||
               strcmp(mt, REGISTRY_MEDIA_DOCKER_LAYER_GZIP) == 0 ||
               strcmp(mt, "application/vnd.docker.image.rootfs.diff.tar") == 0;
}

/* GET a manifest by tag or digest; checks the body's digest against what was
 * asked and against Docker-Content-Digest. */
static int get_manifest(pull_ctx *c, const char *reference, const char *want_digest,
                        registry_manifest *ret, char ret_digest[DIGEST_STR_SIZE], char **ret_body,
                        size_t *ret_len, forge_error **err)
{
        cleanup_http_response http_response r = {0};
        cleanup_free char *path = NULL;
        const char *hdrs[] = {ACCEPT_MANIFESTS, NULL};
        const char *dcd;
        http_request rq;

        if (asprintf(&path, "/v2/%s/manifests/%s", c->r.repo, reference) < 0)
                return forge_error_make(err, ENOMEM, "pull");
        http_request_init(&rq, path);
        rq.headers = hdrs;
        rq.max_body = REGISTRY_MAX_MANIFEST;
        rq.max_redirects = MAX_REDIRECTS;
        if (reg_do(c->r.s, c->r.scope, &rq, &r, err) < 0)
                return forge_error_prefix(err, "manifest '%s'", reference);
        if (r.status != 200)
                return reg_status_error(err, &r, "manifest");
        hash_sha256_buf(r.body ? r.body : "", r.body_len, ret_digest);
        if (want_digest != NULL && strcmp(want_digest, ret_digest) != 0)
                return forge_error_make(err, EBADMSG,
                                        "manifest %s: the registry sent content "
                                        "that hashes to %s",
                                        want_digest, ret_digest);
        dcd = http_response_header(&r, "docker-content-digest");
        if (dcd != NULL && strncmp(dcd, "sha256:", 7) == 0 && strcmp(dcd, ret_digest) != 0)
                return forge_error_make(err, EBADMSG,
                                        "manifest '%s': Docker-Content-Digest is "
                                        "%.80s but the content hashes to %s",
                                        reference, dcd, ret_digest);
        if (registry_manifest_parse(r.body ? r.body : "", r.body_len,
                                    http_response_header(&r, "content-type"), ret, err) < 0)
                return forge_error_prefix(err, "manifest '%s'", reference);
        *ret_body = take_ptr(r.body);
        *ret_len = r.body_len;
        return 0;
}

typedef struct blob_progress {
        pull_ctx *c;
        const registry_descriptor *d;
        const char *what;
        size_t index;
        uint64_t base; /* bytes there before this request (a resume) */
} blob_progress;

static void progress_cb(void *userdata, uint64_t now, uint64_t total)
{
        blob_progress *p = userdata;

        (void)total;
        emit(p->c->r.o, p->what, p->index, p->c->n_layers, p->d->digest, p->base + now, p->d->size,
             "downloading");
}

/* The store has the blob: the descriptor must give its size too (a
 * manifest whose sizes lie is refused even when nothing is downloaded). */
static int have_blob(pull_ctx *c, const registry_descriptor *d, const char *what, size_t index,
                     forge_error **err)
{
        uint64_t size;

        if (store_blob_size(c->r.st, d->digest, &size, err) < 0)
                return -1;
        if (size != d->size)
                return forge_error_make(err, EBADMSG,
                                        "%s %s: the manifest says %llu bytes, the "
                                        "blob has %llu",
                                        what, d->digest, (unsigned long long)d->size,
                                        (unsigned long long)size);
        emit(c->r.o, what, index, c->n_layers, d->digest, d->size, d->size, "exists");
        return 0;
}

/* Fetches the blob into tmp/pull-HEX (resuming what is there), verifies it
 * and names it in the store. */
static int fetch_blob(pull_ctx *c, const registry_descriptor *d, const char *what, size_t index,
                      uint64_t cap, forge_error **err)
{
        cleanup_http_response http_response r = {0};
        cleanup_free char *path = NULL;
        cleanup_close int fd = -1;
        char rel[128], dest[128], got[DIGEST_STR_SIZE];
        const char *dcd;
        http_request rq;
        struct stat st;
        off_t have;
        blob_progress bp;

        if (cap > 0 && d->size > cap)
                return forge_error_make(err, EFBIG, "%s %s is %llu bytes (at most %llu)", what,
                                        d->digest, (unsigned long long)d->size,
                                        (unsigned long long)cap);
        if (store_blob_exists(c->r.st, d->digest))
                return have_blob(c, d, what, index, err);
        snprintf(rel, sizeof(rel), "tmp/pull-%s", digest_hex(d->digest));
        store_blob_relpath(d->digest, dest, sizeof(dest));
        fd = openat(store_root_fd(c->r.st), rel, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return forge_error_make(err, errno, "pull: create '%s/%s'", store_root(c->r.st),
                                        rel);
        /* another pull of the same blob: wait for it, then it may be there */
        if (flock(fd, LOCK_EX) < 0)
                return forge_error_make(err, errno, "pull: lock '%s'", rel);
        if (store_blob_exists(c->r.st, d->digest)) {
                unlinkat(store_root_fd(c->r.st), rel, 0);
                return have_blob(c, d, what, index, err);
        }
        if (fstat(fd, &st) < 0)
                return forge_error_make(err, errno, "pull: stat '%s'", rel);
        have = st.st_size;
        if ((uint64_t)have > d->size) {
                if (ftruncate(fd, 0) < 0)
                        return forge_error_make(err, errno, "pull: truncate '%s'", rel);
                have = 0;
        }
        if (lseek(fd, have, SEEK_SET) < 0)
                return forge_error_make(err, errno, "pull: seek '%s'", rel);
        if ((uint64_t)have < d->size) {
                emit(c->r.o, what, index, c->n_layers, d->digest, (uint64_t)have, d->size,
                     have ? "resuming" : "downloading");
                if (asprintf(&path, "/v2/%s/blobs/%s", c->r.repo, d->digest) < 0)
                        return forge_error_make(err, ENOMEM, "pull");
                http_request_init(&rq, path);
                rq.out_fd = fd;
                rq.range_from = (uint64_t)have;
                /* at most the whole blob, whatever the server claims */
                rq.max_body = d->size > 0 ? d->size : 1;
                rq.max_redirects = MAX_REDIRECTS;
                bp = (blob_progress){c, d, what, index, (uint64_t)have};
                rq.progress = progress_cb;
                rq.userdata = &bp;
                if (reg_do(c->r.s, c->r.scope, &rq, &r, err) < 0)
                        return forge_error_prefix(err, "%s %s", what, d->digest);
                if (r.status != 200 && r.status != 206)
                        return reg_status_error(err, &r, what);
                dcd = http_response_header(&r, "docker-content-digest");
                if (dcd != NULL && strncmp(dcd, "sha256:", 7) == 0 && strcmp(dcd, d->digest) != 0) {
                        unlinkat(store_root_fd(c->r.st), rel, 0);
                        return forge_error_make(err, EBADMSG,
                                                "%s %s: the registry says it sent "
                                                "%.80s",
                                                what, d->digest, dcd);
                }
        }
        if (fstat(fd, &st) < 0)
                return forge_error_make(err, errno, "pull: stat '%s'", rel);
        if ((uint64_t)st.st_size > d->size) {
                unlinkat(store_root_fd(c->r.st), rel, 0);
                return forge_error_make(err, EBADMSG,
                                        "%s %s: the registry sent %llu bytes, the "
                                        "manifest says %llu (nothing was stored)",
                                        what, d->digest, (unsigned long long)st.st_size,
                                        (unsigned long long)d->size);
        }
        if ((uint64_t)st.st_size != d->size)
                return forge_error_make(err, EBADMSG,
                                        "%s %s: got %llu of %llu bytes (a "
                                        "truncated answer; pull again to resume)",
                                        what, d->digest, (unsigned long long)st.st_size,
                                        (unsigned long long)d->size);
        if (lseek(fd, 0, SEEK_SET) < 0 || hash_sha256_fd(fd, got, err) < 0)
                return forge_error_prefix(err, "pull: hash '%s'", rel);
        if (strcmp(got, d->digest) != 0) {
                unlinkat(store_root_fd(c->r.st), rel, 0);
                return forge_error_make(err, EBADMSG,
                                        "%s %s: the registry sent content that "
                                        "hashes to %s (nothing was stored)",
                                        what, d->digest, got);
        }
        if (fchmod(fd, 0444) < 0 || fsync(fd) < 0)
                return forge_error_make(err, errno, "pull: write '%s'", rel);
        if (store_commit_file(c->r.st, rel, dest, err) < 0)
                return -1;
        emit(c->r.o, what, index, c->n_layers, d->digest, d->size, d->size, "done");
        return 0;
}

static int fetch_layer(void *ctx, size_t i, forge_error **err)
{
        pull_ctx *c = ctx;

        if (fetch_blob(c, &c->layers[i], "layer", i, 0, err) < 0)
                return forge_error_prefix(err, "layer %zu", i + 1);
        return 0;
}

static int fetch_layers(pull_ctx *c, forge_error **err)
{
        return pool_run(c->n_layers, c->r.o->parallel, fetch_layer, c, err);
}

/* The config must describe the manifest's layers (as the store expects). */
static int check_config(store *st, const registry_manifest *m, forge_error **err)
{
        cleanup_free char *buf = NULL;
        size_t len;
        cleanup_json json_t *j = NULL;
        json_t *ids;
        int r = 0;

        if (store_blob_read(st, m->config.digest, REGISTRY_MAX_CONFIG, &buf, &len, err) < 0)
                return -1;
        j = json_loadb(buf, len, 0, NULL);
        ids = json_object_get(json_object_get(j, "rootfs"), "diff_ids");
        if (!json_is_object(j) || !json_is_array(ids) || json_array_size(ids) != m->n_layers) {
                r = forge_error_make(err, EBADMSG,
                                     "config %s: rootfs.diff_ids does not list the "
                                     "manifest's %zu layers",
                                     m->config.digest, m->n_layers);
        } else {
                for (size_t i = 0; i < m->n_layers && r == 0; i++)
                        if (!digest_valid(json_string_value(json_array_get(ids, i))))
                                r = forge_error_make(err, EBADMSG,
                                                     "config %s: diff_id %zu is not "
                                                     "a sha256 digest",
                                                     m->config.digest, i + 1);
        }
        return r;
}

static int check_media(const registry_manifest *m, forge_error **err)
{
        if (strcmp(m->config.media_type, STORE_MEDIA_CONFIG) != 0 &&
            strcmp(m->config.media_type, REGISTRY_MEDIA_DOCKER_CONFIG) != 0)
                return forge_error_make(err, ENOTSUP,
                                        "the manifest's config is '%s', not an "
                                        "image config (an artifact, not an image?)",
                                        m->config.media_type);
        for (size_t i = 0; i < m->n_layers; i++) {
                if (!layer_media_ok(m->layers[i].media_type))
                        return forge_error_make(err, ENOTSUP,
                                                "layer %zu has media type '%s' "
                                                "(expected a tar, gzip or zstd "
                                                "layer)",
                                                i + 1, m->layers[i].media_type);
                if (strlen(m->layers[i].media_type) >= sizeof(((store_layer *)0)->media_type))
                        return forge_error_make(err, ENOTSUP, "layer %zu: media type too long",
                                                i + 1);
        }
        return 0;
}

int reg_blob_fetch(store *st, reg_session *s, const registry_opts *o, const char *repo,
                   const registry_descriptor *d, uint64_t cap, forge_error **err)
{
        pull_ctx c = {0};

        reg_repo_init(&c.r, st, s, o, repo, "pull");
        return fetch_blob(&c, d, "blob", 0, cap, err);
}

int reg_manifest_get(store *st, reg_session *s, const registry_opts *o, const char *repo,
                     const char *reference, const char *want_digest, registry_manifest *ret,
                     char ret_digest[DIGEST_STR_SIZE], char **ret_body, size_t *ret_len,
                     forge_error **err)
{
        pull_ctx c = {0};

        reg_repo_init(&c.r, st, s, o, repo, "pull");
        return get_manifest(&c, reference, want_digest, ret, ret_digest, ret_body, ret_len, err);
}

static int local_tag(const registry_ref *ref, const registry_opts *o, char *name, size_t nlen,
                     char *tag, size_t tlen, forge_error **err)
{
        const char *want = o->local_tag;
        const char *slash = strrchr(ref->repo, '/');

        if (want != NULL) {
                const char *colon = strchr(want, ':');
                snprintf(name, nlen, "%.*s", colon ? (int)(colon - want) : (int)strlen(want), want);
                snprintf(tag, tlen, "%s", colon ? colon + 1 : "latest");
        } else {
                snprintf(name, nlen, "%s", slash ? slash + 1 : ref->repo);
                snprintf(tag, tlen, "%s", ref->tag ? ref->tag : "");
        }
        if (!image_name_valid(name) || (tag[0] != '\0' && !image_tag_valid(tag)))
                return forge_error_usage(err,
                                         "'%s:%s' is not a valid local image name (give "
                                         "--tag NAME:TAG)",
                                         name, tag);
        return 0;
}

#define KV_REFS "registry-ref"

/* A tag reference's record in kv/registry-ref: named by the sha256 of
 * "HOST/REPO:TAG" (any length fits), holding {"ref": ..., "digest": ...}.
 * A ref with a digest needs none: the digest names the image. */
static bool ref_key(const registry_ref *ref, char **ret_ref, char key[DIGEST_STR_SIZE])
{
        char h[DIGEST_STR_SIZE];

        if (ref->tag == NULL || ref->digest[0] ||
            asprintf(ret_ref, "%s/%s:%s", ref->host, ref->repo, ref->tag) < 0)
                return false;
        hash_sha256_buf(*ret_ref, strlen(*ret_ref), h);
        snprintf(key, DIGEST_STR_SIZE, "%s", digest_hex(h));
        return true;
}

/* Remembers what a pull of ref stored, so that `forge run REF` finds it
 * again without asking the registry. */
static int record_ref(store *st, const registry_ref *ref, const char *digest, forge_error **err)
{
        cleanup_free char *name = NULL, *txt = NULL;
        char key[DIGEST_STR_SIZE];
        cleanup_json json_t *j = NULL;

        if (!ref_key(ref, &name, key))
                return 0;
        j = json_pack("{s:s, s:s}", "ref", name, "digest", digest);
        txt = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        if (txt == NULL)
                return forge_error_make(err, ENOMEM, "record '%s'", name);
        if (store_kv_put(st, KV_REFS, key, txt, err) < 0)
                return forge_error_prefix(err, "record '%s'", name);
        return 0;
}

/* The image is in the store with its config and every layer (gc may have
 * dropped an untagged one since it was pulled). */
static bool image_complete(store *st, const char *digest)
{
        store_image *img = NULL;
        forge_error *e = NULL;
        bool ok;

        if (!digest_valid(digest) || !store_blob_exists(st, digest) ||
            store_image_load(st, digest, &img, &e) < 0) {
                forge_error_release(&e);
                return false;
        }
        ok = store_blob_exists(st, img->config_digest);
        for (size_t i = 0; ok && i < img->n_layers; i++)
                ok = store_blob_exists(st, img->layers[i].digest);
        store_image_free(img);
        return ok;
}

/* The image a pull of ref stored, when the store still has all of it:
 * 1 with ret filled, else 0. */
static int local_image(store *st, const registry_ref *ref, char ret[DIGEST_STR_SIZE],
                       forge_error **err)
{
        cleanup_free char *name = NULL, *v = NULL;
        char key[DIGEST_STR_SIZE];
        const char *d, *rec;
        cleanup_json json_t *j = NULL;
        int r;

        if (ref->digest[0]) {
                if (!image_complete(st, ref->digest))
                        return 0;
                memcpy(ret, ref->digest, DIGEST_STR_SIZE);
                return 1;
        }
        if (!ref_key(ref, &name, key))
                return 0;
        r = store_kv_get(st, KV_REFS, key, &v, err);
        if (r <= 0)
                return r;
        j = json_loads(v, 0, NULL);
        d = json_string_value(json_object_get(j, "digest"));
        rec = json_string_value(json_object_get(j, "ref"));
        r = d != NULL && rec != NULL && strcmp(rec, name) == 0 && image_complete(st, d);
        if (r)
                snprintf(ret, DIGEST_STR_SIZE, "%s", d);
        return r;
}

static int pull_locked(store *st, const registry_ref *ref, const registry_opts *o,
                       char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_reg_session reg_session *s = NULL;
        cleanup_registry_manifest registry_manifest m = {0};
        cleanup_free char *body = NULL;
        char digest[DIGEST_STR_SIZE], stored[DIGEST_STR_SIZE], name[256], tag[256];
        size_t len;
        pull_ctx c = {0};

        if (local_tag(ref, o, name, sizeof(name), tag, sizeof(tag), err) < 0)
                return -1;
        reg_repo_init(&c.r, st, NULL, o, ref->repo, "pull");
        if (reg_session_open(ref->host, o, &s, err) < 0)
                return -1;
        c.r.s = s;
        if (get_manifest(&c, ref->digest[0] ? ref->digest : ref->tag,
                         ref->digest[0] ? ref->digest : NULL, &m, digest, &body, &len, err) < 0)
                return -1;
        if (m.kind == REGISTRY_KIND_INDEX) {
                char pick[DIGEST_STR_SIZE];
                if (registry_index_pick(&m, "linux", registry_host_arch(), NULL, pick, err) < 0)
                        return -1;
                registry_manifest_release(&m);
                free(body);
                body = NULL;
                if (get_manifest(&c, pick, pick, &m, digest, &body, &len, err) < 0)
                        return -1;
                if (m.kind != REGISTRY_KIND_IMAGE)
                        return forge_error_make(err, EBADMSG,
                                                "the index entry %s is not an "
                                                "image manifest",
                                                pick);
        }
        if (check_media(&m, err) < 0)
                return -1;
        emit(o, "manifest", 0, m.n_layers, digest, len, len, "done");
        c.n_layers = m.n_layers;
        if (fetch_blob(&c, &m.config, "config", 0, REGISTRY_MAX_CONFIG, err) < 0 ||
            check_config(st, &m, err) < 0)
                return -1;
        c.layers = m.layers;
        if (fetch_layers(&c, err) < 0)
                return -1;
        if (store_blob_put(st, body, len, stored, err) < 0)
                return forge_error_prefix(err, "store manifest");
        if (strcmp(stored, digest) != 0)
                return forge_error_make(err, EIO, "store manifest: stored as %s, expected %s",
                                        stored, digest);
        {
                /* the store's own reader must accept what it will later load */
                store_image *img = NULL;
                if (store_image_load(st, digest, &img, err) < 0)
                        return forge_error_prefix(err, "pulled image");
                store_image_free(img);
        }
        {
                json_t *blobs = json_array();
                json_array_append_new(blobs, json_string(m.config.digest));
                for (size_t i = 0; i < m.n_layers; i++)
                        json_array_append_new(blobs, json_string(m.layers[i].digest));
                reg_origin_record(st, ref->host, ref->repo, digest, blobs);
        }
        if (tag[0] != '\0' && store_tag_set(st, name, tag, digest, err) < 0)
                return -1;
        if (record_ref(st, ref, digest, err) < 0)
                return -1;
        memcpy(ret_digest, digest, DIGEST_STR_SIZE);
        return 0;
}

int registry_pull(store *st, const char *refstr, const registry_opts *o,
                  char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_registry_ref registry_ref ref = {0};
        int r;

        bool was_locked = st->lock_mode != 0;

        if (registry_ref_parse(refstr, &ref, err) < 0)
                return -1;
        if (!was_locked && store_lock_shared(st, err) < 0)
                return -1;
        r = pull_locked(st, &ref, o, ret_digest, err);
        if (!was_locked)
                store_unlock(st);
        if (r < 0)
                return forge_error_prefix(err, "pull '%s'", refstr);
        return 0;
}

int registry_resolve(store *st, const char *ref, const registry_opts *o,
                     char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_registry_ref registry_ref r = {0};
        int found;

        if (!registry_ref_is_remote(ref))
                return store_resolve(st, ref, ret_digest, err);
        if (o->pull == REGISTRY_PULL_ALWAYS)
                return registry_pull(st, ref, o, ret_digest, err);
        if (registry_ref_parse(ref, &r, err) < 0)
                return -1;
        found = local_image(st, &r, ret_digest, err);
        if (found < 0)
                return forge_error_prefix(err, "'%s'", ref);
        if (found > 0)
                return 0;
        if (o->pull == REGISTRY_PULL_NEVER)
                return forge_error_make(err, ENOENT,
                                        "'%s' is not in the store and --pull never forbids "
                                        "pulling it (run 'forge pull %s')",
                                        ref, ref);
        return registry_pull(st, ref, o, ret_digest, err);
}
