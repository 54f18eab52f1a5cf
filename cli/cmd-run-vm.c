/* SPDX-License-Identifier: MIT */
/*
 * forge run --as vm IMAGE|SPEC|DISK.img: boots the image's disk image (built
 * and cached in the store when needed) with forge's own KVM launcher. The
 * kernel, initramfs and command line come from the disk image itself; the
 * arguments and environment reach the guest init on the kernel command line
 * (docs/vm-protocol.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/run-opts.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/runtime.h"
#include "specs/specs.h"
#include "vmimage/vmimage.h"

#define MAX_ENV 256
#define MAX_SHARES 4 /* forge-vmm's VMM_MAX_FS */
#define DEFAULT_MEMORY (512ULL << 20)

typedef struct vm_opts {
        const char *env[MAX_ENV];
        size_t n_env;
        bool tty, persist, verbose, read_only;
        struct {
                char *src; /* resolved */
                char *dst;
                bool ro;
        } share[MAX_SHARES];
        size_t n_shares;
        const char *memory, *cpus, *timeout, *user, *workdir, *hostname, *network;
        runtime_port ports[RUNTIME_NET_MAX_PORTS];
        size_t n_ports;
} vm_opts;

static bool has_dotdot(const char *path)
{
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return true;
                p += n;
                p += strspn(p, "/");
        }
        return false;
}

/* A shared directory: SRC an existing host directory (a VM shares
 * directories, not files), DST absolute; `what` names it in messages. */
static int add_share(vm_opts *o, const char *src, const char *dst, bool ro, const char *what)
{
        struct stat st;

        if (o->n_shares >= MAX_SHARES) {
                fprintf(stderr, "forge run: '%s': a VM takes at most %d shared directories\n", what,
                        MAX_SHARES);
                return 125;
        }
        o->share[o->n_shares].src = realpath(src, NULL);
        if (o->share[o->n_shares].src == NULL || stat(o->share[o->n_shares].src, &st) < 0) {
                fprintf(stderr, "forge run: volume source of '%s': %s\n", what, strerror(errno));
                return 125;
        }
        if (!S_ISDIR(st.st_mode)) {
                fprintf(
                    stderr,
                    "forge run: volume source of '%s': a VM shares directories only, not files\n",
                    what);
                free(o->share[o->n_shares].src);
                return 125;
        }
        o->share[o->n_shares].dst = strdup(dst);
        if (o->share[o->n_shares].dst == NULL)
                return 125;
        o->share[o->n_shares].ro = ro;
        o->n_shares++;
        return 0;
}

/* -v SRC:DST[:ro|rw]: SRC an existing host directory, DST absolute */
static int parse_share(const char *arg, vm_opts *o)
{
        cleanup_free char *src = NULL, *dst = NULL;
        bool ro;

        if (cli_run_volume_split(arg, &src, &dst, &ro) < 0 || has_dotdot(dst))
                return cli_usage_error("run",
                                       "-v wants SRC:DST[:ro] with an absolute DST, got '%s'", arg);
        return add_share(o, src, dst, ro, arg);
}

/* The VM's options from the table's (run-opts.c): -v resolved, --network
 * checked for what a VM has. */
static int from_cli(const cli_run_opts *c, vm_opts *o)
{
        int r;

        if (c->network != NULL && strcmp(c->network, "host") == 0)
                return cli_usage_error("run", "--network host is for containers: a VM takes "
                                              "--network none or user");
        if (c->network != NULL && strcmp(c->network, "none") != 0 &&
            strcmp(c->network, "user") != 0)
                return cli_usage_error("run", "--network wants none or user for a VM, got '%s'",
                                       c->network);
        if (c->n_volumes > MAX_SHARES)
                return cli_usage_error("run", "a VM takes at most %d -v", MAX_SHARES);
        if (c->n_env > MAX_ENV)
                return cli_usage_error("run", "a VM takes at most %d -e", MAX_ENV);
        memcpy(o->env, c->env, c->n_env * sizeof(c->env[0]));
        o->n_env = c->n_env;
        memcpy(o->ports, c->ports, c->n_ports * sizeof(c->ports[0]));
        o->n_ports = c->n_ports;
        o->tty = c->tty;
        o->persist = c->persist;
        o->verbose = c->verbose;
        o->read_only = c->read_only;
        o->memory = c->memory;
        o->cpus = c->cpus;
        o->timeout = c->timeout;
        o->user = c->user;
        o->workdir = c->workdir;
        o->hostname = c->hostname;
        o->network = c->network;
        for (size_t i = 0; i < c->n_volumes; i++)
                if ((r = parse_share(c->volumes[i], o)) != 0)
                        return r;
        return 0;
}

