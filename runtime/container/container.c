/* SPDX-License-Identifier: MIT */
/*
 * runtime_container_run: the forge side of a container. Prepares the per-run
 * directories, the cgroup and a read-only mount of forge-init, clones the
 * container child (setup.c) into new namespaces, then waits for it while
 * forwarding signals and, with a tty, relaying the terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/container/container-internal.h"
#include "runtime/container/sync.h"

void runtime_config_init(runtime_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        cfg->stdin_fd = cfg->stdout_fd = cfg->stderr_fd = -1;
        cfg->cleanup_lock_fd = -1;
}

static bool is_exec_file(const char *p)
{
        return access(p, X_OK) == 0;
}

int runtime_init_find(char **ret_path, forge_error **err)
{
        const char *env = getenv("FORGE_INIT");

        if (env != NULL && env[0] != '\0') {
                if (!is_exec_file(env))
                        return forge_error_make(err, errno, "FORGE_INIT '%s'", env);
                *ret_path = strdup(env);
                return *ret_path ? 0 : forge_error_make(err, ENOMEM, "init path");
        }
        *ret_path = fs_companion_find("forge-init", "runtime/init");
        if (*ret_path == NULL)
                return forge_error_make(
                    err, ENOENT,
                    "forge-init not found next to forge or in /usr/libexec/forge "
                    "(set FORGE_INIT to its path)");
        return 0;
}

/* forge-init as the container's PID 1 runs from a detached, read-only bind
 * mount of the installed file, made here in forge's mount namespace: the
 * container sees that file through /proc/1/exe, and a file on a read-only
 * mount cannot be opened for writing (EROFS, whatever the capabilities;
 * ETXTBSY too while it runs), so it cannot overwrite the host's binary
 * (CVE-2019-5736). The mount belongs to no namespace: once the exec has
 * closed its fd nothing can remount it. This replaces a 1 MB copy into a
 * sealed memfd on every run. */
