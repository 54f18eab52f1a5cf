/* SPDX-License-Identifier: MIT */
/*
 * Package-source units: apt's one-line and deb822 sources (options,
 * Signed-By, architectures, disabled stanzas, continuation lines, errors),
 * InRelease's fields and SHA256 section, Release dates, ASCII armor, and the
 * lock's canonical form read back and checked against the spec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builder/pkg-internal.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "testutil.h"

static char *const default_keys[] = {"/etc/apt/trusted.gpg.d/debian.gpg", NULL};

static void test_list(void **state)
{
        const char *text = "# a comment\n"
                           "deb http://a.invalid/debian bookworm main contrib\n"
                           "deb-src http://a.invalid/debian bookworm main\n"
                           "\n"
                           "deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/x.gpg] "
                           "https://b.invalid/d/ stable main # trailing\n"
                           "deb [arch=arm64] http://c.invalid/debian bookworm main\n"
                           "deb cdrom:[Debian]/ bookworm main\n";
        pkg_sources s = {0};
        forge_error *err = NULL;

        (void)state;
        assert_int_equal(pkg_apt_parse_list(text, "sources.list", "amd64", default_keys, &s, &err),
                         0);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.v[0].uri, "http://a.invalid/debian");
        assert_string_equal(s.v[0].suite, "bookworm");
        assert_string_equal(s.v[0].components[0], "main");
        assert_string_equal(s.v[0].components[1], "contrib");
        assert_null(s.v[0].components[2]);
        assert_string_equal(s.v[0].keyrings[0], default_keys[0]);
        assert_string_equal(s.v[0].origin, "sources.list:2");
        assert_string_equal(s.v[1].uri, "https://b.invalid/d");
        assert_string_equal(s.v[1].keyrings[0], "/usr/share/keyrings/x.gpg");
        assert_null(s.v[1].keyrings[1]);
        assert_string_equal(s.v[1].origin, "sources.list:5");
        pkg_sources_free(&s);

        assert_int_equal(pkg_apt_parse_list("deb http://a.invalid/d\n", "x.list", "amd64",
                                            default_keys, &s, &err),
                         -1);
        assert_int_equal(err->status, FORGE_EXIT_USAGE);
        assert_non_null(strstr(err->msg, "x.list:1"));
        forge_error_release(&err);
        pkg_sources_free(&s);
        assert_int_equal(pkg_apt_parse_list("deb ftp://a.invalid/d x main\n", "x.list", "amd64",
                                            default_keys, &s, &err),
                         -1);
        forge_error_release(&err);
        pkg_sources_free(&s);
        assert_int_equal(pkg_apt_parse_list("deb http://a.invalid/d ../x main\n", "x.list", "amd64",
                                            default_keys, &s, &err),
                         -1);
        forge_error_release(&err);
        pkg_sources_free(&s);
}

static void test_deb822(void **state)
{
        const char *text = "Types: deb deb-src\n"
                           "URIs: http://a.invalid/debian http://m.invalid/debian\n"
                           "Suites: bookworm bookworm-updates\n"
                           "Components: main\n"
                           "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
                           "\n"
                           "# disabled\n"
                           "Types: deb\n"
                           "URIs: http://off.invalid/\n"
                           "Suites: x\n"
                           "Components: main\n"
                           "Enabled: no\n"
                           "\n"
                           "Types: deb-src\n"
                           "URIs: http://src.invalid/\n"
                           "Suites: x\n"
                           "Components: main\n"
                           "\n"
                           "Types: deb\n"
                           "URIs: http://k.invalid/\n"
                           "Suites: y\n"
                           "Components: main non-free\n"
                           "Architectures: amd64\n"
                           "Signed-By:\n"
                           " -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
                           " .\n"
                           " mDMEZQ==\n"
                           " -----END PGP PUBLIC KEY BLOCK-----\n";
        pkg_sources s = {0};
        forge_error *err = NULL;

        (void)state;
        assert_int_equal(
            pkg_apt_parse_deb822(text, "debian.sources", "amd64", default_keys, &s, &err), 0);
        assert_int_equal(s.n, 5);
        assert_string_equal(s.v[0].uri, "http://a.invalid/debian");
        assert_string_equal(s.v[1].uri, "http://a.invalid/debian");
        assert_string_equal(s.v[1].suite, "bookworm-updates");
        assert_string_equal(s.v[2].uri, "http://m.invalid/debian");
        assert_string_equal(s.v[0].keyrings[0], "/usr/share/keyrings/debian-archive-keyring.gpg");
        assert_string_equal(s.v[0].origin, "debian.sources:1");
        assert_string_equal(s.v[4].uri, "http://k.invalid");
        assert_string_equal(s.v[4].components[1], "non-free");
        assert_null(s.v[4].keyrings[0]);
        assert_non_null(s.v[4].inline_key);
        assert_non_null(strstr(s.v[4].inline_key, "\n\nmDMEZQ==\n"));
        pkg_sources_free(&s);

        /* another architecture only: nothing */
        assert_int_equal(pkg_apt_parse_deb822("Types: deb\nURIs: http://a.invalid/\nSuites: x\n"
                                              "Components: main\nArchitectures: arm64\n",
                                              "a.sources", "amd64", default_keys, &s, &err),
                         0);
        assert_int_equal(s.n, 0);
        assert_int_equal(pkg_apt_parse_deb822("Types: deb\n continuation\nbroken line\n",
                                              "b.sources", "amd64", default_keys, &s, &err),
                         -1);
        assert_non_null(strstr(err->msg, "b.sources:3"));
        forge_error_release(&err);
        pkg_sources_free(&s);
        assert_int_equal(pkg_apt_parse_deb822("Types: deb\nURIs: http://a.invalid/\n", "c.sources",
                                              "amd64", default_keys, &s, &err),
                         -1);
        forge_error_release(&err);
        pkg_sources_free(&s);
}

