/* SPDX-License-Identifier: MIT */
/*
 * forge push: every blob is asked for first (HEAD); a blob another repository
 * of the same registry holds is mounted; the rest are uploaded, in one PUT
 * when small, else in PATCH chunks closed by PUT ?digest=. The manifest goes
 * last, as the store holds it (so its digest is forge's), or rebuilt when
 * --compression recompresses layers.
 */
#include "store/registry-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/pool.h"

#define DEFAULT_CHUNK (32u << 20)

typedef struct push_blob {
        char digest[DIGEST_STR_SIZE];
        uint64_t size;
        const char *what;
        size_t index;
        bool remote_only;     /* not in the store: the registry must have it */
        char mount_from[300]; /* a repository of this registry that has it, or "" */
} push_blob;

typedef struct push_ctx {
        reg_repo r;
        push_blob *blobs;
        size_t n_blobs, n_layers;
        uint64_t chunk;
} push_ctx;

static void emit(const push_ctx *c, const push_blob *b, uint64_t now, const char *state)
{
        registry_progress_event ev = {b->what, b->index, c->n_layers, b->digest,
                                      now,     b->size,  state};
        if (c->r.o->progress)
                c->r.o->progress(&ev, c->r.o->userdata);
}

static int head_blob(push_ctx *c, const push_blob *b, bool *ret_exists, forge_error **err)
{
        cleanup_http_response http_response r = {0};
        cleanup_free char *path = NULL;
        http_request rq;

        if (asprintf(&path, "/v2/%s/blobs/%s", c->r.repo, b->digest) < 0)
                return forge_error_make(err, ENOMEM, "push");
        http_request_init(&rq, path);
        rq.method = "HEAD";
        rq.max_redirects = 5;
        if (reg_do(c->r.s, c->r.scope, &rq, &r, err) < 0)
                return -1;
        if (r.status == 200) {
                *ret_exists = true;
                return 0;
        }
        if (r.status == 404) {
                *ret_exists = false;
                return 0;
        }
        return reg_status_error(err, &r, "check blob");
}

/* POST an upload (or a mount); 201: mounted, 202: *ret_location to upload to. */
static int start_upload(push_ctx *c, const push_blob *b, bool *ret_mounted, char **ret_location,
                        forge_error **err)
{
        cleanup_http_response http_response r = {0};
        cleanup_free char *path = NULL;
        char scope[1024];
        http_request rq;

        *ret_mounted = false;
        if (b->mount_from[0]) {
                if (asprintf(&path, "/v2/%s/blobs/uploads/?mount=%s&from=%s", c->r.repo, b->digest,
                             b->mount_from) < 0)
                        return forge_error_make(err, ENOMEM, "push");
                snprintf(scope, sizeof(scope), "%s repository:%s:pull", c->r.scope, b->mount_from);
        } else {
                if (asprintf(&path, "/v2/%s/blobs/uploads/", c->r.repo) < 0)
                        return forge_error_make(err, ENOMEM, "push");
                snprintf(scope, sizeof(scope), "%s", c->r.scope);
        }
        http_request_init(&rq, path);
        rq.method = "POST";
        rq.no_retry = true;
        if (reg_do(c->r.s, scope, &rq, &r, err) < 0)
                return -1;
        if (r.status == 201 && b->mount_from[0]) {
                *ret_mounted = true;
                return 0;
        }
        if (r.status != 202)
                return reg_status_error(err, &r, "start upload");
        *ret_location = reg_resolve_location(c->r.s, http_response_header(&r, "location"));
        if (*ret_location == NULL)
                return forge_error_make(err, EBADMSG,
                                        "start upload: the registry gave no usable "
                                        "Location");
        return 0;
}

static char *with_digest(const char *loc, const char *digest)
{
        char *u = NULL;
        if (asprintf(&u, "%s%sdigest=%s", loc, strchr(loc, '?') ? "&" : "?", digest) < 0)
                return NULL;
        return u;
}

