/* SPDX-License-Identifier: MIT */
/*
 * forge-vminit: PID 1 of a forge VM (static; /init of the initramfs).
 *
 * 1. mounts /proc, /sys, /dev (devtmpfs); loads the modules listed in
 *    /modules/order (finit_module) that the VM's devices need (load_modules);
 * 2. finds the root partition by its GPT name (forge.root=NAME on the kernel
 *    command line, default "forge-root"), waiting for it up to 30 s; mounts it
 *    (read-only with forge.ro=1) and switches root into it; mounts the
 *    shared directories of forge.fs (virtio-fs tags);
 * 3. reads the run configuration /.forge/run written by `forge export
 *    --format disk`, applies forge.args / forge.env from the command line
 *    (both decoded by common/vmproto.c, docs/vm-protocol.md), sets hostname,
 *    user, workdir;
 * 4. runs the workload, supervised (init_supervise: zombies reaped, signals
 *    forwarded); reports "FORGE-EXIT: N" on the console and N on I/O port
 *    0xf4; syncs and powers off.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/vmproto.h"
#include "runtime/init/supervise.h"
#include "runtime/init/vm-net.h"
#include "runtime/init/vmctl-guest.h"

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
        va_list ap;
        fprintf(stderr, "forge-vminit: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* forge's own launcher takes the status from the port alone: no marker line */
static bool under_forge;

/*
 * forge.bootstat=1 (bench/vm-boot.sh): one line on the console at the end,
 * "forge-vminit: bootstat kernel_init=S init=S modules=S root=S workload=S
 * exit=S", CLOCK_BOOTTIME seconds (the kernel's clock: printk times are on
 * the same scale); kernel_init is the printk time of the kernel's "Run /init"
 * message, read back from /dev/kmsg.
 */
enum { ST_INIT, ST_MODULES, ST_ROOT, ST_WORKLOAD, ST_EXIT, ST_N };
static const char *const stamp_names[ST_N] = {"init", "modules", "root", "workload", "exit"};
static struct timespec stamps[ST_N];
static bool bootstat;

static void stamp(int which)
{
        clock_gettime(CLOCK_BOOTTIME, &stamps[which]);
}

/* The printk time (µs) of the kernel's "Run /init as init process", or -1. */
static long long kmsg_init_time(void)
{
        char rec[2048];
        long long t = -1;
        int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -1;
        /* records: "PRIO,SEQ,USEC,FLAGS;TEXT\n"; EPIPE: some were
         * overwritten, read on; EAGAIN at the end */
        while (t < 0) {
                char *text;

                n = read(fd, rec, sizeof(rec) - 1);
                if (n < 0 && errno == EPIPE)
                        continue;
                if (n <= 0)
                        break;
                rec[n] = '\0';
                text = strchr(rec, ';');
                if (text && strncmp(text + 1, "Run /init as init process", 25) == 0 &&
                    sscanf(rec, "%*d,%*u,%lld", &t) != 1)
                        t = -1;
        }
        close(fd);
        return t;
}

static void bootstat_print(void)
{
        char line[512];
        long long k;
        int n;

        stamp(ST_EXIT);
        k = kmsg_init_time();
        /* one write: kernel messages (--verbose) do not cut the line */
        if (k >= 0)
                n = snprintf(line, sizeof(line), "forge-vminit: bootstat kernel_init=%lld.%06lld",
                             k / 1000000, k % 1000000);
        else
                n = snprintf(line, sizeof(line), "forge-vminit: bootstat kernel_init=-");
        for (int i = 0; i < ST_N && n > 0 && (size_t)n < sizeof(line); i++)
                n += snprintf(line + n, sizeof(line) - (size_t)n, " %s=%lld.%06ld", stamp_names[i],
                              (long long)stamps[i].tv_sec, stamps[i].tv_nsec / 1000);
        fprintf(stderr, "%s\n", line);
}

