/* SPDX-License-Identifier: MIT */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/vmproto.h"
#include "runtime/vmm/vmm.h"

/*
 * Guest physical layout (x86-64):
 *   0x00500  GDT                0x07000  boot_params (zero page)
 *   0x08ff0  boot stack top     0x09000  PML4, 0x0a000 PDPT, 0x0b000.. PDs
 *   0x20000  kernel command line
 *   0x9fc00 .. 0xfffff  reserved (EBDA, BIOS area; the MP table at 0xf0000)
 *   0x100000 kernel (protected-mode part of the bzImage), initrd at the top of low RAM
 *   0xc0000000 .. 0xffffffff  PCI/MMIO hole: virtio BAR, IOAPIC, LAPIC
 *   RAM above 3 GiB continues at 4 GiB.
 */
#define GDT_ADDR 0x500ULL
#define ZERO_PAGE_ADDR 0x7000ULL
#define BOOT_STACK_TOP 0x8ff0ULL
#define PML4_ADDR 0x9000ULL
#define PDPT_ADDR 0xa000ULL
#define PD_ADDR 0xb000ULL /* four pages: the first 4 GiB in 2 MiB pages */
#define CMDLINE_ADDR 0x20000ULL
#define CMDLINE_MAX 0x10000ULL
#define EBDA_START 0x9fc00ULL
#define MPTABLE_ADDR 0xf0000ULL
#define ACPI_RSDP_ADDR 0xe0000ULL /* where Linux scans for the RSDP */
#define ACPI_XSDT_ADDR 0xe0040ULL
#define ACPI_MADT_ADDR 0xe0100ULL
#define HIGH_MEMORY 0x100000ULL
#define KERNEL_ADDR HIGH_MEMORY
#define MMIO_HOLE_START 0xc0000000ULL
#define MMIO_HOLE_END 0x100000000ULL
#define IOAPIC_ADDR 0xfec00000ULL
#define LAPIC_ADDR 0xfee00000ULL
#define PCI_BAR_BASE 0xe0000000ULL

#define VMM_MIN_MEMORY (64ULL << 20)
#define VMM_MAX_CPUS 64

/* I/O ports */
#define UART_PORT 0x3f8
#define UART_IRQ 4
/* the guest init's ports (exit status, control): common/vmproto.h */
#define PCI_CONFIG_ADDR 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define I8042_PORT 0x64
#define RTC_PORT 0x70
#define PCI_INTX_GSI 10

/* Guest memory: up to two RAM ranges backed by one host mapping. */
typedef struct guest_mem {
        uint8_t *host;
        uint64_t size;     /* total RAM */
        uint64_t low_size; /* RAM at [0, low_size) */
        bool shared;       /* host is a MAP_SHARED memfd, fd (for vhost-user back-ends) */
        int fd;
        /* RAM at [4 GiB, 4 GiB + size - low_size) is host + low_size */
} guest_mem;

/* A host pointer for [gpa, gpa+len) when it lies wholly in guest RAM, else NULL. */
void *gm_ptr(const guest_mem *gm, uint64_t gpa, uint64_t len);

/* boot.c: the boot protocol over a guest memory (no KVM needed: unit tested) */
typedef struct boot_layout {
        uint64_t kernel_entry; /* 64-bit entry point */
        bool kaslr;            /* the uncompressed kernel's virtual base was randomised */
        uint64_t initrd_addr;
        uint64_t initrd_size;
} boot_layout;

struct e820_entry {
        uint64_t addr;
        uint64_t size;
        uint32_t type;
} __attribute__((packed));
#define E820_RAM 1
#define E820_RESERVED 2

/* The uncompressed kernel (an ELF and its relocation table, as a bzImage
 * carries it; vmimage/vmlinux.c) at [off, off + len) of fd. */
typedef struct boot_vmlinux {
        int fd;
        uint64_t off, len;
} boot_vmlinux;

typedef struct vmlinux_loaded {
        uint64_t entry;      /* startup_64, physical */
        uint64_t start, end; /* the image in guest memory */
        uint64_t virt_delta; /* the KASLR shift applied */
        bool randomized;     /* KASLR on (the kernel then randomises its memory regions) */
} vmlinux_loaded;

/* x86/vmlinux.c: loads the segments at their physical addresses and, with
 * kaslr and a relocation table, shifts the kernel's virtual base by a
 * 2 MiB multiple chosen from random. */
int vmm_vmlinux_load(guest_mem *gm, const boot_vmlinux *v, bool kaslr, uint64_t random,
                     vmlinux_loaded *ret, forge_error **err);

/* Fills table (max entries) with the RAM map of gm; returns the count. */
unsigned vmm_boot_e820(const guest_mem *gm, struct e820_entry *table, unsigned max);
/* Checks the bzImage header, loads kernel, initrd, command line, boot_params,
 * the GDT and identity page tables. With vmlinux (else NULL) the kernel
 * booted is that one, entered at its startup_64; kernel then needs to hold
 * only the bzImage's setup (its first VMM_BOOT_SETUP_MAX bytes). */
