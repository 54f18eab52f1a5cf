/* SPDX-License-Identifier: MIT */
/* common/fs.h's fs_path_clean: the one path cleaner under the builder's
 * destinations (".." refused), archive entry names (".." kept for openat2 to
 * clamp) and the spec's "inside the context" check (".." applied). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "common/fs.h"

static void expect(const char *in, fs_dotdot mode, const char *want)
{
        char *got = fs_path_clean(in, mode);

        if (want == NULL) {
                if (got != NULL)
                        fail_msg("'%s' (mode %d): '%s', expected a refusal", in, mode, got);
                assert_int_equal(errno, EINVAL);
                return;
        }
        if (got == NULL)
                fail_msg("'%s' (mode %d): refused, expected '%s'", in, mode, want);
        assert_string_equal(got, want);
        free(got);
}

static void slashes_and_dots_go(void **state)
{
        (void)state;
        for (int m = FS_DOTDOT_REFUSE; m <= FS_DOTDOT_APPLY; m++) {
                expect("/", m, "");
                expect("", m, "");
                expect("./", m, "");
                expect("//a//b/", m, "a/b");
                expect("/./a/./b/.", m, "a/b");
                expect("a/.b/..c/...", m, "a/.b/..c/...");
        }
}

static void dotdot_refused(void **state)
{
        (void)state;
        expect("a/../b", FS_DOTDOT_REFUSE, NULL);
        expect("..", FS_DOTDOT_REFUSE, NULL);
        expect("/a/b/..", FS_DOTDOT_REFUSE, NULL);
}

static void dotdot_kept(void **state)
{
        (void)state;
        expect("/../../etc/passwd", FS_DOTDOT_KEEP, "../../etc/passwd");
        expect("a/./../b", FS_DOTDOT_KEEP, "a/../b");
}

static void dotdot_applied_never_above_the_top(void **state)
{
        (void)state;
        expect("/a/b/../c", FS_DOTDOT_APPLY, "a/c");
        expect("/a/../../../etc", FS_DOTDOT_APPLY, "etc");
        expect("/ctx/../ctx2/x", FS_DOTDOT_APPLY, "ctx2/x");
        expect("a/b/../..", FS_DOTDOT_APPLY, "");
}

/* fs_parse_size's units, either case, with an optional i and B */
static void size_units(void **state)
{
        static const struct {
                const char *in;
                unsigned long long want;
        } ok[] = {
            {"1k", 1ULL << 10}, {"1K", 1ULL << 10},   {"3m", 3ULL << 20},   {"2g", 2ULL << 30},
            {"1T", 1ULL << 40}, {"1tib", 1ULL << 40}, {"7KiB", 7ULL << 10}, {"9b", 9},
        };
        static const char *const bad[] = {"1x", "1KK", "1i", "k", "1Ki B"};
        unsigned long long v;

        (void)state;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                assert_int_equal(fs_parse_size(ok[i].in, &v), 0);
                assert_int_equal(v, ok[i].want);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(fs_parse_size(bad[i], &v), -1);
}

/* fs_env_path: only an absolute value counts; one '/' before rel */
static void env_path(void **state)
{
        char *p;

        (void)state;
        unsetenv("FORGE_TEST_DIR");
        assert_null(fs_env_path("FORGE_TEST_DIR", "x"));
        setenv("FORGE_TEST_DIR", "rel/dir", 1);
        assert_null(fs_env_path("FORGE_TEST_DIR", "x"));
        setenv("FORGE_TEST_DIR", "/d/", 1);
        p = fs_env_path("FORGE_TEST_DIR", "a/b.json");
        assert_string_equal(p, "/d/a/b.json");
        free(p);
        unsetenv("FORGE_TEST_DIR");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(slashes_and_dots_go),
            cmocka_unit_test(dotdot_refused),
            cmocka_unit_test(dotdot_kept),
            cmocka_unit_test(dotdot_applied_never_above_the_top),
            cmocka_unit_test(size_units),
            cmocka_unit_test(env_path),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
