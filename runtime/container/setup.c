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
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/container/container-internal.h"

#define SYNC_FD 3
#define INIT_FD 4
#define FIRST_FREE_FD 5 /* volumes from here, then the made_fd */

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
        int std[3], sync, init, made;

        for (int i = 0; i < 3; i++)
                std[i] = a->stdio[i] >= 0 ? move_fd_high(a->stdio[i]) : -1;
        sync = move_fd_high(a->sync_fd);
        init = move_fd_high(a->init_fd);
        made = a->made_fd >= 0 ? move_fd_high(a->made_fd) : -1; /* before 0..4 are reused */
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
        if (made >= 0) {
                int want = FIRST_FREE_FD + (int)a->cfg->n_mounts;

                must(dup3(made, want, O_CLOEXEC), "move the made fd");
                a->made_fd = want;
        }
        must(syscall(SYS_close_range, FIRST_FREE_FD + a->cfg->n_mounts + (made >= 0), ~0U, 0),
             "close inherited fds");
}

static void mount_root(const setup_args *a)
{
        const runtime_config *cfg = a->cfg;
        char *opts = NULL;
        forge_error *err = NULL;

        if (overlay_options(cfg->n_lowerdirs, a->upper_dir != NULL, &opts, &err) < 0) {
                errno = 0;
                die("%s", err->msg);
        }
        /* the options name the links in links_dir, relative to it */
        must(chdir(a->links_dir), "enter '%s'", a->links_dir);
        must(mount("overlay", a->rootfs, "overlay", MS_NODEV, opts),
             "mount the root file system (overlay of %zu layers)", cfg->n_lowerdirs);
        free(opts);
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
        if (mkdir(path, 0755) == 0)
                made_note(path);
        else if (errno != EEXIST)
                die("create mount point '%s'", path);
}

/* /proc, /dev and /sys are mounted by path after pivot_root: an image that
 * makes one of them a symlink would move the kernel's file system (and the
 * masked and read-only paths with it) where it likes. As runc, refuse. */
static void api_dir(const char *path)
{
        struct stat st;

        if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
                errno = 0;
                die("the image's '%s' is not a directory (a symlink?): it must be one", path);
        }
        ensure_dir(path);
}

/* crun's device policy without a device cgroup: /dev is a tmpfs mounted
 * nodev, and only the standard nodes are usable, each a bind mount of a node
 * made while /dev still allowed devices. A node the workload makes (a build
 * step has CAP_MKNOD) lands on a nodev mount wherever it can write (/dev, the
 * overlay root, /dev/shm, volumes) and cannot be opened. */
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
        struct mount_attr nodev = {.attr_set = MOUNT_ATTR_NODEV};
        int trees[sizeof(nodes) / sizeof(nodes[0])];
        struct statvfs sv;
        char path[64];

        ensure_dir("/dev");
        /* inodes capped too: empty files cost kernel memory that size= does
         * not count */
        must(mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                   "mode=755,size=65536k,nr_inodes=16384"),
             "mount /dev");
        for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
                snprintf(path, sizeof(path), "/dev/%s", nodes[i].name);
                must(mknod(path, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)),
                     "create '%s'", path);
                must(chmod(path, 0666), "chmod '%s'", path);
                trees[i] = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                must(trees[i], "bind '%s'", path);
        }
        must(mount_setattr(AT_FDCWD, "/dev", 0, &nodev, sizeof(nodev)), "make /dev nodev");
        must(statvfs("/dev", &sv), "/dev");
        if (!(sv.f_flag & ST_NODEV)) {
                errno = 0;
                die("/dev is not nodev");
        }
        for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
                snprintf(path, sizeof(path), "/dev/%s", nodes[i].name);
                must(move_mount(trees[i], "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH), "bind '%s'",
                     path);
                close(trees[i]);
        }
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
                must(symlink(links[i][0], links[i][1]), "create '%s'", links[i][1]);
        ensure_dir("/dev/pts");
        must(mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                   "newinstance,ptmxmode=0666,mode=0620,gid=5"),
             "mount /dev/pts");
        ensure_dir("/dev/shm");
        must(mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV,
                   "mode=1777,size=65536k,nr_inodes=65536"),
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
 * the image cannot lead outside. Returns an O_PATH fd of it; when soft,
 * -1 instead of failing the run. */
static int make_mount_point(int rootfd, const char *dest, bool dir, bool soft)
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
                        if (parent < 0 && soft)
                                return -1;
                        if (parent < 0)
                                die("mount point '%s'", dest);
                        if (!last || dir) {
                                if (mkdirat(parent, slash + 1, 0755) < 0 && errno != EEXIST &&
                                    !soft)
                                        die("create mount point '%s'", path);
                        } else {
                                /* O_EXCL: an existing FIFO or device is
                                 * not opened (a FIFO would block) */
                                fd = openat(parent, slash + 1,
                                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                            0644);
                                if (fd >= 0)
                                        close(fd);
                                else if (errno != EEXIST && !soft)
                                        die("create mount point '%s'", path);
                        }
                        close(parent);
                }
                if (last)
                        break;
                *p = '/';
        }
        fd = open_in_root(rootfd, dest, O_PATH);
        if (fd < 0 && !soft)
                die("mount point '%s'", dest);
        return fd;
}

/* The mount made from a volume source: a detached recursive copy whose
 * attributes are set before it is attached, so that `ro` (and podman's nosuid,
 * nodev) hold for every mount of it from the first moment. */
static int volume_tree(int srcfd, bool ro)
{
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                              (ro ? MOUNT_ATTR_RDONLY : 0)};
        int tree = open_tree(srcfd, "",
                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);

        if (tree < 0)
                return -1;
        if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
                close(tree);
                return -1;
        }
        return tree;
}