int vmm_boot_load(guest_mem *gm, const void *kernel, size_t kernel_len, const boot_vmlinux *vmlinux,
                  const void *initrd, size_t initrd_len, const char *cmdline, boot_layout *ret,
                  forge_error **err);

/* The MP table announcing cpus vCPUs, the IOAPIC, ISA and PCI interrupts. */
int vmm_boot_mptable(guest_mem *gm, unsigned cpus, unsigned pci_slot_intx, forge_error **err);
/* The same CPUs and IOAPIC as ACPI tables (RSDP, XSDT, MADT), for kernels
 * without MP table support (Debian's cloud kernel). There is no FADT: the
 * kernel reads the MADT while it sets up, then finds no ACPI hardware, turns
 * ACPI off and scans PCI itself (mechanism #1). pci=noacpi must not be given:
 * without MP table support it turns the local APIC off too. */
int vmm_boot_acpi(guest_mem *gm, unsigned cpus, forge_error **err);

/* virtq.c: split virtqueues read from guest memory (every index and
 * address checked; a misbehaving driver gets its queue marked broken). */
#define VIRTQ_MAX_SIZE 256
#define VIRTQ_MAX_CHAIN 1024

typedef struct virtq {
        uint16_t size; /* negotiated size, power of two */
        bool ready;
        bool broken;
        uint64_t desc_gpa, avail_gpa, used_gpa;
        uint16_t last_avail;
        uint16_t msix_vector;
} virtq;

typedef struct virtq_buf {
        void *ptr; /* host pointer into guest RAM */
        uint32_t len;
        bool write; /* device writes (guest reads) */
} virtq_buf;

typedef struct virtq_chain {
        uint16_t head;
        unsigned n;
        virtq_buf buf[VIRTQ_MAX_CHAIN];
} virtq_chain;

/* 1 and a chain when the driver made one available, 0 when none, < 0 when the
 * ring is corrupt (the queue is then broken and ignored until reset). */
int virtq_pop(virtq *q, const guest_mem *gm, virtq_chain *ret);
/* The bytes of a chain's device-writable (write) or driver-written buffers. */
uint64_t virtq_chain_len(const virtq_chain *c, bool write);
/* Returns the chain to the driver with len bytes written. */
int virtq_push(virtq *q, const guest_mem *gm, uint16_t head, uint32_t len);
/* Whether the driver wants an interrupt (VRING_AVAIL_F_NO_INTERRUPT unset). */
bool virtq_should_notify(const virtq *q, const guest_mem *gm);
/* Tells the driver whether to notify after adding buffers (the used ring's
 * VRING_USED_F_NO_NOTIFY): a device that polls the ring anyway spares the
 * guest an exit per buffer. */
void virtq_set_notify(virtq *q, const guest_mem *gm, bool want);
/* VIRTIO_RING_F_EVENT_IDX: the used index as the device left it; the
 * avail_event the device publishes (kick me once the driver's avail index
 * passes idx); whether the driver's used_event asks for an interrupt now
 * that the used index moved from old_used to new_used. */
uint16_t virtq_used_idx(const virtq *q, const guest_mem *gm);
void virtq_set_avail_event(virtq *q, const guest_mem *gm, uint16_t idx);
bool virtq_need_event(const virtq *q, const guest_mem *gm, uint16_t old_used, uint16_t new_used);

/* pci.c: configuration space of one PCI function, with BAR sizing. */
#define PCI_CFG_SIZE 256
typedef struct pci_function {
        uint8_t cfg[PCI_CFG_SIZE];
        uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may write */
        uint64_t bar_size[6];        /* 0: no BAR; a 64-bit BAR uses two slots */
        bool bar_is64[6];
        unsigned cap_last, cap_free; /* capability list */
        void (*cfg_written)(struct pci_function *f, unsigned off, unsigned len);
        void *opaque;
} pci_function;

void vmm_pci_function_init(pci_function *f, uint16_t vendor, uint16_t device, uint32_t class_rev,
                           uint16_t subsys_vendor, uint16_t subsys);
void vmm_pci_function_bar(pci_function *f, unsigned bar, uint64_t size, uint64_t addr, bool is64);
/* Appends a capability; returns its offset (0 when there is no room). */
unsigned vmm_pci_function_cap(pci_function *f, const uint8_t *cap, unsigned len,
                              unsigned wmask_from, unsigned wmask_len);
uint32_t vmm_pci_cfg_read(const pci_function *f, unsigned off, unsigned len);
void vmm_pci_cfg_write(pci_function *f, unsigned off, unsigned len, uint32_t val);
/* The address a memory BAR decodes at, or 0 when memory decoding is off. */
uint64_t vmm_pci_bar_addr(const pci_function *f, unsigned bar);

#define PCI_MAX_DEVICES 8
typedef struct pci_bus {
        uint32_t config_addr;               /* 0xcf8 latch */
        pci_function *dev[PCI_MAX_DEVICES]; /* slot -> function 0 */
} pci_bus;

/* Port accesses to 0xcf8..0xcff; data is little endian, len 1, 2 or 4. */
void vmm_pci_bus_io(pci_bus *bus, uint16_t port, uint8_t *data, unsigned len, bool write);

