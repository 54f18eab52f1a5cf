/* SPDX-License-Identifier: MIT */
/* The store: blobs, images, resolve, tags, kv, gc, verify, concurrency, crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "store/store.h"
#include "testutil.h"

typedef tu_store_fixture fixture;

static size_t count_dir(const char *root, const char *rel)
{
        char p[256];
        DIR *d;
        struct dirent *de;
        size_t n = 0;
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        d = opendir(p);
        if (d == NULL)
                return 0;
        while ((de = readdir(d)) != NULL)
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static void test_blob_roundtrip(void **state)
{
        fixture *f = *state;
        forge_error *e = NULL;
        char d[DIGEST_STR_SIZE], d2[DIGEST_STR_SIZE];
        char *buf = NULL;
        size_t len;

        assert_int_equal(store_blob_put(f->s, "hello", 5, d, &e), 0);
        assert_string_equal(
            d, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_true(store_blob_exists(f->s, d));
        assert_int_equal(store_blob_read(f->s, d, 100, &buf, &len, &e), 0);
        assert_int_equal(len, 5);
        assert_memory_equal(buf, "hello", 5);
        free(buf);
        /* same content, same name, no error */
        assert_int_equal(store_blob_put(f->s, "hello", 5, d2, &e), 0);
        assert_string_equal(d, d2);
        assert_false(store_blob_exists(
            f->s, "sha256:0000000000000000000000000000000000000000000000000000000000000000"));
        assert_false(store_blob_exists(f->s, "sha256:../../etc/passwd"));
        assert_int_equal(count_dir(f->store_dir, "tmp"), 0);
}

static void test_blob_expected_mismatch(void **state)
{
        fixture *f = *state;
        forge_error *e = NULL;
        store_blob_writer *w = NULL;
        char d[DIGEST_STR_SIZE];
        size_t before = count_dir(f->store_dir, "blobs/sha256");

        assert_int_equal(store_blob_writer_new(f->s, &w, &e), 0);
        assert_int_equal(store_blob_writer_write(w, "abc", 3, &e), 0);
        assert_true(store_blob_writer_commit(
                        w,
                        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                        d, NULL, &e) < 0);
        assert_int_equal(e->errnum, EBADMSG);
        forge_error_release(&e);
        assert_int_equal(count_dir(f->store_dir, "blobs/sha256"), before);
        assert_int_equal(count_dir(f->store_dir, "tmp"), 0);
        /* abort leaves nothing */
        assert_int_equal(store_blob_writer_new(f->s, &w, &e), 0);
        assert_int_equal(store_blob_writer_write(w, "partial", 7, &e), 0);
        store_blob_writer_abort(w);
        assert_int_equal(count_dir(f->store_dir, "tmp"), 0);
        assert_int_equal(count_dir(f->store_dir, "blobs/sha256"), before);
}

/* An image with one (fake) layer blob. */
static void make_image(store *s, const char *content, char ret[DIGEST_STR_SIZE], const char *kernel)
{
        forge_error *e = NULL;
        store_layer l = {0};
        json_t *cfg;

        assert_int_equal(store_blob_put(s, content, strlen(content), l.digest, &e), 0);
        memcpy(l.diff_id, l.digest, DIGEST_STR_SIZE);
        l.size = strlen(content);
        snprintf(l.media_type, sizeof(l.media_type), "%s", STORE_MEDIA_LAYER_TAR);
        cfg = json_pack("{s:s, s:s}", "architecture", "amd64", "os", "linux");
        if (kernel) {
                char kd[DIGEST_STR_SIZE];
                assert_int_equal(store_blob_put(s, kernel, strlen(kernel), kd, &e), 0);
                json_object_set_new(cfg, STORE_CONFIG_FORGE_KEY, json_pack("{s:[s]}", "blobs", kd));
        }
        assert_int_equal(store_image_put(s, cfg, &l, 1, NULL, ret, &e), 0);
        json_decref(cfg);
}

