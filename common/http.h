/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * forge's HTTP client: a thin, capped, retrying layer over libcurl, used by
 * the package source (builder/) and the registry client (store/). It knows
 * nothing about registries or Debian: callers build URLs and headers, and
 * read status, headers and body.
 *
 * Everything a server sends is untrusted: bodies are capped (max_body), header
 * count and size are capped, redirects are bounded, and a body written to a
 * file descriptor is only ever appended, never seeked back over, so a caller
 * that hashes while it writes sees exactly the bytes stored.
 *
 * Proxies follow libcurl's environment (http_proxy, https_proxy, no_proxy).
 * Certificates are checked against the system's CAs (libcurl's default
 * bundle and directory) and a CA bundle (ca_file, else $SSL_CERT_FILE)
 * that replaces the default bundle, or a hashed directory (ca_dir, else
 * $SSL_CERT_DIR) that replaces the default directory.
 * URLs may be http:, https: or file:.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/strpair.h"

typedef struct http_client http_client;

typedef struct http_options {
        bool tls_verify;         /* false: accept any certificate (--tls-verify=false) */
        const char *ca_file;     /* extra CA bundle (PEM), or NULL for the system's */
        const char *ca_dir;      /* extra CA directory (hashed), or NULL */
        const char *client_cert; /* PEM client certificate, or NULL */
        const char *client_key;  /* PEM client key, or NULL */
        long connect_timeout_s;  /* 0: 30 s */
        long low_speed_time_s;   /* abort when under 1 byte/s this long; 0: 60 s */
        unsigned retries;        /* extra attempts on transient failures; default 0 */
        const char *user_agent;  /* NULL: "forge/VERSION" */
} http_options;

/* Defaults: tls_verify true, retries 3. */
void http_options_init(http_options *o);

int http_client_new(const http_options *o, http_client **ret, forge_error **err);
void http_client_free(http_client *c);

typedef enum http_body_kind {
        HTTP_BODY_NONE = 0,
        HTTP_BODY_BUFFER, /* body, body_len */
        HTTP_BODY_FD,     /* body_fd from body_offset, body_len bytes (pread, so retry-safe) */
} http_body_kind;

typedef struct http_request {
        const char *method; /* NULL: "GET" ("HEAD" reads no body) */
        const char *url;
        const char *const *headers; /* "Name: value" strings, NULL-terminated, or NULL */

        http_body_kind body_kind;
        const void *body;
        int body_fd;
        off_t body_offset;
        uint64_t body_len;

        int out_fd;          /* >= 0: the response body is appended here; else kept in memory */
        uint64_t max_body;   /* cap on the response body; 0: 16 MiB in memory, no cap to a fd */
        uint64_t range_from; /* > 0: "Range: bytes=N-" */

        int max_redirects; /* 0: do not follow; follows 301/302/303/307/308 up to this many */
        bool no_retry;     /* do not retry (non-idempotent requests: POST, PATCH) */

        /* Called as bytes arrive (to a fd or memory), for progress lines; for a
         * request with a body, as its bytes go out instead. */
        void (*progress)(void *userdata, uint64_t now, uint64_t total);
        void *userdata;
} http_request;

/* A response header: name lowercased, value trimmed. */
typedef strpair http_header;

typedef struct http_response {
        long status; /* HTTP status (file: URLs give 200, or 404 when missing) */
        char *body;  /* NUL-terminated, when out_fd < 0 (NULL for HEAD) */
        size_t body_len;
        uint64_t written;     /* bytes appended to out_fd */
        http_header *headers; /* of the last response (after redirects) */
        size_t n_headers;
        char *effective_url; /* the URL finally answered (after redirects) */
} http_response;

/* Initialises a request: GET, out_fd -1, body_fd -1. */
void http_request_init(http_request *rq, const char *url);

/*
 * Performs one request. A transport failure (connection refused, reset,
 * timeout, truncated body), a body over max_body and a redirect loop are
 * errors (< 0, message names the URL without credentials). Any HTTP status is
 * a success here: the caller checks ret->status. Transient failures and
 * 429/502/503/504 are retried (retries from the options, backoff 0.2 s
 * doubling) unless no_retry; a retry of a body written to a fd resumes with a
 * Range request when the server supports it, else truncates back to where
 * the attempt started.
 */
int http_request_do(http_client *c, const http_request *rq, http_response *ret, forge_error **err);
void http_response_free(http_response *r);

/* The value of a response header (case-insensitive name), or NULL. */
const char *http_response_header(const http_response *r, const char *name);

/*
 * Parallel downloads of plain GETs to file descriptors (a few at a time,
 * each with the request's retries). Every item's result is in its own
 * status/err; the call fails only when it could not run at all. Items with
 * expect_sha256 are hashed as they arrive and fail with a digest mismatch
 * that names the URL; expect_size > 0 is checked too.
 */
typedef struct http_fetch {
        const char *url;
        int out_fd;
        uint64_t expect_size;      /* 0: unknown (then max_body caps it, 0 = no cap) */
        const char *expect_sha256; /* 64 lowercase hex, or NULL */
        uint64_t max_body;

        long status;      /* out: HTTP status */
        uint64_t written; /* out */
        forge_error *err; /* out: NULL on success (status 200/206) */
} http_fetch;

typedef void (*http_fetch_progress_fn)(void *userdata, size_t done_items, uint64_t bytes_now,
                                       uint64_t bytes_total);

int http_fetch_many(http_client *c, http_fetch *items, size_t n, unsigned parallel,
                    http_fetch_progress_fn progress, void *userdata, forge_error **err);

/* The URL with any "user:password@" removed, for messages (malloc'd). */
char *http_url_redact(const char *url);

static inline void cleanup_http_client_fn(http_client **c)
{
        http_client_free(*c);
}
static inline void cleanup_http_response_fn(http_response *r)
{
        http_response_free(r);
}
#define cleanup_http_client __attribute__((cleanup(cleanup_http_client_fn)))
#define cleanup_http_response __attribute__((cleanup(cleanup_http_response_fn)))
