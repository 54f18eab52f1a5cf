/* SPDX-License-Identifier: MIT */
/*
 * virtiofsd, the back-end of a shared directory: one per share, a child of
 * forge-vmm that dies with it (PR_SET_PDEATHSIG, and forge-vmm reaps it when
 * the VM ends). It runs in a mount namespace of its own where a read-only
 * share is a read-only (recursive) bind mount of the source: whatever the
 * guest sends, the host file system refuses writes there. virtiofsd then adds
 * its own sandbox (namespaces, pivot_root into the source, seccomp).
 *
 * The vhost-user connection is made before virtiofsd runs: forge-vmm listens
 * on a socket in a private directory, connects to it, removes the name and
 * hands the listening socket to virtiofsd (--fd), which accepts the
 * connection already queued. No other process can connect in between.
 */
#include "runtime/vmm/vmm-fs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"

static const char *virtiofsd_path(void)
{
        static const char *const paths[] = {"/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd"};
        const char *env = getenv("FORGE_VIRTIOFSD");

        if (env && env[0])
                return env;
        for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
                if (access(paths[i], X_OK) == 0)
                        return paths[i];
        return NULL;
}

/* A connected pair: ret_listen for virtiofsd, ret_conn for forge-vmm. */
static int socket_pair_listening(int *ret_listen, int *ret_conn, forge_error **err)
{
        const char *tmp = getenv("TMPDIR");
        char dir[PATH_MAX];
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        cleanup_close int l = -1, c = -1;
        int r = 0;

        snprintf(dir, sizeof(dir), "%s/forge-vfs-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        if (mkdtemp(dir) == NULL)
                return forge_error_make(err, errno,
                                        "virtiofsd: a socket directory in '%s' (set TMPDIR)",
                                        tmp && tmp[0] ? tmp : "/tmp");
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir) >=
            sizeof(sa.sun_path)) {
                rmdir(dir);
                return forge_error_make(err, ENAMETOOLONG, "virtiofsd socket in '%s'", dir);
        }
        l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0 ||
            connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                r = forge_error_make(err, errno, "virtiofsd socket");
        unlink(sa.sun_path);
        rmdir(dir);
        if (r < 0)
                return r;
        *ret_listen = take_fd(l);
        *ret_conn = take_fd(c);
        return 0;
}

/* In the child: src read-only below itself, in this mount namespace only. */
static int read_only_bind(const char *src)
{
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
        int fd = (int)open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

        if (fd >= 0) {
                if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0 ||
                    move_mount(fd, "", AT_FDCWD, src, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return -1;
                close(fd);
                return 0;
        }
        /* kernels before 5.12: the top mount read-only (submounts are not shared then) */
        if (mount(src, src, NULL, MS_BIND, NULL) < 0 ||
            mount(NULL, src, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
                return -1;
        return 0;
}

static void __attribute__((noreturn))
child(const char *exe, const char *src, bool ro, int listen_fd, pid_t parent)
{
        char fd_arg[32], source[PATH_MAX + 16];
        int devnull;

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(125);
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                fprintf(stderr, "forge run: virtiofsd for '%s': mount namespace: %s\n", src,
                        strerror(errno));
                _exit(125);
        }
        if (ro && read_only_bind(src) < 0) {
                fprintf(stderr, "forge run: virtiofsd for '%s': read-only bind mount: %s\n", src,
                        strerror(errno));
                _exit(125);
        }
        /* the socket at a plain fd number, not closed on exec */
        if (listen_fd != 3) {
                if (dup2(listen_fd, 3) < 0)
                        _exit(125);
        } else if (fcntl(3, F_SETFD, 0) < 0) {
                _exit(125);
        }
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull >= 0)
                dup2(devnull, STDIN_FILENO);
        dup2(STDERR_FILENO, STDOUT_FILENO);
        snprintf(fd_arg, sizeof(fd_arg), "--fd=3");
        snprintf(source, sizeof(source), "source=%s", src);
        execl(exe, "virtiofsd", fd_arg, "-o", source, "-o", "cache=auto", "-o", "log_level=err",
              (char *)NULL);
        fprintf(stderr, "forge run: exec '%s': %s\n", exe, strerror(errno));
        _exit(127);
}

int vmm_virtiofsd_start(const char *src, bool ro, int *ret_sock, int *ret_pid, forge_error **err)
{
        const char *exe = virtiofsd_path();
        int l = -1, c = -1;
        pid_t parent = getpid(), pid;
        struct stat st;

        if (exe == NULL)
                return forge_error_make(err, 0,
                                        "virtiofsd not found (install qemu-system-common, or set "
                                        "FORGE_VIRTIOFSD): it serves shared directories to VMs");
        if (stat(src, &st) < 0 || !S_ISDIR(st.st_mode))
                return forge_error_make(err, stat(src, &st) < 0 ? errno : ENOTDIR,
                                        "shared directory '%s'", src);
        if (socket_pair_listening(&l, &c, err) < 0)
                return -1;
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                close(l);
                close(c);
                return forge_error_make(err, errno, "start virtiofsd");
        }
        if (pid == 0)
                child(exe, src, ro, l, parent);
        close(l);
        *ret_sock = c;
        *ret_pid = (int)pid;
        return 0;
}