static int init_open(const char *path, int *ret_fd, forge_error **err)
{
        struct mount_attr attr = {.attr_set =
                                      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
        cleanup_close int fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        struct statvfs sv;
        struct stat st;

        if (fd < 0)
                return forge_error_make(err, errno, "open '%s'", path);
        if (mount_setattr(fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
                return forge_error_make(err, errno, "make a read-only mount of '%s'", path);
        if (fstat(fd, &st) < 0 || fstatvfs(fd, &sv) < 0)
                return forge_error_make(err, errno, "'%s'", path);
        if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
                return forge_error_make(err, EACCES, "'%s' is not an executable file", path);
        /* another user could change what the container runs as PID 1 */
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) || (st.st_uid != 0 && st.st_uid != geteuid()))
                return forge_error_make(err, EPERM,
                                        "'%s' may be written by another user (it must be owned "
                                        "by root and not group or world writable)",
                                        path);
        if (!(sv.f_flag & ST_RDONLY))
                return forge_error_make(err, EROFS, "the mount of '%s' is not read-only", path);
        *ret_fd = take_fd(fd);
        return 0;
}

typedef struct run_dirs {
        char *base; /* removed afterwards when we made it */
        char *rootfs;
        char *upper;
        char *work;
        char *links;           /* the overlay's short names (overlay_links_make), or NULL */
        char *opts;            /* the overlay's mount options */
        unsigned mount_points; /* MOUNT_POINT_* made in rootfs/m */
} run_dirs;

static void run_dirs_free(run_dirs *d)
{
        char *owned[] = {d->base, d->rootfs, d->upper, d->work, d->links, d->opts};

        if (d->base != NULL)
                fs_rm_rf(d->base, NULL);
        for (size_t i = 0; i < ARRAY_SIZE(owned); i++)
                free(owned[i]);
}

/* The MOUNT_POINT_* no layer has an entry for (a file, a directory, a
 * symlink or a whiteout of the name in any layer keeps it out: the image's
 * own entry is then handled as it always was). */
static unsigned mount_points_missing(const runtime_config *cfg)
{
        static const char *const names[] = MOUNT_POINT_NAMES;
        unsigned missing = (1u << ARRAY_SIZE(names)) - 1;
        struct stat st;

        for (size_t i = 0; i < cfg->n_lowerdirs && missing != 0; i++) {
                cleanup_close int dfd = open(cfg->lowerdirs[i], O_PATH | O_DIRECTORY | O_CLOEXEC);

                if (dfd < 0)
                        return 0;
                for (size_t k = 0; k < ARRAY_SIZE(names); k++)
                        if ((missing & (1u << k)) &&
                            (fstatat(dfd, names[k], &st, AT_SYMLINK_NOFOLLOW) == 0 ||
                             errno != ENOENT))
                                missing &= ~(1u << k);
        }
        return missing;
}

/* The overlay's options: the directories by their absolute paths when they
 * fit, else short names in the run's l/ directory (links resolve from their
 * own directory), which hold overlayfs' most of 500 layers in a page. On
 * top, when the image lacks mount points, the child's rootfs/m. */
static int overlay_prepare(const runtime_config *cfg, run_dirs *d, forge_error **err)
{
        cleanup_strv char **abs = calloc(cfg->n_lowerdirs + 2, sizeof(char *));
        bool discard = cfg->upper_dir == NULL;
        size_t n = cfg->n_lowerdirs;

        if (abs == NULL)
                return forge_error_make(err, ENOMEM, "run dir");
        for (size_t i = 0; i < cfg->n_lowerdirs; i++) {
                abs[i] = realpath(cfg->lowerdirs[i], NULL);
                if (abs[i] == NULL)
                        return forge_error_make(err, errno, "layer directory '%s'",
                                                cfg->lowerdirs[i]);
        }
        d->mount_points = n < OVERLAY_MAX_LOWER ? mount_points_missing(cfg) : 0;
        if (d->mount_points != 0) {
                cleanup_free char *root = realpath(d->rootfs, NULL);

                if (root == NULL)
                        return forge_error_make(err, errno, "run dir '%s'", d->rootfs);
                abs[n] = fs_path_join(root, "m");
                if (abs[n] == NULL)
                        return forge_error_make(err, ENOMEM, "run dir");
                n++;
        }
        if (overlay_options_direct((const char *const *)abs, n, d->upper, d->work, discard,
                                   &d->opts) == 0)
                return 0;
        d->links = fs_path_join(d->base, "l");
        if (d->links == NULL)
                return forge_error_make(err, ENOMEM, "run dir");
        if (overlay_links_make(d->links, (const char *const *)abs, n, d->upper, d->work, err) < 0)
                return -1;
        return overlay_options(n, true, discard, &d->opts, err);
}

static int run_dirs_make(const runtime_config *cfg, run_dirs *d, forge_error **err)
{
        cleanup_free char *tmpl = NULL;
        const char *root = cfg->tmp_root ? cfg->tmp_root : getenv("TMPDIR");

        if (root == NULL || root[0] == '\0')
                root = "/tmp";

        if (asprintf(&tmpl, "%s/run-XXXXXX", root) < 0)
                return forge_error_make(err, ENOMEM, "run dir");
        if (mkdtemp(tmpl) == NULL)
                return forge_error_make(err, errno, "create a run directory in '%s'", root);
        d->base = take_ptr(tmpl);
        /* with the upper on a tmpfs the run directory itself is the mount
         * point: one entry in the store per run */
        if (cfg->upper_tmpfs && cfg->upper_dir == NULL)
                d->rootfs = strdup(d->base);
        else
                d->rootfs = fs_path_join(d->base, "rootfs");
        if (d->rootfs == NULL || (strcmp(d->rootfs, d->base) != 0 && mkdir(d->rootfs, 0755) < 0))
                return forge_error_make(err, errno, "create '%s'", d->base);
        if (cfg->upper_dir != NULL) {
                d->upper = realpath(cfg->upper_dir, NULL);
                d->work = realpath(cfg->work_dir, NULL);
                if (d->upper == NULL || d->work == NULL)
                        return forge_error_make(err, errno, "upper/work dir '%s'", cfg->upper_dir);
        } else if (cfg->upper_tmpfs) {
                /* on a tmpfs the child mounts on the root's mount point,
                 * under the overlay: they exist in its namespace only */
                d->upper = fs_path_join(d->rootfs, "u");
                d->work = fs_path_join(d->rootfs, "w");
                if (d->upper == NULL || d->work == NULL)
                        return forge_error_make(err, ENOMEM, "run dir");
        } else {
                d->upper = fs_path_join(d->base, "upper");
                d->work = fs_path_join(d->base, "work");
                if (d->upper == NULL || d->work == NULL || mkdir(d->upper, 0755) < 0 ||
                    mkdir(d->work, 0700) < 0)
                        return forge_error_make(err, errno, "create the upper dir in '%s'",
                                                d->base);
        }
        return 0;
}

/* While the container is set up, SIGTERM and SIGINT end the run too (a
 * set-up step that blocks must not make forge deaf to them). */
static bool stop_requested(int sfd)
{
        struct signalfd_siginfo si;

        while (read(sfd, &si, sizeof(si)) == sizeof(si))
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                        return true;
        return false;
}

/* The exchange of sync.h, from SYNC_GO to the child to forge-init's report. */
static int read_reports(int sock, int sfd, int *ret_master, runtime_result *res, forge_error **err)
{
        sync_result sr;
        int r = sync_result_read(sock, sfd, stop_requested, &sr);

        *ret_master = sr.master;
        switch (r) {
        case 0:
                res->exec_errno = sr.exec_errno;
                return 0;
        case -EPROTO:
                return forge_error_make(err, 0, "%s", sr.error);
        case -EPIPE:
                return forge_error_make(err, 0, "the container exited while being set up");
        case -ECANCELED:
                return forge_error_make(err, 0,
                                        "stopped by a signal while the container was set up");
        default:
                return forge_error_make(err, -r, "read the container's set-up reports");
        }
}

static int signals_setup(ctr_session *s, forge_error **err)
{
        if (ctr_session_signals(s, err) < 0)
                return -1;
        /* an ignored SIGINT (a background job of a script) is discarded even
         * while blocked: it must reach the signalfd */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        return 0;
}

typedef struct run_state {
        run_dirs dirs;
        char *etc_src[ETC_FILES_N]; /* where the child makes the provided files */
        runtime_mount *mounts;      /* the provided /etc files, then cfg->mounts */
        cgroup *cg;
        int init_fd;
        int made_fd; /* memfd for made_write, when the caller keeps the upper */
        ctr_session sess;
        runtime_net *net;
} run_state;

static void run_state_free(run_state *s)
{
        /* pasta's teardown (its tap device) overlaps the rest of ours */
        runtime_net_kill(s->net);
        ctr_session_end(&s->sess);
        if (s->init_fd >= 0)
                close(s->init_fd);
        if (s->made_fd >= 0)
                close(s->made_fd);
        ctr_cgroup_free(s->cg);
        run_dirs_free(&s->dirs);
        for (size_t i = 0; i < ETC_FILES_N; i++)
                free(s->etc_src[i]);
        free(s->mounts);
        runtime_net_stop(s->net);
}

/* The run's directories and cgroup, removed by a detached process once the
 * status is known: on ext4 the dozen unlinks and rmdirs (the overlay copied
 * /etc, /proc, /dev and /sys up for their mount points) cost more than the
 * whole container start. The process holds a lock of its own on the store's
 * lock file (a new open file description: the caller's unlock does not
 * release it), taken here, so a gc waits for it. Returns false when the
 * caller must clean up itself. */
static bool cleanup_detach(const runtime_config *cfg, run_state *s)
{
        int lk = -1;
        pid_t pid;

        if (!cfg->defer_cleanup || cfg->upper_dir != NULL)
                return false;
        if (cfg->cleanup_lock_fd >= 0) {
                char path[64];

                snprintf(path, sizeof(path), "/proc/self/fd/%d", cfg->cleanup_lock_fd);
                lk = open(path, O_RDONLY | O_CLOEXEC);
                if (lk < 0 || flock(lk, LOCK_SH) < 0) {
                        if (lk >= 0)
                                close(lk);
                        return false;
                }
        }
        pid = fork();
        if (pid < 0) {
                if (lk >= 0)
                        close(lk);
                return false;
        }
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                sigset_t none;

                /* out of the caller's session and off its pipes; a SIGHUP
                 * the terminal sends the process group as forge exits may
                 * already be pending (forge blocks it): ignoring discards it */
                setsid();
                for (size_t i = 0; i < CTR_N_FORWARDED; i++)
                        signal(ctr_forwarded_signals[i], SIG_IGN);
                signal(SIGPIPE, SIG_IGN);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                for (int i = 0; i < 3 && null >= 0; i++)
                        dup2(null, i);
                if (lk >= 0 && dup2(lk, 3) < 0)
                        _exit(1);
                syscall(SYS_close_range, lk >= 0 ? 4 : 3, ~0U, 0);
                ctr_cgroup_free(s->cg);
                fs_rm_rf(s->dirs.base, NULL);
                _exit(0);
        }
        if (lk >= 0)
                close(lk);
        ctr_cgroup_forget(s->cg);
        s->cg = NULL;
        free(s->dirs.base);
        s->dirs.base = NULL;
        return true;
}

