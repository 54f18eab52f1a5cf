/* SPDX-License-Identifier: MIT */
/* common/hash: the portable SHA-256 against FIPS 180-4's vectors and against
 * libcrypto (linked here directly) at every length around the padding
 * boundaries; the streaming API (libcrypto loaded on demand) agrees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "testutil.h"

static void hex(const unsigned char md[32], char out[65])
{
        for (int i = 0; i < 32; i++)
                sprintf(out + 2 * i, "%02x", md[i]);
}

static void known_vectors(void **state)
{
        static const struct {
                const char *in, *out;
        } v[] = {
            {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
            {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
            {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        };
        unsigned char md[32];
        char h[65], d[DIGEST_STR_SIZE];

        (void)state;
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                hash_sha256_builtin(v[i].in, strlen(v[i].in), md);
                hex(md, h);
                assert_string_equal(h, v[i].out);
                hash_sha256_buf(v[i].in, strlen(v[i].in), d);
                assert_string_equal(d + 7, v[i].out);
                assert_memory_equal(d, "sha256:", 7);
        }
}

static void matches_libcrypto(void **state)
{
        size_t max = 300 << 10; /* beyond hash_sha256_buf's builtin limit */
        unsigned char *buf = malloc(max), md[32], ref[32];
        unsigned int n;
        char a[DIGEST_STR_SIZE], b[DIGEST_STR_SIZE];
        static const size_t big[] = {4096, 65536, 65537, 256 << 10, (256 << 10) + 1, 300 << 10};

        (void)state;
        assert_non_null(buf);
        srand(7);
        for (size_t i = 0; i < max; i++)
                buf[i] = (unsigned char)rand();
        for (size_t len = 0; len <= 200; len++) {
                hash_sha256_builtin(buf, len, md);
                assert_int_equal(EVP_Digest(buf, len, ref, &n, EVP_sha256(), NULL), 1);
                assert_memory_equal(md, ref, 32);
        }
        for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
                hash_sha256 *h = hash_sha256_new();

                hash_sha256_builtin(buf, big[i], md);
                assert_int_equal(EVP_Digest(buf, big[i], ref, &n, EVP_sha256(), NULL), 1);
                assert_memory_equal(md, ref, 32);
                hash_sha256_buf(buf, big[i], a);
                assert_non_null(h);
                hash_sha256_update(h, buf, big[i] / 3);
                hash_sha256_update(h, buf + big[i] / 3, big[i] - big[i] / 3);
                hash_sha256_final(h, b);
                hash_sha256_free(h);
                assert_string_equal(a, b);
        }
        free(buf);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(known_vectors), cmocka_unit_test(matches_libcrypto))