/* " KEY=HEX" of NUL-joined strings */
static int append_hex(char **cmdline, const char *key, const char *const *v, size_t n)
{
        size_t len = strlen(*cmdline), extra = strlen(key) + 3;
        char *s, *p;

        for (size_t i = 0; i < n; i++)
                extra += 2 * (strlen(v[i]) + 1);
        s = realloc(*cmdline, len + extra);
        if (s == NULL)
                return -1;
        *cmdline = s;
        p = s + len;
        p += sprintf(p, " %s=", key);
        for (size_t i = 0; i < n; i++) {
                for (const char *c = v[i]; *c; c++)
                        p += sprintf(p, "%02x", (unsigned char)*c);
                if (i + 1 < n)
                        p += sprintf(p, "00");
        }
        return 0;
}

static int append_str(char **cmdline, const char *text)
{
        size_t len = strlen(*cmdline);
        char *s = realloc(*cmdline, len + strlen(text) + 1);

        if (s == NULL)
                return -1;
        strcpy(s + len, text);
        *cmdline = s;
        return 0;
}

/* forge.fs=HEX: TAG, DST, ro|rw for each share (docs/vm-protocol.md) */
static int append_shares(char **cmdline, const vm_opts *o)
{
        const char *v[3 * MAX_SHARES];
        char tags[MAX_SHARES][32];
        size_t n = 0;

        for (size_t i = 0; i < o->n_shares; i++) {
                snprintf(tags[i], sizeof(tags[i]), "forge%zu", i);
                v[n++] = tags[i];
                v[n++] = o->share[i].dst;
                v[n++] = o->share[i].ro ? "ro" : "rw";
        }
        return append_hex(cmdline, "forge.fs", v, n);
}

static int build_cmdline(const vm_opts *o, const char *base, char **args, int n_args, char **ret)
{
        cleanup_free char *c = strdup(base);
        char tty[96];

        /* a reset is a triple fault: no waiting on a keyboard controller that
         * isn't there; the console is the workload's: kernel messages only
         * when they are emergencies (a panic). The machine has one UART
         * (0x3f8): the 8250 driver probes no other legacy port
         * (bench/vm-boot.sh gives QEMU the same words) */
        if (c == NULL ||
            append_str(&c, o->verbose ? " reboot=t 8250.nr_uarts=1"
                                      : " reboot=t 8250.nr_uarts=1 quiet loglevel=1") < 0)
                return -1;
        /* FORGE_VMM_BOOTSTAT=1: forge-vmm and the guest init report their
         * timestamps on stderr (bench/vm-boot.sh, docs/vm.md) */
        if (getenv("FORGE_VMM_BOOTSTAT") != NULL && append_str(&c, " forge.bootstat=1") < 0)
                return -1;
        if (n_args > 0 &&
            append_hex(&c, "forge.args", (const char *const *)args, (size_t)n_args) < 0)
                return -1;
        if (o->n_env > 0 && append_hex(&c, "forge.env", o->env, o->n_env) < 0)
                return -1;
        /* --entrypoint (run-service.c) */
        if (cli_run_entrypoint() != NULL &&
            append_hex(&c, "forge.entrypoint", (const char *[]){cli_run_entrypoint()}, 1) < 0)
                return -1;
        if ((o->user && append_hex(&c, "forge.user", &o->user, 1) < 0) ||
            (o->workdir && append_hex(&c, "forge.workdir", &o->workdir, 1) < 0) ||
            (o->hostname && append_hex(&c, "forge.hostname", &o->hostname, 1) < 0))
                return -1;
        if (o->read_only && append_str(&c, " forge.ro=1") < 0)
                return -1;
        if (o->n_shares > 0 && append_shares(&c, o) < 0)
                return -1;
        if (o->network && strcmp(o->network, "user") == 0) {
                char net[96];

                /* the guest init configures eth0 from this (docs/vm-protocol.md) */
                snprintf(net, sizeof(net), " forge.net=%s/%d,%s,%s", RUNTIME_NET_ADDR,
                         RUNTIME_NET_PREFIX, RUNTIME_NET_GATEWAY, RUNTIME_NET_DNS);
                if (append_str(&c, net) < 0)
                        return -1;
        }
        if (o->tty) {
                struct winsize ws = {0};
                if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
                        snprintf(tty, sizeof(tty), " forge.tty=1 forge.rows=%u forge.cols=%u",
                                 ws.ws_row, ws.ws_col);
                else
                        snprintf(tty, sizeof(tty), " forge.tty=1");
                if (append_str(&c, tty) < 0)
                        return -1;
        }
        *ret = take_ptr(c);
        return 0;
}

