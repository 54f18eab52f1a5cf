/* SPDX-License-Identifier: MIT */
/* Spec parsing: every key of the contract, and every class of error with its position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "specs/specs.h"
#include "testutil.h"

static char *ctx_dir;

static void write_file(const char *rel, const char *content)
{
        tu_write_file(ctx_dir, rel, content, 0644);
}

static int setup(void **state)
{
        cleanup_free char *data = NULL;

        ctx_dir = tu_tmpdir("specs");
        data = fs_path_join(ctx_dir, "data");
        assert_int_equal(mkdir(data, 0755), 0);
        write_file("app/run.sh", "#!/bin/sh\n");
        write_file("pkg.deb", "not really a deb");
        write_file("root.tar", "x");
        write_file("vmlinuz", "k");
        return 0;
}

static int teardown(void **state)
{
        tu_tmpdir_remove(ctx_dir);
        return 0;
}

/* Parses text as ctx/spec.yaml; returns the spec or NULL with *msg set. */
static spec *parse(const char *text, char **msg)
{
        char path[512];
        spec *s = NULL;
        forge_error *e = NULL;

        write_file("spec.yaml", text);
        snprintf(path, sizeof(path), "%s/spec.yaml", ctx_dir);
        *msg = NULL;
        if (spec_load(path, &s, &e) < 0) {
                assert_int_equal(e->status, FORGE_EXIT_USAGE);
                *msg = strdup(e->msg);
                forge_error_release(&e);
                return NULL;
        }
        return s;
}

/* Asserts that text fails at line:col with a message containing frag. */
static void expect_error(const char *text, int line, int col, const char *frag)
{
        char *msg = NULL, where[64];
        spec *s = parse(text, &msg);

        if (s != NULL)
                fail_msg("expected an error containing '%s'", frag);
        snprintf(where, sizeof(where), "spec.yaml:%d:%d: ", line, col);
        if (strstr(msg, where) == NULL || strstr(msg, frag) == NULL)
                fail_msg("got '%s', expected '%s' and '%s'", msg, where, frag);
        free(msg);
}

static const char full[] =
    "forge: 1\n"
    "name: hello\n"
    "tag: v1.2\n"
    "from: scratch\n"
    "source_date_epoch: 1700000000\n"
    "layers:\n"
    "  - name: base\n"
    "    deb: pkg.deb\n"
    "    sha256: 4F0C8f8e4b6bd1c5e1e0a4f54fa5c3dc1b4e62a0f2b0bb1de05a8d6c8a0cb3f1\n"
    "  - archive: root.tar\n"
    "    dest: /srv\n"
    "  - files:\n"
    "      - src: app/\n"
    "        dest: /opt/app/\n"
    "        mode: \"0755\"\n"
    "        owner: \"1000:100\"\n"
    "  - run: echo hi > /etc/greeting\n"
    "    env: {LANG: C.UTF-8}\n"
    "    network: host\n"
    "config:\n"
    "  entrypoint: [\"/bin/sh\", \"-c\"]\n"
    "  cmd: [\"echo hello\"]\n"
    "  env: {PATH: /usr/bin:/bin, N: 1}\n"
    "  workdir: /work\n"
    "  user: \"0:0\"\n"
    "  hostname: hello\n"
    "  labels: {org.example.team: ci}\n"
    "container:\n"
    "  memory: 256M\n"
    "  cpus: 1.5\n"
    "  pids: 256\n"
    "  network: none\n"
    "  read_only: true\n"
    "  mounts:\n"
    "    - {src: ./data, dest: /data, ro: true}\n"
    "vm:\n"
    "  kernel:\n"
    "    bzimage: vmlinuz\n"
    "  memory: 512M\n"
    "  cpus: 2\n"
    "  disk_size: 1G\n"
    "  cmdline: \"quiet\"\n";

