/* SPDX-License-Identifier: MIT */
/* common/vmproto: the VM protocol's codec, both ends (docs/vm-protocol.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/vmproto.h"
#include "tests/common/vmproto-eq.h"
#include "tests/helper/testutil.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char *awkward_args[] = {"sh",
                               "-c",
                               "echo \"hi there\" 'x'\n$HOME",
                               "",
                               "a=b",
                               "\t ",
                               "caf\xc3\xa9",
                               "\\",
                               "forge.args=00",
                               ""};
static char *awkward_env[] = {"A=1", "B=with space", "C=line\nbreak", "D=", "E==\"q\""};

static vmproto_run full_run(void)
{
        vmproto_run r = {.has_args = true,
                         .args = awkward_args,
                         .n_args = N(awkward_args),
                         .env = awkward_env,
                         .n_env = N(awkward_env),
                         .entrypoint = "/bin/entry point",
                         .user = "1000:100",
                         .workdir = "/srv/my dir\n",
                         .hostname = "h\"ost",
                         .n_shares = 2,
                         .read_only = true,
                         .net = "10.0.2.100/24,10.0.2.2,10.0.2.3",
                         .tty = true,
                         .rows = 24,
                         .cols = 65535,
                         .root = "my-root",
                         .bootstat = true};
        r.shares[0] = (vmproto_share){"forge0", "/mnt/a b", true};
        r.shares[1] = (vmproto_share){"forge1", "/", false};
        return r;
}

static void run_roundtrip(const vmproto_run *in, const char *base)
{
        vmproto_run out;
        const char *bad = "x";
        char *cl = NULL;

        assert_int_equal(vmproto_run_encode(in, base, &cl), 0);
        assert_null(strpbrk(cl, "\n\"\t"));
        if (vmproto_run_decode(cl, &out, &bad) != 0)
                fail_msg("decode '%s': %s (%s)", cl, strerror(errno), bad ? bad : "-");
        assert_null(bad);
        if (!vmproto_run_eq(in, &out))
                fail_msg("'%s' decodes to something else", cl);
        vmproto_run_free(&out);
        free(cl);
}

/* Every field, awkward strings included, survives encode then decode. */
static void run_every_field(void **state)
{
        vmproto_run r = full_run(), empty = {0};

        (void)state;
        run_roundtrip(&r, "console=ttyS0 panic=-1 forge.root=forge-root quiet");
        run_roundtrip(&r, NULL);
        run_roundtrip(&empty, "console=ttyS0");
        /* empty values: no arguments, no entrypoint, empty strings */
        r = (vmproto_run){
            .has_args = true, .entrypoint = "", .user = "", .workdir = "", .hostname = ""};
        run_roundtrip(&r, "");
}

/* The words on the wire are those docs/vm-protocol.md describes. */
static void run_wire_format(void **state)
{
        char *args[] = {"sh", "-c", "echo hi"}, *env[] = {"A=1"};
        vmproto_run r = {.has_args = true,
                         .args = args,
                         .n_args = 3,
                         .env = env,
                         .n_env = 1,
                         .user = "u",
                         .read_only = true,
                         .n_shares = 1,
                         .net = "1.2.3.4/8,5,6",
                         .tty = true,
                         .rows = 24,
                         .cols = 80};
        char *cl = NULL;

        (void)state;
        r.shares[0] = (vmproto_share){"forge0", "/m", false};
        assert_int_equal(vmproto_run_encode(&r, "base", &cl), 0);
        assert_string_equal(cl, "base forge.args=7368002d63006563686f206869 forge.env=413d31 "
                                "forge.user=75 forge.ro=1 forge.fs=666f7267653000"
                                "2f6d007277 forge.net=1.2.3.4/8,5,6 forge.tty=1 forge.rows=24 "
                                "forge.cols=80");
        free(cl);
        r = (vmproto_run){0};
        assert_int_equal(vmproto_run_encode(&r, NULL, &cl), 0);
        assert_string_equal(cl, "");
        free(cl);
}

/* Other words are left alone: unknown keys, near misses, words without '=',
 * quoted words (split as the kernel splits them); the last of a key counts. */
