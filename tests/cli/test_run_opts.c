/* SPDX-License-Identifier: MIT */
/* forge run's one option table: both kinds read from one pass over argv,
 * options of the other kind refused by name, --as anywhere before IMAGE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/run-opts.h"
#include "testutil.h"

/* the cli's usage printers, recorded instead of printed */
static char last_error[1024];

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
        va_list ap;
        int n = snprintf(last_error, sizeof(last_error), "%s: ", cmd);

        va_start(ap, fmt);
        vsnprintf(last_error + n, sizeof(last_error) - (size_t)n, fmt, ap);
        va_end(ap);
        return 2;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
        (void)argv;
        return cli_usage_error(cmd, c == ':' ? "needs a value" : "unknown option");
}

#define ARGV(...) ((char *[]){"run", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"run", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(o, ...) cli_run_opts_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (o))

static cli_run_opts o;

static void test_container_default(void **state)
{
        (void)state;
        last_error[0] = '\0';
        assert_int_equal(PARSE(&o, "-e", "A=1", "--env", "B=2", "-v", "/a:/b:ro", "--pids", "5",
                               "--stop-timeout", "3", "img", "--", "echo", "hi"),
                         0);
        assert_int_equal(o.kind, CLI_RUN_CONTAINER);
        assert_int_equal(o.n_env, 2);
        assert_string_equal(o.env[1], "B=2");
        assert_int_equal(o.n_volumes, 1);
        assert_string_equal(o.volumes[0], "/a:/b:ro");
        assert_string_equal(o.pids, "5");
        assert_string_equal(o.stop_timeout, "3");
        assert_string_equal(o.target, "img");
        assert_int_equal(o.n_args, 2);
        assert_string_equal(o.args[0], "echo");
        assert_string_equal(last_error, "");
}

static void test_vm_options(void **state)
{
        (void)state;
        /* --as after the VM-only options it decides about */
        assert_int_equal(
            PARSE(&o, "--timeout", "9", "--verbose", "--as", "vm", "--cpus", "2", "disk.img", "sh"),
            0);
        assert_int_equal(o.kind, CLI_RUN_VM);
        assert_string_equal(o.timeout, "9");
        assert_true(o.verbose);
        assert_string_equal(o.cpus, "2");
        assert_string_equal(o.target, "disk.img");
        assert_int_equal(o.n_args, 1);
        assert_int_equal(PARSE(&o, "--as=vm", "x"), 0);
        assert_int_equal(o.kind, CLI_RUN_VM);
}

static void test_other_kind_refused(void **state)
{
        (void)state;
        assert_int_equal(PARSE(&o, "--as", "vm", "--pids", "3", "x"), 2);
        assert_non_null(strstr(last_error, "--pids is for containers: a VM takes -e, -v"));
        assert_non_null(strstr(last_error, "--timeout"));
        assert_null(strstr(last_error, "--stop-timeout"));
        assert_int_equal(PARSE(&o, "--persist", "x"), 2);
        assert_non_null(strstr(last_error, "--persist is for VMs (--as vm)"));
        assert_int_equal(PARSE(&o, "--as", "pod", "x"), 2);
        assert_non_null(strstr(last_error, "--as wants container or vm, got 'pod'"));
}

static void test_service_options(void **state)
{
        (void)state;
        assert_int_equal(PARSE(&o, "-d", "--name", "web", "--rm", "--entrypoint", "/bin/echo",
                               "--log-max", "1M", "img", "a", "b"),
                         0);
        assert_true(o.detach);
        assert_true(o.remove);
        assert_string_equal(o.name, "web");
        assert_string_equal(o.entrypoint, "/bin/echo");
        assert_string_equal(o.log_max, "1M");
        assert_int_equal(o.n_args, 2);
        /* options end at IMAGE: what follows is the workload's */
        assert_int_equal(PARSE(&o, "img", "-d"), 0);
        assert_false(o.detach);
        assert_string_equal(o.args[0], "-d");
}

static void test_errors(void **state)
{
        (void)state;
        assert_int_equal(PARSE(&o, "--frob", "x"), 2);
        assert_non_null(strstr(last_error, "unknown option"));
        assert_int_equal(PARSE(&o, "--memory"), 2);
        assert_non_null(strstr(last_error, "needs a value"));
        assert_int_equal(PARSE(&o, "-e", "=x", "img"), 2);
        assert_non_null(strstr(last_error, "-e wants K=V"));
        assert_int_equal(PARSE(&o, "-p", "notaport", "img"), 2);
        assert_int_equal(PARSE(&o, "-e", "A=1"), 2);
        assert_non_null(strstr(last_error, "missing IMAGE or SPEC"));
        assert_int_equal(PARSE(&o, "--as", "vm"), 2);
        assert_non_null(strstr(last_error, "missing IMAGE, SPEC or DISK.img"));
        /* a container from --rootfs layers needs no IMAGE */
        assert_int_equal(PARSE(&o, "--rootfs", "/l1", "--", "true"), 0);
        assert_null(o.target);
        assert_int_equal(o.n_rootfs, 1);
        assert_int_equal(o.n_args, 1);
}

static void test_volume_split(void **state)
{
        char *src = NULL, *dst = NULL;
        bool ro;

        (void)state;
        assert_int_equal(cli_run_volume_split("/h:/c:ro", &src, &dst, &ro), 0);
        assert_string_equal(src, "/h");
        assert_string_equal(dst, "/c");
        assert_true(ro);
        free(src);
        free(dst);
        assert_int_equal(cli_run_volume_split("rel:/c", &src, &dst, &ro), 0);
        assert_string_equal(src, "rel");
        assert_false(ro);
        free(src);
        free(dst);
        assert_int_equal(cli_run_volume_split("/h:c", &src, &dst, &ro), -1);
        assert_int_equal(cli_run_volume_split(":/c", &src, &dst, &ro), -1);
        assert_int_equal(cli_run_volume_split("/h", &src, &dst, &ro), -1);
        assert_int_equal(cli_run_volume_split("/h:/c:rx", &src, &dst, &ro), -1);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_container_default),
             cmocka_unit_test(test_vm_options), cmocka_unit_test(test_other_kind_refused),
             cmocka_unit_test(test_service_options), cmocka_unit_test(test_errors),
             cmocka_unit_test(test_volume_split))
