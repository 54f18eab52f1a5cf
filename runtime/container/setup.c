/* SPDX-License-Identifier: MIT */
/*
 * The container child: runs in the new namespaces as their first process,
 * builds the root file system, pivots into it, drops privileges and execs
 * forge-init (from a sealed memfd) as PID 1. Errors go to forge as
 * "error MESSAGE" on the sync socket; the child then exits 125.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/container/container-internal.h"

#define SYNC_FD 3
#define INIT_FD 4
#define FIRST_FREE_FD 5

/* crun's defaults (`crun spec`: linux.maskedPaths, linux.readonlyPaths). */
static const char *const masked_paths[] = {
    "/proc/acpi",          "/proc/asound",     "/proc/kcore",       "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/sys/firmware",       "/proc/scsi",       "/sys/fs/selinux",   "/sys/dev/block",
};
static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
        char msg[1024];
        int e = errno, n;
        va_list ap;

        n = snprintf(msg, sizeof(msg), "error ");
        va_start(ap, fmt);
        n += vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
        va_end(ap);
        if (n > (int)sizeof(msg) - 1)
                n = sizeof(msg) - 1;
        if (e != 0)
                n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(e));
        if (n > (int)sizeof(msg) - 1)
                n = sizeof(msg) - 1;
        if (write(SYNC_FD, msg, (size_t)n) < 0)
                _exit(125);
        _exit(125);
}

#define must(expr, ...)                                                                            \
        do {                                                                                       \
                errno = 0;                                                                         \
                if ((expr) < 0)                                                                    \
                        die(__VA_ARGS__);                                                          \
        } while (0)

static int move_fd_high(int fd)
{
        if (fd < 0)
                return -1;
        return fcntl(fd, F_DUPFD_CLOEXEC, 100);
}

/* Puts the stdio, sync and init fds in place and closes everything else. */
static void arrange_fds(setup_args *a, int *volume_fds)
{
        int std[3], sync, init;

        for (int i = 0; i < 3; i++)
                std[i] = a->stdio[i] >= 0 ? move_fd_high(a->stdio[i]) : -1;
        sync = move_fd_high(a->sync_fd);
        init = move_fd_high(a->init_fd);
        if (sync < 0 || dup2(sync, SYNC_FD) < 0)
                _exit(125);
        if (init < 0 || dup3(init, INIT_FD, O_CLOEXEC) < 0)
                die("move the init fd");
        for (int i = 0; i < 3; i++)
                if (std[i] >= 0 && dup2(std[i], i) < 0)
                        die("set up stdio");
        /* volume sources: opened now (host paths), kept as fds 5.. */
        for (size_t i = 0; i < a->cfg->n_mounts; i++) {
                int fd = open(a->cfg->mounts[i].src, O_PATH | O_CLOEXEC);

                if (fd < 0)
                        die("volume source '%s'", a->cfg->mounts[i].src);
                volume_fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, 512);
                if (volume_fds[i] < 0)
                        die("move a volume fd");
                close(fd);
        }
        for (size_t i = 0; i < a->cfg->n_mounts; i++) {
                int want = FIRST_FREE_FD + (int)i;

                must(dup3(volume_fds[i], want, O_CLOEXEC), "move a volume fd");
                volume_fds[i] = want;
        }
        must(syscall(SYS_close_range, FIRST_FREE_FD + a->cfg->n_mounts, ~0U, 0),
             "close inherited fds");
}

static void mount_root(const setup_args *a)
{
        const runtime_config *cfg = a->cfg;
        char *opts = NULL, *dir = NULL;
        forge_error *err = NULL;

        if (overlay_options(cfg->lowerdirs, cfg->n_lowerdirs, a->upper_dir, a->work_dir, &opts,
                            &dir, &err) < 0) {
                errno = 0;
                die("%s", err->msg);
        }
        if (dir != NULL)
                must(chdir(dir), "enter the layers directory '%s'", dir);
        must(mount("overlay", a->rootfs, "overlay", MS_NODEV, opts),
             "mount the root file system (overlay of %zu layers)", cfg->n_lowerdirs);
        free(opts);
        free(dir);
}

