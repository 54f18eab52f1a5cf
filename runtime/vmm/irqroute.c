/* SPDX-License-Identifier: MIT */
/*
 * GSI routes for irqfds. KVM_SET_GSI_ROUTING replaces the whole table, so it
 * always carries KVM's default routes for the in-kernel irqchip (GSI 0-15 to
 * the PICs and the IOAPIC, 16-23 to the IOAPIC) plus one MSI route per bound
 * eventfd, on GSIs from 24 up.
 */
#include "runtime/vmm/vmm-fs.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define IRQCHIP_GSIS 24
#define MAX_MSI_ROUTES 32

struct irq_routes {
        int vm_fd;
        struct {
                int fd; /* -1: free */
                uint64_t addr;
                uint32_t data;
        } msi[MAX_MSI_ROUTES];
};

irq_routes *irq_routes_new(int vm_fd)
{
        irq_routes *r = calloc(1, sizeof(*r));

        if (r == NULL)
                return NULL;
        r->vm_fd = vm_fd;
        for (unsigned i = 0; i < MAX_MSI_ROUTES; i++)
                r->msi[i].fd = -1;
        return r;
}

void irq_routes_free(irq_routes *r)
{
        free(r);
}

static void irqchip_entry(struct kvm_irq_routing_entry *e, unsigned gsi, unsigned chip,
                          unsigned pin)
{
        memset(e, 0, sizeof(*e));
        e->gsi = gsi;
        e->type = KVM_IRQ_ROUTING_IRQCHIP;
        e->u.irqchip.irqchip = chip;
        e->u.irqchip.pin = pin;
}

static int commit(irq_routes *r)
{
        size_t max = 16 * 2 + 8 + MAX_MSI_ROUTES;
        struct kvm_irq_routing *t = calloc(1, sizeof(*t) + max * sizeof(t->entries[0]));
        unsigned n = 0;
        int ret;

        if (t == NULL)
                return -ENOMEM;
        for (unsigned gsi = 0; gsi < IRQCHIP_GSIS; gsi++) {
                irqchip_entry(&t->entries[n++], gsi, KVM_IRQCHIP_IOAPIC, gsi);
                if (gsi < 16)
                        irqchip_entry(&t->entries[n++], gsi,
                                      gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                                      gsi % 8);
        }
        for (unsigned i = 0; i < MAX_MSI_ROUTES; i++) {
                struct kvm_irq_routing_entry *e;
                if (r->msi[i].fd < 0)
                        continue;
                e = &t->entries[n++];
                e->gsi = IRQCHIP_GSIS + i;
                e->type = KVM_IRQ_ROUTING_MSI;
                e->u.msi.address_lo = (uint32_t)r->msi[i].addr;
                e->u.msi.address_hi = (uint32_t)(r->msi[i].addr >> 32);
                e->u.msi.data = r->msi[i].data;
        }
        t->nr = n;
        ret = ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
        free(t);
        return ret;
}

static int bind(irq_routes *r, unsigned slot, bool assign)
{
        struct kvm_irqfd f = {.fd = (uint32_t)r->msi[slot].fd,
                              .gsi = IRQCHIP_GSIS + slot,
                              .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN};

        return ioctl(r->vm_fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

int irq_routes_msi_irqfd(irq_routes *r, int fd, uint64_t addr, uint32_t data, bool assign)
{
        unsigned slot = MAX_MSI_ROUTES;
        bool bound = false;
        int ret;

        for (unsigned i = 0; i < MAX_MSI_ROUTES; i++)
                if (r->msi[i].fd == fd) {
                        slot = i;
                        bound = true;
                }
        if (!assign) {
                if (!bound)
                        return 0;
                ret = bind(r, slot, false);
                r->msi[slot].fd = -1;
                commit(r);
                return ret;
        }
        for (unsigned i = 0; i < MAX_MSI_ROUTES && slot == MAX_MSI_ROUTES; i++)
                if (r->msi[i].fd < 0)
                        slot = i;
        if (slot == MAX_MSI_ROUTES)
                return -ENOSPC;
        r->msi[slot].fd = fd;
        r->msi[slot].addr = addr;
        r->msi[slot].data = data;
        /* a bound irqfd follows its route when the table changes */
        ret = commit(r);
        if (ret == 0 && !bound)
                ret = bind(r, slot, true);
        if (ret < 0 && !bound)
                r->msi[slot].fd = -1;
        return ret;
}

static int ioeventfd(void *opaque, uint64_t addr, int fd, bool assign)
{
        irq_routes *r = opaque;
        struct kvm_ioeventfd e = {
            .addr = addr, .len = 2, .fd = fd, .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN};

        return ioctl(r->vm_fd, KVM_IOEVENTFD, &e) < 0 ? -errno : 0;
}

static int irqfd(void *opaque, int fd, uint64_t addr, uint32_t data, bool assign)
{
        return irq_routes_msi_irqfd(opaque, fd, addr, data, assign);
}

vfs_host_ops irq_routes_host_ops(irq_routes *r)
{
        return (vfs_host_ops){.ioeventfd = ioeventfd, .irqfd = irqfd, .opaque = r};
}