static bool same_inode(int a, int b)
{
        struct stat sa, sb;

        return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
               sa.st_ino == sb.st_ino;
}

static bool is_regular_target(int fd)
{
        struct stat st;

        return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

static uint64_t mount_id(int fd)
{
        struct statx stx;

        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0)
                return 0;
        return stx.stx_mnt_id;
}

/* The destination, looked up again inside the root, must now be the volume
 * with the attributes asked for. */
static void volume_verify(int rootfd, const runtime_mount *m, int tree)
{
        struct statvfs sv;
        int fd = open_in_root(rootfd, m->dest, O_PATH);

        must(fd, "volume '%s': look up the mount made", m->dest);
        if (mount_id(fd) != mount_id(tree)) {
                errno = 0;
                die("volume '%s': the destination changed while it was mounted", m->dest);
        }
        must(fstatvfs(fd, &sv), "volume '%s'", m->dest);
        if ((m->ro && !(sv.f_flag & ST_RDONLY)) || !(sv.f_flag & ST_NODEV) ||
            !(sv.f_flag & ST_NOSUID)) {
                errno = 0;
                die("volume '%s': the mount made is not %snosuid,nodev", m->dest,
                    m->ro ? "ro," : "");
        }
        close(fd);
}

/* Volumes are bound before pivot_root (the source must be in our mount
 * namespace) onto targets resolved inside the root: a destination that is an
 * image's symlink leads where it points in the container, never outside, and
 * never onto the root itself (the volume would become the container's /). */
static void mount_volumes(const char *rootfs, const runtime_config *cfg, size_t n_provided,
                          const int *fds)
{
        struct stat st;
        int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);

        must(rootfd, "open the root file system");
        for (size_t i = 0; i < cfg->n_mounts; i++) {
                const runtime_mount *m = &cfg->mounts[i];
                int target, tree;

                if (m->dest[0] != '/' || strlen(m->dest) >= 4000) {
                        errno = 0;
                        die("volume destination '%s' must be an absolute path", m->dest);
                }
                must(fstat(fds[i], &st), "volume source '%s'", m->src);
                target = make_mount_point(rootfd, m->dest, S_ISDIR(st.st_mode), i < n_provided);
                if (i < n_provided && !is_regular_target(target)) {
                        /* the image's /etc/hosts is a dangling symlink, a
                         * directory...: it keeps it */
                        if (target >= 0)
                                close(target);
                        close(fds[i]);
                        continue;
                }
                if (same_inode(target, rootfd)) {
                        errno = 0;
                        die("volume destination '%s' resolves to the container's root "
                            "(a symlink in the image?): choose another destination",
                            m->dest);
                }
                tree = volume_tree(fds[i], m->ro);
                must(tree, "volume '%s': copy the mount", m->src);
                must(move_mount(tree, "", target, "",
                                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
                     "bind '%s' to '%s'", m->src, m->dest);
                close(target);
                volume_verify(rootfd, m, tree);
                close(tree);
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

static bool env_has(char *const *env, const char *key)
{
        size_t klen = strlen(key);

        for (size_t i = 0; env != NULL && env[i] != NULL; i++)
                if (strncmp(env[i], key, klen) == 0 && env[i][klen] == '=')
                        return true;
        return false;
}

/* What podman gives every workload, unless the image or -e set it: HOME from
 * the image's passwd (else /root for root, / for others), HOSTNAME, TERM
 * with a terminal, container=forge. */
static char **workload_env(const runtime_config *cfg, const user_ids *ids, const char *hostname)
{
        const char *home = ids->home[0] ? ids->home : ids->uid == 0 ? "/root" : "/";
        char *add[4];
        size_t n = 0, k = 0, na = 0;
        char **env;

        if (asprintf(&add[na], "HOME=%s", home) >= 0 && !env_has(cfg->env, "HOME"))
                na++;
        if (asprintf(&add[na], "HOSTNAME=%s", hostname) >= 0 && !env_has(cfg->env, "HOSTNAME"))
                na++;
        if (cfg->tty && !env_has(cfg->env, "TERM"))
                add[na++] = "TERM=xterm";
        if (!env_has(cfg->env, "container"))
                add[na++] = "container=forge";
        while (cfg->env != NULL && cfg->env[n] != NULL)
                n++;
        env = calloc(n + na + 1, sizeof(char *));
        if (env == NULL)
                die("out of memory");
        for (size_t i = 0; i < n; i++)
                env[k++] = cfg->env[i];
        for (size_t i = 0; i < na; i++)
                env[k++] = add[i];
        return env;
}

static void exec_init(const runtime_config *cfg, char *const *env)
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
        syscall(SYS_execveat, INIT_FD, "", (char *const *)argv, env, AT_EMPTY_PATH);
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
        mount_volumes(a->rootfs, a->cfg, a->n_provided, volume_fds);
        pivot(a->rootfs);
        api_dir("/proc");
        api_dir("/dev");
        api_dir("/sys");
        must(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "mount /proc");
        make_dev();
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
        char **env;
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
        env = workload_env(cfg, &ids, hostname);
        if (cfg->tty)
                setup_tty(ids.uid);
        if (!cfg->read_only)
                enter_workdir(cfg->workdir, true);
        check(made_write(a->made_fd), "report the mount points made");
        /* --network user: pasta has configured the namespace */
        if (cfg->network_user && (read(SYNC_FD, &go, 1) != 1 || go != 'n'))
                _exit(125);
        drop_privileges(cfg, &ids);
        /* forge blocks the forwarded signals; the workload must not inherit
         * that (forge-init blocks them again for itself) */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        exec_init(cfg, env);
        return 125;
}