static void pivot(const char *rootfs)
{
        must(chdir(rootfs), "enter the root file system");
        must(syscall(SYS_pivot_root, ".", "."), "pivot_root");
        must(umount2(".", MNT_DETACH), "detach the host root");
        must(chdir("/"), "chdir /");
}

static void ensure_dir(const char *path)
{
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                die("create mount point '%s'", path);
}

static void make_dev(void)
{
        static const struct {
                const char *name;
                unsigned maj, min;
        } nodes[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                     {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
        static const char *const links[][2] = {
            {"/proc/self/fd", "/dev/fd"},       {"/proc/self/fd/0", "/dev/stdin"},
            {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
            {"pts/ptmx", "/dev/ptmx"},
        };
        char path[64];

        ensure_dir("/dev");
        must(mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"),
             "mount /dev");
        for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
                snprintf(path, sizeof(path), "/dev/%s", nodes[i].name);
                must(mknod(path, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)),
                     "create '%s'", path);
                must(chmod(path, 0666), "chmod '%s'", path);
        }
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
                must(symlink(links[i][0], links[i][1]), "create '%s'", links[i][1]);
        ensure_dir("/dev/pts");
        must(mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                   "newinstance,ptmxmode=0666,mode=0620,gid=5"),
             "mount /dev/pts");
        ensure_dir("/dev/shm");
        must(mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV,
                   "mode=1777,size=65536k"),
             "mount /dev/shm");
        ensure_dir("/dev/mqueue");
        if (mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) < 0)
                rmdir("/dev/mqueue");
}

static void mount_cgroups(bool unified)
{
        static const char *const v1[][2] = {
            {"memory", "memory"}, {"pids", "pids"}, {"cpu", "cpu"}, {"cpu", "cpu,cpuacct"}};
        const unsigned long fl = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY;
        char path[64];

        if (unified) {
                mount("cgroup", "/sys/fs/cgroup", "cgroup2", fl, NULL);
                return;
        }
        if (mount("tmpfs", "/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=755,size=64k") < 0)
                return;
        for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
                snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", v1[i][0]);
                mkdir(path, 0755);
                if (mount("cgroup", path, "cgroup", fl, v1[i][1]) < 0)
                        rmdir(path);
        }
        mount(NULL, "/sys/fs/cgroup", NULL, MS_REMOUNT | MS_RDONLY | fl, "mode=755,size=64k");
}

static void mask_paths(void)
{
        struct stat st;

        for (size_t i = 0; i < sizeof(masked_paths) / sizeof(masked_paths[0]); i++) {
                const char *p = masked_paths[i];

                if (lstat(p, &st) < 0)
                        continue;
                if (S_ISDIR(st.st_mode))
                        must(mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0"), "mask '%s'", p);
                else
                        must(mount("/dev/null", p, NULL, MS_BIND, NULL), "mask '%s'", p);
        }
        for (size_t i = 0; i < sizeof(readonly_paths) / sizeof(readonly_paths[0]); i++) {
                const char *p = readonly_paths[i];

                if (lstat(p, &st) < 0)
                        continue;
                must(mount(p, p, NULL, MS_BIND | MS_REC, NULL), "bind '%s'", p);
                must(mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL),
                     "make '%s' read-only", p);
        }
}

static void mkdir_parents(char *path)
{
        for (char *p = path + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(path, 0755) < 0 && errno != EEXIST)
                        die("create '%s'", path);
                *p = '/';
        }
}

static int open_in_root(int rootfd, const char *path, int flags)
{
        struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};

        return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

/* Creates the mount point dest (a directory, or a file when !dir) inside the
 * root: every component is resolved with RESOLVE_IN_ROOT, so a symlink in
 * the image cannot lead outside. Returns an O_PATH fd of it. */
