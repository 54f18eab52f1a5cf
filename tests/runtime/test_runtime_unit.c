/* SPDX-License-Identifier: MIT */
/* Pure logic of the runtime: user lookup, overlay options, capability sets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/capability.h>

#include "runtime/container/container-internal.h"
#include "testutil.h"

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "broken line\n"
                             "alice:x:1000:1001::/home/alice:/bin/sh\n";
static const char group[] = "root:x:0:\nalice:x:1001:\nstaff:x:50:bob,alice\nwheel:x:10:bob\n";

static int resolve(const char *user, user_ids *ids, char *msg)
{
        FILE *pw = fmemopen((void *)passwd, sizeof(passwd) - 1, "r");
        FILE *gr = fmemopen((void *)group, sizeof(group) - 1, "r");
        int r = user_resolve(user, pw, gr, ids, msg, 256);

        fclose(pw);
        fclose(gr);
        return r;
}

static void test_user_name(void **state)
{
        user_ids ids;
        char msg[256];

        assert_int_equal(resolve("alice", &ids, msg), 0);
        assert_int_equal(ids.uid, 1000);
        assert_int_equal(ids.gid, 1001);
        assert_int_equal(ids.n_groups, 2);
        assert_int_equal(ids.groups[0], 1001);
        assert_int_equal(ids.groups[1], 50);
        assert_int_equal(resolve("alice:wheel", &ids, msg), 0);
        assert_int_equal(ids.gid, 10);
        assert_int_equal(resolve("nobody", &ids, msg), -ENOENT);
        assert_non_null(strstr(msg, "'nobody' not found"));
        assert_int_equal(resolve("alice:nogroup", &ids, msg), -ENOENT);
}

static void test_user_numeric(void **state)
{
        user_ids ids;
        char msg[256];

        assert_int_equal(resolve("1000", &ids, msg), 0);
        assert_int_equal(ids.gid, 1001); /* from passwd */
        assert_int_equal(resolve("4242:7", &ids, msg), 0);
        assert_int_equal(ids.uid, 4242);
        assert_int_equal(ids.gid, 7);
        assert_int_equal(ids.n_groups, 1);
        assert_int_equal(resolve(NULL, &ids, msg), 0);
        assert_int_equal(ids.uid, 0);
        assert_int_equal(resolve("4294967295", &ids, msg), -ENOENT); /* (uid_t)-1 */
}

static void test_overlay_options(void **state)
{
        char *opts = NULL;
        forge_error *err = NULL;

        assert_int_equal(overlay_options(3, true, false, &opts, &err), 0);
        assert_string_equal(opts, "lowerdir=2:1:0,upperdir=u,workdir=w");
        free(opts);
        assert_int_equal(overlay_options(1, false, false, &opts, &err), 0);
        assert_string_equal(opts, "lowerdir=0");
        free(opts);
        /* a discarded upper is never synced */
        assert_int_equal(overlay_options(2, true, true, &opts, &err), 0);
        assert_string_equal(opts, "lowerdir=1:0,upperdir=u,workdir=w,volatile");
        free(opts);
        /* overlayfs' most, with an upper, fits in a page */
        assert_int_equal(overlay_options(500, true, false, &opts, &err), 0);
        assert_true(strlen(opts) < 4000);
        assert_true(strncmp(opts, "lowerdir=499:498:", 17) == 0);
        assert_non_null(strstr(opts, ":1:0,upperdir=u,workdir=w"));
        free(opts);
        /* more than overlayfs stacks: a clear error, not a truncated mount */
        assert_int_equal(overlay_options(501, true, false, &opts, &err), -1);
        assert_non_null(strstr(err->msg, "501 layers"));
        forge_error_release(&err);
        assert_int_equal(overlay_options(0, true, false, &opts, &err), -1);
        forge_error_release(&err);
}

