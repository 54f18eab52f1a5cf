/* SPDX-License-Identifier: MIT */
/*
 * The container child: runs in the new namespaces as their first process,
 * builds the root file system, pivots into it, drops privileges and execs
 * forge-init (from a detached read-only mount) as PID 1. Errors go to forge as
 * SYNC_ERROR on the sync socket (sync.h); the child then exits 125.
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

#include "common/cleanup.h"
#include "runtime/container/container-internal.h"
#include "runtime/container/sync.h"

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
                sync_die("move the init fd");
        for (int i = 0; i < 3; i++)
                if (std[i] >= 0 && dup2(std[i], i) < 0)
                        sync_die("set up stdio");
        /* volume sources: opened now (host paths), kept as fds 5..; the
         * provided /etc files are made later, on the child's tmpfs */
        for (size_t i = 0; i < a->cfg->n_mounts; i++) {
                int fd;

                volume_fds[i] = -1;
                if (i < a->n_provided)
                        continue;
                fd = open(a->cfg->mounts[i].src, O_PATH | O_CLOEXEC);

                if (fd < 0)
                        sync_die("volume source '%s'", a->cfg->mounts[i].src);
                volume_fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, 512);
                if (volume_fds[i] < 0)
                        sync_die("move a volume fd");
                close(fd);
        }
        for (size_t i = 0; i < a->cfg->n_mounts; i++) {
                int want = FIRST_FREE_FD + (int)i;

                if (volume_fds[i] < 0)
                        continue;
                sync_must(dup3(volume_fds[i], want, O_CLOEXEC), "move a volume fd");
                volume_fds[i] = want;
        }
        if (made >= 0) {
                int want = FIRST_FREE_FD + (int)a->cfg->n_mounts;

                sync_must(dup3(made, want, O_CLOEXEC), "move the made fd");
                a->made_fd = want;
        }
        sync_must(syscall(SYS_close_range, FIRST_FREE_FD + a->cfg->n_mounts + (made >= 0), ~0U, 0),
                  "close inherited fds");
}

/* The provided /etc files on the run's tmpfs, where the parent named them
 * (cfg->mounts[0..n_provided)): not a file-system entry in the store. */
static void provided_files_make(const setup_args *a, int *volume_fds)
{
        char dir[4096];
        forge_error *err = NULL;
        etc_files etc = {0};

        snprintf(dir, sizeof(dir), "%s/e", a->rootfs);
        sync_must(mkdir(dir, 0755), "create '%s'", dir);
        if (etc_files_make(a->cfg, dir, &etc, &err) < 0) {
                errno = 0;
                sync_die("provide /etc files: %s", err->msg);
        }
        etc_files_free(&etc);
        for (size_t i = 0; i < a->n_provided; i++) {
                volume_fds[i] = open(a->cfg->mounts[i].src, O_PATH | O_CLOEXEC);
                sync_must(volume_fds[i], "volume source '%s'", a->cfg->mounts[i].src);
        }
}

/* rootfs/m: the mount points the image lacks (MOUNT_POINT_*), the
 * overlay's topmost lower layer, on the run's tmpfs. */
static void mount_points_make(const setup_args *a)
{
        static const char *const names[] = MOUNT_POINT_NAMES;
        static const char *const etc_names[] = MOUNT_POINT_ETC_FILES;
        char dir[4096];
        int mfd, efd, fd;

        snprintf(dir, sizeof(dir), "%s/m", a->rootfs);
        sync_must(mkdir(dir, 0755), "create '%s'", dir);
        mfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        sync_must(mfd, "open '%s'", dir);
        for (size_t k = 0; k < ARRAY_SIZE(names); k++)
                if (a->mount_points & (1u << k))
                        sync_must(mkdirat(mfd, names[k], 0755), "create mount point '/%s'",
                                  names[k]);
        if (a->mount_points & MOUNT_POINT_ETC) {
                efd = openat(mfd, "etc", O_PATH | O_DIRECTORY | O_CLOEXEC);
                sync_must(efd, "open mount point '/etc'");
                for (size_t k = 0; k < ARRAY_SIZE(etc_names); k++) {
                        fd = openat(efd, etc_names[k], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                                    0644);
                        sync_must(fd, "create mount point '/etc/%s'", etc_names[k]);
                        close(fd);
                }
                close(efd);
        }
        close(mfd);
}

