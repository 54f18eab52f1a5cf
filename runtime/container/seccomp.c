/* SPDX-License-Identifier: MIT */
/*
 * Loading the containers' seccomp filter: the BPF program libseccomp compiled
 * from seccomp/policy.c at build time (seccomp-bpf.c, generated), installed
 * with seccomp(2). No policy is compiled and libseccomp is not loaded on a
 * start. The caller has set no_new_privs.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/container/container-internal.h"

int ctr_seccomp_install(void)
{
        struct sock_fprog prog = {
            .len = (unsigned short)ctr_seccomp_bpf_len,
            .filter = (struct sock_filter *)ctr_seccomp_bpf,
        };

        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
                return -errno;
        return 0;
}