static int make_mount_point(int rootfd, const char *dest, bool dir)
{
        char path[4096];
        int fd;

        snprintf(path, sizeof(path), "%s", dest);
        for (char *p = path + 1;; p++) {
                bool last = *p == '\0';

                if (*p != '/' && !last)
                        continue;
                *p = '\0';
                {
                        char *slash = strrchr(path, '/');
                        int parent;

                        *slash = '\0';
                        parent = open_in_root(rootfd, path[0] ? path : "/", O_PATH | O_DIRECTORY);
                        *slash = '/';
                        if (parent < 0)
                                die("mount point '%s'", dest);
                        if (!last || dir) {
                                if (mkdirat(parent, slash + 1, 0755) < 0 && errno != EEXIST)
                                        die("create mount point '%s'", path);
                        } else {
                                fd = openat(parent, slash + 1,
                                            O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
                                if (fd >= 0)
                                        close(fd);
                                else if (errno != EISDIR && errno != ELOOP)
                                        die("create mount point '%s'", path);
                        }
                        close(parent);
                }
                if (last)
                        break;
                *p = '/';
        }
        fd = open_in_root(rootfd, dest, O_PATH);
        if (fd < 0)
                die("mount point '%s'", dest);
        return fd;
}

/* Volumes are bound before pivot_root (the source must be in our mount
 * namespace) onto targets resolved inside the root. */
static void mount_volumes(const char *rootfs, const runtime_config *cfg, const int *fds)
{
        char src[64], dst[64];
        struct stat st;
        int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);

        must(rootfd, "open the root file system");
        for (size_t i = 0; i < cfg->n_mounts; i++) {
                const runtime_mount *m = &cfg->mounts[i];
                int target;

                if (m->dest[0] != '/' || strlen(m->dest) >= 4000) {
                        errno = 0;
                        die("volume destination '%s' must be an absolute path", m->dest);
                }
                must(fstat(fds[i], &st), "volume source '%s'", m->src);
                target = make_mount_point(rootfd, m->dest, S_ISDIR(st.st_mode));
                snprintf(src, sizeof(src), "/proc/self/fd/%d", fds[i]);
                snprintf(dst, sizeof(dst), "/proc/self/fd/%d", target);
                must(mount(src, dst, NULL, MS_BIND | MS_REC, NULL), "bind '%s' to '%s'", m->src,
                     m->dest);
                close(target);
                if (m->ro) {
                        target = open_in_root(rootfd, m->dest, O_PATH);
                        must(target, "reopen '%s'", m->dest);
                        snprintf(dst, sizeof(dst), "/proc/self/fd/%d", target);
                        must(
                            mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL),
                            "make '%s' read-only", m->dest);
                        close(target);
                }
                close(fds[i]);
        }
        close(rootfd);
}

static void loopback_up(void)
{
        struct ifreq ifr = {0};
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        must(s, "socket");
        strcpy(ifr.ifr_name, "lo");
        must(ioctl(s, SIOCGIFFLAGS, &ifr), "get loopback flags");
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        must(ioctl(s, SIOCSIFFLAGS, &ifr), "bring loopback up");
        close(s);
}

/* Opens a pty in the container's devpts, sends the master to forge and makes
 * the slave our stdio (forge-init gives it to the workload as its ctty). */
static void setup_tty(uid_t uid)
{
        char buf[1] = {'t'};
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {buf, 1};
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        int master, slave, n, unlock = 0;
        char name[64];

        master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        must(master, "open /dev/pts/ptmx");
        must(ioctl(master, TIOCSPTLCK, &unlock), "unlock the pty");
        must(ioctl(master, TIOCGPTN, &n), "get the pty number");
        snprintf(name, sizeof(name), "/dev/pts/%d", n);
        slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        must(slave, "open '%s'", name);
        /* the workload's own terminal, as crun does (group tty stays) */
        must(fchown(slave, uid, (gid_t)-1), "chown '%s'", name);
        /* The user's window size before the workload can ask for it; stdin is
         * still forge's here. Later changes are relayed by forge on SIGWINCH. */
        {
                struct winsize ws;
                if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
                        ioctl(slave, TIOCSWINSZ, &ws);
        }
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &master, sizeof(int));
        must(sendmsg(SYNC_FD, &msg, 0), "send the pty to forge");
        close(master);
        for (int i = 0; i < 3; i++)
                must(dup2(slave, i), "set up the pty as stdio");
        close(slave);
}

static void set_user(const runtime_config *cfg, user_ids *ids)
{
        char msg[512];
        int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        int r;

        must(rootfd, "open the container's root");
        r = user_resolve_in_root(cfg->user, rootfd, ids, msg, sizeof(msg));
        close(rootfd);
        if (r < 0) {
                errno = 0;
                die("%s", msg);
        }
}

