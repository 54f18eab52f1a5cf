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
#include <limits.h>
#include <stdarg.h>
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
#include "common/vmproto.h"
#include "runtime/runtime.h"
#include "specs/specs.h"
#include "vmimage/vmimage.h"

#define DEFAULT_MEMORY (512ULL << 20)

/* The options as given (c), and what a VM makes of them: the shared
 * directories resolved, the network and ports also from a SPEC's vm: */
typedef struct vm_opts {
        const cli_run_opts *c;
        struct {
                char *src; /* resolved */
                char *dst;
                bool ro;
        } share[VMPROTO_MAX_SHARES];
        size_t n_shares;
        const char *network;
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

        if (o->n_shares >= VMPROTO_MAX_SHARES) {
                fprintf(stderr, "forge run: '%s': a VM takes at most %d shared directories\n", what,
                        VMPROTO_MAX_SHARES);
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
        if (c->n_volumes > VMPROTO_MAX_SHARES)
                return cli_usage_error("run", "a VM takes at most %d -v", VMPROTO_MAX_SHARES);
        o->c = c;
        o->network = c->network;
        memcpy(o->ports, c->ports, c->n_ports * sizeof(c->ports[0]));
        o->n_ports = c->n_ports;
        for (size_t i = 0; i < c->n_volumes; i++)
                if ((r = parse_share(c->volumes[i], o)) != 0)
                        return r;
        return 0;
}

static void share_tag(size_t i, char tag[16])
{
        snprintf(tag, 16, "forge%zu", i);
}

/* The run configuration for the guest init (docs/vm-protocol.md); strings
 * point into o, tags and net */
static void run_config(const vm_opts *o, char tags[][16], char net[96], vmproto_run *r)
{
        const cli_run_opts *c = o->c;
        struct winsize ws = {0};

        *r = (vmproto_run){.has_args = c->n_args > 0,
                           .args = c->args,
                           .n_args = (size_t)c->n_args,
                           .env = (char **)c->env,
                           .n_env = c->n_env,
                           .entrypoint = (char *)cli_run_entrypoint(), /* run-service.c */
                           .user = (char *)c->user,
                           .workdir = (char *)c->workdir,
                           .hostname = (char *)c->hostname,
                           .read_only = c->read_only,
                           .tty = c->tty};
        for (size_t i = 0; i < o->n_shares; i++) {
                share_tag(i, tags[i]);
                r->shares[i] = (vmproto_share){tags[i], o->share[i].dst, o->share[i].ro};
        }
        r->n_shares = o->n_shares;
        if (o->network && strcmp(o->network, "user") == 0) {
                /* the guest init configures eth0 from this */
                snprintf(net, 96, "%s/%d,%s,%s", RUNTIME_NET_ADDR, RUNTIME_NET_PREFIX,
                         RUNTIME_NET_GATEWAY, RUNTIME_NET_DNS);
                r->net = net;
        }
        if (c->tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
                r->rows = ws.ws_row;
                r->cols = ws.ws_col;
        }
}

/* The disk's command line, then the run configuration; an exit status when
 * it cannot be made */
static int build_cmdline(const vm_opts *o, const char *base, char **ret)
{
        cleanup_free char *b = NULL;
        char tags[VMPROTO_MAX_SHARES][16], net[96];
        vmproto_run r;

        /* a reset is a triple fault: no waiting on a keyboard controller that
         * isn't there; the console is the workload's: kernel messages only
         * when they are emergencies (a panic). The machine has one UART
         * (0x3f8): the 8250 driver probes no other legacy port
         * (bench/vm-boot.sh gives QEMU the same words) */
        if (asprintf(&b, "%s%s", base,
                     o->c->verbose ? " reboot=t 8250.nr_uarts=1"
                                   : " reboot=t 8250.nr_uarts=1 quiet loglevel=1") < 0)
                return 125;
        run_config(o, tags, net, &r);
        /* FORGE_VMM_BOOTSTAT=1: forge-vmm and the guest init report their
         * timestamps on stderr (bench/vm-boot.sh, docs/vm.md) */
        r.bootstat = getenv("FORGE_VMM_BOOTSTAT") != NULL;
        if (vmproto_run_encode(&r, b, ret) == 0)
                return 0;
        if (errno == E2BIG)
                return cli_usage_error("run",
                                       "the VM's kernel command line would be over %d bytes: pass "
                                       "fewer or shorter arguments, -e or -v",
                                       VMPROTO_CMDLINE_MAX);
        if (errno == EINVAL && o->c->n_args == 1 && o->c->args[0][0] == '\0')
                return cli_usage_error("run", "a VM cannot take one empty argument (the guest "
                                              "would read it as none)");
        if (errno == EINVAL) {
                fprintf(stderr,
                        "forge run: the disk's kernel command line ('%s') has an unbalanced "
                        "double quote: the image's vm.cmdline would hide forge's settings\n",
                        base);
                return 125;
        }
        fprintf(stderr, "forge run: the VM's kernel command line: %s\n", strerror(errno));
        return 125;
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

/* forge-vmm's command line; the numbers and share specs written into text */
typedef struct vmm_argv {
        const char *v[40 + 2 * VMPROTO_MAX_SHARES];
        size_t n;
        char text[8 + VMPROTO_MAX_SHARES][PATH_MAX + 48];
        size_t n_text;
} vmm_argv;

/* OPT, and VALUE when not NULL */
static void arg_add(vmm_argv *a, const char *opt, const char *value)
{
        a->v[a->n++] = opt;
        if (value != NULL)
                a->v[a->n++] = value;
}

static void arg_addf(vmm_argv *a, const char *opt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void arg_addf(vmm_argv *a, const char *opt, const char *fmt, ...)
{
        char *t = a->text[a->n_text++];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(t, sizeof(a->text[0]), fmt, ap);
        va_end(ap);
        arg_add(a, opt, t);
}

/* What forge-vmm boots, and with how much */
typedef struct vm_launch {
        const char *disk;
        int disk_fd;
        const vmimage_boot *boot;
        char *cmdline;
        unsigned long long memory;
        unsigned cpus, timeout;
        int net_fd; /* -1: no network */
} vm_launch;

/* FORGE_VM_BOOT=bzimage: the kernel decompresses itself, as under other
 * launchers, even where the disk has it uncompressed (docs/vm.md, "Boot") */
static bool boot_bzimage_only(void)
{
        const char *v = getenv("FORGE_VM_BOOT");
        return v != NULL && strcmp(v, "bzimage") == 0;
}

static void launcher_argv(const vm_opts *o, const vm_launch *l, vmm_argv *a)
{
        const vmimage_boot *b = l->boot;

        arg_add(a, "forge-vmm", NULL);
        arg_addf(a, "--disk-fd", "%d", l->disk_fd);
        arg_add(a, "--disk-name", l->disk);
        arg_addf(a, "--kernel", "%llu:%llu", (unsigned long long)b->kernel_off,
                 (unsigned long long)b->kernel_len);
        if (b->vmlinux_len && !boot_bzimage_only())
                arg_addf(a, "--vmlinux", "%llu:%llu", (unsigned long long)b->vmlinux_off,
                         (unsigned long long)b->vmlinux_len);
        arg_addf(a, "--initrd", "%llu:%llu", (unsigned long long)b->initrd_off,
                 (unsigned long long)b->initrd_len);
        arg_add(a, "--cmdline", l->cmdline);
        arg_addf(a, "--memory", "%llu", l->memory);
        arg_addf(a, "--cpus", "%u", l->cpus);
        if (l->timeout)
                arg_addf(a, "--timeout", "%u", l->timeout);
        if (o->c->tty)
                arg_add(a, "--tty", NULL);
        if (o->c->persist)
                arg_add(a, "--persist", NULL);
        if (o->c->read_only)
                arg_add(a, "--read-only", NULL);
        for (size_t i = 0; i < o->n_shares; i++) {
                char tag[16];
                share_tag(i, tag);
                arg_addf(a, "--share", "%s,%s,%s", tag, o->share[i].ro ? "ro" : "rw",
                         o->share[i].src);
        }
        if (l->net_fd >= 0) /* the launcher's end of passt's socket */
                arg_addf(a, "--net-fd", "%d", l->net_fd);
        if (cli_run_control_dir() != NULL) /* forge run -d: forge exec's channel */
                arg_add(a, "--control", cli_run_control_dir());
        a->v[a->n] = NULL;
}

/* Replaces this process with forge-vmm; returns only on failure. The disk
 * stays open across exec, so a store gc cannot take it away meanwhile. */
static int exec_launcher(const vm_opts *o, vm_launch *l)
{
        cleanup_free char *launcher = fs_companion_lookup("FORGE_VMM", "forge-vmm", "runtime/vmm");
        vmm_argv a = {0};

        if (launcher == NULL) {
                fprintf(
                    stderr,
                    "forge run: forge-vmm not found (set FORGE_VMM or install it next to forge)\n");
                return -1;
        }
        l->disk_fd = open(l->disk, o->c->persist ? O_RDWR : O_RDONLY); /* no O_CLOEXEC */
        if (l->disk_fd < 0) {
                fprintf(stderr, "forge run: open '%s': %s\n", l->disk, strerror(errno));
                return -1;
        }
        if (l->net_fd >= 0)
                fcntl(l->net_fd, F_SETFD, 0); /* kept open across exec */
        launcher_argv(o, l, &a);
        fflush(stdout);
        fflush(stderr);
        execv(launcher, (char *const *)a.v);
        fprintf(stderr, "forge run: exec '%s': %s\n", launcher, strerror(errno));
        close(l->disk_fd);
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

/* --memory, --cpus, --timeout: 0 when not given */
static int parse_limits(const cli_run_opts *c, unsigned long long *ret_memory, unsigned *ret_cpus,
                        unsigned *ret_timeout)
{
        char *end;
        unsigned long n;

        if (c->memory && (fs_parse_size(c->memory, ret_memory) < 0 || *ret_memory == 0))
                return cli_usage_error("run", "--memory wants a size like 512M, got '%s'",
                                       c->memory);
        if (c->cpus) {
                n = strtoul(c->cpus, &end, 10);
                if (*end || n == 0 || n > 64)
                        return cli_usage_error(
                            "run", "--cpus wants a whole number of vCPUs from 1 to 64, got '%s'",
                            c->cpus);
                *ret_cpus = (unsigned)n;
        }
        if (c->timeout) {
                n = strtoul(c->timeout, &end, 10);
                if (*end || n == 0 || n > 86400 * 365)
                        return cli_usage_error("run", "--timeout wants seconds, got '%s'",
                                               c->timeout);
                *ret_timeout = (unsigned)n;
        }
        return 0;
}

/* What can be refused once the disk is known (s: the store's, or NULL for a
 * disk image file) */
static int check_disk_opts(const vm_opts *o, const store *s)
{
        if (o->n_ports > 0 && (o->network == NULL || strcmp(o->network, "user") != 0))
                return cli_usage_error(
                    "run", "-p publishes a port of --network user; this VM's network is none");
        if (o->c->persist && o->c->read_only)
                return cli_usage_error("run", "--persist and --read-only contradict each other");
        if (o->n_shares > 0 && geteuid() != 0) {
                fprintf(stderr,
                        "forge run: -v for a VM needs root: virtiofsd, which serves the directory, "
                        "sets up namespaces of its own\n");
                return 125;
        }
        if (o->c->persist && s != NULL) {
                fprintf(
                    stderr,
                    "forge run: --persist wants a disk image file (forge export --format disk), "
                    "not an image in the store\n");
                return FORGE_EXIT_USAGE;
        }
        return 0;
}

/* Boots the disk with forge-vmm (exec); returns only on failure */
static int launch(vm_opts *o, vm_launch *l)
{
        cleanup_error forge_error *err = NULL;
        runtime_net *net = NULL;
        int r;

        r = build_cmdline(o, l->boot->cmdline, &l->cmdline);
        if (r != 0)
                return r;
        if (net_start(o, &net, &l->net_fd, &err) < 0) {
                cli_fail(&err);
                r = 125;
        } else {
                exec_launcher(o, l);
                r = 125;
        }
        runtime_net_stop(net);
        if (l->net_fd >= 0)
                close(l->net_fd);
        free(l->cmdline);
        return r;
}

static int run(cli_ctx *ctx, vm_opts *o)
{
        cleanup_error forge_error *err = NULL;
        cleanup_store store *s = NULL;
        cleanup_free char *disk = NULL;
        vmimage_boot boot = {0};
        vm_launch l = {.boot = &boot, .net_fd = -1};
        int r;

        if (cli_run_check_names(o->c->user, o->c->hostname) != 0)
                return FORGE_EXIT_USAGE;
        if ((r = parse_limits(o->c, &l.memory, &l.cpus, &l.timeout)) != 0)
                return r;
        if (o->n_ports > 0 && o->network != NULL && strcmp(o->network, "user") != 0)
                return cli_usage_error("run", "-p publishes a port of --network user; this VM's "
                                              "network is none");
        if (find_disk(ctx, o->c->target, o, &s, &disk, &err) < 0) {
                r = cli_fail(&err);
                return r == FORGE_EXIT_USAGE ? r : 125;
        }
        if ((r = check_disk_opts(o, s)) != 0)
                return r;
        if (vmimage_boot_locate(disk, &boot, &err) < 0) {
                cli_fail(&err);
                return 125;
        }
        l.disk = disk;
        l.memory = l.memory ? l.memory : boot.memory ? boot.memory : DEFAULT_MEMORY;
        l.cpus = l.cpus ? l.cpus : boot.cpus ? boot.cpus : 1;
        r = launch(o, &l);
        vmimage_boot_release(&boot);
        return r;
}

int cli_run_vm(cli_ctx *ctx, const cli_run_opts *c)
{
        vm_opts o = {0};
        int r = from_cli(c, &o);

        if (r != 0)
                return r;
        return run(ctx, &o);
}