/* pasta on the child's network namespace, before the child goes on: the
 * workload starts with its interface, route and published ports in place. */
static int net_user_start(const runtime_config *cfg, run_state *s, forge_error **err)
{
        char path[64];
        cleanup_close int fd = -1;

        snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)s->sess.child);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return forge_error_make(err, errno, "open '%s'", path);
        return runtime_net_start_ns(fd, cfg->ports, cfg->n_ports, &s->net, err);
}

/* The child builds the root while forge puts it into its cgroup (on cgroup
 * v1 that write waits for an RCU grace period, milliseconds): a step of
 * forge's that fails may then be the consequence of the child's own failure
 * (it died: ESRCH, EPIPE). The child's message says more; it is on the
 * socket once the child is gone. */
static int child_failure(run_state *s, int r, forge_error **err)
{
        sync_result sr;

        kill(s->sess.child, SIGKILL);
        if (sync_result_read(s->sess.sock[0], -1, NULL, &sr) == -EPROTO) {
                forge_error_release(err);
                forge_error_make(err, 0, "%s", sr.error);
        }
        if (sr.master >= 0)
                close(sr.master);
        return r;
}

static int start_child(const runtime_config *cfg, run_state *s, forge_error **err)
{
        int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
        setup_args a = {
            .cfg = cfg,
            .rootfs = s->dirs.rootfs,
            .upper_dir = s->dirs.upper,
            .work_dir = s->dirs.work,
            .overlay_opts = s->dirs.opts,
            .upper_tmpfs = cfg->upper_tmpfs && cfg->upper_dir == NULL,
            .links_dir = s->dirs.links,
            .made_fd = s->made_fd,
            .sync_fd = s->sess.sock[1],
            .init_fd = s->init_fd,
            .stdio = {cfg->stdin_fd, cfg->stdout_fd, cfg->stderr_fd},
            .cgroup2 = ctr_cgroup_unified(),
            .n_provided = ETC_FILES_N,
            .mount_points = s->dirs.mount_points,
        };
        sync_msg go;
        int r;

        if (ctr_cgroup_self_join_open(s->cg, a.cgroup_tasks, &a.n_cgroup_tasks, err) < 0)
                return forge_error_prefix(err, "join the cgroup");
        if (!cfg->network_host)
                flags |= CLONE_NEWNET;
        /* fork-like: the child continues on a copy of this stack */
        s->sess.child = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
        if (s->sess.child < 0) {
                int e = errno;

                s->sess.child = 0;
                for (size_t i = 0; i < a.n_cgroup_tasks; i++)
                        close(a.cgroup_tasks[i]);
                return forge_error_make(err, e, "create the container's namespaces");
        }
        if (s->sess.child == 0)
                _exit(setup_child_main(&a));
        close(s->sess.sock[1]);
        s->sess.sock[1] = -1;
        /* the child's copy, closed by its exec, is then forge-init's mount's
         * last fd: the mount leaves its (anonymous) namespace */
        close(s->init_fd);
        s->init_fd = -1;
        for (size_t i = 0; i < a.n_cgroup_tasks; i++)
                close(a.cgroup_tasks[i]);
        if (s->cg != NULL && a.n_cgroup_tasks == 0 &&
            ctr_cgroup_attach(s->cg, s->sess.child, err) < 0)
                return child_failure(s, forge_error_prefix(err, "join the cgroup"), err);
        if (cfg->network_user && net_user_start(cfg, s, err) < 0)
                return child_failure(s, forge_error_prefix(err, "--network user"), err);
        sync_msg_init(&go, SYNC_GO, 0, NULL);
        r = sync_send(s->sess.sock[0], &go, -1);
        if (r < 0)
                return child_failure(s, forge_error_make(err, -r, "start the container"), err);
        return 0;
}