static void __attribute__((noreturn)) finish(int status)
{
        if (bootstat)
                bootstat_print();
        if (!under_forge)
                printf("FORGE-EXIT: %d\n", status);
        fflush(stdout);
        fflush(stderr);
        sync();
        if (ioperm(VMPROTO_EXIT_PORT, 1, 1) == 0)
                outb((unsigned char)status, VMPROTO_EXIT_PORT);
        reboot(RB_POWER_OFF);
        for (;;)
                pause();
}

static void __attribute__((noreturn)) fatal(const char *what)
{
        msg("%s: %s", what, strerror(errno));
        finish(125);
}

static char *read_text(const char *path, size_t max)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        char *buf;
        ssize_t n;
        size_t len = 0;

        if (fd < 0)
                return NULL;
        buf = malloc(max + 1);
        if (buf == NULL) {
                close(fd);
                return NULL;
        }
        while (len < max && (n = read(fd, buf + len, max - len)) > 0)
                len += (size_t)n;
        close(fd);
        buf[len] = '\0';
        return buf;
}

/*
 * The modules of /modules/order (dependencies first) are loaded in two steps,
 * so that a boot loads only what its devices need. First every module this
 * table does not name (virtio and virtio_blk: the root disk); then each named
 * one when its device is there: a virtio device of that type (virtio_pci has
 * probed by then: its devices are in /sys/bus/virtio), or, for the disk
 * drivers of other launchers (IDE/SCSI), when no root partition has appeared
 * (mount_root). Unknown modules are loaded as before, in the first step.
 */
#define VIRTIO_NET 1
#define VIRTIO_CONSOLE 3
#define VIRTIO_FS 26
#define WHEN_NO_ROOT (-1)
static const struct {
        const char *name;
        int when; /* a virtio device type, or WHEN_NO_ROOT */
} deferred_mods[] = {
    {"failover", VIRTIO_NET},      {"net_failover", VIRTIO_NET},
    {"virtio_net", VIRTIO_NET},    {"fuse", VIRTIO_FS},
    {"virtiofs", VIRTIO_FS},       {"virtio_console", VIRTIO_CONSOLE},
    {"scsi_common", WHEN_NO_ROOT}, {"scsi_mod", WHEN_NO_ROOT},
    {"libata", WHEN_NO_ROOT},      {"ata_piix", WHEN_NO_ROOT},
    {"ata_generic", WHEN_NO_ROOT}, {"sd_mod", WHEN_NO_ROOT},
};
#define NO_DEFERRAL (-2)

/* "NN-NAME.ko" (vmimage/kernel.c) -> its deferred_mods condition */
static int module_when(const char *file)
{
        const char *name = strchr(file, '-');
        size_t len;

        name = name ? name + 1 : file;
        len = strcspn(name, ".");
        for (size_t i = 0; i < sizeof(deferred_mods) / sizeof(deferred_mods[0]); i++)
                if (strlen(deferred_mods[i].name) == len &&
                    strncmp(deferred_mods[i].name, name, len) == 0)
                        return deferred_mods[i].when;
        return NO_DEFERRAL;
}

/* Is there a virtio device of this type (/sys/bus/virtio/devices/N/device)? */
static bool virtio_present(int type)
{
        DIR *d = opendir("/sys/bus/virtio/devices");
        struct dirent *de;
        bool found = false;

        if (d == NULL)
                return false;
        while (!found && (de = readdir(d)) != NULL) {
                char path[512], *id;
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s/device", de->d_name);
                id = read_text(path, 64);
                found = id && strtol(id, NULL, 0) == type;
                free(id);
        }
        closedir(d);
        return found;
}

static void load_module(const char *file)
{
        char path[512];
        int fd;

        snprintf(path, sizeof(path), "/modules/%s", file);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST))
                msg("load module %s: %s", file, strerror(errno));
        if (fd >= 0)
                close(fd);
}

/* step: 0 the modules nothing defers, 1 those whose virtio device is there,
 * 2 the WHEN_NO_ROOT ones */
