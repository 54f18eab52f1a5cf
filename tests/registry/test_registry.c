/* SPDX-License-Identifier: MIT */
/* Registry logic without a network: references, manifests and indexes,
 * platform choice, the auth file and credential helpers, WWW-Authenticate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "store/registry.h"
#include "testutil.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static void test_ref_remote(void **state)
{
        static const char *const remote[] = {"127.0.0.1:5000/x:y", "localhost/app",
                                             "registry.example/team/app:v1", "myhost:443/app",
                                             NULL};
        static const char *const local[] = {
            "hello",         "hello:latest",  "team/app",       "./base.yaml",
            "../specs/base", "sha256:" HEX_A, "localhostx/app", NULL};

        tu_expect_predicate(registry_ref_is_remote, "registry_ref_is_remote", remote, local);
}

/* want NULL: got is NULL too */
static void assert_string_or_null(const char *got, const char *want)
{
        if (want == NULL) {
                assert_null(got);
        } else {
                assert_non_null(got);
                assert_string_equal(got, want);
        }
}

/* A string a parser accepts and the four string fields it fills (NULL: not
 * set), in the order the test names them. */
typedef struct parse_case {
        const char *in;
        const char *want[4];
} parse_case;

/* got, the four fields the parser filled from c->in, are c->want. */
static void expect_parsed(const parse_case *c, const char *const got[4])
{
        for (size_t i = 0; i < 4; i++)
                assert_string_or_null(got[i], c->want[i]);
}

static void test_ref_parse(void **state)
{
        forge_error *e = NULL;
        registry_ref r;
        char *f;
        /* host, repo, tag, digest */
        static const parse_case good[] = {
            {"127.0.0.1:5000/team/app:v1.2", {"127.0.0.1:5000", "team/app", "v1.2", ""}},
            {"localhost/app", {"localhost", "app", "latest", ""}},
            {"reg.example:8443/a/b@sha256:" HEX_A,
             {"reg.example:8443", "a/b", NULL, "sha256:" HEX_A}},
            {"localhost:5000/a:t@sha256:" HEX_B, {"localhost:5000", "a", "t", "sha256:" HEX_B}},
            {"[::1]:5000/a_b__c-d.e/f:x", {"[::1]:5000", "a_b__c-d.e/f", "x", ""}},
        };

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                assert_int_equal(registry_ref_parse(good[i].in, &r, &e), 0);
                expect_parsed(&good[i], (const char *[]){r.host, r.repo, r.tag, r.digest});
                registry_ref_release(&r);
        }
        /* a digest reference formats back as written */
        assert_int_equal(registry_ref_parse("reg.example:8443/a/b@sha256:" HEX_A, &r, &e), 0);
        f = registry_ref_format(&r);
        assert_string_equal(f, "reg.example:8443/a/b@sha256:" HEX_A);
        free(f);
        registry_ref_release(&r);

        static const char *const bad[] = {
            "hello",                    /* local */
            "127.0.0.1:5000/",          /* no repo */
            "127.0.0.1:5000/Team/app",  /* uppercase */
            "127.0.0.1:99999/app",      /* port */
            "127.0.0.1:/app",           /* empty port */
            "-bad.host/app",            /* label */
            "localhost/app:",           /* empty tag */
            "localhost/app:-x",         /* tag start */
            "localhost/app@sha256:abc", /* short digest */
            "localhost/a//b",           /* empty component */
            "localhost/a..b",           /* separator */
            "localhost/app_",           /* trailing separator */
            "localhost/ap p",           /* space */
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                assert_int_equal(registry_ref_parse(bad[i], &r, &e), -1);
                assert_non_null(e);
                assert_int_equal(e->status, FORGE_EXIT_USAGE);
                forge_error_release(&e);
        }
}

static void test_loopback(void **state)
{
        static const char *const loopback[] = {
            "127.0.0.1:5000",      "127.3.4.5", "localhost:80", "[::1]:5000", "localhost/token",
            "127.0.0.1/token?x=y", NULL};
        static const char *const other[] = {"localhost.example/token", "128.0.0.1",
                                            "127.0.0.1.example",       "10.0.0.1:5000",
                                            "localhost.example",       NULL};

        tu_expect_predicate(registry_host_is_loopback, "registry_host_is_loopback", loopback,
                            other);
}

