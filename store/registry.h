/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The store's remote side: OCI distribution registries (see docs/registry.md).
 *
 * A reference with a registry host is remote:
 *   HOST[:PORT]/REPO[:TAG][@sha256:HEX]     HOST has a '.' or ':' or is "localhost"
 * anything else (NAME[:TAG], sha256:HEX) names an image in the local store.
 *
 * Everything a registry sends is untrusted: manifests are capped at 4 MiB,
 * configs likewise, every blob is hashed while it is written and named in the
 * store only when its digest and size match the manifest's descriptor.
 * Credentials never appear in argv, messages or the store.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"
#include "common/hash.h"
#include "store/store.h"

#define REGISTRY_MAX_MANIFEST (4u << 20)
#define REGISTRY_MAX_CONFIG (4u << 20)

#define REGISTRY_MEDIA_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define REGISTRY_MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define REGISTRY_MEDIA_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define REGISTRY_MEDIA_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define REGISTRY_MEDIA_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* ---- references (registry-ref.c) ---- */

typedef struct registry_ref {
        char *host;                   /* "127.0.0.1:5000", "localhost", "registry.example" */
        char *repo;                   /* "team/app" (lowercase path components) */
        char *tag;                    /* "v1", or NULL when only a digest was given */
        char digest[DIGEST_STR_SIZE]; /* "" unless @sha256:HEX was given */
} registry_ref;

/* True when s names a registry (its first '/'-component has '.' or ':' or is
 * "localhost"). */
bool registry_ref_is_remote(const char *s);
/* Parses a remote reference; the tag defaults to "latest" unless a digest is
 * given. Usage error (exit 2) on malformed input. */
int registry_ref_parse(const char *s, registry_ref *ret, forge_error **err);
void registry_ref_release(registry_ref *r);
/* "HOST/REPO:TAG@DIGEST" (parts present), malloc'd. */
char *registry_ref_format(const registry_ref *r);
/* True when host may be spoken to over plain HTTP without --tls-verify=false:
 * localhost and 127.0.0.0/8 (any port). */
bool registry_host_is_loopback(const char *host);

/* ---- manifests (registry-manifest.c) ---- */

typedef enum registry_manifest_kind {
        REGISTRY_KIND_UNKNOWN = 0,
        REGISTRY_KIND_IMAGE, /* OCI image manifest or Docker schema 2 manifest */
        REGISTRY_KIND_INDEX, /* OCI image index or Docker manifest list */
} registry_manifest_kind;

registry_manifest_kind registry_media_kind(const char *media_type);

typedef struct registry_descriptor {
        char media_type[128];
        char digest[DIGEST_STR_SIZE];
        uint64_t size;
} registry_descriptor;

typedef struct registry_manifest {
        registry_manifest_kind kind;
        char media_type[128];
        registry_descriptor config;  /* image */
        size_t n_layers;             /* image */
        registry_descriptor *layers; /* image, bottom first */
        json_t *json;                /* the parsed document (owned) */
} registry_manifest;

/* Parses a manifest or index body. content_type (the response's Content-Type,
 * may be NULL) is used when the body names no mediaType. Checks every
 * descriptor (valid digest, size >= 0, at most 4096 layers, supported layer
 * media types). */
int registry_manifest_parse(const char *body, size_t len, const char *content_type,
                            registry_manifest *ret, forge_error **err);
void registry_manifest_release(registry_manifest *m);
/* In an index: the digest of the image for os/arch (variant ignored unless
 * given), the first match. ENOENT with the platforms found when none. */
int registry_index_pick(const registry_manifest *index, const char *os, const char *arch,
                        const char *variant, char ret_digest[DIGEST_STR_SIZE], forge_error **err);
/* The host's OCI architecture name ("amd64", "arm64", ...). */
const char *registry_host_arch(void);

/* ---- credentials (registry-auth.c) ---- */

typedef struct registry_cred {
        char *user;   /* NULL for an identity token */
        char *secret; /* password or identity token; wiped on release */
        bool identity_token;
} registry_cred;

/* $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json, else
 * ~/.docker/config.json (malloc'd, NULL when none can be named). */
char *registry_auth_file_path(void);
/* Looks host up in the auth file (auths.HOST.auth / identitytoken, then
 * credHelpers.HOST / credsStore: runs docker-credential-NAME get with the
 * host on stdin). Returns 1 with *ret filled, 0 when there is none. */
int registry_auth_lookup(const char *auth_file, const char *host, registry_cred *ret,
                         forge_error **err);
/* Writes (or, with user == NULL, removes) host's entry in auth_file, keeping
 * every other key; the file is created 0600, replaced atomically. Removing
 * an absent entry gives ENOENT. */
int registry_auth_store(const char *auth_file, const char *host, const char *user,
                        const char *password, forge_error **err);
void registry_cred_release(registry_cred *c);

/* WWW-Authenticate: Basic realm="..." | Bearer realm="...",service="...",scope="..." */
typedef struct registry_challenge {
        char scheme[16]; /* "basic", "bearer" (lowercased) */
        char *realm;
        char *service;
        char *scope;
} registry_challenge;

int registry_challenge_parse(const char *header, registry_challenge *ret, forge_error **err);
void registry_challenge_release(registry_challenge *c);

