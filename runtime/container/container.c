/* SPDX-License-Identifier: MIT */
/*
 * runtime_container_run: the forge side of a container. Prepares the per-run
 * directories, the cgroup and a sealed copy of forge-init, clones the
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
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/container/container-internal.h"

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

void runtime_config_init(runtime_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        cfg->stdin_fd = cfg->stdout_fd = cfg->stderr_fd = -1;
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
        *ret_path = exe_companion_find("forge-init", "runtime/init");
        if (*ret_path == NULL)
                return forge_error_make(
                    err, ENOENT,
                    "forge-init not found next to forge or in /usr/libexec/forge "
                    "(set FORGE_INIT to its path)");
        return 0;
}

/* A sealed in-memory copy of forge-init: the container can see its PID 1's
 * executable through /proc/1/exe, so it must not be a host file it could
 * open for writing (CVE-2019-5736). */
static int init_memfd(const char *path, int *ret_fd, forge_error **err)
{
        cleanup_close int in = open(path, O_RDONLY | O_CLOEXEC);
        cleanup_close int fd = -1;

        if (in < 0)
                return forge_error_make(err, errno, "open '%s'", path);
        fd = memfd_create("forge-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return forge_error_make(err, errno, "memfd_create");
        if (copy_fd(in, fd, err) < 0)
                return forge_error_prefix(err, "copy '%s'", path);
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
                return forge_error_make(err, errno, "seal the forge-init copy");
        *ret_fd = take_fd(fd);
        return 0;
}

typedef struct run_dirs {
        char *base; /* removed afterwards when we made it */
        char *rootfs;
        char *upper;
        char *work;
        char *links; /* the overlay's short names (overlay_links_make) */
} run_dirs;

static void run_dirs_free(run_dirs *d)
{
        if (d->base != NULL)
                rm_rf(d->base, NULL);
        free(d->base);
        free(d->rootfs);
        free(d->upper);
        free(d->work);
        free(d->links);
}

/* The overlay's short names, to absolute paths of the layers (links resolve
 * from their own directory). */
static int links_make(const runtime_config *cfg, run_dirs *d, forge_error **err)
{
        cleanup_strv char **abs = calloc(cfg->n_lowerdirs + 1, sizeof(char *));

        d->links = path_join(d->base, "l");
        if (abs == NULL || d->links == NULL)
                return forge_error_make(err, ENOMEM, "run dir");
        for (size_t i = 0; i < cfg->n_lowerdirs; i++) {
                abs[i] = realpath(cfg->lowerdirs[i], NULL);
                if (abs[i] == NULL)
                        return forge_error_make(err, errno, "layer directory '%s'",
                                                cfg->lowerdirs[i]);
        }
        return overlay_links_make(d->links, (const char *const *)abs, cfg->n_lowerdirs, d->upper,
                                  d->work, err);
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
        d->rootfs = path_join(d->base, "rootfs");
        if (d->rootfs == NULL || mkdir(d->rootfs, 0755) < 0)
                return forge_error_make(err, errno, "create '%s'", d->base);
        if (cfg->upper_dir != NULL) {
                d->upper = realpath(cfg->upper_dir, NULL);
                d->work = realpath(cfg->work_dir, NULL);
                if (d->upper == NULL || d->work == NULL)
                        return forge_error_make(err, errno, "upper/work dir '%s'", cfg->upper_dir);
        } else {
                d->upper = path_join(d->base, "upper");
                d->work = path_join(d->base, "work");
                if (d->upper == NULL || d->work == NULL || mkdir(d->upper, 0755) < 0 ||
                    mkdir(d->work, 0700) < 0)
                        return forge_error_make(err, errno, "create the upper dir in '%s'",
                                                d->base);
        }
        return 0;
}

/* Messages from the child and from forge-init on the sync socket:
 * "error MSG" (setup failed), "exec ERRNO" (command could not be run) or
 * "started", and a pty master (with -t); then EOF. */
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

static int read_reports(int sock, int sfd, int *ret_master, int *ret_exec_errno, char **ret_error)
{
        char buf[1100], cbuf[CMSG_SPACE(sizeof(int))];
        size_t len = 0;

        for (;;) {
                struct pollfd pfd[2] = {{sock, POLLIN, 0}, {sfd, POLLIN, 0}};

                if (poll(pfd, 2, -1) < 0 && errno != EINTR)
                        break;
                if ((pfd[1].revents & POLLIN) && stop_requested(sfd)) {
                        *ret_error = strdup("stopped by a signal while the container was set up");
                        return -1;
                }
                if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                struct iovec iov = {buf + len, sizeof(buf) - 1 - len};
                struct msghdr msg = {.msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = cbuf,
                                     .msg_controllen = sizeof(cbuf)};
                ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                                memcpy(ret_master, CMSG_DATA(c), sizeof(int));
                }
                /* the pty message is a 't' carrying the fd */
                if (*ret_master >= 0 && buf[len] == 't' && msg.msg_controllen > 0) {
                        memmove(buf + len, buf + len + 1, (size_t)n - 1);
                        n--;
                }
                len += (size_t)n;
                if (len >= sizeof(buf) - 1)
                        break;
        }
        buf[len] = '\0';
        if (strncmp(buf, "error ", 6) == 0) {
                *ret_error = strdup(buf + 6);
                return -1;
        }
        if (strncmp(buf, "exec ", 5) == 0) {
                *ret_exec_errno = atoi(buf + 5);
                return 0;
        }
        if (strncmp(buf, "started", 7) == 0)
                return 0;
        *ret_error = strdup("the container exited while being set up");
        return -1;
}

