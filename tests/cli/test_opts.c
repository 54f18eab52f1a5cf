/* SPDX-License-Identifier: MIT */
/* The commands' option parser (cli/opts.c): values in both spellings, flags
 * bundled, repeated options, "--", operands counted, and the usage error
 * (exit 2) that names what is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/registry-cli.h"
#include "common/cleanup.h"
#include "testutil.h"
#include "tests/cli/usage-record.h"

#define ARGV(...) ((char *[]){"cmd", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"cmd", __VA_ARGS__}) / sizeof(char *)))

/* One command's options, fresh for each parse. */
typedef struct fixture {
        const char *tag, *out;
        bool quiet, force;
        const char *env[3];
        size_t n_env;
        int calls;
        const char *called_with;
        int first;
} fixture;

static fixture f;

static int count_fn(const char *cmd, const cli_opt *opt, const char *arg)
{
        fixture *x = opt->data;

        (void)cmd;
        x->calls++;
        x->called_with = arg;
        if (arg != NULL && strcmp(arg, "no") == 0)
                return cli_usage_error(cmd, "--level refuses '%s'", arg);
        return 0;
}

static int parse_with(unsigned flags, int min, int max, int argc, char **argv)
{
        const cli_opt opts[] = {
            CLI_VALUE("tag", 't', &f.tag),
            CLI_VALUE("output", 'o', &f.out),
            CLI_FLAG("quiet", 'q', &f.quiet),
            CLI_FLAG("force", 'f', &f.force),
            CLI_LIST("env", 'e', f.env, &f.n_env, cli_opt_env),
            CLI_CALL("level", 0, true, count_fn, &f),
            CLI_CALL("ping", 'P', false, count_fn, &f),
        };
        const cli_opts_cmd cmd = {"cmd", "usage: forge cmd\n", flags, min, max, "missing THING"};

        f = (fixture){0};
        last_error[0] = '\0';
        n_errors = 0;
        return cli_opts_parse(&cmd, opts, ARRAY_SIZE(opts), argc, argv, &f.first);
}

#define PARSE(...) parse_with(0, 0, -1, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))
#define PARSE_ARGS(flags, min, max, ...)                                                           \
        parse_with((flags), (min), (max), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))
/* PARSE(...) is a usage error (exit 2) whose message is msg. */
#define EXPECT_USAGE(msg, ...)                                                                     \
        do {                                                                                       \
                assert_int_equal(PARSE(__VA_ARGS__), 2);                                           \
                assert_string_equal(last_error, (msg));                                            \
        } while (0)

static void test_value_spellings(void **state)
{
        (void)state;
        assert_int_equal(PARSE("--tag=a", "--output", "b"), 0);
        assert_string_equal(f.tag, "a");
        assert_string_equal(f.out, "b");
        assert_int_equal(PARSE("-t", "c", "-od"), 0);
        assert_string_equal(f.tag, "c");
        assert_string_equal(f.out, "d");
        /* a value that looks like an option is still the value */
        assert_int_equal(PARSE("--tag", "--quiet"), 0);
        assert_string_equal(f.tag, "--quiet");
        assert_false(f.quiet);
        /* an empty value is a value */
        assert_int_equal(PARSE("--tag="), 0);
        assert_string_equal(f.tag, "");
        assert_int_equal(n_errors, 0);
}

static void test_missing_value(void **state)
{
        (void)state;
        EXPECT_USAGE("cmd: option '--tag' needs a value", "x", "--tag");
        EXPECT_USAGE("cmd: option '-o' needs a value", "-o");
        EXPECT_USAGE("cmd: option '--level' needs a value", "--level");
        assert_int_equal(f.calls, 0);
}

static void test_unknown_option(void **state)
{
        (void)state;
        EXPECT_USAGE("cmd: unknown option '--frob'", "--frob");
        EXPECT_USAGE("cmd: unknown option '--frob'", "--frob=1", "x");
        EXPECT_USAGE("cmd: unknown option '-Z'", "-Z");
        /* inside a bundle, the letter that is wrong */
        EXPECT_USAGE("cmd: unknown option '-Z'", "-qZ");
        /* a flag given a value */
        EXPECT_USAGE("cmd: unknown option '--quiet'", "--quiet=yes");
        /* after an error nothing else is read */
        assert_int_equal(PARSE("--frob", "--tag", "a"), 2);
        assert_null(f.tag);
}