static const char oci_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
    "\"sha256:" HEX_A "\",\"size\":123},\"layers\":[{\"mediaType\":"
    "\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"sha256:" HEX_B
    "\",\"size\":456},{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
    "\"digest\":\"sha256:" HEX_C "\",\"size\":7}]}";

static void test_manifest_image(void **state)
{
        forge_error *e = NULL;
        registry_manifest m;

        assert_int_equal(registry_manifest_parse(oci_manifest, strlen(oci_manifest), NULL, &m, &e),
                         0);
        assert_int_equal(m.kind, REGISTRY_KIND_IMAGE);
        assert_string_equal(m.config.digest, "sha256:" HEX_A);
        assert_int_equal(m.config.size, 123);
        assert_int_equal(m.n_layers, 2);
        assert_string_equal(m.layers[0].digest, "sha256:" HEX_B);
        assert_int_equal(m.layers[0].size, 456);
        assert_string_equal(m.layers[1].media_type, STORE_MEDIA_LAYER_GZIP);
        registry_manifest_release(&m);

        /* Docker schema 2, media type only in the Content-Type */
        static const char docker[] =
            "{\"schemaVersion\":2,\"config\":{\"mediaType\":"
            "\"application/vnd.docker.container.image.v1+json\",\"digest\":\"sha256:" HEX_A
            "\",\"size\":1},\"layers\":[]}";
        assert_int_equal(registry_manifest_parse(docker, strlen(docker),
                                                 REGISTRY_MEDIA_DOCKER_MANIFEST "; charset=utf-8",
                                                 &m, &e),
                         0);
        assert_int_equal(m.kind, REGISTRY_KIND_IMAGE);
        assert_string_equal(m.media_type, REGISTRY_MEDIA_DOCKER_MANIFEST);
        assert_int_equal(m.n_layers, 0);
        registry_manifest_release(&m);
}

static void expect_bad_manifest(const char *body, const char *needle)
{
        forge_error *e = NULL;
        registry_manifest m;

        assert_int_equal(registry_manifest_parse(body, strlen(body), NULL, &m, &e), -1);
        assert_non_null(e);
        if (strstr(e->msg, needle) == NULL)
                fail_msg("message '%s' lacks '%s'", e->msg, needle);
        forge_error_release(&e);
}

static void test_manifest_bad(void **state)
{
        expect_bad_manifest("not json", "not valid JSON");
        expect_bad_manifest("[]", "not a JSON object");
        expect_bad_manifest("{\"schemaVersion\":1}", "schemaVersion 2");
        expect_bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"text/plain\"}", "unsupported");
        expect_bad_manifest("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":"
                            "\"sha256:../../etc\",\"size\":1},\"layers\":[]}",
                            "digest");
        expect_bad_manifest("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":"
                            "\"sha256:" HEX_A "\",\"size\":-1},\"layers\":[]}",
                            "size");
        expect_bad_manifest("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":"
                            "\"sha256:" HEX_A "\",\"size\":1},\"layers\":[{}]}",
                            "layer 1");
        expect_bad_manifest("{\"schemaVersion\":2,\"schemaVersion\":2}", "not valid JSON");
        expect_bad_manifest("{\"schemaVersion\":2,\"mediaType\":"
                            "\"application/vnd.oci.image.index.v1+json\"}",
                            "manifests");

        /* over the cap: refused before parsing */
        size_t big = REGISTRY_MAX_MANIFEST + 1;
        char *buf = malloc(big + 1);
        forge_error *e = NULL;
        registry_manifest m;
        memset(buf, ' ', big);
        buf[big] = '\0';
        assert_int_equal(registry_manifest_parse(buf, big, NULL, &m, &e), -1);
        assert_int_equal(e->errnum, EFBIG);
        forge_error_release(&e);
        free(buf);
}

