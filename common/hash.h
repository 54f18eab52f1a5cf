/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

/* "sha256:" + 64 lowercase hex digits + NUL */
#define DIGEST_HEX_LEN 64
#define DIGEST_STR_SIZE 72

typedef struct hash_sha256 hash_sha256;

hash_sha256 *hash_sha256_new(void);
void hash_sha256_update(hash_sha256 *h, const void *buf, size_t len);
/* Writes "sha256:<hex>" into out; h can't be updated afterwards. */
void hash_sha256_final(hash_sha256 *h, char out[DIGEST_STR_SIZE]);
void hash_sha256_free(hash_sha256 *h);

void hash_sha256_buf(const void *buf, size_t len, char out[DIGEST_STR_SIZE]);
/* The portable implementation hash_sha256_buf uses for short buffers
 * (exposed for tests, which compare it with libcrypto's). */
void hash_sha256_builtin(const void *buf, size_t len, unsigned char md[32]);
/* Hashes fd from its current offset to EOF. */
int hash_sha256_fd(int fd, char out[DIGEST_STR_SIZE], forge_error **err);

/* True for "sha256:" followed by exactly 64 lowercase hex digits. */
bool digest_valid(const char *s);
/* The hex part of a valid digest. */
static inline const char *digest_hex(const char *digest)
{
        return digest + 7;
}

static inline void cleanup_hash_fn(hash_sha256 **h)
{
        hash_sha256_free(*h);
}
#define cleanup_hash __attribute__((cleanup(cleanup_hash_fn)))