/* The spec's container.mounts (shared directories, as the container gets
 * them), vm.network and vm.ports when a SPEC is run, unless the command line
 * gave them. As for containers, an image never carries them: the host-side
 * grants come only from the spec being run (docs/run.md). */
static int spec_vm_network(const char *path, vm_opts *o, forge_error **err)
{
        cleanup_spec spec *sp = NULL;

        if (spec_load(path, &sp, err) < 0)
                return -1;
        for (size_t i = 0; i < sp->container.n_mounts; i++) {
                const spec_mount *m = &sp->container.mounts[i];
                cleanup_free char *what = NULL;

                if (asprintf(&what, "%s:%d:%d: mounts", path, m->pos.line, m->pos.col) < 0)
                        return forge_error_make(err, ENOMEM, "mounts");
                if (add_share(o, m->src, m->dest, m->ro, what) != 0)
                        return forge_error_make(err, 0, "%s: cannot share '%s' with the VM", what,
                                                m->src);
        }
        if (o->network == NULL && sp->vm.network == SPEC_NETWORK_USER)
                o->network = "user";
        if (o->n_ports > 0 || o->network == NULL || strcmp(o->network, "user") != 0)
                return 0;
        for (char **p = sp->vm.ports; p && *p; p++) {
                if (o->n_ports >= RUNTIME_NET_MAX_PORTS)
                        return forge_error_usage(err, "more than %d vm.ports",
                                                 RUNTIME_NET_MAX_PORTS);
                if (runtime_port_parse(*p, &o->ports[o->n_ports], err) < 0)
                        return -1;
                o->n_ports++;
        }
        return 0;
}

/* The disk image to boot: the path itself, or the store's cached disk of an
 * image (a SPEC built first). */
static int find_disk(cli_ctx *ctx, const char *target, vm_opts *o, store **ret_store,
                     char **ret_path, forge_error **err)
{
        cleanup_store store *s = NULL;
        char digest[DIGEST_STR_SIZE];
        struct stat st;
        bool is_spec;

        if (stat(target, &st) == 0 && S_ISREG(st.st_mode) && !spec_path_named(target) &&
            vmimage_is_disk(target)) {
                *ret_path = strdup(target);
                return *ret_path ? 0 : forge_error_make(err, ENOMEM, "path");
        }
        if (cli_store_open(ctx, &s, err) < 0 || store_lock_shared(s, err) < 0)
                return -1;
        is_spec = spec_path_is_spec(target);
        if (cli_run_resolve(ctx, s, target, is_spec, digest, err) < 0)
                return -1;
        if (is_spec && spec_vm_network(target, o, err) < 0)
                return forge_error_prefix(err, "'%s'", target);
        if (vmimage_disk_get(s, digest, ret_path, err) < 0)
                return forge_error_prefix(err, "disk image of '%s'", target);
        *ret_store = take_ptr(s);
        return 0;
}

/* forge-vmm: FORGE_VMM, else installed with forge (fs_companion_find) */
static char *find_launcher(void)
{
        const char *env = getenv("FORGE_VMM");

        if (env && access(env, X_OK) == 0)
                return strdup(env);
        return fs_companion_find("forge-vmm", "runtime/vmm");
}

