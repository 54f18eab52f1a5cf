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
 *    (docs/vm-protocol.md), sets hostname, user, workdir;
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

#include "runtime/init/supervise.h"
#include "runtime/init/vm-net.h"
#include "runtime/init/vmctl-guest.h"

#define MAX_ARGS 4096
#define EXIT_PORT 0xf4
#define CTL_PORT 0x4f4     /* reads 'F' under forge's own launcher */
#define CTL_SIG_PORT 0x4f5 /* a signal the host asks to forward, 0 for none */

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
        if (ioperm(EXIT_PORT, 1, 1) == 0)
                outb((unsigned char)status, EXIT_PORT);
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

/* Value of key=... on the kernel command line (malloc'd), or NULL. */
static char *cmdline_get(const char *cmdline, const char *key)
{
        size_t klen = strlen(key);
        const char *p = cmdline;

        while (p && *p) {
                while (*p == ' ' || *p == '\n')
                        p++;
                if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
                        const char *v = p + klen + 1;
                        size_t len = strcspn(v, " \n");
                        return strndup(v, len);
                }
                p = strchr(p, ' ');
        }
        return NULL;
}

/* Hex of NUL-joined strings -> NULL-terminated vector appended to *v. */
static int unhex_strv(const char *hex, char ***v, size_t *n)
{
        size_t len = strlen(hex), blen = len / 2, start = 0;
        unsigned char *bin;

        if (len % 2)
                return -1;
        bin = malloc(blen + 1);
        if (bin == NULL)
                return -1;
        for (size_t i = 0; i < blen; i++) {
                unsigned hi, lo;
                if (!isxdigit((unsigned char)hex[2 * i]) ||
                    !isxdigit((unsigned char)hex[2 * i + 1]))
                        return free(bin), -1;
                hi = (unsigned)(isdigit((unsigned char)hex[2 * i])
                                    ? hex[2 * i] - '0'
                                    : (tolower(hex[2 * i]) - 'a' + 10));
                lo = (unsigned)(isdigit((unsigned char)hex[2 * i + 1])
                                    ? hex[2 * i + 1] - '0'
                                    : (tolower(hex[2 * i + 1]) - 'a' + 10));
                bin[i] = (unsigned char)(hi << 4 | lo);
        }
        bin[blen] = '\0';
        for (size_t i = 0; i <= blen && blen > 0; i++) {
                if (i == blen || bin[i] == '\0') {
                        if (*n + 2 > MAX_ARGS)
                                return free(bin), -1;
                        *v = realloc(*v, (*n + 2) * sizeof(char *));
                        (*v)[(*n)++] = strndup((char *)bin + start, i - start);
                        (*v)[*n] = NULL;
                        start = i + 1;
                }
        }
        free(bin);
        return 0;
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

static void mount_root(const char *cmdline)
{
        char *name = cmdline_get(cmdline, "forge.root");
        char *ro = cmdline_get(cmdline, "forge.ro");
        bool read_only = ro && strcmp(ro, "1") == 0;
        char *dev = NULL;

        free(ro);
        if (name == NULL)
                name = strdup("forge-root");
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
        if (mount(dev, "/newroot", "ext4", read_only ? MS_RDONLY : 0, NULL) < 0)
                fatal("mount the root file system");
        free(dev);
        free(name);
        /* switch_root: the initramfs is left behind (it's small) */
        if (chdir("/newroot") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
            chdir("/") < 0)
                fatal("switch to the root file system");
}

/* forge.net=...: --network user (vm-net.c); a failure ends the run (125) */
static void setup_network(const char *cmdline, const char *hostname)
{
        char *spec = cmdline_get(cmdline, "forge.net"), err[256];
        char name[65] = "";

        if (spec == NULL)
                return;
        if (hostname == NULL)
                gethostname(name, sizeof(name) - 1);
        if (vm_net_setup(spec, hostname ? hostname : name, err, sizeof(err)) < 0) {
                msg("network: %s", err);
                finish(125);
        }
        free(spec);
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
static void mount_shares(const char *cmdline)
{
        char *hex = cmdline_get(cmdline, "forge.fs");
        char **v = NULL;
        size_t n = 0;

        if (hex == NULL)
                return;
        if (unhex_strv(hex, &v, &n) < 0 || n % 3 != 0) {
                errno = EINVAL;
                fatal("malformed forge.fs");
        }
        for (size_t i = 0; i + 2 < n; i += 3) {
                unsigned long flags = strcmp(v[i + 2], "ro") == 0 ? MS_RDONLY : 0;
                int r = -1;

                if (v[i + 1][0] != '/' || make_dirs(v[i + 1]) < 0) {
                        msg("shared directory: cannot create the mount point '%s': %s", v[i + 1],
                            strerror(errno));
                        finish(125);
                }
                for (int t = 0; t < 100 && r < 0; t++) {
                        r = mount(v[i], v[i + 1], "virtiofs", flags | MS_NOSUID | MS_NODEV, NULL);
                        if (r < 0 && errno != ENOENT && errno != ENODEV)
                                break;
                        if (r < 0) {
                                struct timespec ts = {0, 50 * 1000 * 1000};
                                nanosleep(&ts, NULL);
                        }
                }
                if (r < 0) {
                        msg("mount shared directory '%s' at '%s': %s", v[i], v[i + 1],
                            strerror(errno));
                        finish(125);
                }
        }
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
        free(hex);
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

typedef struct runcfg {
        char **argv;
        size_t argc;
        char **env;
        size_t envc;
        char *workdir, *user, *hostname;
} runcfg;

static void read_runcfg(runcfg *rc)
{
        char *txt = read_text("/.forge/run", 1 << 20), *line, *save = NULL;

        if (txt == NULL)
                fatal("read /.forge/run (not a forge disk image?)");
        for (line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (strncmp(line, "argv=", 5) == 0)
                        unhex_strv(line + 5, &rc->argv, &rc->argc);
                else if (strncmp(line, "env=", 4) == 0)
                        unhex_strv(line + 4, &rc->env, &rc->envc);
                else if (strncmp(line, "workdir=", 8) == 0)
                        rc->workdir = strdup(line + 8);
                else if (strncmp(line, "user=", 5) == 0)
                        rc->user = strdup(line + 5);
                else if (strncmp(line, "hostname=", 9) == 0)
                        rc->hostname = strdup(line + 9);
        }
        free(txt);
}

/* forge.args replaces cmd: the entrypoint's argument count is in /.forge/run
 * as entrypoint=N. */
/* key=HEX (one string) replaces *field: --user, --workdir, --hostname */
static void override_str(const char *cmdline, const char *key, char **field)
{
        char *hex = cmdline_get(cmdline, key);
        char **v = NULL;
        size_t n = 0;

        if (hex == NULL)
                return;
        if (unhex_strv(hex, &v, &n) < 0 || n != 1) {
                msg("ignoring a malformed %s", key);
        } else {
                free(*field);
                *field = v[0];
                v[0] = NULL;
        }
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
        free(hex);
}

static void apply_cmdline(runcfg *rc, const char *cmdline)
{
        char *args = cmdline_get(cmdline, "forge.args");
        char *env = cmdline_get(cmdline, "forge.env");
        char *txt = read_text("/.forge/run", 1 << 20);
        char *ep = txt ? strstr(txt, "\nentrypoint=") : NULL;
        size_t keep = ep ? (size_t)strtoul(ep + 12, NULL, 10) : 0;
        char *entry = cmdline_get(cmdline, "forge.entrypoint");

        /* --entrypoint: replaces the image's entrypoint and drops its cmd */
        if (entry != NULL) {
                for (size_t i = 0; i < rc->argc; i++)
                        free(rc->argv[i]);
                rc->argc = 0;
                if (rc->argv)
                        rc->argv[0] = NULL;
                if (unhex_strv(entry, &rc->argv, &rc->argc) < 0 || rc->argc != 1)
                        msg("ignoring a malformed forge.entrypoint");
                keep = rc->argc;
                free(entry);
        }
        if (args != NULL) {
                if (keep > rc->argc)
                        keep = rc->argc;
                for (size_t i = keep; i < rc->argc; i++)
                        free(rc->argv[i]);
                rc->argc = keep;
                if (rc->argv)
                        rc->argv[keep] = NULL;
                if (unhex_strv(args, &rc->argv, &rc->argc) < 0)
                        msg("ignoring a malformed forge.args");
        }
        if (env != NULL) {
                char **over = NULL;
                size_t n = 0;
                if (unhex_strv(env, &over, &n) < 0) {
                        msg("ignoring a malformed forge.env");
                        n = 0;
                }
                /* K=V replaces the image's K, else is appended */
                for (size_t i = 0; i < n; i++) {
                        size_t klen = strcspn(over[i], "=");
                        bool replaced = false;
                        for (size_t j = 0; j < rc->envc && !replaced; j++)
                                if (strncmp(rc->env[j], over[i], klen) == 0 &&
                                    rc->env[j][klen] == '=') {
                                        free(rc->env[j]);
                                        rc->env[j] = over[i];
                                        replaced = true;
                                }
                        if (!replaced) {
                                char **nv = realloc(rc->env, (rc->envc + 2) * sizeof(char *));
                                if (nv == NULL) {
                                        free(over[i]);
                                        continue;
                                }
                                rc->env = nv;
                                rc->env[rc->envc++] = over[i];
                                rc->env[rc->envc] = NULL;
                        }
                }
                free(over);
        }
        override_str(cmdline, "forge.user", &rc->user);
        override_str(cmdline, "forge.workdir", &rc->workdir);
        override_str(cmdline, "forge.hostname", &rc->hostname);
        free(args);
        free(env);
        free(txt);
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
static void setup_console(const char *cmdline)
{
        char *tty = cmdline_get(cmdline, "forge.tty");
        struct termios t;

        if (tty && strcmp(tty, "1") == 0) {
                char *rows = cmdline_get(cmdline, "forge.rows"),
                     *cols = cmdline_get(cmdline, "forge.cols");
                if (rows && cols) {
                        struct winsize ws = {.ws_row = (unsigned short)strtoul(rows, NULL, 10),
                                             .ws_col = (unsigned short)strtoul(cols, NULL, 10)};
                        ioctl(0, TIOCSWINSZ, &ws);
                }
                free(rows);
                free(cols);
        } else if (tcgetattr(0, &t) == 0) {
                t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ISIG | IEXTEN);
                t.c_lflag |= ICANON;
                t.c_iflag &= ~(tcflag_t)(ICRNL | INLCR | IGNCR | IXON | IXOFF);
                t.c_oflag &= ~(tcflag_t)OPOST;
                tcsetattr(0, TCSANOW, &t);
        }
        free(tty);
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
        if (ioperm(CTL_PORT, 2, 1) < 0)
                _exit(0);
        for (;;) {
                struct timespec ts = {0, 50 * 1000 * 1000};
                unsigned sig;

                nanosleep(&ts, NULL);
                sig = inb(CTL_SIG_PORT);
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

static void __attribute__((noreturn)) exec_workload(runcfg *rc, const ids *id)
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

int main(int argc, char **argv)
{
        runcfg rc = {0};
        char *cmdline;
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
        if (ioperm(CTL_PORT, 2, 1) == 0) {
                under_forge = inb(CTL_PORT) == 'F';
                ioperm(CTL_PORT, 2, 0); /* not inherited by the workload */
        }
        cmdline = read_text("/proc/cmdline", 8192);
        if (cmdline == NULL)
                fatal("read /proc/cmdline");
        {
                char *bs = cmdline_get(cmdline, "forge.bootstat");
                bootstat = bs && strcmp(bs, "1") == 0;
                free(bs);
        }
        load_modules(0);
        load_modules(1);
        stamp(ST_MODULES);
        mount_root(cmdline);
        stamp(ST_ROOT);
        mount_api();
        mkdir("/dev/pts", 0755);
        mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666");
        mkdir("/tmp", 01777);
        mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
        mkdir("/run", 0755);
        mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
        mount_shares(cmdline);
        read_runcfg(&rc);
        apply_cmdline(&rc, cmdline);
        if (rc.argc == 0) {
                msg("nothing to run: the image has no entrypoint or cmd");
                finish(125);
        }
        if (rc.hostname && sethostname(rc.hostname, strlen(rc.hostname)) < 0)
                msg("set hostname: %s", strerror(errno));
        setup_network(cmdline, rc.hostname);
        if (lookup_user(rc.user ? rc.user : "0", &id) < 0)
                finish(125);
        setup_console(cmdline);
        if (under_forge && ioperm(CTL_PORT, 1, 1) == 0) {
                outb(1, CTL_PORT); /* console ready: the launcher starts sending input */
                ioperm(CTL_PORT, 1, 0);
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
