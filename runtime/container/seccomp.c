/* SPDX-License-Identifier: MIT */
/*
 * The seccomp filter: allow by default, EPERM for the system calls Docker's and
 * LXC's default profiles deny (kernel modules, kexec, keys, bpf, perf, mount
 * and namespace changes, clock changes, handle-based opens, ptrace of other
 * processes' memory, io_uring...), ENOSYS for clone3 (its flags cannot be inspected, so
 * libc falls back to clone, which is checked), and death for foreign
 * architectures (i386 and x32 entry points).
 */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>

#include "runtime/container/container-internal.h"

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

static int build(scmp_filter_ctx ctx)
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

int ctr_seccomp_install(void)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        int r;

        if (ctx == NULL)
                return -ENOMEM;
        r = build(ctx);
        if (r >= 0)
                r = seccomp_load(ctx);
        seccomp_release(ctx);
        return r < 0 ? r : 0;
}
