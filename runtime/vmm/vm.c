/* SPDX-License-Identifier: MIT */
/*
 * The VM: /dev/kvm, guest memory, the in-kernel irqchip (PIC, IOAPIC, local
 * APICs) and PIT, one thread per vCPU serving port and MMIO exits, and the
 * main thread multiplexing the console input, signals and the timeout.
 */
#include "runtime/vmm/x86/cpu.h"
#include "runtime/vmm/vmm-fs.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"

#define KICK_SIGNAL SIGUSR1
#define GRACE_SEC 10
#define PANIC_DRAIN_MS 500
#define TSS_ADDR 0xfffbd000ULL
#define IDENTITY_MAP_ADDR 0xfffbc000ULL
#define HOST_BRIDGE_SLOT 0
#define BLK_SLOT 1
#define NET_SLOT 2
#define NET_BAR_ADDR                                                                               \
        (PCI_BAR_BASE + ((uint64_t)NET_SLOT << 20)) /* 1 MiB apart by slot, as shares.c */
#define CONSOLE_SLOT 4 /* the control channel (2: network, 3: virtio-fs) */
#define CONSOLE_BAR (PCI_BAR_BASE + 0x400000ULL)

typedef struct vcpu {
        struct vmm *vm;
        unsigned id;
        int fd;
        struct kvm_run *run;
        pthread_t tid;
        bool started;
} vcpu;

struct vmm {
        int kvm_fd, vm_fd;
        guest_mem gm;
        size_t run_size;
        unsigned ncpus;
        vcpu *cpu;
        uart *uart;
        pci_bus pci;
        pci_function bridge;
        vblk *blk;
        vnet *net;
        blk_backend *disk;
        vm_shares *shares;  /* virtio-fs devices (shares.c) */
        irq_routes *routes; /* the MSI routes of every irqfd (one table per VM) */
        pthread_mutex_t dev_lock;
        vcon *con; /* the control channel (--control), or NULL */
        int ctl_listen, ctl_client, ctl_dir;
        int done_fd;
        atomic_int ended;
        atomic_int stop;
        atomic_int ctl_sig;
        atomic_bool console_ready; /* the guest init set up its console: input may flow */
        uint8_t rtc_index;
        /* FORGE_VMM_STATS=1: exits by kind, printed at the end (tuning aid) */
        bool stats;
        atomic_ulong n_exits[8];
        /* FORGE_VMM_BOOTSTAT=1: CLOCK_BOOTTIME of the launcher's steps,
         * printed at the end (bench/vm-boot.sh) */
        bool bootstat;
        struct timespec t_create, t_devices, t_kernel, t_first_run, t_end;
        const char *boot_kind; /* how the kernel was loaded: bzimage, vmlinux[-kaslr] */
        vmm_config cfg;
        vmm_result result;
};
typedef struct vmm vm;

static void end(vm *v, vmm_end how, int status, const char *detail)
{
        int expected = 0;

        if (!atomic_compare_exchange_strong(&v->ended, &expected, 1))
                return;
        if (v->bootstat)
                clock_gettime(CLOCK_BOOTTIME, &v->t_end);
        v->result.end = how;
        v->result.status = status;
        if (detail)
                snprintf(v->result.detail, sizeof(v->result.detail), "%s", detail);
        eventfd_write(v->done_fd, 1);
}

/* A reset or shutdown without a reported status: a panic when the console said so. */
static void end_reset(vm *v, const char *what)
{
        char line[256];

        if (uart_panicked(v->uart, line, sizeof(line)))
                end(v, VMM_END_PANIC, 0, line);
        else
                end(v, VMM_END_POWEROFF, 0, what);
}

/* --- interrupts --- */

static void irq_line(vm *v, unsigned gsi, int level)
{
        struct kvm_irq_level l = {.irq = gsi, .level = (uint32_t)level};

        ioctl(v->vm_fd, KVM_IRQ_LINE, &l);
}

static void uart_irq(void *opaque, int level)
{
        irq_line(opaque, UART_IRQ, level);
}

static void blk_msi(void *opaque, uint64_t addr, uint32_t data)
{
        vm *v = opaque;
        struct kvm_msi m = {
            .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};

        ioctl(v->vm_fd, KVM_SIGNAL_MSI, &m);
}

static void blk_intx(void *opaque, int level)
{
        irq_line(opaque, PCI_INTX_GSI, level);
}

/* The NIC's doorbells and interrupts through KVM's eventfds (as shares.c). */
static void net_use_eventfds(vm *v)
{
        vfs_host_ops ops = irq_routes_host_ops(v->routes);

        if (ioctl(v->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) <= 0)
                ops.ioeventfd = NULL;
        if (ioctl(v->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) <= 0 ||
            ioctl(v->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING) <= 0)
                ops.irqfd = NULL;
        vnet_set_host(v->net, &ops);
}

/* --- exits --- */

static uint8_t bcd(int v)
{
        return (uint8_t)((v / 10) << 4 | (v % 10));
}

/*
 * The MC146818 RTC's registers as Linux reads them: the host's UTC time in
 * BCD, update never in progress, battery good. Without it rtc_cmos spends
 * seconds waiting on a chip that isn't there.
 */
