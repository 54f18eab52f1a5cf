/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by the runtime sources only. */

#include <linux/filter.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>

#include "runtime/runtime.h"

/* ---- cgroups (cgroup.c picks cgroup-v2.c or cgroup-v1.c) ---- */

typedef struct cgroup cgroup;

typedef struct cgroup_ops {
        const char *name;
        /* the file of each directory that a thread joins by writing "0"
         * (see ctr_cgroup_self_join_open), or NULL: attach by pid */
        const char *self_join_file;
        /* Creates the run's cgroup (relative to forge's own) and applies limits. */
        int (*create)(cgroup *cg, const runtime_config *cfg, forge_error **err);
        /* the memory controller's file with the oom_kill counter */
        const char *oom_file;
} cgroup_ops;

#define CGROUP_MAX_DIRS 4

struct cgroup {
        const cgroup_ops *ops;
        char name[64];
        /* v2: dirs[0]; v1: one per controller used. A process joins, and
         * the removal takes, each of them. */
        char *dirs[CGROUP_MAX_DIRS];
        size_t n_dirs;
        char *memory_dir; /* where the OOM counters are, or NULL */
};

extern const cgroup_ops ctr_cgroup_v1_ops;
extern const cgroup_ops ctr_cgroup_v2_ops;

/* Picks the hierarchy, creates the cgroup and applies limits. *ret is NULL when
 * no limit was requested (no cgroup needed). */
int ctr_cgroup_new(const runtime_config *cfg, cgroup **ret, forge_error **err);
int ctr_cgroup_attach(cgroup *cg, pid_t pid, forge_error **err);
/* true when the kernel OOM-killed a process of the cgroup */
bool ctr_cgroup_oom_killed(cgroup *cg);
/* true when dir/file ("KEY VALUE" lines: memory.events, memory.oom_control)
 * counts an oom_kill; false when it does not or cannot be read. */
bool ctr_cgroup_oom_counted(const char *dir, const char *file);
void ctr_cgroup_free(cgroup *cg);
/* cgroup v1: the "tasks" files of the run's cgroups, for the child to join
 * them itself by writing "0": moving the calling thread alone skips the
 * threadgroup lock whose RCU grace period makes a write of a pid to
 * cgroup.procs take milliseconds. *ret_n is 0 on v2 (attach by pid). */
int ctr_cgroup_self_join_open(cgroup *cg, int fds[CGROUP_MAX_DIRS], size_t *ret_n,
                              forge_error **err);
/* Frees cg without removing its directories (another process does). */
void ctr_cgroup_forget(cgroup *cg);
bool ctr_cgroup_unified(void);
/* Forge's own path in a hierarchy from /proc/self/cgroup: controller "" is
 * the v2 one ("0::"). malloc'd, NULL when absent. */