static void test_overlay_options_direct(void **state)
{
        const char *l[] = {"/s/layers/a", "/s/layers/b"};
        const char *odd[] = {"/s/layers/a:b"}, *comma[] = {"/s/x,upperdir=/etc"};
        const char *rel[] = {"layers/a"};
        char *opts = NULL, big[2100];

        (void)state;
        assert_int_equal(overlay_options_direct(l, 2, "/r/upper", "/r/work", true, &opts), 0);
        assert_string_equal(opts,
                            "lowerdir=/s/layers/b:/s/layers/a,upperdir=/r/upper,workdir=/r/work,"
                            "volatile");
        free(opts);
        assert_int_equal(overlay_options_direct(l, 1, NULL, NULL, false, &opts), 0);
        assert_string_equal(opts, "lowerdir=/s/layers/a");
        free(opts);
        /* what overlayfs would split or unescape goes through the links */
        assert_int_equal(overlay_options_direct(odd, 1, NULL, NULL, false, &opts), -EINVAL);
        assert_int_equal(overlay_options_direct(comma, 1, NULL, NULL, false, &opts), -EINVAL);
        assert_int_equal(overlay_options_direct(rel, 1, NULL, NULL, false, &opts), -EINVAL);
        assert_int_equal(overlay_options_direct(l, 1, "/r/u:x", "/r/work", false, &opts), -EINVAL);
        /* more than a page */
        memset(big, 'a', sizeof(big) - 1);
        big[0] = '/';
        big[sizeof(big) - 1] = '\0';
        {
                const char *two[] = {big, big};
                assert_int_equal(overlay_options_direct(two, 2, NULL, NULL, false, &opts), -E2BIG);
        }
}

static void test_overlay_links(void **state)
{
        char tmpl[] = "/tmp/forge-ovl-XXXXXX", dir[64], lnk[128], buf[128];
        const char *l[] = {"/s/layers/a:b,c", "/s/layers/bbb"};
        forge_error *err = NULL;
        ssize_t n;

        assert_non_null(mkdtemp(tmpl));
        snprintf(dir, sizeof(dir), "%s/l", tmpl);
        assert_int_equal(overlay_links_make(dir, l, 2, "/up", "/wk", &err), 0);
        for (int i = 0; i < 4; i++) {
                const char *name[] = {"0", "1", "u", "w"};
                const char *want[] = {l[0], l[1], "/up", "/wk"};
                snprintf(lnk, sizeof(lnk), "%s/%s", dir, name[i]);
                n = readlink(lnk, buf, sizeof(buf) - 1);
                assert_true(n > 0);
                buf[n] = '\0';
                assert_string_equal(buf, want[i]);
                unlink(lnk);
        }
        rmdir(dir);
        rmdir(tmpl);
        const char *many[501];
        for (int i = 0; i < 501; i++)
                many[i] = "/x";
        assert_int_equal(overlay_links_make(dir, many, 501, NULL, NULL, &err), -1);
        assert_non_null(strstr(err->msg, "at most 500"));
        forge_error_release(&err);
}

static void test_caps(void **state)
{
        uint64_t crun =
            (1ULL << CAP_AUDIT_WRITE) | (1ULL << CAP_KILL) | (1ULL << CAP_NET_BIND_SERVICE);

        assert_int_equal(ctr_caps_mask(RUNTIME_CAPS_DEFAULT), crun);
        assert_int_equal(__builtin_popcountll(ctr_caps_mask(RUNTIME_CAPS_BUILD)), 14);
        assert_false(ctr_caps_mask(RUNTIME_CAPS_BUILD) & (1ULL << CAP_SYS_ADMIN));
}

/* Image configs that are errors, not silently ignored. */
static const char *const bad_configs[] = {
    "{\"config\": {\"Cmd\": \"echo\"}}", /* a wrong type */
    /* a hostile image's cpus must not overflow the conversion (UB) */
    "{\"dev.forge\": {\"container\": {\"cpus\": 1e308}}}",
    "{\"dev.forge\": {\"container\": {\"memory\": \"lots\"}}}",
};