/* The mount points the provided /etc files needed, in an upper directory the
 * caller keeps (a `run:` step's layer): the upper starts empty, and a mount
 * point is never written through, so an empty regular file there is one forge
 * made (the image had none). They, and an /etc left empty, are not the
 * step's doing and do not belong in its layer. */
static void provided_cleanup(const char *upper)
{
        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                               .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV};
        cleanup_close int ufd = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
        cleanup_close int etc = -1;
        struct stat st;

        if (ufd < 0)
                return;
        etc = (int)syscall(SYS_openat2, ufd, "etc", &how, sizeof(how));
        if (etc < 0)
                return;
        for (size_t i = 0; i < ETC_FILES_N; i++)
                if (fstatat(etc, etc_files[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISREG(st.st_mode) && st.st_size == 0)
                        unlinkat(etc, etc_files[i].name, 0);
        unlinkat(ufd, "etc", AT_REMOVEDIR); /* only when empty */
}

/* /etc/hosts, /etc/hostname and /etc/resolv.conf go first, so that a -v of
 * the user's own replaces them. */
static int mounts_with_etc(run_state *s, runtime_config *cfg, forge_error **err)
{
        /* the child writes them on a tmpfs of its own (setup.c): no entry in
         * the store for them */
        s->mounts = calloc(cfg->n_mounts + ETC_FILES_N, sizeof(runtime_mount));
        if (s->mounts == NULL)
                return forge_error_make(err, ENOMEM, "mounts");
        for (size_t i = 0; i < ETC_FILES_N; i++) {
                if (asprintf(&s->etc_src[i], "%s/e/%s", s->dirs.rootfs, etc_files[i].name) < 0) {
                        s->etc_src[i] = NULL;
                        return forge_error_make(err, ENOMEM, "provide /etc files");
                }
                s->mounts[i] = (runtime_mount){.src = s->etc_src[i], .dest = etc_files[i].path};
        }
        for (size_t i = 0; i < cfg->n_mounts; i++)
                s->mounts[ETC_FILES_N + i] = cfg->mounts[i];
        cfg->mounts = s->mounts;
        cfg->n_mounts += ETC_FILES_N;
        return 0;
}

int runtime_container_run(const runtime_config *cfg_in, runtime_result *ret, forge_error **err)
{
        runtime_config local = *cfg_in;
        const runtime_config *cfg = &local;
        const char *empty_lower[1];
        cleanup_free char *empty = NULL;
        run_state s = {.init_fd = -1, .made_fd = -1, .sess = CTR_SESSION_INIT};

        if (cfg->n_mounts > 64 - ETC_FILES_N)
                return forge_error_make(err, E2BIG, "too many volumes (at most %d)",
                                        64 - ETC_FILES_N);
        cleanup_free char *init_path = NULL;
        runtime_result res = {0};
        int r = -1;

        if (cfg->network_user && cfg->network_host)
                return forge_error_usage(err, "a container's network is none, host or user");
        if (cfg->n_ports > 0 && !cfg->network_user)
                return forge_error_usage(err, "-p publishes a port of --network user (a "
                                              "container with --network none or host has none)");
        if (cfg->network_user && runtime_ports_check(cfg->ports, cfg->n_ports, err) < 0)
                return -1;
        if (cfg->argv == NULL || cfg->argv[0] == NULL)
                return forge_error_make(err, EINVAL,
                                        "no command to run (the image has no "
                                        "entrypoint or cmd; pass one after --)");
        if (cfg->hostname != NULL && !etc_hostname_valid(cfg->hostname))
                return forge_error_make(err, EINVAL,
                                        "the hostname is not valid (expected 1-63 letters, "
                                        "digits, '-' or '.')");
        if (cfg->init_path == NULL && runtime_init_find(&init_path, err) < 0)
                return -1;
        if (init_open(cfg->init_path ? cfg->init_path : init_path, &s.init_fd, err) < 0)
                goto out;
        if (run_dirs_make(cfg, &s.dirs, err) < 0 || mounts_with_etc(&s, &local, err) < 0 ||
            ctr_cgroup_new(cfg, &s.cg, err) < 0)
                goto out;
        if (cfg->n_lowerdirs == 0) {
                /* an image with no layer yet (a first `run:` step from scratch) */
                empty = fs_path_join(s.dirs.base, "empty");
                if (empty == NULL || mkdir(empty, 0755) < 0) {
                        forge_error_make(err, errno, "create an empty layer");
                        goto out;
                }
                empty_lower[0] = empty;
                local.lowerdirs = empty_lower;
                local.n_lowerdirs = 1;
        }
        if (overlay_prepare(cfg, &s.dirs, err) < 0)
                goto out;
        if (cfg->upper_dir != NULL) {
                s.made_fd = memfd_create("forge-made", MFD_CLOEXEC);
                if (s.made_fd < 0) {
                        forge_error_make(err, errno, "memfd_create");
                        goto out;
                }
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s.sess.sock) < 0) {
                forge_error_make(err, errno, "socketpair");
                goto out;
        }
        if (signals_setup(&s.sess, err) < 0)
                goto out;
        if (start_child(cfg, &s, err) < 0)
                goto out;
        if (read_reports(s.sess.sock[0], s.sess.sfd, &s.sess.master, &res, err) < 0)
                goto out;
        if (cfg->on_start != NULL)
                cfg->on_start(cfg, s.sess.child, res.exec_errno, cfg->on_start_data);
        if (s.sess.master >= 0 && isatty(STDIN_FILENO))
                s.sess.raw = ctr_terminal_raw(STDIN_FILENO, &s.sess.saved_tio,
                                              sizeof(s.sess.saved_tio)) == 0;
        r = ctr_session_relay(s.sess.child, s.sess.sfd, s.sess.master,
                              cfg->stop_timeout ? cfg->stop_timeout : RUNTIME_DEFAULT_STOP_TIMEOUT,
                              &res.status);
        if (r < 0) {
                forge_error_make(err, -r, "wait for the container");
                goto out;
        }
        s.sess.child = 0;
        if (cfg->upper_dir != NULL)
                provided_cleanup(s.dirs.upper);
        if (s.made_fd >= 0 && made_clean_upper(s.dirs.upper, s.made_fd, err) < 0)
                goto out;
        res.oom = ctr_cgroup_oom_killed(s.cg);
        *ret = res;
        r = 0;
        cleanup_detach(cfg, &s);
out:
        run_state_free(&s);
        return r;
}