static void test_host(void **state)
{
        char *dir = tu_tmpdir("pkg");
        pkg_sources s = {0};
        forge_error *err = NULL;

        (void)state;
        tu_write_file(dir, "etc/apt/sources.list", "deb http://one.invalid/ a main\n", 0644);
        tu_write_file(dir, "etc/apt/sources.list.d/z.sources",
                      "Types: deb\nURIs: http://two.invalid/\nSuites: b\nComponents: main\n", 0644);
        tu_write_file(dir, "etc/apt/sources.list.d/a.list", "deb http://three.invalid/ c main\n",
                      0644);
        tu_write_file(dir, "etc/apt/sources.list.d/ignored.save", "deb http://no.invalid/ c main\n",
                      0644);
        tu_write_file(dir, "etc/apt/trusted.gpg.d/k.asc", "x", 0644);
        assert_int_equal(pkg_apt_host(dir, "amd64", &s, &err), 0);
        assert_int_equal(s.n, 3);
        assert_string_equal(s.v[0].uri, "http://one.invalid");
        assert_string_equal(s.v[1].uri, "http://three.invalid"); /* a.list before z.sources */
        assert_string_equal(s.v[2].uri, "http://two.invalid");
        assert_non_null(strstr(s.v[2].keyrings[0], "trusted.gpg.d/k.asc"));
        pkg_sources_free(&s);
        tu_tmpdir_remove(dir);
}

static const char release[] =
    "Origin: test\n"
    "Suite: testing\n"
    "Codename: t\n"
    "Date: Tue, 01 Dec 2026 09:53:33 +0000\n"
    "Valid-Until: Sat, 01 Jan 2000 00:00:00 UTC\n"
    "MD5Sum:\n"
    " 0123456789abcdef0123456789abcdef 10 main/binary-amd64/Packages\n"
    "SHA256:\n"
    " 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef 1234 "
    "main/binary-amd64/Packages.xz\n"
    " 1111111111111111111111111111111111111111111111111111111111111111 99 "
    "main/binary-amd64/Packages\n"
    " 2222222222222222222222222222222222222222222222222222222222222222 1 ../escape\n"
    " short 1 main/x\n";

