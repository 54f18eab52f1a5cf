/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the service sources only. */

#include "runtime/service/service.h"

typedef struct service_pids {
        pid_t sup_pid, work_pid, init_pid;
        uint64_t sup_start, work_start, init_start;
} service_pids;

/* Writes dir/state for the current boot. */
int state_write(int dirfd, const service_pids *p, forge_error **err);
/* The boot id (/proc/sys/kernel/random/boot_id), "" when unreadable. */
void boot_id(char buf[64]);
/* Reads an int from dir/name ("exit"); -1 when missing. */
int read_int_file(int dirfd, const char *name, int *ret);
/* Removes the run: its name link first (while the directory still names it), then the directory. */
int run_dir_remove(const char *runs_dir, const char *id, const char *name, forge_error **err);
