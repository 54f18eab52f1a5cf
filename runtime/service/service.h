/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Detached runs (`forge run -d`): no daemon, one small supervisor process per
 * run (as conmon is for podman) that owns the workload, its log and its exit
 * status, and outlives the forge process that started it.
 *
 * State lives under the store's run directory (RUNS = STORE/run):
 *   RUNS/ID/config.json   id, name, image, kind, created, command (written once)
 *   RUNS/ID/state         the responsible processes: pid and start time (field
 *                         22 of /proc/PID/stat) of the supervisor, the workload
 *                         process and the container's init, and the boot id
 *   RUNS/ID/exit          the exit status, once the workload has ended
 *   RUNS/ID/log, log.1    the workload's stdout and stderr, rotated at log_max
 *   RUNS/ID/FILE          what the workload adds (service_file_put: container.json)
 *   RUNS/names/NAME       a symlink to ID: created atomically, so a name is taken once
 * Every file is written atomically (temp file, rename). A run whose
 * supervisor is gone (dead pid, reused pid, other boot) without an exit
 * file is shown as exited with status unknown; nothing is ever shown up
 * because of a stale file.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

#define SERVICE_ID_LEN 64
#define SERVICE_SHORT_ID_LEN 12
#define SERVICE_LOG_MAX_DEFAULT (16ULL << 20)
#define SERVICE_NAME_MAX 128

typedef struct service_params {
        const char *runs_dir; /* created when missing */
        const char *name;     /* NULL: none */
        const char *image;    /* shown by ps */
        const char *kind;     /* "container" or "vm" */
        const char *command;  /* shown by ps (informational) */
        bool remove;          /* --rm: the run's directory goes when it ends */
        uint64_t log_max;     /* bytes per log file (two are kept); 0: default */
} service_params;

/* The workload: runs in a child of the supervisor (its session, stdin
 * /dev/null, stdout and stderr into the log, killed with the supervisor)
 * and returns its exit status. It calls service_ready() once the workload
 * runs, or execs (a successful exec counts as ready). */
typedef int (*service_workload_fn)(void *data);

/* Called in the workload process: the workload runs; pid is the process
 * `exec` joins and signals go to (a container's init), 0: the workload
 * process itself. */
void service_ready(pid_t pid);
/* True in a workload process started by service_start. */
bool service_in_workload(void);
/* There: RUNS/ID; elsewhere NULL. */
const char *service_workload_dir(void);
/* Writes RUNS/ID/name atomically (in the workload: the current run). */
int service_file_put(const char *name, const void *buf, size_t len, forge_error **err);

typedef struct service_start_result {
        char id[SERVICE_ID_LEN + 1];
        bool started;
        int status;   /* !started: the workload's exit status */
        char *output; /* !started: what it printed (malloc'd, may be NULL) */
} service_start_result;

/* Creates the run (a name already taken: EEXIST, a usage-class error) and
 * its supervisor; returns when the workload has started or has failed to. */
int service_start(const service_params *p, service_workload_fn fn, void *data,
                  service_start_result *ret, forge_error **err);

typedef enum service_state {
        SERVICE_UP,
        SERVICE_EXITED,  /* status known */
        SERVICE_UNKNOWN, /* ended without a status (supervisor killed, reboot) */
} service_state;

typedef struct service_info {
        char id[SERVICE_ID_LEN + 1];
        char *dir;
        char *name; /* "" when none */
        char *image;
        char *kind;
        char *command;
        int64_t created; /* unix seconds */
        service_state state;
        int status; /* SERVICE_EXITED */
        pid_t sup_pid, work_pid, init_pid;
        uint64_t sup_start, work_start, init_start;
} service_info;

void service_info_free(service_info *si);
/* Every run, oldest first. */
int service_list(const char *runs_dir, service_info **ret, size_t *ret_n, forge_error **err);
void service_list_free(service_info *v, size_t n);
/* By name, full id or unique id prefix; ENOENT: "no run 'REF'". */
int service_find(const char *runs_dir, const char *ref, service_info *ret, forge_error **err);
/* Re-reads si's state. */
int service_refresh(service_info *si, forge_error **err);
/* "up", "exited (N)", "exited (unknown)" */
const char *service_state_text(const service_info *si, char *buf, size_t len);

/* A pidfd of pid when its start time is still start (-ESRCH otherwise). */
int service_pidfd(pid_t pid, uint64_t start);
/* Sends sig to the run's workload (a container's init, or the VM's launcher). */
int service_kill(const service_info *si, int sig, forge_error **err);
/* Waits until the run is no longer up (timeout_ms < 0: for ever); returns 1
 * when it ended, 0 on timeout. si is refreshed. */
int service_wait(service_info *si, int timeout_ms, forge_error **err);
/* SIGTERM, then SIGKILL after timeout_s; returns once it has ended. */
int service_stop(service_info *si, unsigned timeout_s, forge_error **err);
/* Removes an ended run (force: kills an up one first) and its name. */
int service_remove(const char *runs_dir, service_info *si, bool force, forge_error **err);
/* Copies the log to out_fd: the last tail lines (tail < 0: all); follow:
 * then what is appended until the run ends. */
int service_logs(service_info *si, int out_fd, long tail, bool follow, forge_error **err);

/* `forge exec` into a detached VM, over its control channel (vmexec.c). */
typedef struct service_vm_exec {
        char *const *argv;
        size_t argc;
        const char *const *env; /* extra K=V over the workload's */
        size_t n_env;
        const char *user, *workdir; /* NULL: the workload's */
        bool tty;
} service_vm_exec;

/* Runs the command in the guest, relaying stdio, signals and (tty) the
 * terminal size; *ret_status is its status (125: it could not be started,
 * 126/127: not executable / not found, with the guest's message in
 * *ret_msg). < 0 when the channel failed or the guest misbehaved. */
int service_vm_exec_run(const service_info *si, const service_vm_exec *x, int *ret_status,
                        char **ret_msg, forge_error **err);

/* Helpers shared with tests. */
int service_proc_start_time(pid_t pid, uint64_t *ret);
bool service_name_valid(const char *name);