static void test_full_spec(void **state)
{
        char *msg = NULL;
        cleanup_spec spec *s = parse(full, &msg);

        assert_non_null(s);
        assert_int_equal(s->version, 1);
        assert_string_equal(s->name, "hello");
        assert_string_equal(s->tag, "v1.2");
        assert_int_equal(s->from_kind, SPEC_FROM_SCRATCH);
        assert_int_equal(s->source_date_epoch, 1700000000);
        assert_int_equal(s->n_layers, 4);
        assert_int_equal(s->layers[0].kind, SPEC_LAYER_DEB);
        assert_string_equal(s->layers[0].name, "base");
        assert_string_equal(
            s->layers[0].sha256,
            "sha256:4f0c8f8e4b6bd1c5e1e0a4f54fa5c3dc1b4e62a0f2b0bb1de05a8d6c8a0cb3f1");
        assert_int_equal(s->layers[0].sha256_pos.line, 9);
        assert_int_equal(s->layers[1].kind, SPEC_LAYER_ARCHIVE);
        assert_string_equal(s->layers[1].dest, "/srv");
        assert_int_equal(s->layers[2].kind, SPEC_LAYER_FILES);
        assert_int_equal(s->layers[2].n_files, 1);
        assert_int_equal(s->layers[2].files[0].mode, 0755);
        assert_int_equal(s->layers[2].files[0].uid, 1000);
        assert_int_equal(s->layers[2].files[0].gid, 100);
        assert_string_equal(s->layers[2].files[0].dest, "/opt/app/");
        assert_int_equal(s->layers[3].kind, SPEC_LAYER_RUN);
        assert_string_equal(s->layers[3].run, "echo hi > /etc/greeting");
        assert_true(s->layers[3].network_host);
        assert_string_equal(s->layers[3].env.items[0].key, "LANG");
        assert_string_equal(s->config.entrypoint[1], "-c");
        assert_string_equal(s->config.cmd[0], "echo hello");
        assert_int_equal(s->config.env.n, 2);
        assert_string_equal(s->config.env.items[1].value, "1");
        assert_string_equal(s->config.workdir, "/work");
        assert_string_equal(s->config.hostname, "hello");
        assert_string_equal(s->config.labels.items[0].key, "org.example.team");
        assert_int_equal(s->container.memory, 256ULL << 20);
        assert_int_equal(s->container.cpus_milli, 1500);
        assert_int_equal(s->container.pids, 256);
        assert_int_equal(s->container.network, SPEC_NETWORK_NONE);
        assert_true(s->container.read_only);
        assert_int_equal(s->container.n_mounts, 1);
        assert_true(s->container.mounts[0].ro);
        assert_non_null(strstr(s->container.mounts[0].src, "/data"));
        assert_true(s->vm.present);
        assert_non_null(s->vm.kernel_bzimage);
        assert_int_equal(s->vm.memory, 512ULL << 20);
        assert_int_equal(s->vm.cpus, 2);
        assert_int_equal(s->vm.disk_size, 1ULL << 30);
        assert_string_equal(s->vm.cmdline, "quiet");
}

static void test_defaults(void **state)
{
        char *msg = NULL;
        cleanup_spec spec *s = NULL;

        unsetenv("SOURCE_DATE_EPOCH");
        s = parse("forge: 1\nname: a\n", &msg);
        assert_non_null(s);
        assert_string_equal(s->tag, "latest");
        assert_string_equal(s->from, "scratch");
        assert_int_equal(s->source_date_epoch, 0);
        assert_int_equal(s->n_layers, 0);
        assert_false(s->vm.present);
}