/* uart.c: an 8250/16550A on 0x3f8 */
typedef struct uart uart;
uart *uart_new(int out_fd, void (*set_irq)(void *opaque, int level), void *opaque);
void uart_free(uart *u);
void uart_io(uart *u, unsigned off, uint8_t *data, bool write);
/* Queues guest input; returns how many bytes were taken. */
size_t uart_input(uart *u, const uint8_t *buf, size_t len);
/* Whether the guest's receive buffer has room (the host should read stdin). */
bool uart_can_input(uart *u);
/* Whether the guest printed a kernel panic line; copies it to line. */
bool uart_panicked(uart *u, char *line, size_t size);

/* virtio/pci-transport.c: the modern virtio-pci transport of every virtio
 * device (virtio-pci.h), reached through the device's PCI function
 * (vblk_pci, vnet_pci, vcon_pci, vfs_pci). An access at offset off in its
 * BAR (len 1 to 8; what reads nothing reads 0): */
void virtio_pci_bar_access(pci_function *f, uint64_t off, uint8_t *data, unsigned len, bool write);
/* The same at guest address addr: false when addr is not in the BAR. */
bool virtio_pci_mmio(pci_function *f, uint64_t addr, uint8_t *data, unsigned len, bool write);

/* virtio-blk over the modern virtio-pci transport */
typedef struct vblk vblk;
typedef struct blk_backend blk_backend;

/* disk.c: the block backend; copy-on-write over a read-only image unless persist. */
/* path_fd >= 0: that open file (path only names it in messages) */
int vmm_blk_open(const char *path, int path_fd, bool persist, blk_backend **ret, forge_error **err);
void vmm_blk_close(blk_backend *b);
uint64_t vmm_blk_size(const blk_backend *b);
int vmm_blk_read(blk_backend *b, void *buf, uint64_t len, uint64_t off);
int vmm_blk_write(blk_backend *b, const void *buf, uint64_t len, uint64_t off);
int vmm_blk_flush(blk_backend *b);
/* From now on every write fails with EROFS (and virtio-blk offers VIRTIO_BLK_F_RO). */
void vmm_blk_set_read_only(blk_backend *b);
bool vmm_blk_read_only(const blk_backend *b);

typedef struct vblk_irq_ops {
        void (*msi)(void *opaque, uint64_t addr, uint32_t data);
        void (*intx)(void *opaque, int level);
        void *opaque;
} vblk_irq_ops;

vblk *vblk_new(blk_backend *backend, const guest_mem *gm, uint64_t bar_addr,
               const vblk_irq_ops *irq);
void vblk_free(vblk *d);
pci_function *vblk_pci(vblk *d);

/* virtio/net.c: virtio-net whose backend is a stream socket carrying frames
 * as QEMU's stream netdev does (4-byte big-endian length, then the frame):
 * passt's protocol. Every entry point but the receive thread's runs under
 * lock, which the receive thread takes too. */
#define VNET_HDR_LEN 12      /* struct virtio_net_hdr of virtio 1.x */
#define VNET_MAX_FRAME 65536 /* the bound of a frame either way */
typedef struct vnet vnet;

vnet *vnet_new(int sock, const guest_mem *gm, uint64_t bar_addr, const vblk_irq_ops *irq,
               pthread_mutex_t *lock);
/* Starts the receive thread. */
int vnet_start(vnet *d);
void vnet_free(vnet *d);
pci_function *vnet_pci(vnet *d);
/* Hands one received frame to the guest (lock held): 1 when it was placed
 * or dropped, 0 when the guest has posted no buffer yet. */
int vnet_rx_frame(vnet *d, const uint8_t *frame, size_t len);
/* Frames dropped so far: transmit (malformed, backend gone), receive (no room). */
void vnet_counters(const vnet *d, uint64_t *ret_tx_dropped, uint64_t *ret_rx_dropped);

/* virtio/console.c: virtio-console with one port (/dev/hvc0 in the guest),
 * the control channel of detached runs; it moves bytes and parses nothing */
typedef struct vcon vcon;
typedef struct vcon_irq_ops {
        void (*msi)(void *opaque, uint64_t addr, uint32_t data);
        void (*intx)(void *opaque, int level); /* NULL: MSI-X only */
        void (*output)(void *opaque);          /* guest output waits for vcon_take_output */
        void *opaque;
} vcon_irq_ops;

vcon *vcon_new(const guest_mem *gm, uint64_t bar_addr, const vcon_irq_ops *irq);
void vcon_free(vcon *d);
pci_function *vcon_pci(vcon *d);
/* Copies out up to max bytes of guest output. */
size_t vcon_take_output(vcon *d, uint8_t *buf, size_t max);
/* Whether host input is taken now (the previous input has reached the guest). */
bool vcon_input_room(const vcon *d);
/* Queues host input (at most 64 KiB, when vcon_input_room); returns what was taken. */
size_t vcon_put_input(vcon *d, const uint8_t *buf, size_t len);
/* Forgets input the guest has not received (its host peer went away). */
void vcon_drop_input(vcon *d);