static void run_decode_others(void **state)
{
        vmproto_run r;
        const char *bad;

        (void)state;
        assert_int_equal(
            vmproto_run_decode("BOOT_IMAGE=x forge.unknown=zz forge.argsx=zz forge.args "
                               "xforge.user=zz quiet foo=\"a forge.user=zz b\" forge.env=41 "
                               "\t\nforge.args=6100 forge.args=62\n",
                               &r, &bad),
            0);
        assert_true(r.has_args);
        assert_int_equal(r.n_args, 1);
        assert_string_equal(r.args[0], "b");
        assert_null(r.args[1]);
        assert_int_equal(r.n_env, 1);
        assert_string_equal(r.env[0], "A");
        assert_null(r.user);
        assert_false(r.tty);
        assert_null(r.root);
        assert_false(r.bootstat);
        vmproto_run_free(&r);
        /* upper-case hex is read too; "forge.args=" is no arguments */
        assert_int_equal(vmproto_run_decode("forge.user=4142 forge.args=", &r, &bad), 0);
        assert_string_equal(r.user, "AB");
        assert_true(r.has_args);
        assert_int_equal(r.n_args, 0);
        vmproto_run_free(&r);
}

typedef struct bad_case {
        const char *cmdline, *key;
        int err;
} bad_case;

static const bad_case bad_cmdlines[] = {
    {"forge.args=616", "forge.args", EINVAL},
    {"forge.args=zz", "forge.args", EINVAL},
    {"forge.args=\"6162\"", "forge.args", EINVAL},
    {"forge.env=4g", "forge.env", EINVAL},
    {"forge.user=6100", "forge.user", EINVAL}, /* a NUL in one string */
    {"forge.workdir=2", "forge.workdir", EINVAL},
    {"forge.entrypoint=x", "forge.entrypoint", EINVAL},
    {"forge.hostname=6", "forge.hostname", EINVAL},
    {"forge.fs=666f7267653000", "forge.fs", EINVAL},   /* not a triple */
    {"forge.fs=61006d00726f", "forge.fs", EINVAL},     /* relative path */
    {"forge.fs=61002f6d00787878", "forge.fs", EINVAL}, /* mode xxx */
    {"forge.fs=002f6d00726f", "forge.fs", EINVAL},     /* empty tag */
    {"forge.ro=2", "forge.ro", EINVAL},
    {"forge.ro=", "forge.ro", EINVAL},
    {"forge.tty=yes", "forge.tty", EINVAL},
    {"forge.rows=0", "forge.rows", EINVAL},
    {"forge.rows=65536", "forge.rows", EINVAL},
    {"forge.cols=-1", "forge.cols", EINVAL},
    {"forge.cols=1e3", "forge.cols", EINVAL},
    {"forge.net=10.0.2.100/24;reboot", "forge.net", EINVAL},
    {"forge.net=", "forge.net", EINVAL},
    {"forge.root=a\"b", "forge.root", EINVAL},
    {"forge.root=", "forge.root", EINVAL},
    {"forge.args=62 forge.args=6", "forge.args", EINVAL}, /* the last counts */
};

/* Malformed values are refused, naming the key; nothing is left allocated. */
static void run_decode_malformed(void **state)
{
        vmproto_run r;
        const char *bad;

        (void)state;
        for (size_t i = 0; i < N(bad_cmdlines); i++) {
                errno = 0;
                if (vmproto_run_decode(bad_cmdlines[i].cmdline, &r, &bad) != -1)
                        fail_msg("'%s' was accepted", bad_cmdlines[i].cmdline);
                assert_int_equal(errno, bad_cmdlines[i].err);
                assert_non_null(bad);
                assert_string_equal(bad, bad_cmdlines[i].key);
                assert_null(r.args);
                assert_int_equal(r.n_shares, 0);
        }
}

/* Bounds: a tag over 36 bytes, more than four shares, more than
 * VMPROTO_MAX_STRINGS strings, a command line over VMPROTO_CMDLINE_MAX. */
