/* SPDX-License-Identifier: MIT */
/*
 * cgroups on this machine's hierarchy (v1 or v2): a cgroup is made and
 * removed; a limit the kernel refuses fails cleanly, names the hierarchy and
 * leaves no directory behind. Needs root and a writable /sys/fs/cgroup.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/container/container-internal.h"

static char prefix[64]; /* "forge-PID-": the names ctr_cgroup_new gives */
static int n_found;

static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        if (flag == FTW_D && strncmp(path + ftw->base, prefix, strlen(prefix)) == 0)
                n_found++;
        return 0;
}

/* How many of this process's cgroups exist, in any hierarchy. */
static int count_ours(void)
{
        n_found = 0;
        assert_int_equal(nftw("/sys/fs/cgroup", visit, 16, FTW_PHYS), 0);
        return n_found;
}

static void test_create_and_free(void **state)
{
        runtime_config cfg = {0};
        forge_error *err = NULL;
        cgroup *cg = NULL;

        (void)state;
        cfg.pids = 64;
        assert_int_equal(ctr_cgroup_new(&cfg, &cg, &err), 0);
        assert_non_null(cg);
        assert_true(count_ours() >= 1);
        ctr_cgroup_free(cg);
        assert_int_equal(count_ours(), 0);
}

static void test_refused_limit(void **state)
{
        runtime_config cfg = {0};
        forge_error *err = NULL;
        cgroup *cg = NULL;
        char want[64];

        (void)state;
        cfg.pids = -5; /* pids.max refuses it (EINVAL) after the directory is made */
        assert_int_equal(ctr_cgroup_new(&cfg, &cg, &err), -1);
        assert_null(cg);
        assert_non_null(err);
        snprintf(want, sizeof(want), "set up the %s cgroup: ", ctr_cgroup_unified() ? "v2" : "v1");
        assert_non_null(strstr(err->msg, want));
        assert_non_null(strstr(err->msg, "pids.max"));
        assert_int_equal(err->errnum, EINVAL);
        forge_error_release(&err);
        assert_int_equal(count_ours(), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_create_and_free),
            cmocka_unit_test(test_refused_limit),
        };
        char probe[96];

        if (geteuid() != 0) {
                fprintf(stderr, "SKIP: cgroups need root\n");
                return 77;
        }
        snprintf(prefix, sizeof(prefix), "forge-%d-", (int)getpid());
        snprintf(probe, sizeof(probe), "/sys/fs/cgroup/%s%s", ctr_cgroup_unified() ? "" : "pids/",
                 "forge-probe");
        if (mkdir(probe, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "SKIP: cannot make a cgroup ('%s': %s)\n", probe, strerror(errno));
                return 77;
        }
        rmdir(probe);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
