/* SPDX-License-Identifier: MIT */
/*
 * Supervision of one workload by PID 1: signal forwarding and zombie reaping.
 * Shared by the container init and the VM guest init, so it uses only libc
 * (both are static binaries).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "supervise.h"
#include "wait-status.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

static sigset_t saved_mask;
static int saved_valid;

static void supervised_set(sigset_t *set)
{
        sigemptyset(set);
        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
                sigaddset(set, forwarded[i]);
        sigaddset(set, SIGCHLD);
}

int init_signals_block(void)
{
        sigset_t set;

        supervised_set(&set);
        if (sigprocmask(SIG_BLOCK, &set, &saved_mask) < 0)
                return -errno;
        saved_valid = 1;
        return 0;
}

void init_signals_restore(void)
{
        if (saved_valid) {
                sigprocmask(SIG_SETMASK, &saved_mask, NULL);
        } else {
                sigset_t set;

                supervised_set(&set);
                sigprocmask(SIG_UNBLOCK, &set, NULL);
        }
}

/* Reaps every exited child; returns 1 and stores the code once child is gone. */
static int reap(pid_t child, int *ret_code)
{
        int found = 0;

        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);

                if (pid < 0 && errno == EINTR)
                        continue;
                if (pid <= 0) {
                        /* ECHILD: nothing left at all, the workload is certainly gone. */
                        if (pid < 0 && errno == ECHILD && !found) {
                                *ret_code = 1;
                                return 1;
                        }
                        return found;
                }
                if (pid == child) {
                        *ret_code = wait_status_code(status);
                        found = 1;
                }
        }
}

int init_supervise(pid_t child)
{
        sigset_t set;
        int code = 1;
        int sfd;

        supervised_set(&set);
        sfd = signalfd(-1, &set, SFD_CLOEXEC);

        for (;;) {
                int sig;

                if (reap(child, &code))
                        break;
                if (sfd >= 0) {
                        struct signalfd_siginfo si;
                        ssize_t n = read(sfd, &si, sizeof(si));

                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n != (ssize_t)sizeof(si))
                                continue;
                        sig = (int)si.ssi_signo;
                } else {
                        if (sigwait(&set, &sig) != 0)
                                continue;
                }
                if (sig == SIGCHLD)
                        continue;
                /* The workload may be a process group leader of a shell pipeline:
                 * signal it only, as docker/tini do by default. */
                kill(child, sig);
        }
        if (sfd >= 0)
                close(sfd);
        return code;
}
