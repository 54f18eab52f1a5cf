/* SPDX-License-Identifier: MIT */
#pragma once

/* forge-vminit's exec server on the control channel (vmctl-guest.c). */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define VMCTL_GUEST_PORT "/dev/hvc0"

typedef struct vmctl_ids {
        uid_t uid;
        gid_t gid;
        gid_t groups[64];
        size_t n_groups;
} vmctl_ids;

typedef struct vmctl_defaults {
        char **env;          /* the workload's environment */
        const char *user;    /* the workload's user ("0" when none) */
        const char *workdir; /* or NULL */
        /* resolves a user in the image's /etc/passwd and /etc/group */
        int (*resolve)(const char *user, vmctl_ids *ret);
} vmctl_defaults;

/* Forks the server when the guest has the control port (it waits up to 5 s
 * for it to appear); returns at once in PID 1. */
void vmctl_server_start(const vmctl_defaults *d);
/* The server loop on fd (for tests: any stream); never returns. */
void vmctl_serve_fd(int fd, const vmctl_defaults *d) __attribute__((noreturn));