static void test_short_flags(void **state)
{
        (void)state;
        assert_int_equal(PARSE("-qf"), 0);
        assert_true(f.quiet);
        assert_true(f.force);
        /* a bundle may end in an option that takes a value */
        assert_int_equal(PARSE("-qtv1"), 0);
        assert_true(f.quiet);
        assert_false(f.force);
        assert_string_equal(f.tag, "v1");
        assert_int_equal(PARSE("-P"), 0);
        assert_int_equal(f.calls, 1);
        assert_null(f.called_with);
}

static void test_repeated(void **state)
{
        (void)state;
        /* a value: the last one wins; a list: each one, in order */
        assert_int_equal(PARSE("--tag", "a", "-t", "b", "--tag=c"), 0);
        assert_string_equal(f.tag, "c");
        assert_int_equal(PARSE("-e", "A=1", "--env", "B=2", "--env=C=3"), 0);
        assert_int_equal(f.n_env, 3);
        assert_string_equal(f.env[0], "A=1");
        assert_string_equal(f.env[2], "C=3");
        EXPECT_USAGE("cmd: too many --env (at most 3)", "-e", "A=1", "-e", "B=2", "-e", "C=3", "-e",
                     "D=4");
        assert_int_equal(PARSE("--level", "1", "--level", "2", "-PP"), 0);
        assert_int_equal(f.calls, 4);
}

static void test_fn(void **state)
{
        (void)state;
        /* fn sees the value before it is stored, and may refuse it */
        EXPECT_USAGE("cmd: -e wants K=V, got '=x'", "-e", "=x");
        assert_int_equal(f.n_env, 0);
        assert_int_equal(PARSE("-e", "novalue"), 2);
        assert_int_equal(PARSE("--level=7"), 0);
        assert_string_equal(f.called_with, "7");
        EXPECT_USAGE("cmd: --level refuses 'no'", "--level", "no", "-q");
        assert_false(f.quiet);
}

static void test_operands(void **state)
{
        char **argv = ARGV("a", "-q", "b", "--tag", "t", "c");

        (void)state;
        /* options after operands, the operands moved to the end */
        assert_int_equal(parse_with(0, 0, -1, 7, argv), 0);
        assert_true(f.quiet);
        assert_string_equal(f.tag, "t");
        assert_int_equal(f.first, 4);
        assert_string_equal(argv[f.first], "a");
        assert_string_equal(argv[f.first + 2], "c");
        /* too few, too many */
        assert_int_equal(PARSE_ARGS(0, 1, 1, "-q"), 2);
        assert_string_equal(last_error, "cmd: missing THING");
        assert_int_equal(PARSE_ARGS(0, 1, 1, "a", "b"), 2);
        assert_string_equal(last_error, "cmd: unexpected argument 'b'");
        assert_int_equal(PARSE_ARGS(0, 0, 0, "--", "-x"), 2);
        assert_string_equal(last_error, "cmd: unknown option '-x'");
        assert_int_equal(PARSE_ARGS(0, 2, 2, "a", "b"), 0);
}

static void test_double_dash(void **state)
{
        char **argv = ARGV("-q", "--", "--tag", "x", "-f");

        (void)state;
        assert_int_equal(parse_with(0, 0, -1, 6, argv), 0);
        assert_true(f.quiet);
        assert_null(f.tag);
        assert_false(f.force);
        assert_int_equal(f.first, 3);
        assert_string_equal(argv[f.first], "--tag");
        assert_string_equal(argv[5], "-f");
}

static void test_in_order(void **state)
{
        char **argv = ARGV("-q", "name", "cmd", "-f", "--tag", "x");

        (void)state;
        /* the first operand ends the options: the rest is another command's */
        assert_int_equal(parse_with(CLI_OPTS_IN_ORDER, 0, -1, 7, argv), 0);
        assert_true(f.quiet);
        assert_false(f.force);
        assert_null(f.tag);
        assert_int_equal(f.first, 2);
        assert_string_equal(argv[3], "cmd");
        assert_string_equal(argv[4], "-f");
}

static void test_help(void **state)
{
        (void)state;
        assert_int_equal(PARSE("--help"), CLI_OPTS_HELP);
        assert_int_equal(PARSE("a", "-h"), CLI_OPTS_HELP);
        assert_int_equal(cli_opts_status(CLI_OPTS_HELP), 0);
        assert_int_equal(cli_opts_status(2), 2);
        /* --help wins over an operand count that is wrong */
        assert_int_equal(PARSE_ARGS(0, 1, 1, "--help"), CLI_OPTS_HELP);
        assert_int_equal(PARSE_ARGS(CLI_OPTS_NO_H, 0, -1, "-h"), 2);
        assert_string_equal(last_error, "cmd: unknown option '-h'");
        assert_int_equal(n_errors, 1);
}

