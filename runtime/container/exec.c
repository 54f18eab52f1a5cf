/* SPDX-License-Identifier: MIT */
/*
 * runtime_container_exec: a new process in a running container.
 *
 * forge joins the container's pid namespace for its children (setns with a
 * pidfd of the container's init), forks the child and puts it into init's
 * cgroups; the child joins the other namespaces (mount, uts, ipc, net,
 * cgroup; joining the mount namespace also makes its root and working
 * directory the container's root), then is confined as the container's own
 * processes are (setup.c): capabilities, credentials from the container's
 * /etc/passwd, no_new_privs, the seccomp filter. It is not dumpable and
 * holds no host fd while it is in the container before exec, so nothing in
 * the container can reach the host through /proc/PID of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/container/container-internal.h"
#include "runtime/container/sync.h"

extern char **environ;

/* ---- the child ---- */

static void check(int r, const char *what)
{
        if (r < 0) {
                errno = -r;
                sync_die("%s", what);
        }
}

/* A pty of the container's devpts, our controlling terminal: the master goes
 * to forge. */
static void exec_tty(uid_t uid)
{
        ctr_terminal_pty_hand_over(uid);
        sync_must(setsid(), "setsid");
        sync_must(ioctl(0, TIOCSCTTY, 0), "set the controlling terminal");
}

static void resolve_user(const char *user, user_ids *ids)
{
        char msg[512];
        FILE *pw = fopen("/etc/passwd", "re"), *gr = fopen("/etc/group", "re");
        int r = user_resolve(user, pw, gr, ids, msg, sizeof(msg));

        if (pw)
                fclose(pw);
        if (gr)
                fclose(gr);
        if (r < 0) {
                errno = 0;
                sync_die("%s", msg);
        }
}

static void __attribute__((noreturn))
child_main(const runtime_exec_config *cfg, int sock, int pidfd)
{
        const char *wd = cfg->workdir && cfg->workdir[0] ? cfg->workdir : "/";
        sigset_t none;
        user_ids ids;
        sync_msg go;
        int e;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* nothing in the container may look into us (runc CVE-2016-9962) */
        prctl(PR_SET_DUMPABLE, 0);
        sock = fcntl(sock, F_DUPFD_CLOEXEC, 100);
        pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 100);
        if (sock < 0 || pidfd < 0 || dup3(sock, SYNC_FD, O_CLOEXEC) < 0 ||
            dup3(pidfd, 4, O_CLOEXEC) < 0)
                _exit(125);
        syscall(SYS_close_range, 5, ~0U, 0);
        /* forge puts us into the container's cgroups first */
        if (sync_recv(SYNC_FD, &go, NULL) != 1 || go.type != SYNC_GO)
                _exit(125);
        sync_must(
            setns(4, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP),
            "join the container's namespaces");
        close(4);
        resolve_user(cfg->user, &ids);
        if (cfg->tty)
                exec_tty(ids.uid);
        check(ctr_caps_bounding_drop(cfg->caps), "drop capabilities");
        sync_must(setgroups(ids.n_groups, ids.groups), "setgroups");
        sync_must(setresgid(ids.gid, ids.gid, ids.gid), "setgid %u", (unsigned)ids.gid);
        sync_must(setresuid(ids.uid, ids.uid, ids.uid), "setuid %u", (unsigned)ids.uid);
        check(ctr_caps_apply(cfg->caps, ids.uid == 0), "set capabilities");
        sync_must(prctl(PR_SET_PDEATHSIG, SIGKILL), "set the parent death signal");
        prctl(PR_SET_DUMPABLE, 0);
        if (wd[0] != '/') {
                errno = 0;
                sync_die("workdir '%s' must be an absolute path", wd);
        }
        sync_must(chdir(wd), "workdir '%s'", wd);
        sync_must(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs");
        check(ctr_seccomp_install(), "install the seccomp filter");
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        environ = (char **)cfg->env;
        execvp(cfg->argv[0], cfg->argv);
        e = errno;
        {
                sync_msg m;

                sync_msg_init(&m, SYNC_EXEC_FAILED, e > 0 ? e : EIO, NULL);
                (void)sync_send(SYNC_FD, &m, -1);
        }
        _exit(e == ENOENT ? 127 : 126);
}

/* ---- forge's side ---- */