static void run_decode_bounds(void **state)
{
        char *big = malloc(VMPROTO_CMDLINE_MAX + 64), *cl = NULL;
        char tag[VMPROTO_TAG_MAX + 2];
        vmproto_run r = {0}, out;
        const char *bad;
        size_t n;

        (void)state;
        memset(tag, 'a', sizeof(tag) - 1);
        tag[sizeof(tag) - 1] = '\0';
        r.n_shares = 1;
        r.shares[0] = (vmproto_share){tag, "/m", false};
        assert_int_equal(vmproto_run_encode(&r, NULL, &cl), -1);
        assert_int_equal(errno, EINVAL);
        tag[VMPROTO_TAG_MAX] = '\0';
        assert_int_equal(vmproto_run_encode(&r, NULL, &cl), 0);
        assert_int_equal(vmproto_run_decode(cl, &out, &bad), 0);
        assert_string_equal(out.shares[0].tag, tag);
        vmproto_run_free(&out);
        free(cl);
        /* five shares */
        n = (size_t)sprintf(big, "forge.fs=");
        for (int i = 0; i < VMPROTO_MAX_SHARES + 1; i++)
                n += (size_t)sprintf(big + n, "%s61002f00726f", i ? "00" : "");
        assert_int_equal(vmproto_run_decode(big, &out, &bad), -1);
        assert_string_equal(bad, "forge.fs");
        memset(big, 'x', VMPROTO_CMDLINE_MAX + 1);
        big[VMPROTO_CMDLINE_MAX + 1] = '\0';
        assert_int_equal(vmproto_run_decode(big, &out, &bad), -1);
        assert_int_equal(errno, E2BIG);
        free(big);
}

/* VMPROTO_MAX_STRINGS + 1 strings are refused (only /.forge/run is long
 * enough to hold them); VMPROTO_MAX_STRINGS are read. */
static void strings_bound(void **state)
{
        char *text = malloc(4 * VMPROTO_MAX_STRINGS + 16), **v;
        vmproto_image im;
        const char *bad;
        size_t n = (size_t)sprintf(text, "env=");

        (void)state;
        for (int i = 0; i < VMPROTO_MAX_STRINGS; i++)
                n += (size_t)sprintf(text + n, "00");
        assert_int_equal(vmproto_image_decode(text, &im, &bad), -1);
        assert_int_equal(errno, E2BIG);
        assert_string_equal(bad, "env");
        text[n - 2] = '\0';
        assert_int_equal(vmproto_image_decode(text, &im, &bad), 0);
        assert_int_equal(im.n_env, VMPROTO_MAX_STRINGS);
        vmproto_image_free(&im);
        assert_int_equal(vmproto_unhex_strv(text + 4, strlen(text + 4), &v, &n), 0);
        assert_int_equal(n, VMPROTO_MAX_STRINGS);
        vmproto_strv_free(v, n);
        free(text);
}

/* The encoder makes at most VMPROTO_CMDLINE_MAX bytes, and what it makes at
 * that length decodes. */
static void run_max_length(void **state)
{
        const char *base = "console=ttyS0";
        /* base + " forge.user=" + hex: fill to the limit exactly */
        size_t room = VMPROTO_CMDLINE_MAX - strlen(base) - strlen(" forge.user=");
        char *user = malloc(room / 2 + 2), *cl = NULL;
        vmproto_run r = {0}, out;
        const char *bad;

        (void)state;
        memset(user, 'u', room / 2);
        user[room / 2] = '\0';
        r.user = user;
        assert_int_equal(vmproto_run_encode(&r, base, &cl), 0);
        assert_int_equal(strlen(cl), VMPROTO_CMDLINE_MAX - room % 2);
        assert_int_equal(vmproto_run_decode(cl, &out, &bad), 0);
        assert_string_equal(out.user, user);
        vmproto_run_free(&out);
        free(cl);
        user[room / 2] = 'u';
        user[room / 2 + 1] = '\0';
        cl = NULL;
        assert_int_equal(vmproto_run_encode(&r, base, &cl), -1);
        assert_int_equal(errno, E2BIG);
        assert_null(cl);
        free(user);
}

/* What the guest could not read back is refused by the encoder. */
static void run_encode_refused(void **state)
{
        char *one_empty[] = {""};
        vmproto_run r = {.has_args = true, .args = one_empty, .n_args = 1};
        char *cl = NULL;

        (void)state;
        assert_int_equal(vmproto_run_encode(&r, NULL, &cl), -1); /* reads as no arguments */
        assert_int_equal(errno, EINVAL);
        r = (vmproto_run){.n_shares = 1};
        r.shares[0] = (vmproto_share){"t", "relative", false};
        assert_int_equal(vmproto_run_encode(&r, NULL, &cl), -1);
        r = (vmproto_run){.net = "10.0.2.100/24 forge.ro=1"};
        assert_int_equal(vmproto_run_encode(&r, NULL, &cl), -1);
        r = (vmproto_run){.root = "a b"};
        assert_int_equal(vmproto_run_encode(&r, NULL, &cl), -1);
        r = (vmproto_run){.rows = 65536};
        assert_int_equal(vmproto_run_encode(&r, NULL, &cl), -1);
        /* a base (the image's vm.cmdline) that would swallow forge's words */
        r = (vmproto_run){.read_only = true};
        assert_int_equal(vmproto_run_encode(&r, "console=ttyS0 x=\"a", &cl), -1);
        assert_int_equal(errno, EINVAL);
        assert_null(cl);
        assert_int_equal(vmproto_run_encode(&r, "x=\"a b\" y=\"\"", &cl), 0);
        assert_string_equal(cl, "x=\"a b\" y=\"\" forge.ro=1");
        free(cl);
}