static int check_created(const http_response *r, const push_blob *b, const char *what,
                         forge_error **err)
{
        const char *dcd;

        if (r->status != 201 && r->status != 204)
                return reg_status_error(err, r, what);
        dcd = http_response_header(r, "docker-content-digest");
        if (dcd != NULL && strcmp(dcd, b->digest) != 0)
                return forge_error_make(err, EBADMSG, "%s: the registry stored %.80s, expected %s",
                                        what, dcd, b->digest);
        return 0;
}

typedef struct upload_progress {
        push_ctx *c;
        const push_blob *b;
        uint64_t base; /* bytes sent before this request (earlier chunks) */
} upload_progress;

static void upload_cb(void *userdata, uint64_t now, uint64_t total)
{
        upload_progress *p = userdata;

        (void)total;
        if (now > 0)
                emit(p->c, p->b, p->base + now, "uploading");
}

static const char *const octet[] = {"Content-Type: application/octet-stream", NULL};

/* PATCHes the blob in chunks of c->chunk; *location follows the registry's
 * Location after each. */
static int upload_chunks(push_ctx *c, const push_blob *b, int fd, char **location,
                         upload_progress *up, forge_error **err)
{
        for (uint64_t off = 0; off < b->size; off += c->chunk) {
                cleanup_http_response http_response r = {0};
                uint64_t n = b->size - off < c->chunk ? b->size - off : c->chunk;
                char range[80];
                const char *hdrs[] = {octet[0], range, NULL};
                http_request rq;

                snprintf(range, sizeof(range), "Content-Range: %llu-%llu", (unsigned long long)off,
                         (unsigned long long)(off + n - 1));
                http_request_init(&rq, *location);
                rq.method = "PATCH";
                rq.headers = hdrs;
                rq.body_kind = HTTP_BODY_FD;
                rq.body_fd = fd;
                rq.body_offset = (off_t)off;
                rq.body_len = n;
                rq.no_retry = true;
                up->base = off;
                rq.progress = upload_cb;
                rq.userdata = up;
                if (reg_do(c->r.s, c->r.scope, &rq, &r, err) < 0)
                        return -1;
                if (r.status != 202)
                        return reg_status_error(err, &r, "upload chunk");
                free(*location);
                *location = reg_resolve_location(c->r.s, http_response_header(&r, "location"));
                if (*location == NULL)
                        return forge_error_make(err, EBADMSG, "upload chunk: no usable Location");
                emit(c, b, off + n, "uploading");
        }
        return 0;
}

/* The closing PUT ?digest=: with the whole blob as its body (fd >= 0: a
 * monolithic upload) or none (after the chunks). */
static int upload_finish(push_ctx *c, const push_blob *b, const char *location, int fd,
                         upload_progress *up, forge_error **err)
{
        cleanup_http_response http_response r = {0};
        cleanup_free char *url = with_digest(location, b->digest);
        http_request rq;

        if (url == NULL)
                return forge_error_make(err, ENOMEM, "push");
        http_request_init(&rq, url);
        rq.method = "PUT";
        rq.no_retry = true;
        if (fd >= 0) {
                rq.headers = octet;
                rq.body_kind = HTTP_BODY_FD;
                rq.body_fd = fd;
                rq.body_len = b->size;
                rq.progress = upload_cb;
                rq.userdata = up;
        }
        if (reg_do(c->r.s, c->r.scope, &rq, &r, err) < 0)
                return -1;
        return check_created(&r, b, fd >= 0 ? "upload" : "finish upload", err);
}

static int upload(push_ctx *c, const push_blob *b, char *loc, forge_error **err)
{
        upload_progress up = {c, b, 0};
        cleanup_close int fd = -1;
        cleanup_free char *location = loc;

        if (store_blob_open(c->r.st, b->digest, &fd, err) < 0)
                return -1;
        emit(c, b, 0, "uploading");
        if (b->size <= c->chunk)
                return upload_finish(c, b, location, fd, &up, err);
        if (upload_chunks(c, b, fd, &location, &up, err) < 0)
                return -1;
        return upload_finish(c, b, location, -1, &up, err);
}

