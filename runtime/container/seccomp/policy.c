/* SPDX-License-Identifier: MIT */
/*
 * The seccomp policy of every container: allow by default, EPERM for the
 * system calls Docker's and LXC's default profiles deny (kernel modules,
 * kexec, keys, bpf, perf, mount and namespace changes, clock changes,
 * handle-based opens, ptrace of other processes' memory, io_uring...), ENOSYS
 * for clone3 (its flags cannot be inspected, so libc falls back to clone,
 * which is checked), and death for foreign architectures (i386 and x32 entry
 * points).
 *
 * libseccomp compiles it to BPF once, at build time (gen.c writes
 * seccomp-bpf.c); forge loads that program with seccomp(2) and does not link
 * libseccomp. tests/runtime/test_seccomp_bpf.c compiles the policy again with
 * the installed libseccomp and checks the two programs are the same.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/container/seccomp/policy.h"

static const char *const denied[] = {
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "name_to_handle_at",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "perf_event_open",
    "userfaultfd",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "stime",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "quotactl",
    "quotactl_fd",
    "nfsservctl",
    "vm86",
    "vm86old",
    "uselib",
    "syslog",
    "kcmp",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "get_kernel_syms",
    "query_module",
    "sysfs",
    "_sysctl",
    "ustat",
    "vhangup",
    "fanotify_init",
    "move_pages",
    "migrate_pages",
    /* as Docker's default profile (since 25.0): io_uring's submissions bypass
     * this filter, and it has been a steady source of kernel bugs */
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",

};

static const int ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                               CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

/* personality(2) flags that weaken the address space layout. */
static const unsigned long bad_personality[] = {0x0040000 /* ADDR_NO_RANDOMIZE */,
                                                0x0100000 /* MMAP_PAGE_ZERO */,
                                                0x0400000 /* READ_IMPLIES_EXEC */};

int ctr_seccomp_policy(scmp_filter_ctx ctx)
{
        int r;

        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
                int nr = seccomp_syscall_resolve_name(denied[i]);

                if (nr == __NR_SCMP_ERROR || nr < 0)
                        continue; /* not on this architecture */
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++) {
                scmp_datum_t f = (scmp_datum_t)ns_flags[i];

                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, f, f));
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < sizeof(bad_personality) / sizeof(bad_personality[0]); i++) {
                scmp_datum_t f = bad_personality[i];

                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, f, f));
                if (r < 0)
                        return r;
        }
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (r < 0)
                return r;
        return 0;
}

/* Export through a memfd: libseccomp 2.5 writes the program to an fd only. */
int ctr_seccomp_policy_bpf(void **ret, size_t *ret_len)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        int fd = -1, r;
        off_t len;
        void *buf = NULL;

        if (ctx == NULL)
                return -ENOMEM;
        r = ctr_seccomp_policy(ctx);
        if (r < 0)
                goto out;
        fd = memfd_create("forge-seccomp", MFD_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                goto out;
        }
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                goto out;
        len = lseek(fd, 0, SEEK_END);
        if (len <= 0 || len > 1 << 20) {
                r = -EIO;
                goto out;
        }
        buf = malloc((size_t)len);
        if (buf == NULL) {
                r = -ENOMEM;
                goto out;
        }
        if (pread(fd, buf, (size_t)len, 0) != len) {
                r = -EIO;
                goto out;
        }
        *ret = buf;
        *ret_len = (size_t)len;
        buf = NULL;
        r = 0;
out:
        free(buf);
        if (fd >= 0)
                close(fd);
        seccomp_release(ctx);
        return r;
}