static void test_release(void **state)
{
        pkg_release r = {0};
        const pkg_release_file *f;
        forge_error *err = NULL;
        time_t t;

        (void)state;
        assert_int_equal(pkg_release_parse(release, sizeof(release) - 1, &r, &err), 0);
        assert_string_equal(r.suite, "testing");
        assert_string_equal(r.codename, "t");
        assert_string_equal(r.date, "Tue, 01 Dec 2026 09:53:33 +0000");
        assert_string_equal(r.valid_until, "Sat, 01 Jan 2000 00:00:00 UTC");
        assert_int_equal(r.n_files, 2); /* MD5Sum, ../ and malformed lines are not taken */
        f = pkg_release_find(&r, "main/binary-amd64/Packages.xz");
        assert_non_null(f);
        assert_int_equal(f->size, 1234);
        assert_string_equal(f->sha256, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef"
                                       "0123456789abcdef");
        assert_null(pkg_release_find(&r, "../escape"));
        pkg_release_free(&r);

        assert_int_equal(pkg_release_parse("Date: x\n", 8, &r, &err), -1);
        forge_error_release(&err);
        assert_int_equal(pkg_release_parse("SHA256:\n x\0y", 12, &r, &err), -1);
        forge_error_release(&err);

        assert_int_equal(pkg_date_parse("Sat, 01 Jan 2000 00:00:00 UTC", &t), 0);
        assert_int_equal(t, 946684800);
        assert_int_equal(pkg_date_parse("Tue, 01 Dec 2026 09:53:33 +0000", &t), 0);
        assert_int_equal(t, 1796118813);
        assert_int_equal(pkg_date_parse("01 Jan 2000 00:00:00 GMT", &t), 0);
        assert_int_equal(pkg_date_parse("Sat, 01 Foo 2000 00:00:00 UTC", &t), -1);
        assert_int_equal(pkg_date_parse("Sat, 01 Jan 2000 00:00:00 +0200", &t), -1);
        assert_int_equal(pkg_date_parse("yesterday", &t), -1);
}

static void test_dearmor(void **state)
{
        const char armored[] = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n"
                               "Comment: x\n"
                               "\n"
                               "aGVsbG8g\n"
                               "d29ybGQ=\n"
                               "=abcd\n"
                               "-----END PGP PUBLIC KEY BLOCK-----\n";
        unsigned char *out = NULL;
        size_t len = 0;

        (void)state;
        assert_int_equal(pkg_dearmor(armored, sizeof(armored) - 1, &out, &len), 0);
        assert_int_equal(len, 11);
        assert_memory_equal(out, "hello world", 11);
        free(out);
        assert_int_equal(pkg_dearmor("no armor", 8, &out, &len), -1);
        assert_int_equal(pkg_dearmor("-----BEGIN PGP X-----\n\n!!!!\n-----END", 36, &out, &len),
                         -1);
}

/* A spec with one packages: layer, written to a temp dir. */
static spec *load_spec(const char *dir, const char *pkgs)
{
        char path[256], text[1024];
        spec *sp = NULL;
        forge_error *err = NULL;
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);

        snprintf(text, sizeof(text),
                 "forge: 1\nname: t\narchitecture: amd64\nrepositories:\n  - host\n"
                 "layers:\n  - name: py\n    packages: [%s]\n",
                 pkgs);
        assert_int_equal(fs_write_atomic(dfd, "t.yaml", text, strlen(text), 0644, &err), 0);
        close(dfd);
        snprintf(path, sizeof(path), "%s/t.yaml", dir);
        assert_int_equal(spec_load(path, &sp, &err), 0);
        return sp;
}

static void fill_lock(pkg_lock *pl, size_t n_layers)
{
        memset(pl, 0, sizeof(*pl));
        pl->arch = strdup("amd64");
        pl->n_repos = 1;
        pl->repos = calloc(1, sizeof(*pl->repos));
        pl->repos[0].suite = strdup("bookworm");
        pl->repos[0].components = calloc(2, sizeof(char *));
        pl->repos[0].components[0] = strdup("main");
        pl->repos[0].date = strdup("Sat, 01 Jan 2000 00:00:00 UTC");
        hash_sha256_buf("x", 1, pl->repos[0].inrelease_sha256);
        pl->n_layers = n_layers;
        pl->layers = calloc(n_layers, sizeof(*pl->layers));
        pl->layers[0].n = 2;
        pl->layers[0].v = calloc(2, sizeof(pkg_locked));
        for (int i = 0; i < 2; i++) {
                pkg_locked *p = &pl->layers[0].v[i];
                p->name = strdup(i ? "zlib1g" : "a-pkg");
                p->version = strdup(i ? "1:1.2.13.dfsg-1" : "1.0");
                p->arch = strdup("amd64");
                p->filename = strdup(i ? "pool/main/z/zlib1g.deb" : "pool/main/a/a.deb");
                p->size = 100 + (uint64_t)i;
                hash_sha256_buf(p->name, strlen(p->name), p->sha256);
        }
}

