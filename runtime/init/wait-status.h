/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A wait status as the exit code a shell reports: forge-init and forge-vminit
 * exit with it, forge run and forge exec return it, a detached run records it.
 * libc only (the inits are static binaries).
 */

#include <sys/wait.h>

/* The status of an exit, 128+N for a death by signal N, 1 otherwise. */
static inline int wait_status_code(int status)
{
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return 1;
}