/* base64 (standard alphabet, padded). malloc'd; NULL on ENOMEM. */
char *registry_base64_encode(const void *buf, size_t len);
/* Decodes into a malloc'd NUL-terminated buffer; -1 on malformed input. */
int registry_base64_decode(const char *s, char **ret, size_t *ret_len);

/* ---- pull and push (registry-pull.c, registry-push.c) ---- */

typedef struct registry_progress_event {
        const char *what;   /* "layer", "config", "manifest" */
        size_t index;       /* layer index, 0-based */
        size_t count;       /* layers in the image */
        const char *digest; /* the blob */
        uint64_t now;       /* bytes so far */
        uint64_t total;     /* bytes expected */
        const char *state;  /* "downloading", "exists", "done", "mounted", "uploading", "pushed" */
} registry_progress_event;

typedef void (*registry_progress_fn)(const registry_progress_event *ev, void *userdata);

/* What registry_resolve does with a remote ref (podman's --pull). */
typedef enum registry_pull_policy {
        REGISTRY_PULL_MISSING = 0, /* the image a pull of this ref stored, else pull */
        REGISTRY_PULL_ALWAYS,      /* pull every time */
        REGISTRY_PULL_NEVER,       /* only what the store has */
} registry_pull_policy;

typedef struct registry_opts {
        int tls_verify;        /* 1 (default), 0 (--tls-verify=false), -1 unset: default */
        const char *auth_file; /* NULL: registry_auth_file_path() */
        const char *certs_dir; /* NULL: /etc/containers/certs.d ($FORGE_CERTS_DIR for tests) */
        unsigned parallel;     /* concurrent blob transfers; 0: 4 */
        store_compression compression; /* push: DEFAULT keeps the store's layers */
        registry_progress_fn progress;
        void *userdata;
        const char *local_tag;     /* pull: "NAME[:TAG]" to tag locally, NULL: from the ref */
        registry_pull_policy pull; /* registry_resolve only */
} registry_opts;

void registry_opts_init(registry_opts *o);

/* Pulls ref into the store: the manifest (an index resolved to linux/<host
 * arch>), its config and layers, each verified; tags the image locally as
 * local_tag, else LAST-REPO-COMPONENT:TAG, and records the ref (store kv
 * registry-ref: HOST/REPO:TAG -> digest) for registry_resolve. Returns the
 * image manifest digest (as the registry names it). */
int registry_pull(store *s, const char *ref, const registry_opts *o,
                  char ret_digest[DIGEST_STR_SIZE], forge_error **err);

/* Pushes the image (a manifest digest in the store) to ref. Blobs the
 * registry has are not uploaded (HEAD first; a blob in another repository of
 * the same registry is mounted). Returns the digest of the pushed manifest. */
int registry_push(store *s, const char *manifest_digest, const char *ref, const registry_opts *o,
                  char ret_digest[DIGEST_STR_SIZE], forge_error **err);

/* Resolves an image for run/inspect/export: anything but a remote ref goes to
 * store_resolve. A remote ref is pulled first, unless (o->pull MISSING) the
 * store has the image a pull of that ref stored, complete (a @sha256: ref:
 * that image), then no request is made; NEVER fails with ENOENT instead of
 * pulling. */
int registry_resolve(store *s, const char *ref, const registry_opts *o,
                     char ret_digest[DIGEST_STR_SIZE], forge_error **err);

/* Checks host's credentials against the registry (/v2/ with them), as
 * `forge login` does before it saves them. */
int registry_login_check(const char *host, const char *user, const char *password,
                         const registry_opts *o, forge_error **err);

/* ---- the layer cache in a registry (registry-cache.c, docs/registry.md) ---- */

#define REGISTRY_MEDIA_CACHE_CONFIG "application/vnd.dev.forge.cache.config.v1+json"

typedef struct registry_cache registry_cache;

int registry_cache_new(store *s, const registry_opts *o, registry_cache **ret, forge_error **err);
void registry_cache_free(registry_cache *c);
/* Reads the cache artifact at ref (its manifest and config, no layer); a ref
 * that does not exist yet adds nothing. */
int registry_cache_import(registry_cache *c, const char *ref, forge_error **err);
/* Returns 1 with *ret filled and the layer's blob in the store (downloaded,
 * verified) when an imported artifact has key; 0 when none has. */
int registry_cache_lookup(registry_cache *c, const char *key, store_layer *ret, forge_error **err);
/* Records a layer this build used, under its cache key, for export. */
int registry_cache_add(registry_cache *c, const char *key, const store_layer *l, forge_error **err);
/* Pushes the layers added, with their keys, as the cache artifact at ref
 * (blobs the registry has are not uploaded). */
int registry_cache_export(registry_cache *c, const char *ref, forge_error **err);

static inline void cleanup_registry_ref_fn(registry_ref *r)
{
        registry_ref_release(r);
}
#define cleanup_registry_ref __attribute__((cleanup(cleanup_registry_ref_fn)))
static inline void cleanup_registry_manifest_fn(registry_manifest *m)
{
        registry_manifest_release(m);
}
#define cleanup_registry_manifest __attribute__((cleanup(cleanup_registry_manifest_fn)))
static inline void cleanup_registry_cred_fn(registry_cred *c)
{
        registry_cred_release(c);
}
#define cleanup_registry_cred __attribute__((cleanup(cleanup_registry_cred_fn)))