static int push_one(push_ctx *c, const push_blob *b, forge_error **err)
{
        bool exists = false, mounted = false;
        char *loc = NULL;

        if (head_blob(c, b, &exists, err) < 0)
                return -1;
        if (exists) {
                emit(c, b, b->size, "exists");
                return 0;
        }
        if (b->remote_only)
                return forge_error_make(err, ENOENT,
                                        "neither the store nor the registry has it (was it "
                                        "deleted from the registry?)");
        if (start_upload(c, b, &mounted, &loc, err) < 0)
                return -1;
        if (mounted) {
                emit(c, b, b->size, "mounted");
                return 0;
        }
        if (upload(c, b, loc, err) < 0)
                return -1;
        emit(c, b, b->size, "pushed");
        return 0;
}

static int push_item(void *ctx, size_t i, forge_error **err)
{
        push_ctx *c = ctx;

        if (push_one(c, &c->blobs[i], err) < 0)
                return forge_error_prefix(err, "%s %s", c->blobs[i].what, c->blobs[i].digest);
        return 0;
}

static int push_blobs(push_ctx *c, forge_error **err)
{
        return pool_run(c->n_blobs, c->r.o->parallel, push_item, c, err);
}

/* ---- where blobs already are: records of earlier pulls and pushes ---- */

static void find_mounts(push_ctx *c, const char *host)
{
        cleanup_closedir DIR *d = opendir_at(store_root_fd(c->r.st), "kv/registry-origin");
        struct dirent *de;

        if (d == NULL)
                return;
        while ((de = readdir(d)) != NULL) {
                cleanup_free char *buf = NULL;
                char rel[512];
                cleanup_json json_t *j = NULL;
                json_t *blobs, *v;
                const char *h, *repo;
                size_t i;
                forge_error *e = NULL;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(rel, sizeof(rel), "kv/registry-origin/%s", de->d_name);
                if (fs_read_all(store_root_fd(c->r.st), rel, 1 << 20, &buf, NULL, &e) < 0) {
                        forge_error_release(&e);
                        continue;
                }
                j = json_loads(buf, 0, NULL);
                h = json_string_value(json_object_get(j, "host"));
                repo = json_string_value(json_object_get(j, "repo"));
                blobs = json_object_get(j, "blobs");
                if (h && repo && strcmp(h, host) == 0 && strcmp(repo, c->r.repo) != 0 &&
                    strlen(repo) < sizeof(c->blobs[0].mount_from))
                        json_array_foreach(blobs, i, v)
                        {
                                const char *dg = json_string_value(v);
                                for (size_t k = 0; dg && k < c->n_blobs; k++)
                                        if (strcmp(c->blobs[k].digest, dg) == 0 &&
                                            !c->blobs[k].mount_from[0])
                                                snprintf(c->blobs[k].mount_from,
                                                         sizeof(c->blobs[k].mount_from), "%s",
                                                         repo);
                        }
        }
}

void reg_origin_record(store *st, const char *host, const char *repo, const char *mdigest,
                       json_t *blobs)
{
        cleanup_json json_t *rec =
            json_pack("{s:s, s:s, s:o}", "host", host, "repo", repo, "blobs", blobs);
        cleanup_free char *txt = rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        forge_error *e = NULL;
        char key[DIGEST_STR_SIZE + 300];

        snprintf(key, sizeof(key), "%s/%s@%s", host, repo, mdigest);
        /* only an optimisation: failing to record fails nothing */
        if (txt != NULL && store_kv_put(st, "registry-origin", key, txt, &e) < 0)
                forge_error_release(&e);
}

static bool is_comp(const char *mt, store_compression comp)
{
        if (comp == STORE_COMPRESSION_GZIP)
                return strcmp(mt, STORE_MEDIA_LAYER_GZIP) == 0 ||
                       strcmp(mt, REGISTRY_MEDIA_DOCKER_LAYER_GZIP) == 0;
        return strcmp(mt, STORE_MEDIA_LAYER_ZSTD) == 0;
}

