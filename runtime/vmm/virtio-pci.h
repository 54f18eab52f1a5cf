/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The modern virtio-pci transport (virtio 1.x section 4.1), one copy for
 * every device in virtio/ (internal to runtime/vmm/). A device embeds a
 * virtio_pci and describes itself with a virtio_pci_info and a
 * virtio_pci_ops; the transport owns the PCI function and its capability
 * list, and the one 64-bit memory BAR:
 *   0x0000 common configuration   0x1000 ISR        0x2000 device configuration
 *   0x3000 notification area      0x4000 MSI-X table 0x5000 MSI-X PBA
 * Every register the guest writes is checked here (feature bits against the
 * offer, queue sizes and ring addresses against guest memory, vectors
 * against the table, offsets against the windows); the device sees only
 * what passed. The caller serialises every entry point.
 */

#include "runtime/vmm/vmm-internal.h"

#define VIRTIO_PCI_MAX_QUEUES 2
#define VIRTIO_PCI_MAX_VECTORS (VIRTIO_PCI_MAX_QUEUES + 1) /* one a queue, one for config */
#define VIRTIO_PCI_CONFIG_MAX 0x40
#define VIRTIO_PCI_BAR_SIZE 0x8000
#define VIRTIO_PCI_NOTIFY_OFF 0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_NO_VECTOR 0xffff

#define VIRTIO_F_INDIRECT_DESC (1ULL << 28)
#define VIRTIO_F_EVENT_IDX (1ULL << 29)
#define VIRTIO_F_VERSION_1 (1ULL << 32)

#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40

/* What makes a device that device (kvmtool's struct virtio_ops). dev is
 * the device's own object. */
typedef struct virtio_pci_ops {
        /* fills the device configuration (config_len bytes, zeroed): read only */
        void (*config)(void *dev, uint8_t *cfg);
        /* the driver wrote queue's doorbell, whatever the device status */
        void (*notify)(void *dev, unsigned queue);
        /* optional: the device status changed: reset (at set-up, and when
         * the driver wrote 0; the queues are gone), or the driver wrote
         * another status */
        void (*status)(void *dev, bool reset);
        /* optional: the MSI-X table, its enable or function mask changed */
        void (*msix_changed)(void *dev);
        /* optional: delivers a vector's message by the device's own means (an
         * irqfd); false to have the transport use irq.msi */
        bool (*msi)(void *dev, uint16_t vec, uint64_t addr, uint32_t data);
} virtio_pci_ops;

typedef struct virtio_pci_info {
        uint16_t device_id; /* 0x1040 + virtio device type */
        uint32_t class_rev; /* PCI class code << 8 | revision */
        unsigned num_queues;
        unsigned config_len;
        unsigned flags;
} virtio_pci_info;
#define VIRTIO_PCI_INTX 1u /* INTA# routed to PCI_INTX_GSI */
/* the rings go to a back-end at DRIVER_OK: no queue is enabled after */
#define VIRTIO_PCI_ENABLE_BEFORE_DRIVER_OK 2u

typedef struct virtio_pci {
        pci_function pci;
        const virtio_pci_info *info;
        const virtio_pci_ops *ops;
        void *dev;
        uint64_t features; /* offered */
        const guest_mem *gm;
        vblk_irq_ops irq;
        unsigned msix_cap;
        uint32_t dfselect, gfselect;
        uint64_t driver_features;
        uint8_t status;
        uint8_t isr;
        uint16_t msix_config;
        uint16_t queue_select;
        virtq vq[VIRTIO_PCI_MAX_QUEUES];
        uint32_t msix[VIRTIO_PCI_MAX_VECTORS][4]; /* addr lo, addr hi, data, control */
        uint64_t pba;
        int intx_level;
} virtio_pci;

/* Sets up the PCI function (IDs, BAR 0 at bar_addr, capabilities) of a
 * device offering features and resets it. info and ops must outlive t; irq
 * may be NULL. The BAR is reached through the function (virtio_pci_mmio,
 * virtio_pci_bar_access in vmm-internal.h). */
void virtio_pci_init(virtio_pci *t, const virtio_pci_info *info, const virtio_pci_ops *ops,
                     void *dev, uint64_t features, const guest_mem *gm, uint64_t bar_addr,
                     const vblk_irq_ops *irq);
/* The device used buffers of a queue whose vector is vec: ISR bit 0 and
 * the vector's message, held in the PBA while masked, or INTx. */
void virtio_pci_interrupt(virtio_pci *t, uint16_t vec);
/* The device has returned chains of q (used: any): a broken ring asks for
 * a reset, used buffers interrupt unless the driver said not to
 * (VRING_AVAIL_F_NO_INTERRUPT; EVENT_IDX devices decide for themselves). */
void virtio_pci_queue_done(virtio_pci *t, virtq *q, bool used);
/* Whether vec's message would reach the guest now (MSI-X on, nothing
 * masked), and that message. */
bool virtio_pci_msix_message(const virtio_pci *t, uint16_t vec, uint64_t *ret_addr,
                             uint32_t *ret_data);
/* Where queue's doorbell is while the BAR is at bar (for ioeventfds). */
uint64_t virtio_pci_notify_addr(uint64_t bar, unsigned queue);

static inline bool virtio_pci_driver_ok(const virtio_pci *t)
{
        return (t->status & VIRTIO_STATUS_DRIVER_OK) != 0;
}

/* The device hit something it cannot go on from (a broken ring). */
static inline void virtio_pci_needs_reset(virtio_pci *t)
{
        t->status |= VIRTIO_STATUS_NEEDS_RESET;
}
