/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by store/registry-*.c only: a session with one registry. */

#include <pthread.h>
#include <time.h>

#include "common/http.h"
#include "store/registry.h"
#include "store/store-internal.h"

#define REG_MAX_TOKENS 16

typedef struct reg_token {
        char *scope;
        char *header; /* "Authorization: Bearer ..." (a secret) */
        time_t expires;
} reg_token;

typedef struct reg_session {
        http_client *http;
        const registry_opts *o;
        char *host;
        char *base; /* "https://HOST" or "http://HOST" */
        char *auth_file;

        pthread_mutex_t lock; /* guards everything below */
        bool cred_loaded;
        registry_cred cred;
        registry_challenge chal; /* from the last 401 (scheme "" when none yet) */
        char *basic_header;      /* "Authorization: Basic ..." (a secret) */
        reg_token tokens[REG_MAX_TOKENS];
        size_t n_tokens;
} reg_session;

/* Connects: picks https (or http where allowed) by probing /v2/, and learns
 * how the registry authenticates. */
int reg_session_open(const char *host, const registry_opts *o, reg_session **ret,
                     forge_error **err);
void reg_session_free(reg_session *s);

/* One repository of a registry, as pull and push address it. */
typedef struct reg_repo {
        store *st;
        reg_session *s; /* may be set after reg_repo_init() */
        const registry_opts *o;
        const char *repo;
        char scope[600]; /* "repository:REPO:ACTIONS", for reg_do() */
} reg_repo;

/* Fills r; actions is "pull" or "pull,push". */
void reg_repo_init(reg_repo *r, store *st, reg_session *s, const registry_opts *o, const char *repo,
                   const char *actions);

/* Performs rq (its url relative to the registry's base when it starts with
 * '/') with credentials for scope ("repository:REPO:pull[,push]", several
 * separated by ' '); a 401 is answered once by authenticating. */
int reg_do(reg_session *s, const char *scope, http_request *rq, http_response *ret,
           forge_error **err);

/* A message for a failed answer: the status, what it means, and the
 * registry's own error text (sanitised, short). Always returns -1. */
int reg_status_error(forge_error **err, const http_response *r, const char *what);

/* An absolute URL for a Location header (which may be relative). malloc'd. */
char *reg_resolve_location(reg_session *s, const char *location);

/* Pushes blobs (digests[0] the config, then the layers) and then the
 * manifest body under ref (registry-push.c). A blob is read from the store;
 * with sizes (else NULL), one the store lacks may be one the registry has
 * (sizes[i] bytes; an error if it has not). */
int reg_push_manifest(store *st, const registry_ref *ref, const char (*digests)[DIGEST_STR_SIZE],
                      const uint64_t *sizes, size_t n, const char *body, size_t len, const char *mt,
                      const char *digest, const registry_opts *o, forge_error **err);
/* Records that host/repo holds the blobs (a JSON array of digests, taken)
 * of manifest mdigest, so that a push to another repository of the same
 * registry can mount them (registry-push.c). Failing to record fails nothing. */
void reg_origin_record(store *st, const char *host, const char *repo, const char *mdigest,
                       json_t *blobs);
/* Downloads one blob of repo into the store, verified (registry-pull.c). */
int reg_blob_fetch(store *st, reg_session *s, const registry_opts *o, const char *repo,
                   const registry_descriptor *d, uint64_t cap, forge_error **err);
/* GETs a manifest by tag or digest, checked (registry-pull.c). */
int reg_manifest_get(store *st, reg_session *s, const registry_opts *o, const char *repo,
                     const char *reference, const char *want_digest, registry_manifest *ret,
                     char ret_digest[DIGEST_STR_SIZE], char **ret_body, size_t *ret_len,
                     forge_error **err);

static inline void cleanup_reg_session_fn(reg_session **s)
{
        reg_session_free(*s);
}
#define cleanup_reg_session __attribute__((cleanup(cleanup_reg_session_fn)))
