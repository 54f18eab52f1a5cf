/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Host directories in the guest (internal to runtime/vmm/): a virtio-fs
 * device (virtio/fs.c) whose queues a vhost-user back-end, virtiofsd, serves
 * directly in shared guest memory (vhost-user.c), with KVM ioeventfds for the
 * guest's notifications and irqfds on MSI routes for its interrupts
 * (irqroute.c).
 */

#include "runtime/vmm/vmm-internal.h"

/* --- vhost-user (front-end) --- */
enum {
        VHU_GET_FEATURES = 1,
        VHU_SET_FEATURES = 2,
        VHU_SET_OWNER = 3,
        VHU_SET_MEM_TABLE = 5,
        VHU_SET_VRING_NUM = 8,
        VHU_SET_VRING_ADDR = 9,
        VHU_SET_VRING_BASE = 10,
        VHU_GET_VRING_BASE = 11,
        VHU_SET_VRING_KICK = 12,
        VHU_SET_VRING_CALL = 13,
};
#define VHU_MAX_REGIONS 8

struct vhu_region {
        uint64_t guest_phys_addr;
        uint64_t memory_size;
        uint64_t userspace_addr; /* the front-end's address of the region */
        uint64_t mmap_offset;    /* in the region's fd */
};
struct vhu_mem_table {
        uint32_t nregions;
        uint32_t padding;
        struct vhu_region regions[VHU_MAX_REGIONS];
};
struct vhu_vring_addr {
        uint32_t index;
        uint32_t flags;
        uint64_t desc, used, avail; /* front-end addresses */
        uint64_t log;
};

typedef struct vhu vhu;
/* Takes ownership of sock_fd, a connected UNIX stream socket. */
int vhu_new(int sock_fd, vhu **ret);
void vhu_free(vhu *u);
void vhu_set_timeout(vhu *u, int ms);
/* A message (header + payload) into buf; its length, or -1 when it does not fit. */
int vhu_encode(uint8_t *buf, size_t size, uint32_t request, const void *payload, uint32_t len);
/* 0 when the 12-byte header hdr is a well-formed reply to request of want_len bytes. */
int vhu_decode_reply(const uint8_t *hdr, uint32_t request, uint32_t want_len);
int vhu_set_owner(vhu *u, forge_error **err);
int vhu_get_features(vhu *u, uint64_t *ret, forge_error **err);
int vhu_set_features(vhu *u, uint64_t features, forge_error **err);
/* One fd per region (SCM_RIGHTS). */
int vhu_set_mem_table(vhu *u, const struct vhu_region *r, unsigned n, const int *fds,
                      forge_error **err);
int vhu_set_vring_num(vhu *u, unsigned index, unsigned num, forge_error **err);
int vhu_set_vring_base(vhu *u, unsigned index, unsigned base, forge_error **err);
int vhu_set_vring_addr(vhu *u, const struct vhu_vring_addr *a, forge_error **err);
int vhu_set_vring_kick(vhu *u, unsigned index, int fd, forge_error **err);
int vhu_set_vring_call(vhu *u, unsigned index, int fd, forge_error **err);
/* Stops the ring and returns where the back-end stopped. */
int vhu_get_vring_base(vhu *u, unsigned index, uint32_t *ret, forge_error **err);

/* --- MSI routes for irqfds (KVM_SET_GSI_ROUTING keeps KVM's default
 * irqchip routes, so the UART and INTx work as before) --- */
typedef struct irq_routes irq_routes;
irq_routes *irq_routes_new(int vm_fd);
void irq_routes_free(irq_routes *r);
/* Binds eventfd fd to an MSI (addr, data): a write to fd interrupts the
 * guest without the VMM. assign false unbinds it. */
int irq_routes_msi_irqfd(irq_routes *r, int fd, uint64_t addr, uint32_t data, bool assign);

/* --- the virtio-fs device --- */
#define VFS_TAG_MAX 36

typedef struct vfs_host_ops {
        /* an eventfd signalled by KVM on a 2-byte guest write to addr */
        int (*ioeventfd)(void *opaque, uint64_t addr, int fd, bool assign);
        /* an eventfd interrupting the guest with MSI (addr, data) */
        int (*irqfd)(void *opaque, int fd, uint64_t addr, uint32_t data, bool assign);
        void *opaque;
} vfs_host_ops;
/* KVM's: ioeventfds on the VM of r, irqfds on r's MSI routes (irqroute.c) */
vfs_host_ops irq_routes_host_ops(irq_routes *r);

typedef struct vfs vfs;
/* A device for tag served by the back-end on sock_fd (taken over). Sets the
 * back-end up (SET_OWNER, GET_FEATURES): < 0 when it does not answer as a
 * virtio-fs back-end should. gm must be shared (a memfd). */
int vfs_new(const char *tag, int sock_fd, const guest_mem *gm, uint64_t bar_addr,
            const vfs_host_ops *host, vfs **ret, forge_error **err);
void vfs_free(vfs *d);
pci_function *vfs_pci(vfs *d);
/* Whether the back-end serves the queues now (the driver set DRIVER_OK and
 * every message went through). */
bool vfs_started(const vfs *d);
/* Why the back-end could not be started, or NULL. */
const char *vfs_error(const vfs *d);

/* --- virtio/net.c with KVM's eventfds: before vnet_start, the doorbells
 * as ioeventfds and the MSI-X vectors as irqfds through host --- */
void vnet_set_host(vnet *d, const vfs_host_ops *host);

/* --- shares.c: the VM's shared directories (vm.c's view) --- */
typedef struct vm_shares vm_shares;
/* The devices of c->fs on bus (taking the sockets), their interrupts on
 * routes (the VM's one table, shared with the NIC); *ret NULL when there
 * are none. */
int vm_shares_new(int kvm_fd, irq_routes *routes, const guest_mem *gm, const vmm_config *c,
                  pci_bus *bus, vm_shares **ret, forge_error **err);
bool vm_shares_mmio(vm_shares *s, uint64_t addr, uint8_t *data, unsigned len, bool write);
/* Stops and reaps each virtiofsd, then frees the devices. */
void vm_shares_free(vm_shares *s);