/* /.forge/run: every field round-trips; the wire format is the documented one. */
static void image_roundtrip(void **state)
{
        char *argv[] = {"/bin/th", "", "a b\nc", "x"}, *env[] = {"A=1", "B=\n", "C="};
        vmproto_image im = {.argv = argv,
                            .argc = 4,
                            .n_entrypoint = 1,
                            .env = env,
                            .n_env = 3,
                            .workdir = "/srv/a b",
                            .user = "1000:1000",
                            .hostname = "h"};
        vmproto_image out, none = {0};
        const char *bad;
        char *text = NULL;

        (void)state;
        assert_int_equal(vmproto_image_encode(&im, &text), 0);
        assert_int_equal(vmproto_image_decode(text, &out, &bad), 0);
        assert_true(vmproto_image_eq(&im, &out));
        vmproto_image_free(&out);
        free(text);
        assert_int_equal(vmproto_image_encode(&none, &text), 0);
        assert_string_equal(text, "argv=\nentrypoint=0\nenv=\n");
        assert_int_equal(vmproto_image_decode(text, &out, &bad), 0);
        assert_true(vmproto_image_eq(&none, &out));
        vmproto_image_free(&out);
        free(text);
        im = (vmproto_image){.argv = argv, .argc = 1, .n_entrypoint = 1, .user = "u"};
        assert_int_equal(vmproto_image_encode(&im, &text), 0);
        assert_string_equal(text, "argv=2f62696e2f7468\nentrypoint=1\nenv=\nuser=u\n");
        free(text);
        /* a newline in a line's value, or a count over argc: refused */
        im.workdir = "/a\nhostname=evil";
        assert_int_equal(vmproto_image_encode(&im, &text), -1);
        im.workdir = NULL;
        im.n_entrypoint = 2;
        assert_int_equal(vmproto_image_encode(&im, &text), -1);
}

static void image_decode(void **state)
{
        vmproto_image im;
        const char *bad;
        char *big;

        (void)state;
        /* unknown lines ignored, the last of a key counts, "" is unset */
        assert_int_equal(vmproto_image_decode("x=1\nargv=61\nnoequals\nargv=6200630a\n"
                                              "entrypoint=1\nworkdir=\nuser=a=b\n",
                                              &im, &bad),
                         0);
        assert_int_equal(im.argc, 2);
        assert_string_equal(im.argv[1], "c\n");
        assert_int_equal(im.n_entrypoint, 1);
        assert_null(im.workdir);
        assert_string_equal(im.user, "a=b");
        vmproto_image_free(&im);
        assert_int_equal(vmproto_image_decode("argv=61\nentrypoint=2\n", &im, &bad), -1);
        assert_string_equal(bad, "entrypoint");
        assert_int_equal(vmproto_image_decode("argv=61\nentrypoint=-1\n", &im, &bad), -1);
        assert_int_equal(vmproto_image_decode("argv=6\n", &im, &bad), -1);
        assert_string_equal(bad, "argv");
        assert_int_equal(vmproto_image_decode("env=zz\n", &im, &bad), -1);
        assert_string_equal(bad, "env");
        assert_null(im.argv);
        big = malloc(VMPROTO_RUN_FILE_MAX + 2);
        memset(big, 'a', VMPROTO_RUN_FILE_MAX + 1);
        big[VMPROTO_RUN_FILE_MAX + 1] = '\0';
        assert_int_equal(vmproto_image_decode(big, &im, &bad), -1);
        assert_int_equal(errno, E2BIG);
        free(big);
}

static void apply_to(const char *image_text, const char *cmdline, vmproto_image *ret)
{
        vmproto_run r;
        const char *bad;

        assert_int_equal(vmproto_image_decode(image_text, ret, &bad), 0);
        assert_int_equal(vmproto_run_decode(cmdline, &r, &bad), 0);
        assert_int_equal(vmproto_image_apply(ret, &r), 0);
        vmproto_run_free(&r);
}