static uint8_t rtc_read(uint8_t index)
{
        time_t now = time(NULL);
        struct tm tm;

        gmtime_r(&now, &tm);
        switch (index) {
        case 0x00:
                return bcd(tm.tm_sec);
        case 0x02:
                return bcd(tm.tm_min);
        case 0x04:
                return bcd(tm.tm_hour);
        case 0x06:
                return bcd(tm.tm_wday + 1);
        case 0x07:
                return bcd(tm.tm_mday);
        case 0x08:
                return bcd(tm.tm_mon + 1);
        case 0x09:
                return bcd(tm.tm_year % 100);
        case 0x32:
                return bcd(tm.tm_year / 100 + 19);
        case 0x0a:
                return 0x26; /* 32.768 kHz, 1024 Hz, no update in progress */
        case 0x0b:
                return 0x02; /* 24-hour, BCD, no interrupts */
        case 0x0d:
                return 0x80; /* valid RAM and time */
        default:
                return 0;
        }
}

static void port_io(vm *v, uint16_t port, uint8_t *data, unsigned size, bool write)
{
        if (port >= UART_PORT && port < UART_PORT + 8) {
                for (unsigned i = 0; i < size; i++)
                        uart_io(v->uart, port - UART_PORT + i, data + i, write);
                return;
        }
        if (port >= PCI_CONFIG_ADDR && port < PCI_CONFIG_DATA + 4) {
                pthread_mutex_lock(&v->dev_lock);
                vmm_pci_bus_io(&v->pci, port, data, size, write);
                pthread_mutex_unlock(&v->dev_lock);
                return;
        }
        if (port == RTC_PORT || port == RTC_PORT + 1) {
                if (port == RTC_PORT && write)
                        v->rtc_index = data[0] & 0x7f;
                else if (port == RTC_PORT + 1 && !write)
                        data[0] = rtc_read(v->rtc_index);
                else if (!write)
                        data[0] = 0xff;
                return;
        }
        if (write) {
                if (port == VMPROTO_EXIT_PORT)
                        end(v, VMM_END_STATUS, data[0], NULL);
                else if (port == VMPROTO_CTL_PORT && data[0] == VMPROTO_CTL_CONSOLE_READY)
                        atomic_store(&v->console_ready, true);
                else if (port == I8042_PORT && data[0] == 0xfe)
                        end_reset(v, "the guest reset itself");
                return;
        }
        memset(data, 0xff, size);
        if (port == VMPROTO_CTL_PORT)
                data[0] = VMPROTO_CTL_MAGIC;
        else if (port == VMPROTO_CTL_SIG_PORT)
                data[0] = (uint8_t)atomic_exchange(&v->ctl_sig, 0);
}

static void mmio(vm *v, uint64_t addr, uint8_t *data, unsigned len, bool write)
{
        bool hit = false;

        if (len > 8)
                return;
        pthread_mutex_lock(&v->dev_lock);
        if (v->blk)
                hit = virtio_pci_mmio(vblk_pci(v->blk), addr, data, len, write);
        if (!hit && v->net)
                hit = virtio_pci_mmio(vnet_pci(v->net), addr, data, len, write);
        if (!hit)
                hit = vm_shares_mmio(v->shares, addr, data, len, write);
        if (!hit && v->con)
                hit = virtio_pci_mmio(vcon_pci(v->con), addr, data, len, write);
        pthread_mutex_unlock(&v->dev_lock);
        if (!hit && !write)
                memset(data, 0xff, len);
}

enum { ST_UART, ST_PCI_CFG, ST_RTC, ST_OTHER_PIO, ST_MMIO, ST_OTHER };
static const char *const stat_names[] = {"uart", "pci-config", "rtc", "other-pio", "mmio", "other"};

static void count_exit(vm *v, const struct kvm_run *r)
{
        unsigned k = ST_OTHER;

        if (r->exit_reason == KVM_EXIT_IO) {
                uint16_t p = r->io.port;
                k = p >= UART_PORT && p < UART_PORT + 8               ? ST_UART
                    : p >= PCI_CONFIG_ADDR && p < PCI_CONFIG_DATA + 4 ? ST_PCI_CFG
                    : p == RTC_PORT || p == RTC_PORT + 1              ? ST_RTC
                                                                      : ST_OTHER_PIO;
        } else if (r->exit_reason == KVM_EXIT_MMIO) {
                k = ST_MMIO;
        }
        atomic_fetch_add(&v->n_exits[k], 1);
}