static void load_modules(int step)
{
        char *order = read_text("/modules/order", 1 << 16);
        char *line, *save = NULL;
        bool have[64] = {false}, known[64] = {false};

        if (order == NULL)
                return;
        for (line = strtok_r(order, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                int when = module_when(line);
                bool load;

                if (step == 0)
                        load = when == NO_DEFERRAL;
                else if (step == 2)
                        load = when == WHEN_NO_ROOT;
                else if (when > 0 && when < 64) {
                        if (!known[when]) {
                                have[when] = virtio_present(when);
                                known[when] = true;
                        }
                        load = have[when];
                } else {
                        load = false;
                }
                if (load)
                        load_module(line);
        }
        free(order);
}

/* /dev/NAME of the partition whose GPT name is want, or NULL. */
static char *find_partition(const char *want)
{
        DIR *d = opendir("/sys/class/block");
        struct dirent *de;
        char *found = NULL;

        if (d == NULL)
                return NULL;
        while (!found && (de = readdir(d)) != NULL) {
                char path[512], *ue, *pn;
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/sys/class/block/%s/uevent", de->d_name);
                ue = read_text(path, 4096);
                if (ue == NULL)
                        continue;
                pn = strstr(ue, "PARTNAME=");
                if (pn) {
                        size_t len = strcspn(pn + 9, "\n");
                        if (len == strlen(want) && strncmp(pn + 9, want, len) == 0 &&
                            asprintf(&found, "/dev/%s", de->d_name) < 0)
                                found = NULL;
                }
                free(ue);
        }
        closedir(d);
        return found;
}

static void mount_root(const vmproto_run *run)
{
        const char *name = run->root ? run->root : VMPROTO_ROOT_NAME;
        char *dev = NULL;

        dev = find_partition(name);
        if (dev == NULL)
                load_modules(2); /* not a virtio disk: IDE or SCSI */
        /* 30 s: 100 ms steps after the first 100 of 1 ms (a disk that is
         * still probing is usually there within a few) */
        for (int i = 0; i < 400 && dev == NULL; i++) {
                struct timespec ts = {0, (i < 100 ? 1 : 100) * 1000 * 1000};

                nanosleep(&ts, NULL);
                dev = find_partition(name);
        }
        if (dev == NULL) {
                errno = ENODEV;
                msg("no partition named '%s' appeared within 30 s (disk driver missing?)", name);
                finish(125);
        }
        mkdir("/newroot", 0755);
        if (mount(dev, "/newroot", "ext4", run->read_only ? MS_RDONLY : 0, NULL) < 0)
                fatal("mount the root file system");
        free(dev);
        /* switch_root: the initramfs is left behind (it's small) */
        if (chdir("/newroot") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
            chdir("/") < 0)
                fatal("switch to the root file system");
}

/* forge.net=...: --network user (vm-net.c); a failure ends the run (125) */
static void setup_network(const char *spec, const char *hostname)
{
        char name[65] = "", err[256];

        if (spec == NULL)
                return;
        if (hostname == NULL)
                gethostname(name, sizeof(name) - 1);
        if (vm_net_setup(spec, hostname ? hostname : name, err, sizeof(err)) < 0) {
                msg("network: %s", err);
                finish(125);
        }
}

/* mkdir -p, in the guest's own root */
static int make_dirs(const char *path)
{
        char *p = strdup(path);

        if (p == NULL)
                return -1;
        for (char *s = p + 1;; s++) {
                if (*s == '/' || *s == '\0') {
                        char c = *s;
                        *s = '\0';
                        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                                free(p);
                                return -1;
                        }
                        *s = c;
                        if (c == '\0')
                                break;
                }
        }
        free(p);
        return 0;
}

/* forge.fs=HEX: TAG, DST, ro|rw triples; each virtio-fs tag mounted at DST.
 * The device may still be probing when the module is loaded: retried. */