static void test_sde_env(void **state)
{
        char *msg = NULL;
        spec *s;

        setenv("SOURCE_DATE_EPOCH", "12345", 1);
        s = parse("forge: 1\nname: a\n", &msg);
        assert_non_null(s);
        assert_int_equal(s->source_date_epoch, 12345);
        spec_free(s);
        s = parse("forge: 1\nname: a\nsource_date_epoch: 7\n", &msg);
        assert_int_equal(s->source_date_epoch, 7); /* the spec wins */
        spec_free(s);
        setenv("SOURCE_DATE_EPOCH", "soon", 1);
        s = parse("forge: 1\nname: a\n", &msg);
        assert_null(s);
        assert_non_null(strstr(msg, "SOURCE_DATE_EPOCH"));
        free(msg);
        unsetenv("SOURCE_DATE_EPOCH");
}

static void test_from_kinds(void **state)
{
        char *msg = NULL;
        spec *s;

        s = parse("forge: 1\nname: a\nfrom: base:v1\n", &msg);
        assert_int_equal(s->from_kind, SPEC_FROM_IMAGE);
        spec_free(s);
        s = parse("forge: 1\nname: a\nfrom: "
                  "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
                  &msg);
        assert_int_equal(s->from_kind, SPEC_FROM_IMAGE);
        spec_free(s);
        write_file("base.yaml", "forge: 1\nname: base\n");
        s = parse("forge: 1\nname: a\nfrom: ./base.yaml\n", &msg);
        assert_int_equal(s->from_kind, SPEC_FROM_SPEC);
        assert_non_null(strstr(s->from_path, "/base.yaml"));
        spec_free(s);
}

/* Specs that must fail, each at its line:col with a message containing frag:
 * keys after a valid header (SPEC_HEADER); whole texts in test_errors. */
typedef struct bad_spec {
        const char *text;
        int line, col;
        const char *frag;
} bad_spec;

