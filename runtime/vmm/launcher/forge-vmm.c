/* SPDX-License-Identifier: MIT */
/*
 * forge-vmm: the process that runs a VM. `forge run --as vm` resolves the
 * image, its disk and the kernel command line, then executes this small
 * program in its place (same PID, same terminal, same signals), so that the
 * launcher's footprint is the VMM and libc, not forge's archive, YAML and
 * crypto libraries. Not meant to be run by hand:
 *
 *   forge-vmm --disk-fd FD --disk-name PATH --kernel OFF:LEN --initrd OFF:LEN
 *             [--vmlinux OFF:LEN] --cmdline TEXT --memory BYTES --cpus N
 *             [--timeout S] [--tty]
 *             [--persist] [--read-only] [--share TAG,ro|rw,DIR]... [--control DIR]
 *             [--net-fd FD (a passt stream socket: virtio-net)]
 *
 * The kernel and initramfs are read from the disk at the given extents
 * (checked against the file); with --vmlinux the uncompressed kernel there
 * is booted, the bzImage only gives its setup header. The exit status and
 * messages are forge run's (docs/vm.md). --share: a host directory the
 * guest mounts by TAG, served by a virtiofsd this program starts and ends
 * with the VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "runtime/vmm/vmm.h"

#define MAX_KERNEL (256ULL << 20)
#define MAX_INITRD (1ULL << 30)

static int usage(const char *what)
{
        fprintf(stderr, "forge-vmm: %s (this program is run by 'forge run --as vm')\n", what);
        return 125;
}

static int extent(const char *arg, uint64_t *off, uint64_t *len)
{
        char *end;

        *off = strtoull(arg, &end, 10);
        if (*end != ':')
                return -1;
        *len = strtoull(end + 1, &end, 10);
        return *end == '\0' ? 0 : -1;
}

typedef struct share {
        const char *tag, *dir;
        bool ro;
} share;

static int parse_share(char *arg, share *ret)
{
        char *mode = strchr(arg, ','), *dir;

        if (mode == NULL || (dir = strchr(mode + 1, ',')) == NULL)
                return -1;
        *mode++ = '\0';
        *dir++ = '\0';
        if (strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0)
                return -1;
        *ret = (share){.tag = arg, .dir = dir, .ro = strcmp(mode, "ro") == 0};
        return 0;
}

/* One virtiofsd per share, started before the VM (they die with this process). */
static int start_shares(const share *sh, unsigned n, vmm_fs_share *fs)
{
        for (unsigned i = 0; i < n; i++) {
                forge_error *err = NULL;
                fs[i].tag = sh[i].tag;
                if (vmm_virtiofsd_start(sh[i].dir, sh[i].ro, &fs[i].sock_fd, &fs[i].pid, &err) <
                    0) {
                        fprintf(stderr, "forge run: %s\n",
                                err && err->msg ? err->msg : "virtiofsd");
                        forge_error_release(&err);
                        return -1;
                }
        }
        return 0;
}

/* Whether [off, off + len) is a non-empty extent of at most max bytes of a
 * file of file_size bytes. */
static bool extent_ok(uint64_t file_size, uint64_t off, uint64_t len, uint64_t max)
{
        return len != 0 && len <= max && off <= file_size && len <= file_size - off;
}