/* The manifest to push: the stored one, or one with recompressed layers
 * (then an OCI manifest, stored too). */
static int manifest_for_push(store *st, store_image *img, store_compression comp, char **ret_body,
                             size_t *ret_len, char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_json json_t *m = NULL;
        json_t *layers;
        bool changed = false;

        if (comp != STORE_COMPRESSION_DEFAULT)
                for (size_t i = 0; i < img->n_layers; i++)
                        if (!is_comp(img->layers[i].media_type, comp)) {
                                store_layer nl;
                                if (store_layer_recompress(st, &img->layers[i], comp, &nl, err) < 0)
                                        return forge_error_prefix(err, "layer %zu", i + 1);
                                img->layers[i] = nl;
                                changed = true;
                        }
        if (!changed) {
                memcpy(ret_digest, img->digest, DIGEST_STR_SIZE);
                return store_blob_read(st, img->digest, REGISTRY_MAX_MANIFEST, ret_body, ret_len,
                                       err);
        }
        m = json_deep_copy(img->manifest);
        layers = json_object_get(m, "layers");
        json_object_set_new(m, "mediaType", json_string(STORE_MEDIA_MANIFEST));
        json_object_set_new(json_object_get(m, "config"), "mediaType",
                            json_string(STORE_MEDIA_CONFIG));
        for (size_t i = 0; i < img->n_layers; i++) {
                json_t *d = json_array_get(layers, i);
                json_object_set_new(d, "mediaType", json_string(img->layers[i].media_type));
                json_object_set_new(d, "digest", json_string(img->layers[i].digest));
                json_object_set_new(d, "size", json_integer((json_int_t)img->layers[i].size));
        }
        *ret_body = store_json_canonical(m, ret_len);
        if (*ret_body == NULL)
                return forge_error_make(err, ENOMEM, "manifest");
        return store_blob_put(st, *ret_body, *ret_len, ret_digest, err);
}

static int put_manifest(push_ctx *c, const registry_ref *ref, const char *mt, const char *body,
                        size_t len, const char *digest, forge_error **err)
{
        cleanup_http_response http_response r = {0};
        cleanup_free char *path = NULL, *ctype = NULL;
        const char *hdrs[2] = {NULL, NULL};
        const char *dcd;
        http_request rq;

        if (ref->digest[0] && strcmp(ref->digest, digest) != 0)
                return forge_error_usage(err, "the image is %s, not the digest named (%s)", digest,
                                         ref->digest);
        if (asprintf(&path, "/v2/%s/manifests/%s", c->r.repo, ref->tag ? ref->tag : digest) < 0 ||
            asprintf(&ctype, "Content-Type: %s", mt) < 0)
                return forge_error_make(err, ENOMEM, "push");
        hdrs[0] = ctype;
        http_request_init(&rq, path);
        rq.method = "PUT";
        rq.headers = hdrs;
        rq.body_kind = HTTP_BODY_BUFFER;
        rq.body = body;
        rq.body_len = len;
        if (reg_do(c->r.s, c->r.scope, &rq, &r, err) < 0)
                return forge_error_prefix(err, "manifest");
        if (r.status != 201)
                return reg_status_error(err, &r, "manifest");
        dcd = http_response_header(&r, "docker-content-digest");
        if (dcd != NULL && strcmp(dcd, digest) != 0)
                return forge_error_make(err, EBADMSG,
                                        "manifest: the registry stored %.80s, "
                                        "expected %s",
                                        dcd, digest);
        return 0;
}

static uint64_t chunk_size(void)
{
        const char *v = getenv("FORGE_REGISTRY_CHUNK_SIZE");
        unsigned long long n = 0;
        if (v != NULL && fs_parse_size(v, &n) == 0 && n >= 4096)
                return n;
        return DEFAULT_CHUNK;
}