static void test_registry_rows(void **state)
{
        registry_opts ro = {.tls_verify = -1};
        bool quiet = false;
        const cli_opt opts[] = {CLI_PULL_OPTS(&ro, &quiet)};
        const cli_opts_cmd cmd = {"pull", "", 0, 0, -1, NULL};
        char **argv = ARGV("--tls-verify=false", "--cert-dir", "/c", "--authfile=/a", "--pull",
                           "always", "-q");
        char **bad = ARGV("--tls-verify", "maybe");
        char **bad_pull = ARGV("--pull=sometimes");
        int first;

        (void)state;
        assert_int_equal(cli_opts_parse(&cmd, opts, ARRAY_SIZE(opts), 8, argv, &first), 0);
        assert_int_equal(ro.tls_verify, 0);
        assert_string_equal(ro.certs_dir, "/c");
        assert_string_equal(ro.auth_file, "/a");
        assert_int_equal(ro.pull, REGISTRY_PULL_ALWAYS);
        assert_true(quiet);
        assert_int_equal(cli_opts_parse(&cmd, opts, ARRAY_SIZE(opts), 3, bad, &first), 2);
        assert_string_equal(last_error, "pull: --tls-verify is 'true' or 'false', not 'maybe'");
        assert_int_equal(cli_opts_parse(&cmd, opts, ARRAY_SIZE(opts), 2, bad_pull, &first), 2);
        assert_string_equal(last_error,
                            "pull: --pull is missing, always or never, not 'sometimes'");
}

/* CLI_CHOICE rows: the word's value in the field, the last one given wins;
 * another word is a usage error naming the option as written and the words. */
static void test_choice_rows(void **state)
{
        static const cli_choice words[] = {{"low", 1}, {"high", 7}, {"off", -1}};
        static const cli_choices level = {words, ARRAY_SIZE(words), "low, high or off"};
        store_compression comp = STORE_COMPRESSION_DEFAULT;
        int lv = 0, v = 0;
        const cli_opt opts[] = {
            CLI_CHOICE(NULL, 'l', &lv, &level),
            CLI_CHOICE("compression", 0, &comp, &cli_compressions),
        };
        const cli_opts_cmd cmd = {"push", "", 0, 0, -1, NULL};
        char **argv = ARGV("-lhigh", "--compression=gzip", "--compression", "zstd", "-l", "off");
        char **bad = ARGV("--compression", "xz");
        char **bad_short = ARGV("-l", "LOW");
        int first;

        (void)state;
        assert_int_equal(cli_opts_parse(&cmd, opts, ARRAY_SIZE(opts), 7, argv, &first), 0);
        assert_int_equal(lv, -1);
        assert_int_equal(comp, STORE_COMPRESSION_ZSTD);
        assert_int_equal(cli_opts_parse(&cmd, opts, ARRAY_SIZE(opts), 3, bad, &first), 2);
        assert_string_equal(last_error, "push: --compression is gzip or zstd, not 'xz'");
        assert_int_equal(comp, STORE_COMPRESSION_ZSTD);
        assert_int_equal(cli_opts_parse(&cmd, opts, ARRAY_SIZE(opts), 3, bad_short, &first), 2);
        assert_string_equal(last_error, "push: -l is low, high or off, not 'LOW'");
        /* the lookup alone: exact words only, *ret untouched on a miss */
        assert_int_equal(cli_choice_find(words, ARRAY_SIZE(words), "high", &v), 0);
        assert_int_equal(v, 7);
        assert_int_equal(cli_choice_find(words, ARRAY_SIZE(words), "hig", &v), -1);
        assert_int_equal(cli_choice_find(words, ARRAY_SIZE(words), "", &v), -1);
        assert_int_equal(v, 7);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_value_spellings),
             cmocka_unit_test(test_missing_value), cmocka_unit_test(test_unknown_option),
             cmocka_unit_test(test_short_flags), cmocka_unit_test(test_repeated),
             cmocka_unit_test(test_fn), cmocka_unit_test(test_operands),
             cmocka_unit_test(test_double_dash), cmocka_unit_test(test_in_order),
             cmocka_unit_test(test_help), cmocka_unit_test(test_registry_rows),
             cmocka_unit_test(test_choice_rows))