static void test_index_pick(void **state)
{
        static const char idx[] =
            "{\"schemaVersion\":2,\"mediaType\":"
            "\"application/vnd.docker.distribution.manifest.list.v2+json\",\"manifests\":["
            "{\"mediaType\":\"x\",\"digest\":\"sha256:" HEX_A
            "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\","
            "\"variant\":\"v8\"}},"
            "{\"mediaType\":\"x\",\"digest\":\"sha256:" HEX_B
            "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
            "{\"mediaType\":\"x\",\"digest\":\"sha256:" HEX_C
            "\",\"size\":1,\"platform\":{\"os\":\"windows\",\"architecture\":\"amd64\"}}]}";
        forge_error *e = NULL;
        registry_manifest m;
        char d[DIGEST_STR_SIZE];

        assert_int_equal(registry_manifest_parse(idx, strlen(idx), NULL, &m, &e), 0);
        assert_int_equal(m.kind, REGISTRY_KIND_INDEX);
        assert_int_equal(registry_index_pick(&m, "linux", "amd64", NULL, d, &e), 0);
        assert_string_equal(d, "sha256:" HEX_B);
        assert_int_equal(registry_index_pick(&m, "windows", "amd64", NULL, d, &e), 0);
        assert_string_equal(d, "sha256:" HEX_C);
        assert_int_equal(registry_index_pick(&m, "linux", "arm64", "v8", d, &e), 0);
        assert_string_equal(d, "sha256:" HEX_A);
        assert_int_equal(registry_index_pick(&m, "linux", "s390x", NULL, d, &e), -1);
        assert_int_equal(e->errnum, ENOENT);
        assert_non_null(strstr(e->msg, "linux/arm64, linux/amd64, windows/amd64"));
        forge_error_release(&e);
        registry_manifest_release(&m);
        assert_string_not_equal(registry_host_arch(), "");
}

static void test_base64(void **state)
{
        static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
        static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                          "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
        for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
                char *e = registry_base64_encode(plain[i], strlen(plain[i])), *d = NULL;
                size_t n;
                assert_string_equal(e, enc[i]);
                assert_int_equal(registry_base64_decode(e, &d, &n), 0);
                assert_int_equal(n, strlen(plain[i]));
                assert_string_equal(d, plain[i]);
                free(e);
                free(d);
        }
        char *d = NULL;
        assert_int_equal(registry_base64_decode("Zm9v!", &d, NULL), -1);
        assert_int_equal(registry_base64_decode("Z", &d, NULL), -1);
        assert_int_equal(registry_base64_decode("Zg===", &d, NULL), -1);
}

typedef struct authdir {
        char dir[64];
        char file[128];
} authdir;

static int auth_setup(void **state)
{
        authdir *a = calloc(1, sizeof(*a));
        snprintf(a->dir, sizeof(a->dir), "/tmp/forge-auth-XXXXXX");
        assert_non_null(mkdtemp(a->dir));
        snprintf(a->file, sizeof(a->file), "%s/sub/auth.json", a->dir);
        *state = a;
        return 0;
}

static int auth_teardown(void **state)
{
        authdir *a = *state;
        forge_error *e = NULL;
        fs_rm_rf(a->dir, &e);
        forge_error_release(&e);
        free(a);
        return 0;
}