static void *read_extent(int fd, uint64_t file_size, uint64_t off, uint64_t len, uint64_t max)
{
        uint8_t *buf;

        if (!extent_ok(file_size, off, len, max))
                return NULL;
        buf = malloc(len);
        if (buf != NULL && fs_pread_all(fd, buf, len, off) < 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static int report(const vmm_result *res, unsigned timeout)
{
        switch (res->end) {
        case VMM_END_STATUS:
        case VMM_END_SIGNAL:
                break;
        case VMM_END_PANIC:
                fprintf(stderr, "forge run: the guest kernel panicked: %s\n", res->detail);
                break;
        case VMM_END_TIMEOUT:
                fprintf(stderr,
                        "forge run: the guest did not finish within --timeout %u s: stopped it\n",
                        timeout);
                break;
        case VMM_END_POWEROFF:
                fprintf(stderr,
                        "forge run: the guest stopped without reporting an exit status (%s)\n",
                        res->detail);
                break;
        case VMM_END_CRASH:
                fprintf(stderr, "forge run: the VM failed: %s\n", res->detail);
                break;
        }
        return vmm_result_exit_status(res);
}

/* What the command line asks for: the VM's configuration (c), where the
 * kernel and initramfs lie on the disk, the directories to share. */
typedef struct args {
        vmm_config c;
        uint64_t kernel[2], initrd[2], vmlinux[2]; /* offset and length on the disk */
        share shares[VMM_MAX_FS];
        unsigned n_shares;
} args;

/* Returns 0, or the exit status of a usage error (reported). */
static int parse_args(int argc, char **argv, args *a)
{
        static const struct option opts[] = {
            {"disk-fd", required_argument, NULL, 'd'}, {"disk-name", required_argument, NULL, 'n'},
            {"kernel", required_argument, NULL, 'k'},  {"initrd", required_argument, NULL, 'i'},
            {"vmlinux", required_argument, NULL, 'v'}, {"cmdline", required_argument, NULL, 'c'},
            {"memory", required_argument, NULL, 'm'},  {"cpus", required_argument, NULL, 'p'},
            {"timeout", required_argument, NULL, 't'}, {"tty", no_argument, NULL, 'T'},
            {"persist", no_argument, NULL, 'P'},       {"read-only", no_argument, NULL, 'R'},
            {"share", required_argument, NULL, 's'},   {"net-fd", required_argument, NULL, 'N'},
            {"control", required_argument, NULL, 'C'}, {NULL, 0, NULL, 0},
        };
        vmm_config *c = &a->c;
        int o;

        *c = (vmm_config){
            .in_fd = STDIN_FILENO, .out_fd = STDOUT_FILENO, .disk_fd = -1, .disk_path = "disk"};
        while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (o) {
                case 'd':
                        c->disk_fd = atoi(optarg);
                        break;
                case 'n':
                        c->disk_path = optarg;
                        break;
                case 'k':
                case 'i':
                case 'v': {
                        uint64_t *ext = o == 'k' ? a->kernel : o == 'i' ? a->initrd : a->vmlinux;
                        if (extent(optarg, &ext[0], &ext[1]) < 0)
                                return usage("--kernel, --initrd and --vmlinux want OFFSET:LENGTH");
                        break;
                }
                case 'c':
                        c->cmdline = optarg;
                        break;
                case 'm':
                        c->memory = strtoull(optarg, NULL, 10);
                        break;
                case 'p':
                        c->cpus = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 't':
                        c->timeout_sec = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'T':
                        c->tty = true;
                        break;
                case 'P':
                        c->persist = true;
                        break;
                case 'N':
                        c->net = true;
                        c->net_fd = atoi(optarg);
                        if (c->net_fd < 3 || fcntl(c->net_fd, F_SETFD, FD_CLOEXEC) < 0)
                                return usage("--net-fd wants an open socket");
                        break;
                case 'R':
                        c->read_only = true;
                        break;
                case 's':
                        if (a->n_shares >= VMM_MAX_FS ||
                            parse_share(optarg, &a->shares[a->n_shares]) < 0)
                                return usage("--share wants TAG,ro|rw,DIR (at most 4)");
                        a->n_shares++;
                        break;
                case 'C':
                        c->control_dir = optarg;
                        break;
                default:
                        return usage("unknown option");
                }
        }
        if (c->disk_fd < 0 || c->cmdline == NULL || c->memory == 0 || c->cpus == 0)
                return usage("missing --disk-fd, --cmdline, --memory or --cpus");
        return 0;
}

int main(int argc, char **argv)
{
        vmm_fs_share fs[VMM_MAX_FS];
        args a = {0};
        vmm_config *c = &a.c;
        forge_error *err = NULL;
        vmm_result res = {0};
        struct stat st;
        vmm *vm;
        void *kernel, *initrd;
        int r;

        r = parse_args(argc, argv, &a);
        if (r != 0)
                return r;
        if (fstat(c->disk_fd, &st) < 0)
                return usage("--disk-fd is not open");
        /* forge passed it open; nothing this program starts inherits it */
        fcntl(c->disk_fd, F_SETFD, FD_CLOEXEC);
        if (start_shares(a.shares, a.n_shares, fs) < 0)
                return 125;
        c->fs = fs;
        c->n_fs = a.n_shares;
        if (a.vmlinux[1]) {
                /* the uncompressed kernel is read into guest memory from the
                 * disk; of the bzImage only its setup header is needed */
                if (!extent_ok((uint64_t)st.st_size, a.vmlinux[0], a.vmlinux[1], UINT64_MAX)) {
                        fprintf(stderr,
                                "forge run: '%s': corrupt disk image: bad uncompressed kernel "
                                "extent\n",
                                c->disk_path);
                        return 125;
                }
                c->vmlinux_fd = c->disk_fd;
                c->vmlinux_off = a.vmlinux[0];
                c->vmlinux_len = a.vmlinux[1];
                if (a.kernel[1] > VMM_BOOT_SETUP_MAX)
                        a.kernel[1] = VMM_BOOT_SETUP_MAX;
        }
        kernel =
            read_extent(c->disk_fd, (uint64_t)st.st_size, a.kernel[0], a.kernel[1], MAX_KERNEL);
        initrd =
            read_extent(c->disk_fd, (uint64_t)st.st_size, a.initrd[0], a.initrd[1], MAX_INITRD);
        if (kernel == NULL || initrd == NULL) {
                fprintf(
                    stderr,
                    "forge run: '%s': corrupt disk image: cannot read the kernel or initramfs\n",
                    c->disk_path);
                return 125;
        }
        c->kernel = kernel;
        c->kernel_len = a.kernel[1];
        c->initrd = initrd;
        c->initrd_len = a.initrd[1];
        r = vmm_create(c, &vm, &err);
        /* in guest memory now: not kept twice while the guest runs */
        free(kernel);
        free(initrd);
        if (r < 0) {
                fprintf(stderr, "forge run: %s\n",
                        err && err->msg ? err->msg : "the VM could not start");
                forge_error_release(&err);
                return 125;
        }
        vmm_start(vm, &res);
        vmm_destroy(vm);
        return report(&res, c->timeout_sec);
}