static void test_image_roundtrip_and_canonical(void **state)
{
        fixture *f = *state;
        forge_error *e = NULL;
        char d1[DIGEST_STR_SIZE], d2[DIGEST_STR_SIZE];
        store_image *img = NULL;

        make_image(f->s, "layer-one", d1, NULL);
        make_image(f->s, "layer-one", d2, NULL);
        assert_string_equal(d1, d2); /* canonical JSON: same input, same digest */
        assert_int_equal(store_image_load(f->s, d1, &img, &e), 0);
        assert_int_equal(img->n_layers, 1);
        assert_string_equal(img->layers[0].media_type, STORE_MEDIA_LAYER_TAR);
        assert_int_equal(img->layers[0].size, 9);
        assert_string_equal(json_string_value(json_object_get(img->manifest, "mediaType")),
                            STORE_MEDIA_MANIFEST);
        assert_int_equal(
            json_array_size(json_object_get(json_object_get(img->config, "rootfs"), "diff_ids")),
            1);
        store_image_free(img);
        {
                json_t *j = json_pack("{s:i, s:i, s:s}", "b", 2, "a", 1, "c", "x");
                char *t = store_json_canonical(j, NULL);
                assert_string_equal(t, "{\"a\":1,\"b\":2,\"c\":\"x\"}");
                free(t);
                json_decref(j);
        }
}