static void assert_argv(const vmproto_image *im, const char *const *want, size_t n)
{
        assert_int_equal(im->argc, n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(im->argv[i], want[i]);
        if (im->argv)
                assert_null(im->argv[n]);
}

/* The command line's overrides: forge.args replaces the cmd and keeps the
 * entrypoint, forge.entrypoint replaces the entrypoint and drops the cmd,
 * forge.env replaces or adds, user/workdir/hostname replace ("" keeps). */
static void image_apply(void **state)
{
        /* entrypoint "ep", cmd "c1 c2"; env A=1 B=2 */
        const char *img = "argv=65700063310063320a\nentrypoint=1\nenv=413d3100423d32\n"
                          "workdir=/w\nuser=u\n";
        vmproto_image im;

        (void)state;
        apply_to(img, "forge.args=78", &im); /* x */
        assert_argv(&im, (const char *[]){"ep", "x"}, 2);
        vmproto_image_free(&im);
        apply_to(img, "forge.args=", &im);
        assert_argv(&im, (const char *[]){"ep"}, 1);
        vmproto_image_free(&im);
        apply_to(img, "forge.entrypoint=6e", &im); /* n */
        assert_argv(&im, (const char *[]){"n"}, 1);
        vmproto_image_free(&im);
        apply_to(img, "forge.entrypoint=6e forge.args=7800", &im);
        assert_argv(&im, (const char *[]){"n", "x", ""}, 3);
        vmproto_image_free(&im);
        apply_to(img, "forge.entrypoint= forge.args=78", &im); /* no entrypoint */
        assert_argv(&im, (const char *[]){"x"}, 1);
        vmproto_image_free(&im);
        apply_to(img, "forge.entrypoint=", &im);
        assert_argv(&im, NULL, 0);
        vmproto_image_free(&im);
        apply_to(img, "", &im);
        assert_argv(&im, (const char *[]){"ep", "c1", "c2\n"}, 3);
        assert_string_equal(im.workdir, "/w");
        vmproto_image_free(&im);
        /* B=9 replaces B, C=3 is added */
        apply_to(img, "forge.env=423d3900433d33 forge.workdir=2f78 forge.user= forge.hostname=68",
                 &im);
        assert_int_equal(im.n_env, 3);
        assert_string_equal(im.env[0], "A=1");
        assert_string_equal(im.env[1], "B=9");
        assert_string_equal(im.env[2], "C=3");
        assert_null(im.env[3]);
        assert_string_equal(im.workdir, "/x");
        assert_string_equal(im.user, "u");
        assert_string_equal(im.hostname, "h");
        vmproto_image_free(&im);
        /* an image without a run configuration at all */
        apply_to("", "forge.args=6100", &im);
        assert_argv(&im, (const char *[]){"a", ""}, 2);
        vmproto_image_free(&im);
}

static void hex_lists(void **state)
{
        const char *v[] = {"", "a", ""};
        char *hex, **out;
        size_t n;

        (void)state;
        assert_int_equal(vmproto_hex_strv(v, 3, &hex), 0);
        assert_string_equal(hex, "006100");
        assert_int_equal(vmproto_unhex_strv(hex, strlen(hex), &out, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(out[0], "");
        assert_string_equal(out[1], "a");
        assert_string_equal(out[2], "");
        assert_null(out[3]);
        vmproto_strv_free(out, n);
        free(hex);
        assert_int_equal(vmproto_unhex_strv("", 0, &out, &n), 0);
        assert_int_equal(n, 0);
        assert_null(out[0]);
        vmproto_strv_free(out, n);
        assert_int_equal(vmproto_unhex_strv("0", 1, &out, &n), -1);
        assert_int_equal(vmproto_unhex_strv("0x", 2, &out, &n), -1);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(run_every_field), cmocka_unit_test(run_wire_format),
             cmocka_unit_test(run_decode_others), cmocka_unit_test(run_decode_malformed),
             cmocka_unit_test(run_decode_bounds), cmocka_unit_test(run_max_length),
             cmocka_unit_test(run_encode_refused), cmocka_unit_test(image_roundtrip),
             cmocka_unit_test(image_decode), cmocka_unit_test(image_apply),
             cmocka_unit_test(hex_lists), cmocka_unit_test(strings_bound))
