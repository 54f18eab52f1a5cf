/* SPDX-License-Identifier: MIT */
/*
 * The seccomp program forge loads was compiled at build time: it must be the
 * one the installed libseccomp compiles from the policy now, instruction for
 * instruction, and it must do what the policy says when installed.
 */
#include <errno.h>
#include <linux/filter.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/container/container-internal.h"
#include "runtime/container/seccomp/policy.h"
#include "testutil.h"

static void test_compiled_matches_policy(void **state)
{
        void *bpf = NULL;
        size_t len = 0;

        (void)state;
        assert_int_equal(ctr_seccomp_policy_bpf(&bpf, &len), 0);
        assert_true(ctr_seccomp_bpf_len > 10);
        assert_int_equal(len, ctr_seccomp_bpf_len * sizeof(struct sock_filter));
        assert_memory_equal(bpf, ctr_seccomp_bpf, len);
        free(bpf);
}

/* In a child: install, then probe. The child reports a bit per expectation
 * met through its exit status. */
static int probe(void)
{
        int bits = 0;

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || ctr_seccomp_install() < 0)
                return 100;
        errno = 0;
        if (unshare(CLONE_NEWNS) < 0 && errno == EPERM)
                bits |= 1;
        errno = 0;
        if (syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS)
                bits |= 2;
        errno = 0;
        if (personality(READ_IMPLIES_EXEC) < 0 && errno == EPERM)
                bits |= 4;
        /* allowed: an ordinary call and the default personality */
        if (getpid() > 0 && personality(PER_LINUX) >= 0)
                bits |= 8;
        errno = 0;
        if (syscall(SYS_io_uring_setup, 1, NULL) < 0 && errno == EPERM)
                bits |= 16;
        return bits;
}

static void test_installed_filter_denies(void **state)
{
        int status;
        pid_t pid;

        (void)state;
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(probe());
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 31);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_compiled_matches_policy),
             cmocka_unit_test(test_installed_filter_denies))