static void test_resolve_and_tags(void **state)
{
        fixture *f = *state;
        forge_error *e = NULL;
        char d1[DIGEST_STR_SIZE], d2[DIGEST_STR_SIZE], r[DIGEST_STR_SIZE], prefix[20];
        store_tag *tags = NULL;
        size_t n = 0;

        make_image(f->s, "one", d1, NULL);
        make_image(f->s, "two", d2, NULL);
        assert_int_equal(store_tag_set(f->s, "app", "latest", d1, &e), 0);
        assert_int_equal(store_tag_set(f->s, "app", "v2", d2, &e), 0);
        assert_int_equal(store_resolve(f->s, "app", r, &e), 0);
        assert_string_equal(r, d1);
        assert_int_equal(store_resolve(f->s, "app:v2", r, &e), 0);
        assert_string_equal(r, d2);
        assert_int_equal(store_resolve(f->s, d2, r, &e), 0);
        assert_string_equal(r, d2);
        snprintf(prefix, sizeof(prefix), "%.14s", d2 + 7);
        assert_int_equal(store_resolve(f->s, prefix, r, &e), 0);
        assert_string_equal(r, d2);
        assert_true(store_resolve(f->s, "nope:1", r, &e) < 0);
        assert_int_equal(e->errnum, ENOENT);
        assert_non_null(strstr(e->msg, "forge images"));
        forge_error_release(&e);
        assert_true(store_tag_set(f->s, "../evil", "x", d1, &e) < 0);
        forge_error_release(&e);
        assert_true(store_tag_set(f->s, "app", "a/b", d1, &e) < 0);
        forge_error_release(&e);
        assert_int_equal(store_tag_list(f->s, &tags, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_string_equal(tags[0].tag, "latest");
        assert_string_equal(tags[1].tag, "v2");
        store_tag_list_free(tags, n);
        assert_int_equal(store_tag_remove(f->s, "app", "v2", &e), 0);
        assert_true(store_tag_remove(f->s, "app", "v2", &e) < 0);
        assert_int_equal(e->errnum, ENOENT);
        forge_error_release(&e);
}

static void test_kv(void **state)
{
        fixture *f = *state;
        forge_error *e = NULL;
        char *v = NULL;

        assert_int_equal(store_kv_get(f->s, "cache", "sha256:abc", &v, &e), 0);
        assert_int_equal(store_kv_put(f->s, "cache", "sha256:abc", "{\"x\":1}", &e), 0);
        assert_int_equal(store_kv_get(f->s, "cache", "sha256:abc", &v, &e), 1);
        assert_string_equal(v, "{\"x\":1}");
        free(v);
        assert_int_equal(store_kv_put(f->s, "cache", "a/../../escape", "x", &e), 0);
        assert_int_equal(count_dir(f->store_dir, "kv/cache"), 2); /* stayed inside kv/cache */
        assert_int_equal(store_kv_delete(f->s, "cache", "sha256:abc", &e), 0);
        assert_int_equal(store_kv_get(f->s, "cache", "sha256:abc", &v, &e), 0);
}

static void test_gc(void **state)
{
        fixture *f = *state;
        forge_error *e = NULL;
        char keep[DIGEST_STR_SIZE], drop[DIGEST_STR_SIZE], kernel[DIGEST_STR_SIZE];
        store_gc_stats st = {0};
        size_t before;

        make_image(f->s, "kept-layer", keep, "kernel-bytes");
        make_image(f->s, "dropped-layer", drop, NULL);
        hash_sha256_buf("kernel-bytes", 12, kernel);
        assert_int_equal(store_tag_set(f->s, "keep", "latest", keep, &e), 0);
        assert_int_equal(
            store_kv_put(f->s, "cache", "k1",
                         "{\"digest\":\"sha256:"
                         "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"}",
                         &e),
            0);
        before = count_dir(f->store_dir, "blobs/sha256");
        assert_int_equal(store_gc(f->s, true, NULL, NULL, &st, &e), 0);
        assert_int_equal(st.blobs, 3); /* manifest, config, layer of the untagged image */
        assert_int_equal(count_dir(f->store_dir, "blobs/sha256"), before); /* dry run */
        assert_int_equal(store_gc(f->s, false, NULL, NULL, &st, &e), 0);
        assert_int_equal(st.blobs, 3);
        assert_int_equal(st.kv, 1);
        assert_true(st.bytes > 0);
        assert_int_equal(count_dir(f->store_dir, "blobs/sha256"), before - 3);
        assert_false(store_blob_exists(f->s, drop));
        assert_true(store_blob_exists(f->s, keep));
        assert_true(store_blob_exists(f->s, kernel)); /* listed in dev.forge.blobs */
}

static void make_dir_at(const char *root, const char *rel)
{
        char p[512];

        snprintf(p, sizeof(p), "%s/%s", root, rel);
        assert_int_equal(mkdir(p, 0755), 0);
}

static bool exists_at(const char *root, const char *rel)
{
        char p[512];
        struct stat sb;

        snprintf(p, sizeof(p), "%s/%s", root, rel);
        return lstat(p, &sb) == 0;
}

/* gc removes unpacked layers no tagged image uses (with their kv record) and
 * all of tmp/, dot names included; unpacked dot names (in progress) stay. */
static void test_gc_unpacked_and_tmp(void **state)
{
        fixture *f = *state;
        forge_error *e = NULL;
        char keep[DIGEST_STR_SIZE], live[DIGEST_STR_SIZE], rel[128];
        const char *stale = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        cleanup_free char *v = NULL;
        store_gc_stats st = {0};

        make_image(f->s, "kept-layer", keep, NULL);
        hash_sha256_buf("kept-layer", 10, live); /* make_image's diff_id */
        assert_int_equal(store_tag_set(f->s, "keep", "latest", keep, &e), 0);
        snprintf(rel, sizeof(rel), "layers/%s", digest_hex(live));
        make_dir_at(f->store_dir, rel);
        snprintf(rel, sizeof(rel), "layers/%s", stale);
        make_dir_at(f->store_dir, rel);
        snprintf(rel, sizeof(rel), "layers/%s/usr", stale);
        make_dir_at(f->store_dir, rel);
        make_dir_at(f->store_dir, "layers/.partial");
        make_dir_at(f->store_dir, "tmp/d.1");
        make_dir_at(f->store_dir, "tmp/d.1/x");
        make_dir_at(f->store_dir, "tmp/.hidden");
        assert_int_equal(store_kv_put(f->s, "unpacked", stale, "{}", &e), 0);

        assert_int_equal(store_gc(f->s, true, NULL, NULL, &st, &e), 0);
        assert_int_equal(st.unpacked, 1);
        snprintf(rel, sizeof(rel), "layers/%s", stale);
        assert_true(exists_at(f->store_dir, rel)); /* dry run */
        assert_true(exists_at(f->store_dir, "tmp/d.1/x"));

        assert_int_equal(store_gc(f->s, false, NULL, NULL, &st, &e), 0);
        assert_int_equal(st.unpacked, 1);
        assert_false(exists_at(f->store_dir, rel));
        assert_int_equal(store_kv_get(f->s, "unpacked", stale, &v, &e), 0); /* 0: none */
        snprintf(rel, sizeof(rel), "layers/%s", digest_hex(live));
        assert_true(exists_at(f->store_dir, rel));
        assert_true(exists_at(f->store_dir, "layers/.partial"));
        assert_false(exists_at(f->store_dir, "tmp/d.1"));
        assert_false(exists_at(f->store_dir, "tmp/.hidden"));
}

static void count_bad(const char *what, const char *problem, void *ud)
{
        (*(size_t *)ud)++;
        assert_non_null(strstr(problem, "corrupt"));
}

static void test_verify(void **state)
{
        fixture *f = *state;
        forge_error *e = NULL;
        char d[DIGEST_STR_SIZE], path[512];
        size_t bad = 0, seen = 0;
        int fd;

        make_image(f->s, "verify-me", d, NULL);
        assert_int_equal(store_tag_set(f->s, "v", "latest", d, &e), 0);
        assert_int_equal(store_verify(f->s, NULL, NULL, &bad, &e), 0);
        assert_int_equal(bad, 0);
        /* flip a byte of the layer blob */
        char ld[DIGEST_STR_SIZE];
        hash_sha256_buf("verify-me", 9, ld);
        snprintf(path, sizeof(path), "%s/blobs/sha256/%s", f->store_dir, ld + 7);
        chmod(path, 0644);
        fd = open(path, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "X", 1, 0), 1);
        close(fd);
        assert_int_equal(store_verify(f->s, count_bad, &seen, &bad, &e), 0);
        assert_int_equal(bad, 1);
        assert_int_equal(seen, 1);
}