static void mount_shares(const vmproto_run *run)
{
        for (size_t i = 0; i < run->n_shares; i++) {
                const vmproto_share *sh = &run->shares[i];
                unsigned long flags = (sh->ro ? MS_RDONLY : 0) | MS_NOSUID | MS_NODEV;
                int r = -1;

                if (make_dirs(sh->path) < 0) {
                        msg("shared directory: cannot create the mount point '%s': %s", sh->path,
                            strerror(errno));
                        finish(125);
                }
                for (int t = 0; t < 100 && r < 0; t++) {
                        r = mount(sh->tag, sh->path, "virtiofs", flags, NULL);
                        if (r < 0 && errno != ENOENT && errno != ENODEV)
                                break;
                        if (r < 0) {
                                struct timespec ts = {0, 50 * 1000 * 1000};
                                nanosleep(&ts, NULL);
                        }
                }
                if (r < 0) {
                        msg("mount shared directory '%s' at '%s': %s", sh->tag, sh->path,
                            strerror(errno));
                        finish(125);
                }
        }
}

static void mount_api(void)
{
        mkdir("/proc", 0555);
        mkdir("/sys", 0555);
        mkdir("/dev", 0755);
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
}

/* The image's run configuration (/.forge/run) with the command line's
 * overrides applied: what the workload runs with. */
static void read_runcfg(const vmproto_run *run, vmproto_image *ret)
{
        char *txt = read_text(VMPROTO_RUN_FILE, VMPROTO_RUN_FILE_MAX + 1);
        const char *bad;

        if (txt == NULL)
                fatal("read " VMPROTO_RUN_FILE " (not a forge disk image?)");
        if (vmproto_image_decode(txt, ret, &bad) < 0) {
                msg("malformed " VMPROTO_RUN_FILE ": %s: %s", bad ? bad : "", strerror(errno));
                finish(125);
        }
        free(txt);
        if (vmproto_image_apply(ret, run) < 0)
                fatal("apply the kernel command line");
}

/* The user as the container runtime resolves it (runtime/user.c), from the
 * image's /etc/passwd and /etc/group: NAME or UID, optionally :GROUP or :GID;
 * supplementary groups are the primary group plus every group listing the
 * user by name. */
#define MAX_GROUPS 64
typedef struct ids {
        uid_t uid;
        gid_t gid;
        gid_t groups[MAX_GROUPS];
        size_t n_groups;
} ids;

static size_t split_fields(char *line, char **f, size_t max)
{
        size_t n = 0;
        line[strcspn(line, "\n")] = '\0';
        f[n++] = line;
        for (char *p = line; *p && n < max; p++)
                if (*p == ':') {
                        *p = '\0';
                        f[n++] = p + 1;
                }
        return n;
}

static bool numeric(const char *s)
{
        if (*s == '\0')
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char)*s))
                        return false;
        return true;
}

static bool in_list(const char *list, const char *name)
{
        size_t len = strlen(name);
        for (const char *p = list; p && *p;) {
                size_t l = strcspn(p, ",");
                if (l == len && strncmp(p, name, len) == 0)
                        return true;
                p += l;
                if (*p == ',')
                        p++;
        }
        return false;
}

