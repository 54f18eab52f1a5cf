/* SPDX-License-Identifier: MIT */
/* cli_build_step, as the builder calls it: a `run:` step over lowerdirs,
 * writing into the given upper dir. Needs root (CTest label "root"). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fs.h"
#include "cli/build-step.h"
#include "runtime/runtime.h"

static char base[] = "/tmp/forge-build-step.XXXXXX";
static char lower[256], upper[256], work[256], scratch[256];

static int setup(void **state)
{
        char cmd[4096];

        if (mkdtemp(base) == NULL)
                return -1;
        snprintf(lower, sizeof(lower), "%s/lower", base);
        snprintf(upper, sizeof(upper), "%s/upper", base);
        snprintf(work, sizeof(work), "%s/work", base);
        snprintf(scratch, sizeof(scratch), "%s/scratch", base);
        snprintf(cmd, sizeof(cmd),
                 "mkdir -p %s/bin %s/etc %s %s %s && cp /bin/busybox %s/bin/busybox && "
                 "ln -s busybox %s/bin/sh && echo base > %s/etc/base",
                 lower, lower, upper, work, scratch, lower, lower, lower);
        return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
        fs_rm_rf(base, NULL);
        return 0;
}

static int run_step(const char *command, const char *const *lowers, size_t n, char *out,
                    size_t outlen)
{
        char *env[] = {"PATH=/bin", "STEP=yes", NULL};
        int pfd[2], status = -1;
        forge_error *err = NULL;
        builder_run_step step = {
            .lowerdirs = lowers,
            .n_lowerdirs = n,
            .upper_dir = upper,
            .work_dir = work,
            .command = command,
            .env = env,
        };
        ssize_t len;

        assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
        step.output_fd = pfd[1];
        if (cli_build_step(&step, &status, scratch, &err) < 0)
                fail_msg("cli_build_step: %s", err->msg);
        close(pfd[1]);
        len = read(pfd[0], out, outlen - 1);
        out[len > 0 ? len : 0] = '\0';
        close(pfd[0]);
        return status;
}

static void test_step_writes_upper(void **state)
{
        const char *lowers[] = {lower};
        char out[4096], path[512];
        struct stat st;

        assert_int_equal(run_step("echo built > /etc/new && cat /etc/base && echo $STEP && "
                                  "rm /etc/base && hostname",
                                  lowers, 1, out, sizeof(out)),
                         0);
        assert_string_equal(out, "base\nyes\nforge-build\n");
        snprintf(path, sizeof(path), "%s/etc/new", upper);
        assert_int_equal(stat(path, &st), 0);
        /* the deletion is an overlay whiteout in the upper dir; the lower is intact */
        snprintf(path, sizeof(path), "%s/etc/base", upper);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISCHR(st.st_mode));
        snprintf(path, sizeof(path), "%s/etc/base", lower);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        /* the scratch dir is left empty */
        assert_int_equal(rmdir(scratch), 0);
        assert_int_equal(mkdir(scratch, 0755), 0);
}

static void test_step_status(void **state)
{
        const char *lowers[] = {lower};
        char out[256];

        assert_int_equal(run_step("echo failing >&2; exit 3", lowers, 1, out, sizeof(out)), 3);
        assert_string_equal(out, "failing\n");
        /* no network by default: only lo */
        assert_int_equal(run_step("cat /proc/net/dev | grep -c :", lowers, 1, out, sizeof(out)), 0);
        assert_string_equal(out, "1\n");
}

static void test_step_no_layers(void **state)
{
        char out[256];

        /* from scratch: an empty root, so /bin/sh is not found */
        assert_int_equal(run_step("true", NULL, 0, out, sizeof(out)), 127);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_step_writes_upper),
            cmocka_unit_test(test_step_status),
            cmocka_unit_test(test_step_no_layers),
        };

        if (geteuid() != 0) {
                fprintf(stderr, "SKIP: cli_build_step needs root\n");
                return 77;
        }
        if (access("/bin/busybox", X_OK) != 0) {
                fprintf(stderr, "SKIP: /bin/busybox (busybox-static) is missing\n");
                return 77;
        }
        return cmocka_run_group_tests(tests, setup, teardown);
}
