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
/* RUNS/ID/cgroups: the cgroups made for the run (where init_pid's differ
 * from ours), so that `rm` can remove them when the run ended uncleanly. */
void state_cgroups_record(int dirfd, pid_t init_pid);
void state_cgroups_remove(const char *run_dir);
/* Removes the run: its name link first (while the directory still names it), then the directory. */
int run_dir_remove(const char *runs_dir, const char *id, const char *name, forge_error **err);

/* vmexec.c: what the guest sends on the control channel, parsed (exported for tests) */
#include "runtime/init/vmctl.h"
typedef struct vmctl_reader {
        uint8_t buf[VMCTL_HDR_LEN + VMCTL_MAX_PAYLOAD];
        size_t len;
} vmctl_reader;
/* Handles the complete frames in r (STDOUT/STDERR of session sid to
 * out_fd/err_fd, others' skipped); 1 once its EXIT came, 0 for more, -1 on a
 * corrupt, oversized or unknown frame. */
int vmctl_frames(vmctl_reader *r, uint32_t sid, int out_fd, int err_fd, int *ret_status,
                 char **ret_msg, forge_error **err);