static int wait_status_code(int st)
{
        if (WIFEXITED(st))
                return WEXITSTATUS(st);
        if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
        return 1;
}

/* What the workload wrote to its terminal just before exiting. */
static void drain(int master)
{
        char buf[8192];
        ssize_t n;

        fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
        while ((n = read(master, buf, sizeof(buf))) > 0)
                write_all(STDOUT_FILENO, buf, (size_t)n);
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SIGTERM and SIGINT always end a run, as `docker stop` does: the first is
 * forwarded; a second one, or the grace period passing, kills the container
 * (its init, hence the whole pid namespace: a shell ignoring SIGTERM too). */
typedef struct stop_state {
        int signo;        /* the first SIGTERM/SIGINT received, 0: none */
        int64_t deadline; /* ms, CLOCK_MONOTONIC */
        bool killed;
} stop_state;

static void on_signal(pid_t child, int signo, unsigned grace, stop_state *st)
{
        if (signo != SIGTERM && signo != SIGINT) {
                kill(child, signo);
                return;
        }
        if (st->signo != 0) {
                kill(child, SIGKILL);
                st->killed = true;
                return;
        }
        st->signo = signo;
        st->deadline = now_ms() + (int64_t)grace * 1000;
        kill(child, signo);
}

static int poll_timeout(const stop_state *st)
{
        int64_t left;

        if (st->signo == 0 || st->killed)
                return -1;
        left = st->deadline - now_ms();
        return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* Waits for the container's init, forwarding signals; relays the terminal
 * when master >= 0. */
static int supervise(pid_t child, int sfd, int master, unsigned grace, int *ret_code)
{
        bool in_open = master >= 0, eof_pending = false;
        stop_state stop = {0};
        char buf[8192], in[8192];
        size_t in_len = 0, in_off = 0;

        /* Never block on the terminal: a workload that does not read its
         * input must not stop forge from relaying output and signals. */
        if (master >= 0) {
                terminal_set_size(STDIN_FILENO, master);
                fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
        }
        for (;;) {
                bool to_write = in_off < in_len || eof_pending;
                struct pollfd p[3] = {{sfd, POLLIN, 0},
                                      {master, (short)(POLLIN | (to_write ? POLLOUT : 0)), 0},
                                      {in_open && !to_write ? STDIN_FILENO : -1, POLLIN, 0}};
                int st;
                pid_t w = waitpid(child, &st, WNOHANG);

                if (w == child) {
                        *ret_code = wait_status_code(st);
                        /* killed by us: it died of the signal the user sent */
                        if (stop.killed && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
                                *ret_code = 128 + stop.signo;
                        if (master >= 0)
                                drain(master);
                        break;
                }
                if (stop.signo != 0 && !stop.killed && poll_timeout(&stop) == 0) {
                        kill(child, SIGKILL);
                        stop.killed = true;
                }
                if (poll(p, master >= 0 ? 3 : 1, poll_timeout(&stop)) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[0].revents & POLLIN) {
                        struct signalfd_siginfo si;

                        if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                                if (si.ssi_signo == SIGWINCH && master >= 0)
                                        terminal_set_size(STDIN_FILENO, master);
                                else if (si.ssi_signo != SIGCHLD && si.ssi_signo != SIGWINCH)
                                        on_signal(child, (int)si.ssi_signo, grace, &stop);
                        }
                }
                if (master >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
                        ssize_t n = read(master, buf, sizeof(buf));

                        if (n > 0)
                                write_all(STDOUT_FILENO, buf, (size_t)n);
                        else if (n < 0 && errno != EINTR && errno != EAGAIN)
                                master = -1; /* EIO: every slave is closed */
                }
                if (master >= 0 && to_write && (p[1].revents & POLLOUT)) {
                        if (in_off < in_len) {
                                ssize_t n = write(master, in + in_off, in_len - in_off);

                                if (n > 0)
                                        in_off += (size_t)n;
                                if (in_off == in_len)
                                        in_off = in_len = 0;
                        } else if (write(master, "\x04", 1) == 1) {
                                eof_pending = false;
                        }
                }
                if (in_open && master >= 0 && !to_write &&
                    (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
                        ssize_t n = read(STDIN_FILENO, in, sizeof(in));

                        if (n > 0) {
                                in_len = (size_t)n;
                        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                                /* end of input: the terminal's EOF character */
                                eof_pending = true;
                                in_open = false;
                        }
                }
        }
        return 0;
}

static int signals_setup(sigset_t *old, int *ret_sfd, forge_error **err)
{
        sigset_t set;

        sigemptyset(&set);
        for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
                sigaddset(&set, forwarded[i]);
        sigaddset(&set, SIGCHLD);
        sigaddset(&set, SIGWINCH);
        if (sigprocmask(SIG_BLOCK, &set, old) < 0)
                return forge_error_make(err, errno, "block signals");
        /* an ignored SIGINT (a background job of a script) is discarded even
         * while blocked: it must reach the signalfd */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        *ret_sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (*ret_sfd < 0) {
                sigprocmask(SIG_SETMASK, old, NULL);
                return forge_error_make(err, errno, "signalfd");
        }
        return 0;
}

typedef struct run_state {
        run_dirs dirs;
        etc_files etc;
        runtime_mount *mounts; /* the provided /etc files, then cfg->mounts */
        cgroup *cg;
        int init_fd;
        int made_fd; /* memfd for made_write, when the caller keeps the upper */
        int sock[2];
        int sfd;
        int master;
        sigset_t oldmask;
        bool masked;
        bool raw;
        struct termios saved_tio;
        pid_t child;
        runtime_net *net;
} run_state;

static void run_state_free(run_state *s)
{
        if (s->raw)
                terminal_restore(STDIN_FILENO, &s->saved_tio);
        /* pasta's teardown (its tap device) overlaps the rest of ours */
        runtime_net_kill(s->net);
        if (s->child > 0) {
                kill(s->child, SIGKILL);
                waitpid(s->child, NULL, 0);
        }
        if (s->masked)
                sigprocmask(SIG_SETMASK, &s->oldmask, NULL);
        for (int i = 0; i < 2; i++)
                if (s->sock[i] >= 0)
                        close(s->sock[i]);
        if (s->init_fd >= 0)
                close(s->init_fd);
        if (s->made_fd >= 0)
                close(s->made_fd);
        if (s->sfd >= 0)
                close(s->sfd);
        if (s->master >= 0)
                close(s->master);
        cgroup_free(s->cg);
        run_dirs_free(&s->dirs);
        etc_files_free(&s->etc);
        free(s->mounts);
        runtime_net_stop(s->net);
}

/* pasta on the child's network namespace, before the child goes on: the
 * workload starts with its interface, route and published ports in place. */
static int net_user_start(const runtime_config *cfg, run_state *s, forge_error **err)
{
        char path[64];
        cleanup_close int fd = -1;

        snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)s->child);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return forge_error_make(err, errno, "open '%s'", path);
        return runtime_net_start_ns(fd, cfg->ports, cfg->n_ports, &s->net, err);
}

static int start_child(const runtime_config *cfg, run_state *s, forge_error **err)
{
        int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
        setup_args a = {
            .cfg = cfg,
            .rootfs = s->dirs.rootfs,
            .upper_dir = s->dirs.upper,
            .work_dir = s->dirs.work,
            .links_dir = s->dirs.links,
            .made_fd = s->made_fd,
            .sync_fd = s->sock[1],
            .init_fd = s->init_fd,
            .stdio = {cfg->stdin_fd, cfg->stdout_fd, cfg->stderr_fd},
            .cgroup2 = cgroup_unified(),
            .n_provided = ETC_FILES_N,
        };

        if (!cfg->network_host)
                flags |= CLONE_NEWNET;
        /* fork-like: the child continues on a copy of this stack */
        s->child = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
        if (s->child < 0) {
                s->child = 0;
                return forge_error_make(err, errno, "create the container's namespaces");
        }
        if (s->child == 0)
                _exit(setup_child_main(&a));
        close(s->sock[1]);
        s->sock[1] = -1;
        if (s->cg != NULL && cgroup_attach(s->cg, s->child, err) < 0)
                return forge_error_prefix(err, "join the cgroup");
        if (write(s->sock[0], "g", 1) != 1)
                return forge_error_make(err, errno, "start the container");
        /* pasta sets the namespace up while the child builds its root; the
         * child waits for 'n' before it execs the workload. A child that
         * failed meanwhile is gone: its report says why (read_reports). */
        if (cfg->network_user) {
                if (net_user_start(cfg, s, err) < 0)
                        return forge_error_prefix(err, "--network user");
                send(s->sock[0], "n", 1, MSG_NOSIGNAL);
        }
        return 0;
}

/* The mount points the provided /etc files needed, in an upper directory the
 * caller keeps (a `run:` step's layer): the upper starts empty, and a mount
 * point is never written through, so an empty regular file there is one forge
 * made (the image had none). They, and an /etc left empty, are not the
 * step's doing and do not belong in its layer. */
static void provided_cleanup(const char *upper)
{
        static const char *const names[] = {"hosts", "hostname", "resolv.conf"};
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
        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                if (fstatat(etc, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
                    st.st_size == 0)
                        unlinkat(etc, names[i], 0);
        unlinkat(ufd, "etc", AT_REMOVEDIR); /* only when empty */
}

/* /etc/hosts, /etc/hostname and /etc/resolv.conf go first, so that a -v of
 * the user's own replaces them. */
static int mounts_with_etc(run_state *s, runtime_config *cfg, forge_error **err)
{
        if (etc_files_make(cfg, s->dirs.base, &s->etc, err) < 0)
                return forge_error_prefix(err, "provide /etc files");
        s->mounts = calloc(cfg->n_mounts + ETC_FILES_N, sizeof(runtime_mount));
        if (s->mounts == NULL)
                return forge_error_make(err, ENOMEM, "mounts");
        s->mounts[0] = (runtime_mount){.src = s->etc.hosts, .dest = "/etc/hosts"};
        s->mounts[1] = (runtime_mount){.src = s->etc.hostname, .dest = "/etc/hostname"};
        s->mounts[2] = (runtime_mount){.src = s->etc.resolv, .dest = "/etc/resolv.conf"};
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
        run_state s = {.init_fd = -1, .made_fd = -1, .sock = {-1, -1}, .sfd = -1, .master = -1};

        if (cfg->n_mounts > 64 - ETC_FILES_N)
                return forge_error_make(err, E2BIG, "too many volumes (at most %d)",
                                        64 - ETC_FILES_N);
        cleanup_free char *init_path = NULL;
        cleanup_free char *setup_error = NULL;
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
        if (init_memfd(cfg->init_path ? cfg->init_path : init_path, &s.init_fd, err) < 0)
                goto out;
        if (run_dirs_make(cfg, &s.dirs, err) < 0 || mounts_with_etc(&s, &local, err) < 0 ||
            cgroup_new(cfg, &s.cg, err) < 0)
                goto out;
        if (cfg->n_lowerdirs == 0) {
                /* an image with no layer yet (a first `run:` step from scratch) */
                empty = path_join(s.dirs.base, "empty");
                if (empty == NULL || mkdir(empty, 0755) < 0) {
                        forge_error_make(err, errno, "create an empty layer");
                        goto out;
                }
                empty_lower[0] = empty;
                local.lowerdirs = empty_lower;
                local.n_lowerdirs = 1;
        }
        if (links_make(cfg, &s.dirs, err) < 0)
                goto out;
        if (cfg->upper_dir != NULL) {
                s.made_fd = memfd_create("forge-made", MFD_CLOEXEC);
                if (s.made_fd < 0) {
                        forge_error_make(err, errno, "memfd_create");
                        goto out;
                }
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s.sock) < 0) {
                forge_error_make(err, errno, "socketpair");
                goto out;
        }
        if (signals_setup(&s.oldmask, &s.sfd, err) < 0)
                goto out;
        s.masked = true;
        if (start_child(cfg, &s, err) < 0)
                goto out;
        if (read_reports(s.sock[0], s.sfd, &s.master, &res.exec_errno, &setup_error) < 0) {
                forge_error_make(err, 0, "%s",
                                 setup_error ? setup_error : "container setup failed");
                goto out;
        }
        if (cfg->on_start != NULL)
                cfg->on_start(cfg, s.child, res.exec_errno, cfg->on_start_data);
        if (s.master >= 0 && isatty(STDIN_FILENO))
                s.raw = terminal_raw(STDIN_FILENO, &s.saved_tio, sizeof(s.saved_tio)) == 0;
        r = supervise(s.child, s.sfd, s.master,
                      cfg->stop_timeout ? cfg->stop_timeout : RUNTIME_DEFAULT_STOP_TIMEOUT,
                      &res.status);
        if (r < 0) {
                forge_error_make(err, -r, "wait for the container");
                goto out;
        }
        s.child = 0;
        if (cfg->upper_dir != NULL)
                provided_cleanup(s.dirs.upper);
        if (s.made_fd >= 0 && made_clean_upper(s.dirs.upper, s.made_fd, err) < 0)
                goto out;
        res.oom = cgroup_oom_killed(s.cg);
        *ret = res;
        r = 0;
out:
        run_state_free(&s);
        return r;
}