static void test_auth_roundtrip(void **state)
{
        authdir *a = *state;
        forge_error *e = NULL;
        registry_cred c = {0};
        struct stat st;
        char *txt = NULL;

        assert_int_equal(registry_auth_lookup(a->file, "127.0.0.1:5000", &c, &e), 0);
        assert_int_equal(registry_auth_store(a->file, "127.0.0.1:5000", "alice", "s3cr:et", &e), 0);
        assert_int_equal(stat(a->file, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(registry_auth_lookup(a->file, "127.0.0.1:5000", &c, &e), 1);
        assert_string_equal(c.user, "alice");
        assert_string_equal(c.secret, "s3cr:et");
        assert_false(c.identity_token);
        registry_cred_release(&c);
        /* the password is not in the file in clear */
        assert_int_equal(fs_read_all(AT_FDCWD, a->file, 1 << 20, &txt, NULL, &e), 0);
        assert_null(strstr(txt, "s3cr:et"));
        free(txt);
        assert_int_equal(registry_auth_lookup(a->file, "127.0.0.1:5001", &c, &e), 0);

        /* other keys are kept; logout removes only that host */
        tu_write_path(a->file,
                      "{\"auths\":{\"https://reg.example/v1/\":{\"auth\":\"Ym9iOnB3\"},"
                      "\"tok.example\":{\"identitytoken\":\"T0K\"}},\"other\":{\"keep\":1}}",
                      0600);
        assert_int_equal(registry_auth_lookup(a->file, "reg.example", &c, &e), 1);
        assert_string_equal(c.user, "bob");
        assert_string_equal(c.secret, "pw");
        registry_cred_release(&c);
        assert_int_equal(registry_auth_lookup(a->file, "tok.example", &c, &e), 1);
        assert_true(c.identity_token);
        assert_null(c.user);
        assert_string_equal(c.secret, "T0K");
        registry_cred_release(&c);
        assert_int_equal(registry_auth_store(a->file, "127.0.0.1:5000", "carol", "x", &e), 0);
        assert_int_equal(registry_auth_store(a->file, "reg.example", NULL, NULL, &e), 0);
        assert_int_equal(registry_auth_lookup(a->file, "reg.example", &c, &e), 0);
        assert_int_equal(registry_auth_lookup(a->file, "127.0.0.1:5000", &c, &e), 1);
        registry_cred_release(&c);
        assert_int_equal(fs_read_all(AT_FDCWD, a->file, 1 << 20, &txt, NULL, &e), 0);
        assert_non_null(strstr(txt, "\"keep\""));
        assert_non_null(strstr(txt, "tok.example"));
        free(txt);
        assert_int_equal(registry_auth_store(a->file, "reg.example", NULL, NULL, &e), -1);
        assert_int_equal(e->errnum, ENOENT);
        forge_error_release(&e);

        /* a malformed entry: an error that does not show the secret */
        tu_write_path(a->file, "{\"auths\":{\"h.example\":{\"auth\":\"bm9jb2xvbg==\"}}}", 0600);
        assert_int_equal(registry_auth_lookup(a->file, "h.example", &c, &e), -1);
        assert_null(strstr(e->msg, "nocolon"));
        assert_null(strstr(e->msg, "bm9jb2xvbg"));
        forge_error_release(&e);
        tu_write_path(a->file, "[1]", 0600);
        assert_int_equal(registry_auth_lookup(a->file, "h.example", &c, &e), -1);
        forge_error_release(&e);
}

static void test_auth_helpers(void **state)
{
        authdir *a = *state;
        forge_error *e = NULL;
        registry_cred c = {0};
        char path[256], oldpath[4096], newpath[4400];

        /* a credential helper that answers for one host and logs what it got */
        snprintf(path, sizeof(path), "%s/docker-credential-fake", a->dir);
        tu_write_path(path,
                      "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread -r host\n"
                      "echo \"$host\" >>\"$(dirname \"$0\")/asked\"\n"
                      "case $host in\n"
                      " h1.example) echo '{\"ServerURL\":\"h1.example\",\"Username\":\"u1\","
                      "\"Secret\":\"p1\"}';;\n"
                      " h2.example) echo '{\"Username\":\"<token>\",\"Secret\":\"tok2\"}';;\n"
                      " *) echo 'credentials not found in native keychain'; exit 1;;\n"
                      "esac\n",
                      0755);
        snprintf(path, sizeof(path), "%s/docker-credential-broken", a->dir);
        tu_write_path(path, "#!/bin/sh\necho boom >&2\nexit 4\n", 0755);
        snprintf(oldpath, sizeof(oldpath), "%s", getenv("PATH"));
        snprintf(newpath, sizeof(newpath), "%s:%s", a->dir, oldpath);
        setenv("PATH", newpath, 1);

        snprintf(path, sizeof(path), "%s/auth.json", a->dir);
        tu_write_path(path,
                      "{\"auths\":{\"h3.example\":{\"auth\":\"dTM6cDM=\"}},"
                      "\"credHelpers\":{\"h1.example\":\"fake\",\"bad.example\":\"broken\","
                      "\"evil.example\":\"../../bin/sh\"},\"credsStore\":\"fake\"}",
                      0600);
        assert_int_equal(registry_auth_lookup(path, "h1.example", &c, &e), 1);
        assert_string_equal(c.user, "u1");
        assert_string_equal(c.secret, "p1");
        registry_cred_release(&c);
        /* credsStore for hosts without their own helper or entry */
        assert_int_equal(registry_auth_lookup(path, "h2.example", &c, &e), 1);
        assert_true(c.identity_token);
        assert_string_equal(c.secret, "tok2");
        registry_cred_release(&c);
        /* auths entry wins over credsStore */
        assert_int_equal(registry_auth_lookup(path, "h3.example", &c, &e), 1);
        assert_string_equal(c.user, "u3");
        registry_cred_release(&c);
        assert_int_equal(registry_auth_lookup(path, "none.example", &c, &e), 0);
        assert_int_equal(registry_auth_lookup(path, "bad.example", &c, &e), -1);
        assert_non_null(strstr(e->msg, "exit 4"));
        forge_error_release(&e);
        assert_int_equal(registry_auth_lookup(path, "evil.example", &c, &e), -1);
        assert_non_null(strstr(e->msg, "not valid"));
        forge_error_release(&e);

        char *asked = NULL;
        snprintf(path, sizeof(path), "%s/asked", a->dir);
        assert_int_equal(fs_read_all(AT_FDCWD, path, 4096, &asked, NULL, &e), 0);
        assert_string_equal(asked, "h1.example\nh2.example\nnone.example\n");
        free(asked);
        setenv("PATH", oldpath, 1);
}

static void test_auth_file_path(void **state)
{
        char *p;

        setenv("REGISTRY_AUTH_FILE", "/x/auth.json", 1);
        p = registry_auth_file_path();
        assert_string_equal(p, "/x/auth.json");
        free(p);
        unsetenv("REGISTRY_AUTH_FILE");
        setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
        p = registry_auth_file_path();
        assert_string_equal(p, "/run/user/7/containers/auth.json");
        free(p);
        unsetenv("XDG_RUNTIME_DIR");
        setenv("HOME", "/home/u", 1);
        p = registry_auth_file_path();
        assert_string_equal(p, "/home/u/.docker/config.json");
        free(p);
}

static void test_challenge(void **state)
{
        forge_error *e = NULL;
        registry_challenge c;
        /* scheme, realm, service, scope */
        static const parse_case good[] = {
            {"Bearer realm=\"http://127.0.0.1:9/token\",service=\"reg\","
             "scope=\"repository:a/b:pull,push\"",
             {"bearer", "http://127.0.0.1:9/token", "reg", "repository:a/b:pull,push"}},
            {"basic Realm=\"Registry \\\"x\\\"\"", {"basic", "Registry \"x\"", NULL, NULL}},
            {"Bearer realm=tok,error=\"invalid_token\"", {"bearer", "tok", NULL, NULL}},
        };
        static const char *const bad[] = {
            "Bearer service=\"x\"",
            "Negotiate abc",
            "",
            "Bearer realm=\"unterminated",
        };

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                assert_int_equal(registry_challenge_parse(good[i].in, &c, &e), 0);
                expect_parsed(&good[i], (const char *[]){c.scheme, c.realm, c.service, c.scope});
                registry_challenge_release(&c);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                assert_int_equal(registry_challenge_parse(bad[i], &c, &e), -1);
                forge_error_release(&e);
        }
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_ref_remote), cmocka_unit_test(test_ref_parse),
             cmocka_unit_test(test_loopback), cmocka_unit_test(test_manifest_image),
             cmocka_unit_test(test_manifest_bad), cmocka_unit_test(test_index_pick),
             cmocka_unit_test(test_base64),
             cmocka_unit_test_setup_teardown(test_auth_roundtrip, auth_setup, auth_teardown),
             cmocka_unit_test_setup_teardown(test_auth_helpers, auth_setup, auth_teardown),
             cmocka_unit_test(test_auth_file_path), cmocka_unit_test(test_challenge))
