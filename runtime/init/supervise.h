/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The part of PID 1 shared by the container init (init.c) and the VM guest
 * init (init-vm.c): supervise one workload process.
 */

#include <sys/types.h>

/* Blocks SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGWINCH
 * in the caller; call before forking the workload (the child must restore the
 * mask with init_signals_restore() before exec). */
int init_signals_block(void);
void init_signals_restore(void);

/* Forwards the signals above to child, reaps every zombie, and returns when
 * child has exited: its exit status, or 128+N when it died of signal N. */
int init_supervise(pid_t child);
