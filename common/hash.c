/* SPDX-License-Identifier: MIT */
#include "common/hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

struct hash_sha256 {
        EVP_MD_CTX *ctx;
};

hash_sha256 *hash_sha256_new(void)
{
        hash_sha256 *h = calloc(1, sizeof(*h));
        if (h == NULL)
                return NULL;
        h->ctx = EVP_MD_CTX_new();
        if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(h->ctx);
                free(h);
                return NULL;
        }
        return h;
}

void hash_sha256_update(hash_sha256 *h, const void *buf, size_t len)
{
        EVP_DigestUpdate(h->ctx, buf, len);
}

void hash_sha256_final(hash_sha256 *h, char out[DIGEST_STR_SIZE])
{
        static const char hexd[] = "0123456789abcdef";
        unsigned char md[32];
        unsigned int n = 0;

        EVP_DigestFinal_ex(h->ctx, md, &n);
        memcpy(out, "sha256:", 7);
        for (unsigned i = 0; i < 32; i++) {
                out[7 + 2 * i] = hexd[md[i] >> 4];
                out[7 + 2 * i + 1] = hexd[md[i] & 15];
        }
        out[7 + 64] = '\0';
}

void hash_sha256_free(hash_sha256 *h)
{
        if (h == NULL)
                return;
        EVP_MD_CTX_free(h->ctx);
        free(h);
}

void hash_sha256_buf(const void *buf, size_t len, char out[DIGEST_STR_SIZE])
{
        hash_sha256 *h = hash_sha256_new();
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
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return forge_error_make(err, errno, "read");
                }
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