static void test_lock(void **state)
{
        char dir[] = "/tmp/forge-lock-XXXXXX";
        cleanup_free char *text = NULL, *text2 = NULL;
        pkg_lock pl, back = {0};
        json_t *obj, *loaded = NULL;
        forge_error *err = NULL;
        spec *sp;
        size_t len;

        (void)state;
        assert_non_null(mkdtemp(dir));
        sp = load_spec(dir, "python3, \"curl (= 7.88.1-10)\"");
        fill_lock(&pl, sp->n_layers);
        obj = json_pack("{s:{s:s}}", "from", "digest", "sha256:00");
        assert_int_equal(pkg_lock_to_json(sp, &pl, obj, &err), 0);
        assert_int_equal(builder_lock_save(sp, obj, &err), 0);
        json_decref(obj);
        {
                cleanup_free char *p = builder_lock_path(sp);
                assert_int_equal(fs_read_all(AT_FDCWD, p, 1 << 20, &text, &len, &err), 0);
        }
        /* canonical: sorted keys, 2-space indent, one newline at the end, no host */
        assert_true(len > 2 && text[len - 1] == '\n' && text[len - 2] == '}');
        assert_non_null(strstr(text, "{\n  \"from\": {\n    \"digest\": \"sha256:00\"\n  },\n"
                                     "  \"lock_version\": 1,\n  \"packages\": {\n"
                                     "    \"architecture\": \"amd64\",\n"));
        assert_true(strstr(text, "\"name\": \"a-pkg\"") < strstr(text, "\"name\": \"zlib1g\""));
        assert_true(strstr(text, "\"architecture\": \"amd64\",\n            \"essential\"") !=
                    NULL);

        /* read back: the same packages; saved again: the same bytes */
        assert_int_equal(builder_lock_load(sp, &loaded, &err), 1);
        assert_int_equal(pkg_lock_from_json(sp, loaded, &back, &err), 0);
        assert_int_equal(back.layers[0].n, 2);
        assert_string_equal(back.layers[0].v[1].version, "1:1.2.13.dfsg-1");
        assert_int_equal(back.layers[0].v[1].size, 101);
        assert_string_equal(back.layers[0].v[0].sha256, pl.layers[0].v[0].sha256);
        assert_int_equal(pkg_lock_to_json(sp, &back, loaded, &err), 0);
        assert_int_equal(builder_lock_save(sp, loaded, &err), 0);
        {
                cleanup_free char *p = builder_lock_path(sp);
                assert_int_equal(fs_read_all(AT_FDCWD, p, 1 << 20, &text2, &len, &err), 0);
        }
        assert_string_equal(text, text2);
        pkg_lock_free(&back);
        spec_free(sp);

        /* the spec asks for more: stale, exit 2, the contract's message */
        sp = load_spec(dir, "python3, \"curl (= 7.88.1-10)\", jq");
        assert_int_equal(pkg_lock_from_json(sp, loaded, &back, &err), -1);
        assert_int_equal(err->status, FORGE_EXIT_USAGE);
        {
                char want[512];
                snprintf(want, sizeof(want),
                         "%s/t.yaml.lock is out of date (layer 'py' asks for 'jq'): run 'forge "
                         "lock %s/t.yaml'",
                         dir, dir);
                assert_string_equal(err->msg, want);
        }
        forge_error_release(&err);
        spec_free(sp);
        sp = load_spec(dir, "python3");
        assert_int_equal(pkg_lock_from_json(sp, loaded, &back, &err), -1);
        assert_non_null(strstr(err->msg, "no longer asks for 'curl (= 7.88.1-10)'"));
        forge_error_release(&err);
        spec_free(sp);

        /* a hostile lock: a name that would leave the dpkg info directory */
        sp = load_spec(dir, "python3, \"curl (= 7.88.1-10)\"");
        json_object_set_new(
            json_array_get(
                json_object_get(
                    json_array_get(json_object_get(json_object_get(loaded, "packages"), "layers"),
                                   0),
                    "packages"),
                0),
            "name", json_string("../../etc/x"));
        assert_int_equal(pkg_lock_from_json(sp, loaded, &back, &err), -1);
        assert_int_equal(err->status, FORGE_EXIT_USAGE);
        forge_error_release(&err);
        spec_free(sp);

        json_decref(loaded);
        pkg_lock_free(&pl);
        assert_int_equal(fs_rm_rf(dir, &err), 0);
}