#define SPEC_HEADER "forge: 1\nname: a\n"
static const bad_spec bad_bodies[] = {
    {"bogus: 1\n", 3, 1, "unknown key 'bogus'"},
    {"name: b\n", 3, 1, "duplicate key 'name'"},
    {"tag: \"-x\"\n", 3, 6, "tag '-x'"},
    {"layers: {}\n", 3, 9, "expected a list"},
    {"layers:\n  - deb: pkg.deb\n    run: x\n", 5, 5, "two sources"},
    {"layers:\n  - name: x\n", 4, 5, "no source"},
    {"layers:\n  - deb: missing.deb\n", 4, 10, "cannot read"},
    {"layers:\n  - deb: ../etc/passwd\n", 4, 10, "outside the build context"},
    {"layers:\n  - deb: /etc/passwd\n", 4, 10, "outside the build context"},
    {"layers:\n  - deb: pkg.deb\n    dest: /x\n", 5, 5, "'dest' does not apply to a 'deb' layer"},
    {"layers:\n  - deb: pkg.deb\n    sha256: abc\n", 5, 13, "64 hex"},
    {"layers:\n  - files:\n      - src: app/\n", 5, 9, "no 'dest'"},
    {"layers:\n  - files:\n      - {src: app/, dest: /x, mode: \"999\"}\n", 5, 37, "octal"},
    {"layers:\n  - files:\n      - {src: app/, dest: /x, owner: root}\n", 5, 38, "uid:gid"},
    {"layers:\n  - files:\n      - {src: app/, dest: x}\n", 5, 27, "absolute path"},
    {"layers:\n  - run: x\n    network: wifi\n", 5, 14, "none, host or user"},
    {"container:\n  memory: lots\n", 4, 11, "expected a size"},
    {"container:\n  cpus: many\n", 4, 9, "number of CPUs"},
    {"container:\n  pids: -1\n", 4, 9, "whole number"},
    {"config:\n  cmd: echo\n", 4, 8, "list of strings"},
    {"config:\n  entrypoint: [[1]]\n", 4, 16, "expected a string"},
    {"config:\n  workdir: rel\n", 4, 12, "absolute"},
    {"config:\n  env: {A: [1]}\n", 4, 12, "expected a string"},
    {"from: \"Not An Image!\"\n", 3, 7, "expected scratch"},
    {"from: ./nope.yaml\n", 3, 7, "cannot read spec"},
    {"vm:\n  memory: 1G\n", 4, 3, "no 'kernel'"},
    {"vm:\n  kernel: {bzimage: vmlinuz}\n  cpus: 0\n", 5, 9, "1 to 255"},
    {"vm:\n  kernel: {bzimage: vmlinuz, deb: pkg.deb}\n", 4, 30, "both"},
    {"container:\n  network: wifi\n", 4, 12, "none, host or user"},
    {"container:\n  ports: [\"8080\"]\n", 4, 11, "HOSTPORT:PORT"},
    {"container:\n  ports: [\"1:2:3:4\"]\n", 4, 11, "HOSTPORT:PORT"},
    {"container:\n  ports: [\"8080:80/sctp\"]\n", 4, 11, "HOSTPORT:PORT"},
    {"container:\n  ports: [\"256.0.0.1:8080:80\"]\n", 4, 11, "HOSTPORT:PORT"},
    {"container:\n  ports: [\"8080:65536\"]\n", 4, 11, "HOSTPORT:PORT"},
    {"container:\n  ports: 8080\n", 4, 10, "list of strings"},
    {"vm:\n  kernel: {bzimage: vmlinuz}\n  network: host\n", 5, 12, "none or user"},
    {"---\nforge: 1\n", 3, 1, "second YAML document"},
    /* a tab in the indentation and bytes that are not UTF-8: at their place */
    {"layers:\n\t- deb: pkg.deb\n", 4, 1, "a tab character"},
    {"layers:\n  - deb: pkg.deb\n  \t  dest: /x\n", 5, 3, "indents with spaces only"},
    {"# caf\xe9\n", 3, 6, "byte 0xe9 is not UTF-8"},
    {"# \xed\xa0\x80\n", 3, 3, "0xed"},     /* a surrogate */
    {"# \xc0\xaf\n", 3, 3, "0xc0"},         /* overlong */
    {"# \xf4\x90\x80\x80\n", 3, 3, "0xf4"}, /* > U+10FFFF */
    {"# \xe2\x82", 3, 3, "0xe2"},           /* cut short */
    /* run: layers' own limits; container.mounts src stays inside the context */
    {"layers:\n  - run: x\n    pids: 0\n", 5, 11, "positive"},
    {"layers:\n  - run: x\n    memory: lots\n", 5, 13, "expected a size"},
    {"layers:\n  - deb: pkg.deb\n    pids: 5\n", 5, 5, "does not apply"},
    {"container:\n  mounts:\n    - {src: /, dest: /h}\n", 5, 13, "outside the build context"},
    {"container:\n  mounts:\n    - {src: ../, dest: /h}\n", 5, 13, "outside the build context"},
};

static void test_errors(void **state)
{
        /* whole texts */
        expect_error("", 1, 1, "empty");
        expect_error("forge: 2\nname: a\n", 1, 8, "version 2");
        expect_error("name: a\n", 1, 1, "missing 'forge: 1'");
        expect_error("forge: 1\n", 1, 1, "missing 'name'");
        expect_error("forge: 1\nname: Hello\n", 2, 7, "not valid");
        expect_error("forge: 1\nname: [a\n", 3, 1, "YAML syntax error");
        expect_error("- 1\n- 2\n", 1, 1, "expected a map");
        expect_error("forge: 1\nname: \"\xc3\x28\"\n", 2, 8, "byte 0xc3 is not UTF-8");
        for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
                cleanup_free char *text = NULL;

                assert_true(asprintf(&text, SPEC_HEADER "%s", bad_bodies[i].text) > 0);
                expect_error(text, bad_bodies[i].line, bad_bodies[i].col, bad_bodies[i].frag);
        }
}