/* Writes pid into each cgroup init is in (the host's view of /proc/PID/cgroup). */
static int join_cgroups(pid_t init, pid_t pid, forge_error **err)
{
        char path[64], line[4096], val[32];
        cleanup_fclose FILE *f = NULL;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)init);
        f = fopen(path, "re");
        if (f == NULL)
                return forge_error_make(err, errno, "read '%s'", path);
        snprintf(val, sizeof(val), "%d", (int)pid);
        while (fgets(line, sizeof(line), f) != NULL) {
                char *ctrl = strchr(line, ':'), *rel;
                cleanup_free char *procs = NULL;
                int r;

                line[strcspn(line, "\n")] = '\0';
                if (ctrl == NULL || (rel = strchr(ctrl + 1, ':')) == NULL)
                        continue;
                *rel++ = '\0';
                ctrl++;
                if (strstr(rel, "/..") != NULL || rel[0] != '/')
                        continue;
                if (ctrl[0] == '\0')
                        r = asprintf(&procs, "/sys/fs/cgroup%s/cgroup.procs", rel);
                else if (strncmp(ctrl, "name=", 5) == 0)
                        r = asprintf(&procs, "/sys/fs/cgroup/%s%s/cgroup.procs", ctrl + 5, rel);
                else
                        r = asprintf(&procs, "/sys/fs/cgroup/%s%s/cgroup.procs", ctrl, rel);
                if (r < 0)
                        return forge_error_make(err, ENOMEM, "cgroup");
                if (access(procs, F_OK) < 0)
                        continue; /* a hierarchy that is not mounted here */
                {
                        cleanup_close int fd = open(procs, O_WRONLY | O_CLOEXEC);
                        if (fd < 0 || fs_write_all(fd, val, strlen(val)) < 0)
                                return forge_error_make(err, errno, "join cgroup '%s'", procs);
                }
        }
        return 0;
}

static int exec_start(const runtime_exec_config *cfg, ctr_session *s, forge_error **err)
{
        cleanup_close int own_ns = -1;
        sync_result res;
        sync_msg go;
        int r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->sock) < 0)
                return forge_error_make(err, errno, "socketpair");
        own_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (own_ns < 0)
                return forge_error_make(err, errno, "open /proc/self/ns/pid");
        /* our next child is born in the container's pid namespace */
        if (setns(cfg->init_pidfd, CLONE_NEWPID) < 0)
                return forge_error_make(err, errno, "join the container's pid namespace");
        s->child = fork();
        if (s->child == 0)
                child_main(cfg, s->sock[1], cfg->init_pidfd);
        /* and only that one: back to ours for children of ours after it */
        if (setns(own_ns, CLONE_NEWPID) < 0)
                return forge_error_make(err, errno, "return to forge's pid namespace");
        if (s->child < 0) {
                s->child = 0;
                return forge_error_make(err, errno, "fork");
        }
        close(s->sock[1]);
        s->sock[1] = -1;
        if (join_cgroups(cfg->init_pid, s->child, err) < 0)
                return -1;
        sync_msg_init(&go, SYNC_GO, 0, NULL);
        r = sync_send(s->sock[0], &go, -1);
        if (r < 0)
                return forge_error_make(err, -r, "start the process");
        r = sync_result_read(s->sock[0], -1, NULL, &res);
        s->master = res.master;
        if (r == -EPROTO)
                return forge_error_make(err, 0, "%s", res.error);
        /* the socket is close-on-exec in the child: EOF is a successful exec
         * (or a death before it, which its status then tells) */
        if (r == -EPIPE)
                return 0;
        if (r < 0)
                return forge_error_make(err, -r, "read the process's start report");
        return res.exec_errno;
}

int runtime_container_exec(const runtime_exec_config *cfg, runtime_result *ret, forge_error **err)
{
        ctr_session s = CTR_SESSION_INIT;
        runtime_result res = {0};
        int r = -1;

        if (cfg->argv == NULL || cfg->argv[0] == NULL)
                return forge_error_make(err, EINVAL, "no command to execute");
        if (ctr_session_signals(&s, err) < 0)
                goto out;
        r = exec_start(cfg, &s, err);
        if (r < 0)
                goto out;
        res.exec_errno = r;
        if (s.master >= 0 && isatty(STDIN_FILENO))
                s.raw = ctr_terminal_raw(STDIN_FILENO, &s.saved_tio, sizeof(s.saved_tio)) == 0;
        /* no grace period: signals are forwarded, as they come */
        r = ctr_session_relay(s.child, s.sfd, s.master, 0, &res.status);
        if (r < 0) {
                forge_error_make(err, -r, "wait for the process");
                goto out;
        }
        s.child = 0;
        *ret = res;
        r = 0;
out:
        ctr_session_end(&s);
        return r;
}