static int lookup_user(const char *spec, ids *r)
{
        char *copy = strdup(spec), *grp = strchr(copy, ':');
        char line[4096], name[256] = "";
        char *fld[8];
        FILE *f;
        bool found = false;

        if (grp)
                *grp++ = '\0';
        r->uid = 0;
        r->gid = 0;
        f = fopen("/etc/passwd", "re");
        while (f && fgets(line, sizeof(line), f)) {
                if (split_fields(line, fld, 8) < 4 || !numeric(fld[2]) || !numeric(fld[3]))
                        continue;
                if (numeric(copy) ? strtoul(fld[2], NULL, 10) == strtoul(copy, NULL, 10)
                                  : strcmp(fld[0], copy) == 0) {
                        r->uid = (uid_t)strtoul(fld[2], NULL, 10);
                        r->gid = (gid_t)strtoul(fld[3], NULL, 10);
                        snprintf(name, sizeof(name), "%s", fld[0]);
                        found = true;
                        break;
                }
        }
        if (f)
                fclose(f);
        if (!found) {
                if (!numeric(copy)) {
                        msg("user '%s' not found in the image's /etc/passwd", copy);
                        free(copy);
                        return -1;
                }
                r->uid = (uid_t)strtoul(copy, NULL, 10);
        }
        f = fopen("/etc/group", "re");
        if (grp && numeric(grp)) {
                r->gid = (gid_t)strtoul(grp, NULL, 10);
        } else if (grp) {
                found = false;
                while (f && !found && fgets(line, sizeof(line), f))
                        if (split_fields(line, fld, 8) >= 3 && strcmp(fld[0], grp) == 0 &&
                            numeric(fld[2])) {
                                r->gid = (gid_t)strtoul(fld[2], NULL, 10);
                                found = true;
                        }
                if (!found) {
                        msg("group '%s' not found in the image's /etc/group", grp);
                        if (f)
                                fclose(f);
                        free(copy);
                        return -1;
                }
        }
        r->groups[0] = r->gid;
        r->n_groups = 1;
        if (f && name[0]) {
                rewind(f);
                while (fgets(line, sizeof(line), f) && r->n_groups < MAX_GROUPS) {
                        if (split_fields(line, fld, 8) < 4 || !numeric(fld[2]) ||
                            (gid_t)strtoul(fld[2], NULL, 10) == r->gid)
                                continue;
                        if (in_list(fld[3], name))
                                r->groups[r->n_groups++] = (gid_t)strtoul(fld[2], NULL, 10);
                }
        }
        if (f)
                fclose(f);
        free(copy);
        return 0;
}

/*
 * The console. Interactive (-t, forge.tty=1): the tty's normal cooked mode,
 * sized as the host terminal (forge.rows, forge.cols). Otherwise the console
 * carries the workload's stdin and stdout byte for byte: no echo, no signal
 * characters, no CR/NL translation; canonical mode stays so that the ^D the
 * launcher sends at the end of its stdin is end-of-file here.
 */
static void setup_console(const vmproto_run *run)
{
        struct termios t;

        if (run->tty) {
                if (run->rows && run->cols) {
                        struct winsize ws = {.ws_row = (unsigned short)run->rows,
                                             .ws_col = (unsigned short)run->cols};
                        ioctl(0, TIOCSWINSZ, &ws);
                }
        } else if (tcgetattr(0, &t) == 0) {
                t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ISIG | IEXTEN);
                t.c_lflag |= ICANON;
                t.c_iflag &= ~(tcflag_t)(ICRNL | INLCR | IGNCR | IXON | IXOFF);
                t.c_oflag &= ~(tcflag_t)OPOST;
                tcsetattr(0, TCSANOW, &t);
        }
}

/*
 * Under forge's launcher, SIGINT/SIGTERM given to forge on the host reach the
 * workload: a small child polls the launcher's control port and signals PID 1,
 * which forwards to the workload like any other signal.
 */
static void start_signal_poller(void)
{
        pid_t pid;

        if (!under_forge)
                return;
        pid = fork();
        if (pid != 0)
                return;
        init_signals_restore();
        if (ioperm(VMPROTO_CTL_PORT, 2, 1) < 0)
                _exit(0);
        for (;;) {
                struct timespec ts = {0, 50 * 1000 * 1000};
                unsigned sig;

                nanosleep(&ts, NULL);
                sig = inb(VMPROTO_CTL_SIG_PORT);
                if (sig > 0 && sig < 65)
                        kill(1, (int)sig);
        }
}

/* `forge exec` in a detached VM (vmctl-guest.c): users as for the workload */
static int resolve_for_exec(const char *user, vmctl_ids *ret)
{
        ids id = {.n_groups = 1};

        if (lookup_user(user, &id) < 0)
                return -1;
        ret->uid = id.uid;
        ret->gid = id.gid;
        ret->n_groups = id.n_groups < 64 ? id.n_groups : 64;
        memcpy(ret->groups, id.groups, ret->n_groups * sizeof(gid_t));
        return 0;
}