static void test_status_merge(void **state)
{
        /* the base: unsorted, a continuation line, a replaced package, no final newline */
        const char *base = "Package: zed\nStatus: install ok installed\nArchitecture: all\n"
                           "Description: z\n more\n\n\n"
                           "Package: libfoo1\nArchitecture: amd64\nVersion: 1.0\n\n"
                           "Package: alpha\nArchitecture: amd64\nVersion: 2";
        pkg_stanza fresh[] = {
            {"libfoo1", "amd64", "Package: libfoo1\nVersion: 2.0\n\n"},
            {"mid", "all", "Package: mid\n\n"},
        };
        forge_error *err = NULL;
        char *out = NULL;
        size_t len = 0;

        (void)state;
        assert_int_equal(pkg_status_merge(base, "status", fresh, 2, &out, &len, &err), 0);
        assert_string_equal(out, "Package: alpha\nArchitecture: amd64\nVersion: 2\n\n"
                                 "Package: libfoo1\nVersion: 2.0\n\n"
                                 "Package: mid\n\n"
                                 "Package: zed\nStatus: install ok installed\nArchitecture: all\n"
                                 "Description: z\n more\n\n");
        assert_int_equal(len, strlen(out));
        free(out);
        /* no base: only the fresh stanzas, sorted */
        assert_int_equal(pkg_status_merge(NULL, "status", fresh + 1, 1, &out, &len, &err), 0);
        assert_string_equal(out, "Package: mid\n\n");
        free(out);
        /* a base stanza without a package, or with a name that is no Debian name */
        out = NULL;
        assert_int_equal(pkg_status_merge("Package: aa\n\nVersion: 1\n", "base status", fresh, 2,
                                          &out, &len, &err),
                         -1);
        assert_null(out);
        assert_non_null(strstr(err->msg, "base status: stanza 2 has no valid "
                                         "Package field"));
        forge_error_release(&err);
        assert_int_equal(pkg_status_merge("Package: ../x\n", "s", NULL, 0, &out, &len, &err), -1);
        forge_error_release(&err);
        assert_int_equal(pkg_status_merge("Package:\n", "s", NULL, 0, &out, &len, &err), -1);
        forge_error_release(&err);
}

static void test_repo_url(void **state)
{
        forge_error *err = NULL;
        pkg_sources s = {0};
        char *comps[] = {"main", NULL}, *keys[] = {"/k.gpg", NULL};

        static const struct {
                const char *url;
                bool ok;
        } urls[] = {
            {"https://127.0.0.1:8443/debian", true}, {"file:///srv/mirror", true},
            {"ftp://a.invalid/debian", false},       {"http://a.invalid/deb ian", false},
            {"http://a.invalid/\x7f", false},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
                if ((spec_repo_url_problem(urls[i].url) == NULL) != urls[i].ok)
                        fail_msg("'%s' should be %s", urls[i].url, urls[i].ok ? "fine" : "refused");
        /* the apt sources use the same check */
        assert_int_equal(pkg_source_add(&s, "ftp://a.invalid/debian", "bookworm", comps, keys, NULL,
                                        "x.list:1", &err),
                         -1);
        assert_non_null(strstr(err->msg, "x.list:1: URI 'ftp://a.invalid/debian' is not an http"));
        forge_error_release(&err);
        assert_int_equal(pkg_source_add(&s, "http://a.invalid/\033[2J", "bookworm", comps, keys,
                                        NULL, "x.list:2", &err),
                         -1);
        assert_null(strstr(err->msg, "\033"));
        forge_error_release(&err);
        assert_int_equal(pkg_source_add(&s, "http://a.invalid/debian/", "bookworm", comps, keys,
                                        NULL, "x.list:3", &err),
                         0);
        assert_string_equal(s.v[0].uri, "http://a.invalid/debian");
        pkg_sources_free(&s);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_list), cmocka_unit_test(test_deb822),
             cmocka_unit_test(test_host), cmocka_unit_test(test_release),
             cmocka_unit_test(test_dearmor), cmocka_unit_test(test_lock),
             cmocka_unit_test(test_status_merge), cmocka_unit_test(test_repo_url))