/* Replaces this process with forge-vmm; returns only on failure. The disk
 * stays open across exec, so a store gc cannot take it away meanwhile. */
static int exec_launcher(const vm_opts *o, const char *disk, const vmimage_boot *b,
                         const char *cmdline, unsigned long long memory, unsigned cpus,
                         unsigned timeout, int net_fd)
{
        cleanup_free char *launcher = find_launcher();
        char fd_s[16], kernel_s[48], initrd_s[48], mem_s[24], cpus_s[16], timeout_s[16], net_s[16];
        const char *argv[34 + 2 * MAX_SHARES];
        char share_s[MAX_SHARES][PATH_MAX + 32];
        size_t n = 0;
        int fd;

        if (launcher == NULL) {
                fprintf(
                    stderr,
                    "forge run: forge-vmm not found (set FORGE_VMM or install it next to forge)\n");
                return -1;
        }
        fd = open(disk, o->persist ? O_RDWR : O_RDONLY); /* no O_CLOEXEC: for forge-vmm */
        if (fd < 0) {
                fprintf(stderr, "forge run: open '%s': %s\n", disk, strerror(errno));
                return -1;
        }
        snprintf(fd_s, sizeof(fd_s), "%d", fd);
        snprintf(kernel_s, sizeof(kernel_s), "%llu:%llu", (unsigned long long)b->kernel_off,
                 (unsigned long long)b->kernel_len);
        snprintf(initrd_s, sizeof(initrd_s), "%llu:%llu", (unsigned long long)b->initrd_off,
                 (unsigned long long)b->initrd_len);
        snprintf(mem_s, sizeof(mem_s), "%llu", memory);
        snprintf(cpus_s, sizeof(cpus_s), "%u", cpus);
        snprintf(timeout_s, sizeof(timeout_s), "%u", timeout);
        argv[n++] = "forge-vmm";
        argv[n++] = "--disk-fd";
        argv[n++] = fd_s;
        argv[n++] = "--disk-name";
        argv[n++] = disk;
        argv[n++] = "--kernel";
        argv[n++] = kernel_s;
        argv[n++] = "--initrd";
        argv[n++] = initrd_s;
        argv[n++] = "--cmdline";
        argv[n++] = cmdline;
        argv[n++] = "--memory";
        argv[n++] = mem_s;
        argv[n++] = "--cpus";
        argv[n++] = cpus_s;
        if (timeout) {
                argv[n++] = "--timeout";
                argv[n++] = timeout_s;
        }
        if (o->tty)
                argv[n++] = "--tty";
        if (o->persist)
                argv[n++] = "--persist";
        if (o->read_only)
                argv[n++] = "--read-only";
        for (size_t i = 0; i < o->n_shares; i++) {
                snprintf(share_s[i], sizeof(share_s[i]), "forge%zu,%s,%s", i,
                         o->share[i].ro ? "ro" : "rw", o->share[i].src);
                argv[n++] = "--share";
                argv[n++] = share_s[i];
        }
        if (net_fd >= 0) {
                /* kept open across exec: the launcher's end of passt's socket */
                snprintf(net_s, sizeof(net_s), "%d", net_fd);
                argv[n++] = "--net-fd";
                argv[n++] = net_s;
                fcntl(net_fd, F_SETFD, 0);
        }
        if (cli_run_control_dir() != NULL) { /* forge run -d: forge exec's channel */
                argv[n++] = "--control";
                argv[n++] = cli_run_control_dir();
        }
        argv[n] = NULL;
        fflush(stdout);
        fflush(stderr);
        execv(launcher, (char *const *)argv);
        fprintf(stderr, "forge run: exec '%s': %s\n", launcher, strerror(errno));
        close(fd);
        return -1;
}

/* --network user: passt on one end of a socket pair, the other end for
 * forge-vmm's virtio-net. passt is this process's child and dies with it
 * (runtime_net_start_socket), which after exec is forge-vmm. */