/* Writers and tag updates in parallel with gc: the store stays consistent. */
static void test_concurrency(void **state)
{
        fixture *f = *state;
        forge_error *e = NULL;
        pid_t kids[3];
        size_t bad = 0;

        for (int k = 0; k < 3; k++) {
                kids[k] = fork();
                assert_true(kids[k] >= 0);
                if (kids[k] == 0) {
                        store *s = NULL;
                        if (store_open(f->store_dir, &s, &e) < 0)
                                _exit(1);
                        for (int i = 0; i < 40; i++) {
                                char buf[64], d[DIGEST_STR_SIZE];
                                if (k == 2) {
                                        store_gc_stats st;
                                        if (store_gc(s, false, NULL, NULL, &st, &e) < 0)
                                                _exit(2);
                                        continue;
                                }
                                snprintf(buf, sizeof(buf), "writer %d item %d", k, i);
                                if (store_lock_shared(s, &e) < 0)
                                        _exit(3);
                                make_image(s, buf, d, NULL);
                                if (store_tag_set(s, k ? "b" : "a", "latest", d, &e) < 0)
                                        _exit(4);
                                store_unlock(s);
                        }
                        store_close(s);
                        _exit(0);
                }
        }
        for (int k = 0; k < 3; k++) {
                int st;
                assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
                assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        assert_int_equal(store_verify(f->s, NULL, NULL, &bad, &e), 0);
        assert_int_equal(bad, 0);
}

static void print_bad(const char *what, const char *problem, void *ud)
{
        fprintf(stderr, "verify: %s: %s\n", what, problem);
}

/* A writer SIGKILLed at arbitrary moments leaves no partial blob. */
static void test_sigkill(void **state)
{
        fixture *f = *state;
        forge_error *e = NULL;
        size_t bad = 0;
        store_gc_stats st;

        for (int round = 0; round < 8; round++) {
                pid_t kid = fork();
                assert_true(kid >= 0);
                if (kid == 0) {
                        store *s = NULL;
                        char *big = malloc(1 << 20);
                        if (store_open(f->store_dir, &s, &e) < 0 || big == NULL)
                                _exit(1);
                        for (unsigned i = 0;; i++) {
                                char d[DIGEST_STR_SIZE], bd[DIGEST_STR_SIZE];
                                memset(big, (int)(i + (unsigned)round * 31), 1 << 20);
                                make_image(s, "crash-layer", d, NULL);
                                store_blob_put(s, big, 1 << 20, bd, &e);
                                store_tag_set(s, "crash", "latest", d, &e);
                        }
                }
                usleep(20000 + (useconds_t)(round * 7919 % 30000));
                kill(kid, SIGKILL);
                waitpid(kid, NULL, 0);
                assert_int_equal(store_verify(f->s, print_bad, NULL, &bad, &e), 0);
                assert_int_equal(bad, 0);
        }
        assert_int_equal(store_gc(f->s, false, NULL, NULL, &st, &e), 0);
        assert_int_equal(count_dir(f->store_dir, "tmp"), 0);
}

/* A layer listed twice: only its topmost occurrence stays (overlayfs refuses
 * the same lowerdir twice). */
static void test_layer_dirs_dedupe(void **state)
{
        char *v[] = {strdup("a"), strdup("b"), strdup("a"), strdup("c"), strdup("b"), NULL};
        size_t n;

        (void)state;
        n = store_layer_dirs_dedupe(v, 5, true);
        assert_int_equal(n, 3);
        assert_string_equal(v[0], "a");
        assert_string_equal(v[1], "c");
        assert_string_equal(v[2], "b");
        assert_null(v[3]);
        for (size_t i = 0; i < n; i++)
                free(v[i]);
}

TU_TEST_MAIN(NULL, NULL, tu_store_test(test_blob_roundtrip),
             tu_store_test(test_blob_expected_mismatch),
             tu_store_test(test_image_roundtrip_and_canonical),
             tu_store_test(test_resolve_and_tags), tu_store_test(test_kv), tu_store_test(test_gc),
             tu_store_test(test_gc_unpacked_and_tmp), tu_store_test(test_verify),
             tu_store_test(test_concurrency), tu_store_test(test_sigkill),
             cmocka_unit_test(test_layer_dirs_dedupe))