static void enter_workdir(const char *wd, bool may_create)
{
        char path[4096];

        if (wd == NULL || wd[0] == '\0')
                wd = "/";
        if (wd[0] != '/' || strlen(wd) >= sizeof(path)) {
                errno = 0;
                die("workdir '%s' must be an absolute path", wd);
        }
        if (chdir(wd) == 0)
                return;
        if (errno != ENOENT || !may_create)
                die("workdir '%s'", wd);
        snprintf(path, sizeof(path), "%s/", wd);
        mkdir_parents(path);
        must(chdir(wd), "workdir '%s'", wd);
}

static void exec_init(const runtime_config *cfg)
{
        size_t n = 0, i;
        const char **argv;

        while (cfg->argv[n] != NULL)
                n++;
        argv = calloc(n + 4, sizeof(char *));
        if (argv == NULL)
                die("out of memory");
        argv[0] = "forge-init";
        i = 1;
        if (cfg->tty)
                argv[i++] = "-t";
        argv[i++] = "--";
        memcpy(argv + i, cfg->argv, n * sizeof(char *));
        errno = 0;
        syscall(SYS_execveat, INIT_FD, "", (char *const *)argv,
                cfg->env ? cfg->env : (char *const[]){NULL}, AT_EMPTY_PATH);
        die("execute forge-init");
}

static void check(int r, const char *what)
{
        if (r < 0) {
                errno = -r;
                die("%s", what);
        }
}

/* The root: overlay, volumes, pivot_root, then the API file systems. */
static void build_root(setup_args *a, const int *volume_fds)
{
        must(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make mounts private");
        mount_root(a);
        mount_volumes(a->rootfs, a->cfg, volume_fds);
        pivot(a->rootfs);
        ensure_dir("/proc");
        must(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "mount /proc");
        make_dev();
        ensure_dir("/sys");
        if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL) ==
            0)
                mount_cgroups(a->cgroup2);
        mask_paths();
}

/* Credentials, capabilities, no_new_privs and seccomp, in that order: the
 * filter comes last so the steps before it may use what it denies. */
static void drop_privileges(const runtime_config *cfg, const user_ids *ids)
{
        if (cfg->read_only)
                must(mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL),
                     "make the root file system read-only");
        check(caps_bounding_drop(cfg->caps), "drop capabilities");
        must(setgroups(ids->n_groups, ids->groups), "setgroups");
        must(setresgid(ids->gid, ids->gid, ids->gid), "setgid %u", (unsigned)ids->gid);
        must(setresuid(ids->uid, ids->uid, ids->uid), "setuid %u", (unsigned)ids->uid);
        check(caps_apply(cfg->caps, ids->uid == 0), "set capabilities");
        /* cleared by the credential change */
        must(prctl(PR_SET_PDEATHSIG, SIGKILL), "set the parent death signal");
        enter_workdir(cfg->workdir, false);
        must(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs");
        check(seccomp_filter_install(), "install the seccomp filter");
}

int setup_child_main(void *arg)
{
        setup_args *a = arg;
        const runtime_config *cfg = a->cfg;
        const char *hostname = cfg->hostname ? cfg->hostname : "forge";
        int volume_fds[64];
        sigset_t none;
        user_ids ids;
        char go;

        if (cfg->n_mounts > sizeof(volume_fds) / sizeof(volume_fds[0])) {
                errno = 0;
                die("too many volumes (at most 64)");
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Our own session: kill(0, ...) in the container must not reach forge's
         * process group on the host. */
        setsid();
        arrange_fds(a, volume_fds);
        /* forge puts us into the cgroup first: the cgroup namespace is rooted there */
        if (read(SYNC_FD, &go, 1) != 1 || go != 'g')
                _exit(125);
        must(unshare(CLONE_NEWCGROUP), "new cgroup namespace");
        build_root(a, volume_fds);
        must(sethostname(hostname, strlen(hostname)), "set the hostname '%s'", hostname);
        if (!cfg->network_host)
                loopback_up();
        set_user(cfg, &ids);
        if (cfg->tty)
                setup_tty(ids.uid);
        if (!cfg->read_only)
                enter_workdir(cfg->workdir, true);
        drop_privileges(cfg, &ids);
        /* forge blocks the forwarded signals; the workload must not inherit
         * that (forge-init blocks them again for itself) */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        exec_init(cfg);
        return 125;
}
