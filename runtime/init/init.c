/* SPDX-License-Identifier: MIT */
/*
 * forge-init: PID 1 of a container. Started by the runtime with the
 * container's root, credentials, capabilities and seccomp filter already in
 * place; runs the workload as its child, forwards signals to it, reaps
 * zombies and exits with the workload's status.
 *
 *   forge-init [-t] -- COMMAND [ARG...]
 *
 * The environment is the workload's. fd SYNC_FD (3), when open, is the
 * set-up socket to forge (runtime/container/sync.h): SYNC_STARTED once the
 * command runs, or SYNC_EXEC_FAILED with the errno when it cannot be
 * executed (forge turns that into a message and 126/127).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/container/sync.h"
#include "supervise.h"

static void close_from(unsigned int first)
{
        if (syscall(SYS_close_range, first, ~0U, 0) == 0)
                return;
        for (int fd = (int)first; fd < 1024; fd++)
                close(fd);
}

static int exec_status(int e)
{
        return e == ENOENT ? 127 : 126;
}

/* Child side: becomes the workload. Reports errno on the CLOEXEC pipe if the
 * exec fails. */
static void __attribute__((noreturn)) run_workload(char **argv, int tty, int errfd)
{
        int e;

        init_signals_restore();
        if (tty) {
                setsid();
                ioctl(0, TIOCSCTTY, 0);
        }
        execvp(argv[0], argv);
        e = errno;
        if (write(errfd, &e, sizeof(e)) < 0)
                _exit(exec_status(e));
        _exit(exec_status(e));
}

/* SYNC_EXEC_FAILED when the command could not be executed, else
 * SYNC_STARTED. */
static void report_exec(int e)
{
        sync_msg m;

        if (fcntl(SYNC_FD, F_GETFD) < 0)
                return;
        sync_msg_init(&m, e ? SYNC_EXEC_FAILED : SYNC_STARTED, e, NULL);
        (void)sync_send(SYNC_FD, &m, -1);
}

int main(int argc, char **argv)
{
        int tty = 0, i = 1, pfd[2], e = 0, status;
        ssize_t n;
        pid_t child;

        for (; i < argc && argv[i][0] == '-'; i++) {
                if (strcmp(argv[i], "-t") == 0) {
                        tty = 1;
                } else if (strcmp(argv[i], "--") == 0) {
                        i++;
                        break;
                } else {
                        fprintf(stderr, "forge-init: unknown option '%s'\n", argv[i]);
                        return 125;
                }
        }
        if (i >= argc) {
                fprintf(stderr, "usage: forge-init [-t] -- COMMAND [ARG...]\n");
                return 125;
        }
        /* Nothing of the runtime's must reach the workload. */
        fcntl(SYNC_FD, F_SETFD, FD_CLOEXEC);
        close_from(SYNC_FD + 1);

        if (init_signals_block() < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
                perror("forge-init: setup");
                return 125;
        }
        child = fork();
        if (child < 0) {
                perror("forge-init: fork");
                return 125;
        }
        if (child == 0)
                run_workload(argv + i, tty, pfd[1]);
        close(pfd[1]);
        do {
                n = read(pfd[0], &e, sizeof(e));
        } while (n < 0 && errno == EINTR);
        close(pfd[0]);
        report_exec(n == (ssize_t)sizeof(e) ? e : 0);
        close(SYNC_FD);
        /* Our own std streams stay open only as the workload's. */
        status = init_supervise(child);
        return status;
}