static void test_image_config(void **state)
{
        const char *doc =
            "{\"config\": {\"Entrypoint\": [\"/bin/sh\", \"-c\"], \"Cmd\": [\"echo hi\"],"
            " \"Env\": [\"PATH=/bin\", \"A=1\"], \"WorkingDir\": \"/w\", \"User\": \"app\"},"
            " \"dev.forge\": {\"config\": {\"hostname\": \"h1\"}, \"container\": {"
            " \"memory\": \"256M\", \"cpus\": 1.5, \"pids\": 256, \"network\": \"host\","
            " \"read_only\": true, \"mounts\": [{\"src\": \"/d\", \"dest\": \"/data\","
            " \"ro\": true}]}}}";
        json_t *j = json_loads(doc, 0, NULL);
        runtime_image_config ic;
        forge_error *err = NULL;

        assert_non_null(j);
        assert_int_equal(runtime_image_config_parse(j, &ic, &err), 0);
        assert_string_equal(ic.entrypoint[1], "-c");
        assert_string_equal(ic.cmd[0], "echo hi");
        assert_string_equal(ic.workdir, "/w");
        assert_string_equal(ic.user, "app");
        assert_string_equal(ic.hostname, "h1");
        assert_int_equal(ic.memory, 256ULL << 20);
        assert_int_equal(ic.cpus_milli, 1500);
        assert_int_equal(ic.pids, 256);
        assert_int_equal(ic.read_only, 1);
        /* "network" and "mounts" are not read at all (an image has no say
         * over host paths or the host network): tests/security/sec-image-config.sh */

        char *args[] = {"x", "y"};
        char **argv = runtime_argv_build(ic.entrypoint, ic.cmd, NULL, 0);
        assert_string_equal(argv[2], "echo hi");
        assert_null(argv[3]);
        free(argv);
        argv = runtime_argv_build(ic.entrypoint, ic.cmd, args, 2);
        assert_string_equal(argv[2], "x");
        assert_string_equal(argv[3], "y");
        assert_null(argv[4]);
        free(argv);

        const char *extra[] = {"A=2", "B=3"};
        char **env = runtime_env_merge(ic.env, extra, 2);
        assert_string_equal(env[0], "PATH=/bin");
        assert_string_equal(env[1], "A=2");
        assert_string_equal(env[2], "B=3");
        assert_null(env[3]);
        for (char **e = env; *e; e++)
                free(*e);
        free(env);
        env = runtime_env_merge(NULL, NULL, 0);
        assert_true(strncmp(env[0], "PATH=", 5) == 0);
        free(env[0]);
        free(env);
        runtime_image_config_free(&ic);
        json_decref(j);

        for (size_t i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++) {
                j = json_loads(bad_configs[i], 0, NULL);
                assert_non_null(j);
                if (runtime_image_config_parse(j, &ic, &err) != -1)
                        fail_msg("accepted %s", bad_configs[i]);
                forge_error_release(&err);
                json_decref(j);
        }
        /* an empty config is fine */
        j = json_loads("{\"dev.forge\": {\"container\": {\"cpus_milli\": 250}}}", 0, NULL);
        assert_int_equal(runtime_image_config_parse(j, &ic, &err), 0);
        assert_int_equal(ic.cpus_milli, 250);
        runtime_image_config_free(&ic);
        json_decref(j);
        j = json_object();
        assert_int_equal(runtime_image_config_parse(j, &ic, &err), 0);
        assert_null(ic.entrypoint[0]);
        assert_int_equal(ic.read_only, -1);
        runtime_image_config_free(&ic);
        json_decref(j);
}

static void test_port_parse(void **state)
{
        forge_error *err = NULL;
        runtime_port p;
        char buf[48];
        static const char *const bad[] = {
            "80",       "0:80",          "80:0",      "65536:80",      "8080:80/sctp", "a:80",
            "8080:80/", "1.2.3:8080:80", "1:2:3:4",   "8080:-1",       "::1:8080:80",  ":8080:80",
            "8080:80:", " 8080:80",      "08080x:80", "999.1.1.1:1:2",
        };

        (void)state;
        assert_int_equal(runtime_port_parse("8080:80", &p, &err), 0);
        assert_string_equal(p.host_ip, "127.0.0.1");
        assert_int_equal(p.host_port, 8080);
        assert_int_equal(p.port, 80);
        assert_false(p.udp);
        assert_int_equal(runtime_port_parse("0.0.0.0:5353:53/udp", &p, &err), 0);
        assert_string_equal(p.host_ip, "0.0.0.0");
        assert_true(p.udp);
        assert_string_equal(runtime_port_format(&p, buf, sizeof(buf)), "0.0.0.0:5353/udp");
        assert_int_equal(runtime_port_parse("10.1.2.3:1:65535/tcp", &p, &err), 0);
        assert_int_equal(p.port, 65535);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (runtime_port_parse(bad[i], &p, &err) == 0)
                        fail_msg("'%s' was accepted", bad[i]);
                assert_int_equal(err->status, FORGE_EXIT_USAGE);
                forge_error_release(&err);
        }
}

static void test_net_files(void **state)
{
        forge_error *err = NULL;
        char *h = NULL, *r = NULL;

        (void)state;
        assert_int_equal(runtime_net_hosts("box", &h, &err), 0);
        assert_non_null(strstr(h, "\n10.0.2.2\thost.forge.internal\n"));
        assert_non_null(strstr(h, "\n10.0.2.100\tbox\n"));
        assert_int_equal(runtime_net_resolv_conf(&r, &err), 0);
        assert_string_equal(r, "nameserver 10.0.2.3\n");
        free(h);
        free(r);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_user_name), cmocka_unit_test(test_user_numeric),
             cmocka_unit_test(test_overlay_options), cmocka_unit_test(test_overlay_options_direct),
             cmocka_unit_test(test_overlay_links), cmocka_unit_test(test_caps),
             cmocka_unit_test(test_image_config), cmocka_unit_test(test_port_parse),
             cmocka_unit_test(test_net_files))