static void mount_root(const setup_args *a, int *volume_fds)
{
        char opts[4096];
        size_t len;
        int r;

        snprintf(opts, sizeof(opts), "%s", a->overlay_opts);
        /* a tmpfs of the child's own on the mount point, which the overlay
         * then hides: the provided /etc files and, with upper_tmpfs, the
         * upper and work directories */
        sync_must(mount("tmpfs", a->rootfs, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700"),
                  "mount the run's tmpfs");
        if (a->upper_tmpfs) {
                sync_must(mkdir(a->upper_dir, 0755), "create '%s'", a->upper_dir);
                sync_must(mkdir(a->work_dir, 0700), "create '%s'", a->work_dir);
        }
        provided_files_make(a, volume_fds);
        if (a->mount_points != 0)
                mount_points_make(a);
        /* short names are relative to the links directory */
        if (a->links_dir != NULL)
                sync_must(chdir(a->links_dir), "enter '%s'", a->links_dir);
        r = mount("overlay", a->rootfs, "overlay", MS_NODEV, opts);
        len = strlen(opts);
        if (r < 0 && errno == EINVAL && len > 9 && strcmp(opts + len - 9, ",volatile") == 0) {
                /* a kernel before 5.10 has no volatile */
                opts[len - 9] = '\0';
                r = mount("overlay", a->rootfs, "overlay", MS_NODEV, opts);
        }
        sync_must(r, "mount the root file system (overlay of %zu layers)", a->cfg->n_lowerdirs);
}

static void pivot(const char *rootfs)
{
        sync_must(chdir(rootfs), "enter the root file system");
        sync_must(syscall(SYS_pivot_root, ".", "."), "pivot_root");
        sync_must(umount2(".", MNT_DETACH), "detach the host root");
        sync_must(chdir("/"), "chdir /");
}

static void ensure_dir(const char *path)
{
        if (mkdir(path, 0755) == 0)
                made_note(path);
        else if (errno != EEXIST)
                sync_die("create mount point '%s'", path);
}

/* /proc, /dev and /sys are mounted by path after pivot_root: an image that
 * makes one of them a symlink would move the kernel's file system (and the
 * masked and read-only paths with it) where it likes. As runc, refuse. */
static void api_dir(const char *path)
{
        struct stat st;

        if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
                errno = 0;
                sync_die("the image's '%s' is not a directory (a symlink?): it must be one", path);
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
        sync_must(mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                        "mode=755,size=65536k,nr_inodes=16384"),
                  "mount /dev");
        for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
                snprintf(path, sizeof(path), "/dev/%s", nodes[i].name);
                sync_must(mknod(path, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)),
                          "create '%s'", path);
                sync_must(chmod(path, 0666), "chmod '%s'", path);
                trees[i] = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                sync_must(trees[i], "bind '%s'", path);
        }
        sync_must(mount_setattr(AT_FDCWD, "/dev", 0, &nodev, sizeof(nodev)), "make /dev nodev");
        sync_must(statvfs("/dev", &sv), "/dev");
        if (!(sv.f_flag & ST_NODEV)) {
                errno = 0;
                sync_die("/dev is not nodev");
        }
        for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
                snprintf(path, sizeof(path), "/dev/%s", nodes[i].name);
                sync_must(move_mount(trees[i], "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH),
                          "bind '%s'", path);
                close(trees[i]);
        }
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
                sync_must(symlink(links[i][0], links[i][1]), "create '%s'", links[i][1]);
        ensure_dir("/dev/pts");
        sync_must(mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                        "newinstance,ptmxmode=0666,mode=0620,gid=5"),
                  "mount /dev/pts");
        ensure_dir("/dev/shm");
        sync_must(mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV,
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
                        sync_must(mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0"), "mask '%s'", p);
                else
                        sync_must(mount("/dev/null", p, NULL, MS_BIND, NULL), "mask '%s'", p);
        }
        for (size_t i = 0; i < sizeof(readonly_paths) / sizeof(readonly_paths[0]); i++) {
                const char *p = readonly_paths[i];

                if (lstat(p, &st) < 0)
                        continue;
                sync_must(mount(p, p, NULL, MS_BIND | MS_REC, NULL), "bind '%s'", p);
                sync_must(mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL),
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
                        sync_die("create '%s'", path);
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
                                sync_die("mount point '%s'", dest);
                        if (!last || dir) {
                                if (mkdirat(parent, slash + 1, 0755) < 0 && errno != EEXIST &&
                                    !soft)
                                        sync_die("create mount point '%s'", path);
                        } else {
                                /* O_EXCL: an existing FIFO or device is
                                 * not opened (a FIFO would block) */
                                fd = openat(parent, slash + 1,
                                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                            0644);
                                if (fd >= 0)
                                        close(fd);
                                else if (errno != EEXIST && !soft)
                                        sync_die("create mount point '%s'", path);
                        }
                        close(parent);
                }
                if (last)
                        break;
                *p = '/';
        }
        fd = open_in_root(rootfd, dest, O_PATH);
        if (fd < 0 && !soft)
                sync_die("mount point '%s'", dest);
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

        sync_must(fd, "volume '%s': look up the mount made", m->dest);
        if (mount_id(fd) != mount_id(tree)) {
                errno = 0;
                sync_die("volume '%s': the destination changed while it was mounted", m->dest);
        }
        sync_must(fstatvfs(fd, &sv), "volume '%s'", m->dest);
        if ((m->ro && !(sv.f_flag & ST_RDONLY)) || !(sv.f_flag & ST_NODEV) ||
            !(sv.f_flag & ST_NOSUID)) {
                errno = 0;
                sync_die("volume '%s': the mount made is not %snosuid,nodev", m->dest,
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

        sync_must(rootfd, "open the root file system");
        for (size_t i = 0; i < cfg->n_mounts; i++) {
                const runtime_mount *m = &cfg->mounts[i];
                int target, tree;

                if (m->dest[0] != '/' || strlen(m->dest) >= 4000) {
                        errno = 0;
                        sync_die("volume destination '%s' must be an absolute path", m->dest);
                }
                sync_must(fstat(fds[i], &st), "volume source '%s'", m->src);
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
                        sync_die("volume destination '%s' resolves to the container's root "
                                 "(a symlink in the image?): choose another destination",
                                 m->dest);
                }
                tree = volume_tree(fds[i], m->ro);
                sync_must(tree, "volume '%s': copy the mount", m->src);
                sync_must(move_mount(tree, "", target, "",
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

        sync_must(s, "socket");
        strcpy(ifr.ifr_name, "lo");
        sync_must(ioctl(s, SIOCGIFFLAGS, &ifr), "get loopback flags");
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        sync_must(ioctl(s, SIOCSIFFLAGS, &ifr), "bring loopback up");
        close(s);
}

/* Opens a pty in the container's devpts, sends the master to forge and makes
 * the slave our stdio (forge-init gives it to the workload as its ctty). */
static void setup_tty(uid_t uid)
{
        sync_msg msg;
        int master, slave, n, r, unlock = 0;
        char name[64];

        master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        sync_must(master, "open /dev/pts/ptmx");
        sync_must(ioctl(master, TIOCSPTLCK, &unlock), "unlock the pty");
        sync_must(ioctl(master, TIOCGPTN, &n), "get the pty number");
        snprintf(name, sizeof(name), "/dev/pts/%d", n);
        slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        sync_must(slave, "open '%s'", name);
        /* the workload's own terminal, as crun does (group tty stays) */
        sync_must(fchown(slave, uid, (gid_t)-1), "chown '%s'", name);
        /* The user's window size before the workload can ask for it; stdin is
         * still forge's here. Later changes are relayed by forge on SIGWINCH. */
        {
                struct winsize ws;
                if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
                        ioctl(slave, TIOCSWINSZ, &ws);
        }
        sync_msg_init(&msg, SYNC_PTY, 0, NULL);
        errno = 0;
        r = sync_send(SYNC_FD, &msg, master);
        if (r < 0) {
                errno = -r;
                sync_die("send the pty to forge");
        }
        close(master);
        for (int i = 0; i < 3; i++)
                sync_must(dup2(slave, i), "set up the pty as stdio");
        close(slave);
}

static void set_user(const runtime_config *cfg, user_ids *ids)
{
        char msg[512];
        int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        int r;

        sync_must(rootfd, "open the container's root");
        r = user_resolve_in_root(cfg->user, rootfd, ids, msg, sizeof(msg));
        close(rootfd);
        if (r < 0) {
                errno = 0;
                sync_die("%s", msg);
        }
}

static void enter_workdir(const char *wd, bool may_create)
{
        char path[4096];

        if (wd == NULL || wd[0] == '\0')
                wd = "/";
        if (wd[0] != '/' || strlen(wd) >= sizeof(path)) {
                errno = 0;
                sync_die("workdir '%s' must be an absolute path", wd);
        }
        if (chdir(wd) == 0)
                return;
        if (errno != ENOENT || !may_create)
                sync_die("workdir '%s'", wd);
        snprintf(path, sizeof(path), "%s/", wd);
        mkdir_parents(path);
        sync_must(chdir(wd), "workdir '%s'", wd);
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
                sync_die("out of memory");
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
                sync_die("out of memory");
        argv[0] = "forge-init";
        i = 1;
        if (cfg->tty)
                argv[i++] = "-t";
        argv[i++] = "--";
        memcpy(argv + i, cfg->argv, n * sizeof(char *));
        errno = 0;
        syscall(SYS_execveat, INIT_FD, "", (char *const *)argv, env, AT_EMPTY_PATH);
        sync_die("execute forge-init");
}

static void check(int r, const char *what)
{
        if (r < 0) {
                errno = -r;
                sync_die("%s", what);
        }
}

/* The root: overlay, volumes, pivot_root, then the API file systems. */
static void build_root(setup_args *a, int *volume_fds)
{
        sync_msg go;

        sync_must(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make mounts private");
        mount_root(a, volume_fds);
        mount_volumes(a->rootfs, a->cfg, a->n_provided, volume_fds);
        pivot(a->rootfs);
        api_dir("/proc");
        api_dir("/dev");
        api_dir("/sys");
        sync_must(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
                  "mount /proc");
        make_dev();
        /* forge has put us into the cgroup meanwhile: the cgroup namespace
         * is rooted there, and the cgroup file systems below show it */
        if (sync_recv(SYNC_FD, &go, NULL) != 1 || go.type != SYNC_GO)
                _exit(125);
        sync_must(unshare(CLONE_NEWCGROUP), "new cgroup namespace");
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
                sync_must(mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL),
                          "make the root file system read-only");
        check(ctr_caps_bounding_drop(cfg->caps), "drop capabilities");
        sync_must(setgroups(ids->n_groups, ids->groups), "setgroups");
        sync_must(setresgid(ids->gid, ids->gid, ids->gid), "setgid %u", (unsigned)ids->gid);
        sync_must(setresuid(ids->uid, ids->uid, ids->uid), "setuid %u", (unsigned)ids->uid);
        check(ctr_caps_apply(cfg->caps, ids->uid == 0), "set capabilities");
        /* cleared by the credential change */
        sync_must(prctl(PR_SET_PDEATHSIG, SIGKILL), "set the parent death signal");
        enter_workdir(cfg->workdir, false);
        sync_must(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs");
        check(ctr_seccomp_install(), "install the seccomp filter");
}

/* First of all (cgroup v1): into the run's cgroups, by writing "0" to their
 * tasks files (we are single-threaded: the thread is the process). Returns
 * the errno, reported once the sync fd is in place. */
static int cgroup_join_self(setup_args *a)
{
        int e = 0;

        for (size_t i = 0; i < a->n_cgroup_tasks; i++) {
                if (e == 0 && write(a->cgroup_tasks[i], "0", 1) != 1)
                        e = errno ? errno : EIO;
                close(a->cgroup_tasks[i]);
        }
        return e;
}

int setup_child_main(void *arg)
{
        setup_args *a = arg;
        const runtime_config *cfg = a->cfg;
        const char *hostname = cfg->hostname ? cfg->hostname : "forge";
        int volume_fds[64], join_e;
        sigset_t none;
        user_ids ids;
        char **env;

        if (cfg->n_mounts > sizeof(volume_fds) / sizeof(volume_fds[0])) {
                errno = 0;
                sync_die("too many volumes (at most 64)");
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Our own session: kill(0, ...) in the container must not reach forge's
         * process group on the host. */
        setsid();
        join_e = cgroup_join_self(a);
        arrange_fds(a, volume_fds);
        if (join_e != 0) {
                errno = join_e;
                sync_die("join the run's cgroup");
        }
        build_root(a, volume_fds);
        sync_must(sethostname(hostname, strlen(hostname)), "set the hostname '%s'", hostname);
        if (!cfg->network_host)
                loopback_up();
        set_user(cfg, &ids);
        env = workload_env(cfg, &ids, hostname);
        if (cfg->tty)
                setup_tty(ids.uid);
        if (!cfg->read_only)
                enter_workdir(cfg->workdir, true);
        check(made_write(a->made_fd), "report the mount points made");
        drop_privileges(cfg, &ids);
        /* forge blocks the forwarded signals; the workload must not inherit
         * that (forge-init blocks them again for itself) */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        exec_init(cfg, env);
        return 125;
}