char *ctr_cgroup_self_path(const char *controller);
int ctr_cgroup_write(const char *dir, const char *file, const char *value, forge_error **err);
/* ctr_cgroup_write() of a formatted value. */
int ctr_cgroup_printf(const char *dir, const char *file, forge_error **err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- security (caps.c, seccomp.c) ---- */

/* Limits the bounding set and, for root, sets effective/permitted/ambient to
 * the set; for other users only the bounding set remains. Call after the
 * credentials are switched. Returns -errno. */
int ctr_caps_bounding_drop(runtime_caps set);
int ctr_caps_apply(runtime_caps set, bool root);
/* The set as a 64-bit mask (for tests). */
uint64_t ctr_caps_mask(runtime_caps set);

/* Installs the deny-list filter (no_new_privs must be set); returns -errno. */
int ctr_seccomp_install(void);
/* That filter: BPF compiled from seccomp/policy.c at build time (the generated
 * seccomp-bpf.c), ctr_seccomp_bpf_len instructions. */
extern const struct sock_filter ctr_seccomp_bpf[];
extern const size_t ctr_seccomp_bpf_len;

/* ---- users (user.c): lookups inside the container's root ---- */

typedef struct user_ids {
        uid_t uid;
        gid_t gid;
        gid_t groups[64];
        size_t n_groups;
        char home[256]; /* the passwd entry's home directory, "" when none */
} user_ids;

/* Resolves "uid[:gid]" or "name[:group]" against passwd/group files (the
 * container's, as streams); either may be NULL (missing file). Returns -errno
 * (ENOENT: unknown name) and a message in errbuf. */
int user_resolve(const char *user, FILE *passwd, FILE *group, user_ids *ret, char *errbuf,
                 size_t errlen);
/* The same against rootfd's /etc/passwd and /etc/group, read with
 * common/safe-open (regular files of at most 16 MiB inside the root). */
int user_resolve_in_root(const char *user, int rootfd, user_ids *ret, char *errbuf, size_t errlen);

/* ---- the provided /etc files (etc-files.c) ---- */

#define ETC_FILES_N 3

/* The provided files, in the order they are mounted (before the volumes). */
typedef struct etc_file {
        const char *name; /* in /etc, and in the run's e/ directory */
        const char *path; /* in the container */
} etc_file;

extern const etc_file etc_files[ETC_FILES_N];

/* 1-63 letters, digits, '-' and '.', not starting with '-' or '.': nothing
 * that could add a line to /etc/hosts. */
bool etc_hostname_valid(const char *hostname);
/* Writes hosts, hostname and resolv.conf into dir (the child's e/). */
int etc_files_make(const runtime_config *cfg, const char *dir, forge_error **err);

/* ---- the container child (setup.c) ---- */

typedef struct setup_args {
        const runtime_config *cfg;
        const char *rootfs;    /* mount point (exists) */
        const char *upper_dir; /* NULL: no upper */
        const char *work_dir;
        const char *overlay_opts; /* the overlay's mount options */
        const char *links_dir;    /* NULL, or the directory they are relative to */
        bool upper_tmpfs;         /* upper_dir and work_dir are on a tmpfs to mount at rootfs */
        int cgroup_tasks[CGROUP_MAX_DIRS]; /* ctr_cgroup_self_join_open's fds */
        size_t n_cgroup_tasks;
        int made_fd;           /* -1, or where made_write reports (the caller keeps the upper) */
        int sync_fd;           /* socket to forge */
        int init_fd;           /* forge-init on a detached read-only mount */
        int stdio[3];          /* the workload's stdio */
        bool cgroup2;          /* the host's /sys/fs/cgroup is the unified hierarchy */
        size_t n_provided;     /* cfg->mounts starts with this many provided /etc files */
        unsigned mount_points; /* MOUNT_POINT_* the child makes in rootfs/m (below) */
} setup_args;

/* Mount points no layer of the image has (no entry of the name at all), made
 * by the child on its tmpfs in rootfs/m, the overlay's topmost lower layer:
 * a start then writes none of them into the upper, on the store's file
 * system. MOUNT_POINT_ETC brings the provided /etc files' targets. */
enum {
        MOUNT_POINT_PROC = 1 << 0,
        MOUNT_POINT_DEV = 1 << 1,
        MOUNT_POINT_SYS = 1 << 2,
        MOUNT_POINT_ETC = 1 << 3,
};
#define MOUNT_POINT_NAMES                                                                          \
        {                                                                                          \
                "proc", "dev", "sys", "etc"                                                        \
        }

/* Runs in the cloned child: never returns. Reports "error MESSAGE" on sync_fd. */
int setup_child_main(void *arg);

/* overlayfs' limit on lower layers (OVL_MAX_STACK). */
#define OVERLAY_MAX_LOWER 500

/* Creates dir (0700) holding the symlinks "0".."n-1" to lowerdirs (bottom
 * first) and, when upper is not NULL, "u" and "w" to upper and work. */
int overlay_links_make(const char *dir, const char *const *lowerdirs, size_t n, const char *upper,
                       const char *work, forge_error **err);
/* The mount options naming those links, for a mount made with that directory
 * as the current one: "lowerdir=n-1:...:0[,upperdir=u,workdir=w[,volatile]]".
 * volatile (an upper thrown away after the run): overlayfs never syncs it,
 * which spares the unmount at the container's end a sync of the store's file
 * system. */
int overlay_options(size_t n, bool upper, bool volatile_upper, char **ret_opts, forge_error **err);
/* The options naming the directories themselves (absolute paths), when they
 * fit in a page and hold no ',', ':' or '\\': no links needed. -E2BIG or
 * -EINVAL otherwise. */
int overlay_options_direct(const char *const *lowerdirs, size_t n, const char *upper,
                           const char *work, bool volatile_upper, char **ret_opts);

/* ---- what forge makes in the root (made.c) ---- */

/* In the child: path (absolute, in the root as the child sees it) was just
 * created by forge, nothing is mounted on it yet; its parents are noted too. */
void made_note(const char *path);
/* In the child, once the root is built: the records, to fd (-1: none). */
int made_write(int fd);
/* In forge after the run: removes from upper what the records name and the
 * workload left as it was, deepest first. */
int made_clean_upper(const char *upper, int fd, forge_error **err);

/* ---- terminal (terminal.c) ---- */

/* Copies the window size of from_fd's terminal to the pty master. */
void ctr_terminal_set_size(int from_fd, int master);
/* Puts fd in raw mode, saving the old settings (a struct termios) in saved. */
int ctr_terminal_raw(int fd, void *saved, size_t saved_len);
void ctr_terminal_restore(int fd, const void *saved);
/* In the container child (setup.c's, exec.c's), its root the container's:
 * opens a pty in its devpts, the slave owned by uid (group tty stays, as
 * crun does) and sized as the user's terminal (stdin is still forge's); sends
 * the master to forge on SYNC_FD and makes the slave stdio. On failure
 * reports to forge and exits (sync_die). */
void ctr_terminal_pty_hand_over(uid_t uid);

/* ---- forge's side of a container process (session.c) ---- */

/* What forge passes on to the process (SIGTERM/SIGINT: container.c's stop). */
#define CTR_N_FORWARDED 6
extern const int ctr_forwarded_signals[CTR_N_FORWARDED];

typedef struct ctr_session {
        int sock[2]; /* the set-up socket (sync.h) */
        int sfd;     /* the forwarded signals, SIGCHLD and SIGWINCH */
        int master;  /* the pty master, or -1 */
        sigset_t oldmask;
        bool masked;
        bool raw; /* stdin in raw mode, saved_tio its old settings */
        struct termios saved_tio;
        pid_t child; /* killed and reaped by ctr_session_end, 0: none */
} ctr_session;

#define CTR_SESSION_INIT                                                                           \
        {                                                                                          \
                .sock = {-1, -1}, .sfd = -1, .master = -1                                          \
        }

/* Blocks the signals of s->sfd and opens it (non-blocking). */
int ctr_session_signals(ctr_session *s, forge_error **err);
/* Reads one signal from sfd: SIGWINCH resizes master's terminal (master >=
 * 0). Returns the signal to forward, 0 for none. */
int ctr_session_signal_take(int sfd, int master);
/* Waits for child, forwarding signals (grace: seconds from a first
 * SIGTERM/SIGINT to SIGKILL, a second one kills at once; 0: forward them
 * only) and relaying the terminal when master >= 0: stdin to it, never
 * blocking on it, its output to stdout. *ret_code: wait_status_code's, or
 * 128+N when it was killed after signal N. Returns 0 or -errno. */
int ctr_session_relay(pid_t child, int sfd, int master, unsigned grace, int *ret_code);
/* Restores the terminal and the signal mask, kills and reaps the child
 * still there, closes the fds. */
void ctr_session_end(ctr_session *s);
