/* SPDX-License-Identifier: MIT */
/*
 * SHA-256. Streams (layers, blobs of any size) go through libcrypto, which
 * is loaded with dlopen() on first use and initialised without reading
 * openssl.cnf; short buffers (manifests, configs, cache keys) are hashed by
 * the portable code below, so that a container start, which only checks its
 * image's manifest and config, never maps libcrypto (1.4 MiB of its
 * resident set and a millisecond of relocations).
 */
#include "common/hash.h"

#include <dlfcn.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"

#ifndef FORGE_LIBCRYPTO_SONAME
#define FORGE_LIBCRYPTO_SONAME "libcrypto.so.3"
#endif

/* Above this, hash_sha256_buf uses libcrypto's vectorised code. */
#define BUILTIN_MAX (256 << 10)

/* ---- libcrypto, loaded on demand ---- */

static struct {
        EVP_MD_CTX *(*ctx_new)(void);
        void (*ctx_free)(EVP_MD_CTX *);
        const EVP_MD *(*sha256)(void);
        int (*init)(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
        int (*update)(EVP_MD_CTX *, const void *, size_t);
        int (*final)(EVP_MD_CTX *, unsigned char *, unsigned int *);
        bool ok;
} crypto;

static void crypto_load(void)
{
        int (*init_crypto)(uint64_t, const OPENSSL_INIT_SETTINGS *);
        void *h = dlopen(FORGE_LIBCRYPTO_SONAME, RTLD_NOW | RTLD_LOCAL);

        if (h == NULL) {
                fprintf(stderr, "forge: cannot load %s (install libssl3): %s\n",
                        FORGE_LIBCRYPTO_SONAME, dlerror());
                return;
        }
        *(void **)&init_crypto = dlsym(h, "OPENSSL_init_crypto");
        *(void **)&crypto.ctx_new = dlsym(h, "EVP_MD_CTX_new");
        *(void **)&crypto.ctx_free = dlsym(h, "EVP_MD_CTX_free");
        *(void **)&crypto.sha256 = dlsym(h, "EVP_sha256");
        *(void **)&crypto.init = dlsym(h, "EVP_DigestInit_ex");
        *(void **)&crypto.update = dlsym(h, "EVP_DigestUpdate");
        *(void **)&crypto.final = dlsym(h, "EVP_DigestFinal_ex");
        if (init_crypto == NULL || crypto.ctx_new == NULL || crypto.ctx_free == NULL ||
            crypto.sha256 == NULL || crypto.init == NULL || crypto.update == NULL ||
            crypto.final == NULL) {
                fprintf(stderr, "forge: %s lacks the EVP digest functions\n",
                        FORGE_LIBCRYPTO_SONAME);
                return;
        }
        /* a digest needs no configuration: openssl.cnf is not read */
        if (init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1)
                return;
        crypto.ok = true;
}

static bool crypto_ready(void)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        pthread_once(&once, crypto_load);
        return crypto.ok;
}

/* ---- portable SHA-256 (FIPS 180-4) ---- */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror(uint32_t x, unsigned n)
{
        return (x >> n) | (x << (32 - n));
}

static void block(uint32_t st[8], const unsigned char *p)
{
        uint32_t w[64], a, b, c, d, e, f, g, h;

        for (int i = 0; i < 16; i++)
                w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
                uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
                uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
        for (int i = 0; i < 64; i++) {
                uint32_t t1 =
                    h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
                uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
                h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        st[0] += a, st[1] += b, st[2] += c, st[3] += d;
        st[4] += e, st[5] += f, st[6] += g, st[7] += h;
}

void hash_sha256_builtin(const void *buf, size_t len, unsigned char md[32])
{
        uint32_t st[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
        const unsigned char *p = buf;
        unsigned char tail[128] = {0};
        size_t full = len / 64 * 64, rest = len - full, tlen;
        uint64_t bits = (uint64_t)len * 8;

        for (size_t off = 0; off < full; off += 64)
                block(st, p + off);
        if (rest > 0)
                memcpy(tail, p + full, rest);
        tail[rest] = 0x80;
        tlen = rest < 56 ? 64 : 128;
        for (int i = 0; i < 8; i++)
                tail[tlen - 1 - i] = (unsigned char)(bits >> (8 * i));
        block(st, tail);
        if (tlen == 128)
                block(st, tail + 64);
        for (int i = 0; i < 8; i++) {
                md[4 * i] = (unsigned char)(st[i] >> 24);
                md[4 * i + 1] = (unsigned char)(st[i] >> 16);
                md[4 * i + 2] = (unsigned char)(st[i] >> 8);
                md[4 * i + 3] = (unsigned char)st[i];
        }
}

/* ---- the API ---- */

struct hash_sha256 {
        EVP_MD_CTX *ctx;
};

static void digest_format(const unsigned char md[32], char out[DIGEST_STR_SIZE])
{
        static const char hexd[] = "0123456789abcdef";

        memcpy(out, "sha256:", 7);
        for (unsigned i = 0; i < 32; i++) {
                out[7 + 2 * i] = hexd[md[i] >> 4];
                out[7 + 2 * i + 1] = hexd[md[i] & 15];
        }
        out[7 + 64] = '\0';
}

hash_sha256 *hash_sha256_new(void)
{
        hash_sha256 *h;

        if (!crypto_ready())
                return NULL;
        h = calloc(1, sizeof(*h));
        if (h == NULL)
                return NULL;
        h->ctx = crypto.ctx_new();
        if (h->ctx == NULL || crypto.init(h->ctx, crypto.sha256(), NULL) != 1) {
                crypto.ctx_free(h->ctx);
                free(h);
                return NULL;
        }
        return h;
}

void hash_sha256_update(hash_sha256 *h, const void *buf, size_t len)
{
        crypto.update(h->ctx, buf, len);
}

void hash_sha256_final(hash_sha256 *h, char out[DIGEST_STR_SIZE])
{
        unsigned char md[32];
        unsigned int n = 0;

        crypto.final(h->ctx, md, &n);
        digest_format(md, out);
}

void hash_sha256_free(hash_sha256 *h)
{
        if (h == NULL)
                return;
        crypto.ctx_free(h->ctx);
        free(h);
}

void hash_sha256_buf(const void *buf, size_t len, char out[DIGEST_STR_SIZE])
{
        unsigned char md[32];
        hash_sha256 *h;

        if (len <= BUILTIN_MAX || (h = hash_sha256_new()) == NULL) {
                hash_sha256_builtin(buf, len, md);
                digest_format(md, out);
                return;
        }
        hash_sha256_update(h, buf, len);
        hash_sha256_final(h, out);
        hash_sha256_free(h);
}

int hash_sha256_fd(int fd, char out[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_hash hash_sha256 *h = hash_sha256_new();
        static __thread char buf[1 << 16];

        if (h == NULL)
                return forge_error_make(err, ENOMEM, "sha256");
        for (;;) {
                ssize_t n = fs_read_some(fd, buf, sizeof(buf));
                if (n < 0)
                        return forge_error_make(err, errno, "read");
                if (n == 0)
                        break;
                hash_sha256_update(h, buf, (size_t)n);
        }
        hash_sha256_final(h, out);
        return 0;
}

bool digest_valid(const char *s)
{
        if (s == NULL || strncmp(s, "sha256:", 7) != 0)
                return false;
        for (int i = 0; i < DIGEST_HEX_LEN; i++) {
                char c = s[7 + i];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                        return false;
        }
        return s[7 + DIGEST_HEX_LEN] == '\0';
}