static void __attribute__((noreturn)) exec_workload(const vmproto_image *rc, const ids *id)
{
        init_signals_restore();
        setsid();
        ioctl(0, TIOCSCTTY, 0);
        if (setgroups(id->n_groups, id->groups) < 0 || setgid(id->gid) < 0 || setuid(id->uid) < 0) {
                msg("set user %u:%u: %s", (unsigned)id->uid, (unsigned)id->gid, strerror(errno));
                _exit(125);
        }
        if (rc->workdir && chdir(rc->workdir) < 0) {
                msg("workdir '%s': %s", rc->workdir, strerror(errno));
                _exit(125);
        }
        execvpe(rc->argv[0], rc->argv, rc->env ? rc->env : (char *[]){NULL});
        msg("exec '%s': %s", rc->argv[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
}

/* The forge.* words of the kernel command line; a malformed one ends the run */
static void read_cmdline(vmproto_run *ret)
{
        char *cmdline = read_text("/proc/cmdline", VMPROTO_CMDLINE_MAX + 1);
        const char *bad;

        if (cmdline == NULL)
                fatal("read /proc/cmdline");
        if (vmproto_run_decode(cmdline, ret, &bad) < 0) {
                msg("kernel command line: %s%s%s", bad ? "malformed " : "", bad ? bad : "",
                    errno == E2BIG ? ": too long" : "");
                finish(125);
        }
        free(cmdline);
}

/* the API file systems of the new root */
static void mount_run_dirs(void)
{
        mount_api();
        mkdir("/dev/pts", 0755);
        mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666");
        mkdir("/tmp", 01777);
        mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
        mkdir("/run", 0755);
        mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
}

int main(int argc, char **argv)
{
        vmproto_run run;
        vmproto_image rc;
        ids id = {.n_groups = 1};
        pid_t child;

        (void)argc;
        (void)argv;
        stamp(ST_INIT);
        if (getpid() != 1) {
                fprintf(stderr, "forge-vminit: must run as PID 1 of a VM\n");
                return 2;
        }
        mount_api();
        if (ioperm(VMPROTO_CTL_PORT, 2, 1) == 0) {
                under_forge = inb(VMPROTO_CTL_PORT) == VMPROTO_CTL_MAGIC;
                ioperm(VMPROTO_CTL_PORT, 2, 0); /* not inherited by the workload */
        }
        read_cmdline(&run);
        bootstat = run.bootstat;
        load_modules(0);
        load_modules(1);
        stamp(ST_MODULES);
        mount_root(&run);
        stamp(ST_ROOT);
        mount_run_dirs();
        mount_shares(&run);
        read_runcfg(&run, &rc);
        if (rc.argc == 0) {
                msg("nothing to run: the image has no entrypoint or cmd");
                finish(125);
        }
        if (rc.hostname && sethostname(rc.hostname, strlen(rc.hostname)) < 0)
                msg("set hostname: %s", strerror(errno));
        setup_network(run.net, rc.hostname);
        if (lookup_user(rc.user ? rc.user : "0", &id) < 0)
                finish(125);
        setup_console(&run);
        if (under_forge && ioperm(VMPROTO_CTL_PORT, 1, 1) == 0) {
                /* console ready: the launcher starts sending input */
                outb(VMPROTO_CTL_CONSOLE_READY, VMPROTO_CTL_PORT);
                ioperm(VMPROTO_CTL_PORT, 1, 0);
        }
        if (init_signals_block() < 0)
                fatal("block signals");
        start_signal_poller();
        {
                static vmctl_defaults d;

                d.env = rc.env;
                d.user = rc.user ? rc.user : "0";
                d.workdir = rc.workdir;
                d.resolve = resolve_for_exec;
                vmctl_server_start(&d);
        }
        fflush(stdout);
        stamp(ST_WORKLOAD);
        child = fork();
        if (child < 0)
                fatal("fork");
        if (child == 0)
                exec_workload(&rc, &id);
        finish(init_supervise(child));
}