int reg_push_manifest(store *st, const registry_ref *ref, const char (*digests)[DIGEST_STR_SIZE],
                      const uint64_t *sizes, size_t n, const char *body, size_t len, const char *mt,
                      const char *digest, const registry_opts *o, forge_error **err)
{
        cleanup_reg_session reg_session *s = NULL;
        cleanup_free push_blob *blobs = calloc(n ? n : 1, sizeof(*blobs));
        push_ctx c = {.chunk = chunk_size()};

        if (blobs == NULL)
                return forge_error_make(err, ENOMEM, "push");
        for (size_t i = 0; i < n; i++) {
                push_blob *b = &blobs[i];
                memcpy(b->digest, digests[i], DIGEST_STR_SIZE);
                if (sizes != NULL && !store_blob_exists(st, b->digest)) {
                        b->size = sizes[i];
                        b->remote_only = true;
                } else if (store_blob_size(st, b->digest, &b->size, err) < 0) {
                        return -1;
                }
                b->what = i == 0 ? "config" : "layer";
                b->index = i ? i - 1 : 0;
        }
        c.blobs = blobs;
        c.n_blobs = n;
        c.n_layers = n ? n - 1 : 0;
        reg_repo_init(&c.r, st, NULL, o, ref->repo, "pull,push");
        find_mounts(&c, ref->host);
        if (reg_session_open(ref->host, o, &s, err) < 0)
                return -1;
        c.r.s = s;
        if (push_blobs(&c, err) < 0 || put_manifest(&c, ref, mt, body, len, digest, err) < 0)
                return -1;
        {
                json_t *arr = json_array();
                for (size_t i = 0; i < c.n_blobs; i++)
                        json_array_append_new(arr, json_string(blobs[i].digest));
                reg_origin_record(st, ref->host, ref->repo, digest, arr);
        }
        return 0;
}

static int push_locked(store *st, const char *mdigest, const registry_ref *ref,
                       const registry_opts *o, char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_store_image store_image *img = NULL;
        cleanup_free char *body = NULL;
        cleanup_free char(*digests)[DIGEST_STR_SIZE] = NULL;
        char digest[DIGEST_STR_SIZE];
        const char *mt;
        size_t len;

        if (store_image_load(st, mdigest, &img, err) < 0)
                return -1;
        if (manifest_for_push(st, img, o->compression, &body, &len, digest, err) < 0)
                return -1;
        mt = json_string_value(json_object_get(img->manifest, "mediaType"));
        if (strcmp(digest, img->digest) != 0 || mt == NULL)
                mt = STORE_MEDIA_MANIFEST;
        digests = calloc(img->n_layers + 1, sizeof(*digests));
        if (digests == NULL)
                return forge_error_make(err, ENOMEM, "push");
        memcpy(digests[0], img->config_digest, DIGEST_STR_SIZE);
        for (size_t i = 0; i < img->n_layers; i++)
                memcpy(digests[i + 1], img->layers[i].digest, DIGEST_STR_SIZE);
        if (reg_push_manifest(st, ref, (const char(*)[DIGEST_STR_SIZE])digests, NULL,
                              img->n_layers + 1, body, len, mt, digest, o, err) < 0)
                return -1;
        memcpy(ret_digest, digest, DIGEST_STR_SIZE);
        return 0;
}

int registry_push(store *st, const char *manifest_digest, const char *refstr,
                  const registry_opts *o, char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_registry_ref registry_ref ref = {0};
        bool was_locked = st->lock_mode != 0;
        int r;

        if (registry_ref_parse(refstr, &ref, err) < 0)
                return -1;
        if (!was_locked && store_lock_shared(st, err) < 0)
                return -1;
        r = push_locked(st, manifest_digest, &ref, o, ret_digest, err);
        if (!was_locked)
                store_unlock(st);
        if (r < 0)
                return forge_error_prefix(err, "push '%s'", refstr);
        return 0;
}