static int net_start(const vm_opts *o, runtime_net **ret_net, int *ret_fd, forge_error **err)
{
        int sv[2];

        if (o->network == NULL || strcmp(o->network, "user") != 0)
                return 0;
        if (runtime_ports_check(o->ports, o->n_ports, err) < 0)
                return -1;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return forge_error_make(err, errno, "socketpair");
        if (runtime_net_start_socket(sv[1], o->ports, o->n_ports, ret_net, err) < 0) {
                close(sv[0]);
                close(sv[1]);
                return forge_error_prefix(err, "--network user");
        }
        close(sv[1]);
        *ret_fd = sv[0];
        return 0;
}

static int run(cli_ctx *ctx, vm_opts *o, const char *target, char **args, int n_args)
{
        cleanup_error forge_error *err = NULL;
        cleanup_store store *s = NULL;
        cleanup_free char *disk = NULL, *cmdline = NULL;
        vmimage_boot boot = {0};
        runtime_net *net = NULL;
        int net_fd = -1;
        unsigned long long v = 0;
        unsigned cpus = 0, timeout = 0;
        int r;

        if (cli_run_check_names(o->user, o->hostname) != 0)
                return FORGE_EXIT_USAGE;
        if (o->memory && (fs_parse_size(o->memory, &v) < 0 || v == 0))
                return cli_usage_error("run", "--memory wants a size like 512M, got '%s'",
                                       o->memory);
        if (o->cpus) {
                char *end;
                unsigned long n = strtoul(o->cpus, &end, 10);
                if (*end || n == 0 || n > 64)
                        return cli_usage_error(
                            "run", "--cpus wants a whole number of vCPUs from 1 to 64, got '%s'",
                            o->cpus);
                cpus = (unsigned)n;
        }
        if (o->n_ports > 0 && o->network != NULL && strcmp(o->network, "user") != 0)
                return cli_usage_error("run", "-p publishes a port of --network user; this VM's "
                                              "network is none");
        if (o->timeout) {
                char *end;
                unsigned long n = strtoul(o->timeout, &end, 10);
                if (*end || n == 0 || n > 86400 * 365)
                        return cli_usage_error("run", "--timeout wants seconds, got '%s'",
                                               o->timeout);
                timeout = (unsigned)n;
        }
        if (find_disk(ctx, target, o, &s, &disk, &err) < 0) {
                r = cli_fail(&err);
                return r == FORGE_EXIT_USAGE ? r : 125;
        }
        if (o->n_ports > 0 && (o->network == NULL || strcmp(o->network, "user") != 0)) {
                cli_usage_error("run",
                                "-p publishes a port of --network user; this VM's network is none");
                return FORGE_EXIT_USAGE;
        }
        if (o->persist && o->read_only)
                return cli_usage_error("run", "--persist and --read-only contradict each other");
        if (o->n_shares > 0 && geteuid() != 0) {
                fprintf(stderr,
                        "forge run: -v for a VM needs root: virtiofsd, which serves the directory, "
                        "sets up namespaces of its own\n");
                return 125;
        }
        if (o->persist && s != NULL) {
                fprintf(
                    stderr,
                    "forge run: --persist wants a disk image file (forge export --format disk), "
                    "not an image in the store\n");
                return FORGE_EXIT_USAGE;
        }
        if (vmimage_boot_locate(disk, &boot, &err) < 0) {
                cli_fail(&err);
                return 125;
        }
        r = build_cmdline(o, boot.cmdline, args, n_args, &cmdline);
        if (r == 0 && net_start(o, &net, &net_fd, &err) < 0) {
                cli_fail(&err);
                r = -1;
        }
        if (r == 0)
                r = exec_launcher(o, disk, &boot, cmdline,
                                  o->memory     ? v
                                  : boot.memory ? boot.memory
                                                : DEFAULT_MEMORY,
                                  cpus        ? cpus
                                  : boot.cpus ? boot.cpus
                                              : 1,
                                  timeout, net_fd);
        runtime_net_stop(net);
        if (net_fd >= 0)
                close(net_fd);
        vmimage_boot_release(&boot);
        return 125;
}

int cli_run_vm(cli_ctx *ctx, const cli_run_opts *c)
{
        vm_opts o = {0};
        int r = from_cli(c, &o);

        if (r != 0)
                return r;
        return run(ctx, &o, c->target, c->args, c->n_args);
}