static void test_network_user(void **state)
{
        char *msg = NULL;
        spec *s = parse("forge: 1\nname: a\ncontainer:\n  network: user\n"
                        "  ports: [\"8080:80\", \"0.0.0.0:5353:53/udp\", \"9000:9000/tcp\"]\n"
                        "vm:\n  kernel: {bzimage: vmlinuz}\n  network: user\n"
                        "  ports: [\"2222:22\"]\n",
                        &msg);

        (void)state;
        assert_non_null(s);
        assert_int_equal(s->container.network, SPEC_NETWORK_USER);
        assert_string_equal(s->container.ports[0], "8080:80");
        assert_string_equal(s->container.ports[1], "0.0.0.0:5353:53/udp");
        assert_string_equal(s->container.ports[2], "9000:9000/tcp");
        assert_null(s->container.ports[3]);
        assert_int_equal(s->vm.network, SPEC_NETWORK_USER);
        assert_string_equal(s->vm.ports[0], "2222:22");
        assert_null(s->vm.ports[1]);
        spec_free(s);
        /* a run: step asks for it itself; none stays its default */
        s = parse("forge: 1\nname: a\nlayers:\n  - run: a\n    network: user\n  - run: b\n", &msg);
        assert_non_null(s);
        assert_true(s->layers[0].network_user);
        assert_false(s->layers[0].network_host);
        assert_false(s->layers[1].network_user);
        assert_false(s->layers[1].network_host);
        spec_free(s);
}

/* UTF-8 beyond ASCII is fine (the bytes that are not UTF-8: bad_specs). */
static void test_utf8_valid(void **state)
{
        char *msg = NULL;
        spec *sp = parse("forge: 1\nname: a\n# caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa7\n", &msg);
        assert_non_null(sp);
        spec_free(sp);
        free(msg);
}

static void test_symlink_escape(void **state)
{
        char link[512];
        snprintf(link, sizeof(link), "%s/evil.deb", ctx_dir);
        assert_int_equal(symlink("/etc/passwd", link), 0);
        expect_error("forge: 1\nname: a\nlayers:\n  - deb: evil.deb\n", 4, 10,
                     "outside the build context");
        unlink(link);
}

/* run: layers' own limits (their errors: bad_specs) */
static void test_run_limits(void **state)
{
        char *msg = NULL;
        cleanup_spec spec *s = parse("forge: 1\nname: a\nlayers:\n  - run: x\n    memory: 64M\n"
                                     "    pids: 100\n",
                                     &msg);

        assert_non_null(s);
        assert_int_equal(s->layers[0].memory, 64ULL << 20);
        assert_int_equal(s->layers[0].pids, 100);
}

static void test_size_parse(void **state)
{
        unsigned long long v;
        assert_int_equal(fs_parse_size("512M", &v), 0);
        assert_int_equal(v, 512ULL << 20);
        assert_int_equal(fs_parse_size("1.5G", &v), 0);
        assert_int_equal(v, 3ULL << 29);
        assert_int_equal(fs_parse_size("2GiB", &v), 0);
        assert_int_equal(v, 2ULL << 30);
        assert_int_equal(fs_parse_size("4096", &v), 0);
        assert_int_equal(v, 4096);
        assert_int_equal(fs_parse_size("lots", &v), -1);
        assert_int_equal(fs_parse_size("1Q", &v), -1);
        assert_int_equal(fs_parse_size("99999999999999999999999", &v), -1);
        assert_int_equal(fs_parse_size("", &v), -1);
}

TU_TEST_MAIN(setup, teardown, cmocka_unit_test(test_full_spec), cmocka_unit_test(test_defaults),
             cmocka_unit_test(test_sde_env), cmocka_unit_test(test_from_kinds),
             cmocka_unit_test(test_errors), cmocka_unit_test(test_symlink_escape),
             cmocka_unit_test(test_size_parse), cmocka_unit_test(test_run_limits),
             cmocka_unit_test(test_utf8_valid), cmocka_unit_test(test_network_user))