static int handle_exit(vm *v, vcpu *c)
{
        struct kvm_run *r = c->run;
        char msg[256];

        if (v->stats)
                count_exit(v, r);

        switch (r->exit_reason) {
        case KVM_EXIT_IO: {
                unsigned size = r->io.size;
                uint64_t total = (uint64_t)size * r->io.count;
                uint8_t *data = (uint8_t *)r + r->io.data_offset;

                if ((size != 1 && size != 2 && size != 4) || r->io.data_offset > v->run_size ||
                    total > v->run_size - r->io.data_offset)
                        break;
                for (uint32_t i = 0; i < r->io.count; i++)
                        port_io(v, r->io.port, data + i * size, size,
                                r->io.direction == KVM_EXIT_IO_OUT);
                return 0;
        }
        case KVM_EXIT_MMIO:
                mmio(v, r->mmio.phys_addr, r->mmio.data, r->mmio.len, r->mmio.is_write);
                return 0;
        case KVM_EXIT_HLT:
                end_reset(v, "the guest halted");
                return -1;
        case KVM_EXIT_SHUTDOWN: {
                struct kvm_regs regs;
                struct kvm_sregs sregs;

                /* where the vCPU was tells an early-boot fault from a reboot;
                 * on AMD, KVM re-initialises the vCPU after a shutdown (the
                 * VMCB is undefined then), so a reset state says nothing */
                if (ioctl(c->fd, KVM_GET_REGS, &regs) == 0 &&
                    ioctl(c->fd, KVM_GET_SREGS, &sregs) == 0 &&
                    !(regs.rip == 0xfff0 && (sregs.cr0 & 1) == 0))
                        snprintf(msg, sizeof(msg),
                                 "the guest reset itself (or triple-faulted): vCPU %u at rip "
                                 "0x%llx, cr0 0x%llx, cr3 0x%llx, cr4 0x%llx",
                                 c->id, (unsigned long long)regs.rip, (unsigned long long)sregs.cr0,
                                 (unsigned long long)sregs.cr3, (unsigned long long)sregs.cr4);
                else
                        snprintf(msg, sizeof(msg), "the guest reset itself (or triple-faulted)");
                end_reset(v, msg);
                return -1;
        }
        case KVM_EXIT_SYSTEM_EVENT:
                end_reset(v, r->system_event.type == KVM_SYSTEM_EVENT_RESET
                                 ? "the guest reset itself"
                                 : "the guest powered off");
                return -1;
        case KVM_EXIT_FAIL_ENTRY:
                snprintf(msg, sizeof(msg), "vCPU %u: KVM entry failed (hardware reason 0x%llx)",
                         c->id, (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
                end(v, VMM_END_CRASH, 0, msg);
                return -1;
        case KVM_EXIT_INTERNAL_ERROR:
                snprintf(msg, sizeof(msg), "vCPU %u: KVM internal error (suberror %u)", c->id,
                         r->internal.suberror);
                end(v, VMM_END_CRASH, 0, msg);
                return -1;
        default:
                break;
        }
        snprintf(msg, sizeof(msg), "vCPU %u: unexpected KVM exit %u", c->id, r->exit_reason);
        end(v, VMM_END_CRASH, 0, msg);
        return -1;
}

static void kick_handler(int sig)
{
        (void)sig;
}

static void *vcpu_thread(void *arg)
{
        vcpu *c = arg;
        vm *v = c->vm;
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, KICK_SIGNAL);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        if (v->bootstat && c->id == 0)
                clock_gettime(CLOCK_BOOTTIME, &v->t_first_run);
        while (!atomic_load(&v->stop) && !atomic_load(&v->ended)) {
                if (ioctl(c->fd, KVM_RUN, 0) < 0) {
                        if (errno == EINTR || errno == EAGAIN) {
                                c->run->immediate_exit = 0;
                                continue;
                        }
                        char msg[128];
                        snprintf(msg, sizeof(msg), "vCPU %u: KVM_RUN: %s", c->id, strerror(errno));
                        end(v, VMM_END_CRASH, 0, msg);
                        break;
                }
                if (handle_exit(v, c) < 0)
                        break;
        }
        return NULL;
}

static void stop_vcpus(vm *v)
{
        atomic_store(&v->stop, 1);
        for (unsigned i = 0; i < v->ncpus; i++) {
                if (!v->cpu[i].started)
                        continue;
                v->cpu[i].run->immediate_exit = 1;
                pthread_kill(v->cpu[i].tid, KICK_SIGNAL);
        }
        for (unsigned i = 0; i < v->ncpus; i++) {
                if (v->cpu[i].started)
                        pthread_join(v->cpu[i].tid, NULL);
                v->cpu[i].started = false;
        }
}

/* --- set-up --- */

static int open_kvm(forge_error **err)
{
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        struct stat st;

        if (fd >= 0)
                return fd;
        if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
                return forge_error_make(
                    err, 0,
                    "no /dev/kvm: this host offers no KVM; it needs hardware "
                    "virtualization (VT-x/AMD-V enabled, kvm_intel or kvm_amd loaded), "
                    "or nested virtualization when it is itself a VM");
        if (errno == EACCES || errno == EPERM) {
                struct group *g = stat("/dev/kvm", &st) == 0 ? getgrgid(st.st_gid) : NULL;
                if (g)
                        return forge_error_make(
                            err, 0,
                            "permission denied on /dev/kvm: add this user to the "
                            "'%s' group (usermod -aG %s USER) and log in again",
                            g->gr_name, g->gr_name);
                return forge_error_make(err, 0,
                                        "permission denied on /dev/kvm: it needs read and "
                                        "write access");
        }
        return forge_error_make(err, errno, "open /dev/kvm");
}

static uint64_t host_memory(void)
{
        cleanup_fclose FILE *f = fopen("/proc/meminfo", "re");
        char line[256];
        unsigned long long kb;

        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
                        return kb * 1024;
        return 0;
}

static int check_caps(vm *v, forge_error **err)
{
        static const struct {
                int cap;
                const char *name;
        } caps[] = {
            {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
            {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
            {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
            {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
            {KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI"},
            {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
            {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
        };
        int api = ioctl(v->kvm_fd, KVM_GET_API_VERSION, 0);

        if (api != KVM_API_VERSION)
                return forge_error_make(err, 0, "/dev/kvm speaks API version %d, %d is needed", api,
                                        KVM_API_VERSION);
        for (size_t i = 0; i < ARRAY_SIZE(caps); i++)
                if (ioctl(v->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0)
                        return forge_error_make(err, 0, "this host's KVM lacks %s", caps[i].name);
        return 0;
}

static int check_memory(uint64_t size, forge_error **err)
{
        uint64_t host = host_memory();

        if (size < VMM_MIN_MEMORY)
                return forge_error_make(
                    err, 0, "guest memory of %llu MiB is too small (at least %llu MiB)",
                    (unsigned long long)(size >> 20), (unsigned long long)(VMM_MIN_MEMORY >> 20));
        if (host && size > host)
                return forge_error_make(
                    err, 0, "not enough memory: the guest wants %llu MiB, this host has %llu MiB",
                    (unsigned long long)(size >> 20), (unsigned long long)(host >> 20));
        return 0;
}

/* Guest RAM starts on a 2 MiB boundary of the host's address space, as
 * guest-physical 0 is one: only then can transparent huge pages back it and
 * KVM map it with 2 MiB pages (a 4 KiB-page guest walks far more page tables,
 * which nested virtualisation makes dear). A reservation 2 MiB larger,
 * trimmed. */
#define GUEST_RAM_ALIGN (2ULL << 20)

static void *map_aligned(uint64_t size, int flags, int fd)
{
        uint8_t *r = mmap(NULL, size + GUEST_RAM_ALIGN, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        uintptr_t at;
        void *m;

        if (r == MAP_FAILED)
                return MAP_FAILED;
        at = ((uintptr_t)r + GUEST_RAM_ALIGN - 1) & ~(uintptr_t)(GUEST_RAM_ALIGN - 1);
        m = mmap((void *)at, size, PROT_READ | PROT_WRITE, flags | MAP_FIXED | MAP_NORESERVE, fd,
                 0);
        if (m == MAP_FAILED) {
                munmap(r, size + GUEST_RAM_ALIGN);
                return MAP_FAILED;
        }
        if (at > (uintptr_t)r)
                munmap(r, at - (uintptr_t)r);
        if ((uintptr_t)r + size + GUEST_RAM_ALIGN > at + size)
                munmap((void *)(at + size), (uintptr_t)r + size + GUEST_RAM_ALIGN - (at + size));
        return m;
}

/* Guest RAM that a vhost-user back-end can map too: a memfd, shared. */
static void *map_shared_memory(vm *v, uint64_t size)
{
        v->gm.fd = memfd_create("forge-guest-ram", MFD_CLOEXEC);
        if (v->gm.fd < 0 || ftruncate(v->gm.fd, (off_t)size) < 0)
                return MAP_FAILED;
        v->gm.shared = true;
        return map_aligned(size, MAP_SHARED, v->gm.fd);
}

static int setup_memory(vm *v, uint64_t size, forge_error **err)
{
        struct kvm_userspace_memory_region low = {0}, high = {0};

        v->gm.size = size;
        v->gm.low_size = size < MMIO_HOLE_START ? size : MMIO_HOLE_START;
        if (v->cfg.n_fs > 0)
                v->gm.host = map_shared_memory(v, size);
        else
                v->gm.host = map_aligned(size, MAP_PRIVATE | MAP_ANONYMOUS, -1);
        if (v->gm.host == MAP_FAILED) {
                v->gm.host = NULL;
                return forge_error_make(err, errno,
                                        "not enough memory: map %llu MiB of guest memory",
                                        (unsigned long long)(size >> 20));
        }
        madvise(v->gm.host, size, MADV_HUGEPAGE);
        low.slot = 0;
        low.guest_phys_addr = 0;
        low.memory_size = v->gm.low_size;
        low.userspace_addr = (uint64_t)(uintptr_t)v->gm.host;
        if (ioctl(v->vm_fd, KVM_SET_USER_MEMORY_REGION, &low) < 0)
                return forge_error_make(err, errno, "KVM_SET_USER_MEMORY_REGION");
        if (size > v->gm.low_size) {
                high.slot = 1;
                high.guest_phys_addr = MMIO_HOLE_END;
                high.memory_size = size - v->gm.low_size;
                high.userspace_addr = (uint64_t)(uintptr_t)(v->gm.host + v->gm.low_size);
                if (ioctl(v->vm_fd, KVM_SET_USER_MEMORY_REGION, &high) < 0)
                        return forge_error_make(err, errno, "KVM_SET_USER_MEMORY_REGION");
        }
        return 0;
}

static int create_vm(vm *v, forge_error **err)
{
        struct kvm_pit_config pit = {0};
        uint64_t ident = IDENTITY_MAP_ADDR;
        uint64_t memory = v->cfg.memory & ~((1ULL << 20) - 1); /* whole MiB */

        /* what the user asked for is checked before what the host offers */
        if (check_memory(memory, err) < 0)
                return -1;
        v->kvm_fd = open_kvm(err);
        if (v->kvm_fd < 0)
                return -1;
        if (check_caps(v, err) < 0)
                return -1;
        v->vm_fd = ioctl(v->kvm_fd, KVM_CREATE_VM, 0);
        if (v->vm_fd < 0)
                return forge_error_make(err, errno, "KVM_CREATE_VM");
        if (ioctl(v->vm_fd, KVM_SET_TSS_ADDR, TSS_ADDR) < 0 ||
            ioctl(v->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0)
                return forge_error_make(err, errno, "KVM_SET_TSS_ADDR");
        if (ioctl(v->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
                return forge_error_make(err, errno, "KVM_CREATE_IRQCHIP");
        if (ioctl(v->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
                return forge_error_make(err, errno, "KVM_CREATE_PIT2");
        return setup_memory(v, memory, err);
}

static void con_output(void *opaque)
{
        (void)opaque; /* the main loop looks at least every 100 ms */
}

/* DIR/control.sock, bound through /proc/self/fd (a run directory's path may
 * be longer than sun_path) */
static int create_control(vm *v, const char *dir, forge_error **err)
{
        vcon_irq_ops ops = {.msi = blk_msi, .output = con_output, .opaque = v};
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        v->ctl_dir = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (v->ctl_dir < 0)
                return forge_error_make(err, errno, "control directory '%s'", dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/control.sock", v->ctl_dir);
        unlinkat(v->ctl_dir, "control.sock", 0);
        v->ctl_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (v->ctl_listen < 0 || bind(v->ctl_listen, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            listen(v->ctl_listen, 8) < 0)
                return forge_error_make(err, errno, "control socket in '%s'", dir);
        v->con = vcon_new(&v->gm, CONSOLE_BAR, &ops);
        if (v->con == NULL)
                return forge_error_make(err, ENOMEM, "virtio-console");
        v->pci.dev[CONSOLE_SLOT] = vcon_pci(v->con);
        return 0;
}

static int create_devices(vm *v, const vmm_config *c, forge_error **err)
{
        vblk_irq_ops ops = {.msi = blk_msi, .intx = blk_intx, .opaque = v};

        v->uart = uart_new(c->out_fd, uart_irq, v);
        if (v->uart == NULL)
                return forge_error_make(err, ENOMEM, "uart");
        /* a host bridge at 00:00.0: Linux's check that mechanism #1 really has a PCI bus */
        vmm_pci_function_init(&v->bridge, 0x1b36 /* Red Hat */, 0x0008, 0x06000000, 0x1b36, 0x0008);
        v->pci.dev[HOST_BRIDGE_SLOT] = &v->bridge;
        v->routes = irq_routes_new(v->vm_fd);
        if (v->routes == NULL)
                return forge_error_make(err, ENOMEM, "interrupt routes");
        if (c->net) {
                v->net = vnet_new(c->net_fd, &v->gm, NET_BAR_ADDR, &ops, &v->dev_lock);
                if (v->net == NULL)
                        return forge_error_make(err, ENOMEM, "virtio-net");
                v->pci.dev[NET_SLOT] = vnet_pci(v->net);
                net_use_eventfds(v);
        }
        if (vm_shares_new(v->kvm_fd, v->routes, &v->gm, c, &v->pci, &v->shares, err) < 0)
                return -1;
        if (c->control_dir != NULL && create_control(v, c->control_dir, err) < 0)
                return -1;
        if (c->disk_path == NULL)
                return 0;
        if (vmm_blk_open(c->disk_path, c->disk_fd, c->persist, &v->disk, err) < 0)
                return -1;
        if (c->read_only)
                vmm_blk_set_read_only(v->disk);
        v->blk = vblk_new(v->disk, &v->gm, PCI_BAR_BASE, &ops);
        if (v->blk == NULL)
                return forge_error_make(err, ENOMEM, "virtio-blk");
        v->pci.dev[BLK_SLOT] = vblk_pci(v->blk);
        return 0;
}

static int create_vcpus(vm *v, uint64_t entry, forge_error **err)
{
        cleanup_free struct kvm_cpuid2 *supported = vmm_cpu_supported_cpuid(v->kvm_fd, err);
        size_t cpuid_size;
        int sz = ioctl(v->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
        bool tsc_deadline = ioctl(v->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;

        if (supported == NULL)
                return -1;
        if (sz < (int)sizeof(struct kvm_run))
                return forge_error_make(err, errno, "KVM_GET_VCPU_MMAP_SIZE");
        v->run_size = (size_t)sz;
        cpuid_size = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
        for (unsigned i = 0; i < v->ncpus; i++) {
                vcpu *c = &v->cpu[i];
                cleanup_free struct kvm_cpuid2 *cpuid = malloc(cpuid_size);

                c->vm = v;
                c->id = i;
                c->fd = ioctl(v->vm_fd, KVM_CREATE_VCPU, i);
                if (c->fd < 0)
                        return forge_error_make(err, errno, "create vCPU %u", i);
                c->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
                if (c->run == MAP_FAILED) {
                        c->run = NULL;
                        return forge_error_make(err, errno, "map vCPU %u", i);
                }
                if (cpuid == NULL)
                        return forge_error_make(err, ENOMEM, "cpuid");
                memcpy(cpuid, supported, cpuid_size);
                vmm_cpu_cpuid_for(cpuid, i, v->ncpus, tsc_deadline);
                if (vmm_cpu_setup_common(c->fd, i, cpuid, err) < 0)
                        return forge_error_prefix(err, "vCPU %u", i);
                if (i == 0 && vmm_cpu_setup_boot(c->fd, entry, err) < 0)
                        return forge_error_prefix(err, "vCPU 0");
        }
        return 0;
}

static void destroy(vm *v)
{
        if (v->cpu) {
                for (unsigned i = 0; i < v->ncpus; i++) {
                        if (v->cpu[i].run)
                                munmap(v->cpu[i].run, v->run_size);
                        if (v->cpu[i].fd > 0)
                                close(v->cpu[i].fd);
                }
                free(v->cpu);
        }
        vm_shares_free(v->shares);
        vblk_free(v->blk);
        vnet_free(v->net);
        vcon_free(v->con);
        irq_routes_free(v->routes);
        if (v->ctl_client >= 0)
                close(v->ctl_client);
        if (v->ctl_listen >= 0)
                close(v->ctl_listen);
        if (v->ctl_dir >= 0) {
                unlinkat(v->ctl_dir, "control.sock", 0);
                close(v->ctl_dir);
        }
        if (v->disk) {
                vmm_blk_flush(v->disk);
                vmm_blk_close(v->disk);
        }
        uart_free(v->uart);
        if (v->gm.host)
                munmap(v->gm.host, v->gm.size);
        if (v->gm.fd >= 0)
                close(v->gm.fd);
        if (v->vm_fd > 0)
                close(v->vm_fd);
        if (v->kvm_fd > 0)
                close(v->kvm_fd);
        if (v->done_fd > 0)
                close(v->done_fd);
        pthread_mutex_destroy(&v->dev_lock);
}

/* --- the main loop --- */

typedef struct console_in {
        int fd;
        bool eof, eof_sent, tty;
        uint8_t buf[512];
        size_t off, len;
} console_in;

static void feed_console(vm *v, console_in *in)
{
        if (in->off < in->len)
                in->off += uart_input(v->uart, in->buf + in->off, in->len - in->off);
        if (in->off < in->len)
                return;
        in->off = in->len = 0;
        /* end of input: ^D ends a read on the guest's canonical-mode console */
        if (in->eof && !in->eof_sent && !in->tty) {
                uint8_t eot = 4;
                in->eof_sent = uart_input(v->uart, &eot, 1) == 1;
        }
}

static void read_console(vm *v, console_in *in)
{
        ssize_t n = read(in->fd, in->buf, sizeof(in->buf));

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                in->eof = true;
        } else {
                in->off = 0;
                in->len = (size_t)n;
        }
        feed_console(v, in);
}

static int arm_timer(int fd, unsigned sec, unsigned msec)
{
        struct itimerspec t = {.it_value = {.tv_sec = sec, .tv_nsec = (long)msec * 1000000L}};
        return timerfd_settime(fd, 0, &t, NULL);
}

/* The control channel: one host peer at a time, bytes moved both ways
 * between its socket and the virtio-console port. */
static void control_poll(vm *v, struct pollfd *p)
{
        bool room;

        p[0] = (struct pollfd){v->ctl_client < 0 ? v->ctl_listen : -1, POLLIN, 0};
        p[1] = (struct pollfd){-1, 0, 0};
        if (v->con == NULL || v->ctl_client < 0)
                return;
        pthread_mutex_lock(&v->dev_lock);
        room = vcon_input_room(v->con);
        pthread_mutex_unlock(&v->dev_lock);
        p[1] = (struct pollfd){v->ctl_client, (short)(room ? POLLIN : 0), 0};
}

static void control_drop(vm *v)
{
        close(v->ctl_client);
        v->ctl_client = -1;
        pthread_mutex_lock(&v->dev_lock);
        vcon_drop_input(v->con);
        pthread_mutex_unlock(&v->dev_lock);
}

static void control_io(vm *v, const struct pollfd *p)
{
        static uint8_t buf[64 * 1024];
        size_t n;

        if (v->con == NULL)
                return;
        if (v->ctl_client < 0 && (p[0].revents & POLLIN))
                v->ctl_client = accept4(v->ctl_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (v->ctl_client >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t r = read(v->ctl_client, buf, sizeof(buf));

                if (r > 0) {
                        pthread_mutex_lock(&v->dev_lock);
                        vcon_put_input(v->con, buf, (size_t)r);
                        pthread_mutex_unlock(&v->dev_lock);
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                        control_drop(v);
                }
        }
        /* guest output: to the peer, or dropped when there is none */
        for (;;) {
                ssize_t w;

                pthread_mutex_lock(&v->dev_lock);
                n = vcon_take_output(v->con, buf, sizeof(buf));
                pthread_mutex_unlock(&v->dev_lock);
                if (n == 0 || v->ctl_client < 0)
                        break;
                for (size_t off = 0; off < n; off += (size_t)w) {
                        struct pollfd wp = {v->ctl_client, POLLOUT, 0};

                        w = write(v->ctl_client, buf + off, n - off);
                        if (w < 0 && errno == EAGAIN && poll(&wp, 1, 1000) > 0) {
                                w = 0;
                                continue;
                        }
                        if (w <= 0) {
                                control_drop(v);
                                break;
                        }
                }
        }
}

static void main_loop(vm *v, int sig_fd)
{
        const vmm_config *c = &v->cfg;
        cleanup_close int timeout_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        cleanup_close int grace_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        console_in in = {.fd = c->in_fd, .eof = c->in_fd < 0, .tty = c->tty};
        bool panic_seen = false;
        int signalled = 0; /* the first signal, forwarded to the guest */
        struct timespec panic_at = {0};

        if (c->timeout_sec && timeout_fd >= 0)
                arm_timer(timeout_fd, c->timeout_sec, 0);
        for (;;) {
                struct pollfd p[7] = {
                    {v->done_fd, POLLIN, 0}, {sig_fd, POLLIN, 0}, {timeout_fd, POLLIN, 0},
                    {grace_fd, POLLIN, 0},   {-1, POLLIN, 0},
                };
                bool pending = in.off < in.len || (in.eof && !in.eof_sent && !in.tty);
                int r;

                if (!atomic_load(&v->console_ready))
                        pending = false;
                if (!in.eof && !pending && atomic_load(&v->console_ready) &&
                    uart_can_input(v->uart))
                        p[4].fd = in.fd;
                control_poll(v, p + 5);
                r = poll(p, 7, pending ? 10 : 100);
                if (r < 0 && errno != EINTR)
                        break;
                if (p[0].revents)
                        break;
                control_io(v, p + 5);
                if (p[4].revents)
                        read_console(v, &in);
                else if (pending)
                        feed_console(v, &in);
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        if (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                                if (signalled) {
                                        end(v, VMM_END_SIGNAL, (int)si.ssi_signo, NULL);
                                } else {
                                        /* the guest init forwards it to the workload */
                                        signalled = (int)si.ssi_signo;
                                        atomic_store(&v->ctl_sig, (int)si.ssi_signo);
                                        arm_timer(grace_fd, GRACE_SEC, 0);
                                }
                        }
                }
                if (p[2].revents & POLLIN) {
                        char d[64];
                        snprintf(d, sizeof(d), "%u", c->timeout_sec);
                        end(v, VMM_END_TIMEOUT, 0, d);
                }
                if (p[3].revents & POLLIN)
                        end(v, VMM_END_SIGNAL, signalled, "the guest did not stop in time");
                if (!panic_seen) {
                        char line[2];
                        if (uart_panicked(v->uart, line, sizeof(line))) {
                                panic_seen = true;
                                clock_gettime(CLOCK_MONOTONIC, &panic_at);
                        }
                } else {
                        struct timespec now;
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        if ((now.tv_sec - panic_at.tv_sec) * 1000 +
                                (now.tv_nsec - panic_at.tv_nsec) / 1000000 >
                            PANIC_DRAIN_MS)
                                end_reset(v, "panic");
                }
        }
}

static const int handled_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

int vmm_create(const vmm_config *c, vmm **ret, forge_error **err)
{
        vm *v = calloc(1, sizeof(*v));
        boot_layout layout;

        if (v == NULL)
                return forge_error_make(err, ENOMEM, "set up the VM");
        v->kvm_fd = v->vm_fd = v->done_fd = v->gm.fd = -1;
        v->ctl_listen = v->ctl_client = v->ctl_dir = -1;
        v->ncpus = c->cpus ? c->cpus : 1;
        v->cfg = *c;
        v->stats = getenv("FORGE_VMM_STATS") != NULL;
        v->bootstat = getenv("FORGE_VMM_BOOTSTAT") != NULL;
        if (v->bootstat)
                clock_gettime(CLOCK_BOOTTIME, &v->t_create);
        pthread_mutex_init(&v->dev_lock, NULL);
        if (v->ncpus > VMM_MAX_CPUS) {
                forge_error_make(err, 0, "%u vCPUs: at most %d are supported", v->ncpus,
                                 VMM_MAX_CPUS);
                goto fail;
        }
        v->cpu = calloc(v->ncpus, sizeof(*v->cpu));
        v->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (v->cpu == NULL || v->done_fd < 0) {
                forge_error_make(err, errno, "set up the VM");
                goto fail;
        }
        for (unsigned i = 0; i < v->ncpus; i++)
                v->cpu[i].fd = -1;
        if (create_vm(v, err) < 0 || create_devices(v, c, err) < 0)
                goto fail;
        if (v->bootstat)
                clock_gettime(CLOCK_BOOTTIME, &v->t_devices);
        if (vmm_boot_load(&v->gm, c->kernel, c->kernel_len,
                          c->vmlinux_len
                              ? &(boot_vmlinux){c->vmlinux_fd, c->vmlinux_off, c->vmlinux_len}
                              : NULL,
                          c->initrd, c->initrd_len, c->cmdline, &layout, err) < 0 ||
            vmm_boot_mptable(&v->gm, v->ncpus, BLK_SLOT, err) < 0 ||
            vmm_boot_acpi(&v->gm, v->ncpus, err) < 0)
                goto fail;
        if (v->bootstat)
                clock_gettime(CLOCK_BOOTTIME, &v->t_kernel);
        v->boot_kind = c->vmlinux_len ? (layout.kaslr ? "vmlinux-kaslr" : "vmlinux") : "bzimage";
        if (create_vcpus(v, layout.kernel_entry, err) < 0)
                goto fail;
        /* the kernel, initrd and command line live in guest memory now */
        v->cfg.kernel = v->cfg.initrd = NULL;
        v->cfg.cmdline = NULL;
        *ret = v;
        return 0;
fail:
        vmm_destroy(v);
        return -1;
}

int vmm_start(vmm *v, vmm_result *ret)
{
        const vmm_config *c = &v->cfg;
        sigset_t sigs, old;
        struct sigaction sa = {.sa_handler = kick_handler};
        struct termios saved_tio;
        bool raw = false;
        int sig_fd;

        sigemptyset(&sigs);
        for (size_t i = 0; i < ARRAY_SIZE(handled_signals); i++)
                sigaddset(&sigs, handled_signals[i]);
        sigaddset(&sigs, KICK_SIGNAL);
        sigaction(KICK_SIGNAL, &sa, NULL);
        pthread_sigmask(SIG_BLOCK, &sigs, &old);
        sigdelset(&sigs, KICK_SIGNAL);
        sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
        if (c->tty && c->in_fd >= 0 && tcgetattr(c->in_fd, &saved_tio) == 0) {
                struct termios t = saved_tio;
                cfmakeraw(&t);
                raw = tcsetattr(c->in_fd, TCSANOW, &t) == 0;
        }
        if (v->net && vnet_start(v->net) < 0)
                end(v, VMM_END_CRASH, 0, "could not start the network thread");
        for (unsigned i = 0; i < v->ncpus; i++) {
                if (pthread_create(&v->cpu[i].tid, NULL, vcpu_thread, &v->cpu[i]) != 0) {
                        end(v, VMM_END_CRASH, 0, "could not start a vCPU thread");
                        break;
                }
                v->cpu[i].started = true;
        }
        main_loop(v, sig_fd);
        stop_vcpus(v);
        if (raw)
                tcsetattr(c->in_fd, TCSANOW, &saved_tio);
        if (sig_fd >= 0)
                close(sig_fd);
        /* signals that arrived meanwhile are consumed: forge reports them itself */
        {
                struct timespec zero = {0, 0};
                while (sigtimedwait(&sigs, NULL, &zero) > 0)
                        ;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        *ret = v->result;
        return 0;
}

/* The process's start (CLOCK_BOOTTIME, clock-tick resolution): forge
 * executed this program in its own place, so this is `forge run`'s start. */
static double proc_start(void)
{
        char buf[1024], *p;
        FILE *f = fopen("/proc/self/stat", "re");
        unsigned long long ticks = 0;
        size_t n;

        if (f == NULL)
                return -1;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        p = strrchr(buf, ')'); /* after the command name: field 3 on */
        if (p == NULL ||
            sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                   "%*d %llu",
                   &ticks) != 1)
                return -1;
        return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static double ts_sec(const struct timespec *t)
{
        return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static void bootstat_print(vm *v)
{
        struct timespec now;

        clock_gettime(CLOCK_BOOTTIME, &now);
        fprintf(stderr,
                "forge-vmm: bootstat proc_start=%.3f create=%.6f devices=%.6f loaded=%.6f "
                "first_run=%.6f end=%.6f destroyed=%.6f kernel=%s\n",
                proc_start(), ts_sec(&v->t_create), ts_sec(&v->t_devices), ts_sec(&v->t_kernel),
                ts_sec(&v->t_first_run), ts_sec(&v->t_end), ts_sec(&now),
                v->boot_kind ? v->boot_kind : "none");
}

void vmm_destroy(vmm *v)
{
        if (v == NULL)
                return;
        if (v->stats) {
                fprintf(stderr, "forge-vmm: exits:");
                for (size_t i = 0; i < ARRAY_SIZE(stat_names); i++)
                        fprintf(stderr, " %s=%lu", stat_names[i], atomic_load(&v->n_exits[i]));
                fputc('\n', stderr);
        }
        destroy(v);
        if (v->bootstat)
                bootstat_print(v);
        free(v);
}

int vmm_result_exit_status(const vmm_result *r)
{
        switch (r->end) {
        case VMM_END_STATUS:
                return r->status & 0xff;
        case VMM_END_SIGNAL:
                return 128 + r->status;
        case VMM_END_TIMEOUT:
                return 124;
        default:
                return 125;
        }
}
