/* SPDX-License-Identifier: MIT */
/*
 * The modern virtio-pci transport (virtio 1.x section 4.1) of every virtio
 * device: the common configuration (feature negotiation, device status,
 * queue set-up), the ISR, the device configuration window, the doorbells,
 * MSI-X (table, PBA, function mask) and INTx. The device behind it is
 * reached through its virtio_pci_ops (virtio-pci.h).
 */
#include "runtime/vmm/virtio-pci.h"

#include <string.h>

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_SUBSYS 0x0040

#define COMMON_OFF 0x0000
#define COMMON_LEN 0x38
#define ISR_OFF 0x1000
#define DEVCFG_OFF 0x2000
#define MSIX_TABLE_OFF 0x4000
#define MSIX_PBA_OFF 0x5000

#define CAP_VENDOR 0x09
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4

#define MSIX_CAP_ID 0x11
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000

static unsigned num_vectors(const virtio_pci *t)
{
        return t->info->num_queues + 1;
}

/* --- interrupts --- */

static bool msix_enabled(const virtio_pci *t, bool *masked_all)
{
        uint16_t ctl = (uint16_t)vmm_pci_cfg_read(&t->pci, t->msix_cap + 2, 2);

        *masked_all = (ctl & MSIX_MASKALL) != 0;
        return (ctl & MSIX_ENABLE) != 0;
}

static void set_intx(virtio_pci *t, int level)
{
        if (level != t->intx_level) {
                t->intx_level = level;
                if (t->irq.intx)
                        t->irq.intx(t->irq.opaque, level);
        }
}

static void msix_fire(virtio_pci *t, uint16_t vec)
{
        uint64_t addr;
        uint32_t data;

        if (vec >= num_vectors(t))
                return;
        t->pba &= ~(1ULL << vec);
        addr = (uint64_t)t->msix[vec][1] << 32 | t->msix[vec][0];
        data = t->msix[vec][2];
        if (t->ops->msi && t->ops->msi(t->dev, vec, addr, data))
                return;
        if (t->irq.msi)
                t->irq.msi(t->irq.opaque, addr, data);
}

void virtio_pci_interrupt(virtio_pci *t, uint16_t vec)
{
        bool masked_all;

        t->isr |= 1;
        if (msix_enabled(t, &masked_all)) {
                if (vec >= num_vectors(t))
                        return;
                if (masked_all || (t->msix[vec][3] & 1))
                        t->pba |= 1ULL << vec;
                else
                        msix_fire(t, vec);
                return;
        }
        set_intx(t, 1);
}

void virtio_pci_queue_done(virtio_pci *t, virtq *q, bool used)
{
        if (q->broken)
                virtio_pci_needs_reset(t);
        if (used && virtq_should_notify(q, t->gm))
                virtio_pci_interrupt(t, q->msix_vector);
}

bool virtio_pci_msix_message(const virtio_pci *t, uint16_t vec, uint64_t *ret_addr,
                             uint32_t *ret_data)
{
        bool masked_all;

        if (!msix_enabled(t, &masked_all) || masked_all || vec >= num_vectors(t) ||
            (t->msix[vec][3] & 1))
                return false;
        *ret_addr = (uint64_t)t->msix[vec][1] << 32 | t->msix[vec][0];
        *ret_data = t->msix[vec][2];
        return true;
}

/* The enable, the function mask or a vector's mask changed: deliver what was
 * held back, and tell the device. */
static void msix_changed(virtio_pci *t)
{
        bool masked_all;

        if (msix_enabled(t, &masked_all) && !masked_all)
                for (uint16_t v = 0; v < num_vectors(t); v++)
                        if ((t->pba & (1ULL << v)) && !(t->msix[v][3] & 1))
                                msix_fire(t, v);
        if (t->ops->msix_changed)
                t->ops->msix_changed(t->dev);
}

static void msix_access(virtio_pci *t, unsigned off, uint8_t *data, unsigned len, bool write)
{
        unsigned vec = off / 16, word = (off % 16) / 4;

        /* dword accesses only (the PCI spec's rule for the MSI-X table) */
        if (len != 4 || (off & 3) || vec >= num_vectors(t)) {
                if (!write)
                        memset(data, 0, len);
                return;
        }
        if (!write) {
                memcpy(data, &t->msix[vec][word], 4);
                return;
        }
        memcpy(&t->msix[vec][word], data, 4);
        if (word == 3)
                t->msix[vec][3] &= 1;
        msix_changed(t);
}

/* --- the common configuration --- */

static void reset(virtio_pci *t)
{
        t->dfselect = t->gfselect = 0;
        t->driver_features = 0;
        t->status = 0;
        t->isr = 0;
        t->msix_config = VIRTIO_NO_VECTOR;
        t->queue_select = 0;
        for (unsigned i = 0; i < VIRTIO_PCI_MAX_QUEUES; i++)
                t->vq[i] = (virtq){.size = VIRTQ_MAX_SIZE, .msix_vector = VIRTIO_NO_VECTOR};
        t->pba = 0;
        set_intx(t, 0);
        if (t->ops->status)
                t->ops->status(t->dev, true);
}

static uint32_t half(uint64_t v, uint32_t select)
{
        return select == 0 ? (uint32_t)v : select == 1 ? (uint32_t)(v >> 32) : 0;
}

static void common_snapshot(const virtio_pci *t, uint8_t *s)
{
        const virtq *q = t->queue_select < t->info->num_queues ? &t->vq[t->queue_select] : NULL;
        uint32_t df = half(t->features, t->dfselect);
        uint32_t gf = half(t->driver_features, t->gfselect);
        uint16_t u16;

        memset(s, 0, COMMON_LEN); /* config generation 0 at 0x15 */
        memcpy(s + 0x00, &t->dfselect, 4);
        memcpy(s + 0x04, &df, 4);
        memcpy(s + 0x08, &t->gfselect, 4);
        memcpy(s + 0x0c, &gf, 4);
        memcpy(s + 0x10, &t->msix_config, 2);
        u16 = (uint16_t)t->info->num_queues;
        memcpy(s + 0x12, &u16, 2);
        s[0x14] = t->status;
        memcpy(s + 0x16, &t->queue_select, 2);
        if (q) {
                u16 = q->size;
                memcpy(s + 0x18, &u16, 2);
                memcpy(s + 0x1a, &q->msix_vector, 2);
                u16 = q->ready;
                memcpy(s + 0x1c, &u16, 2);
                /* queue_notify_off: each queue its own slot in the notify area */
                memcpy(s + 0x1e, &t->queue_select, 2);
                memcpy(s + 0x20, &q->desc_gpa, 8);
                memcpy(s + 0x28, &q->avail_gpa, 8);
                memcpy(s + 0x30, &q->used_gpa, 8);
        }
}

static bool overlaps(unsigned off, unsigned len, unsigned f, unsigned flen)
{
        return off < f + flen && f < off + len;
}

/* A queue the driver enables is live until reset; one whose size or rings
 * do not fit guest memory is broken (ignored) and the device needs a reset. */
static void queue_enable(virtio_pci *t, virtq *q)
{
        uint16_t n = q->size;

        q->ready = true;
        q->last_avail = 0;
        if (n == 0 || (n & (n - 1)) || n > VIRTQ_MAX_SIZE || (q->desc_gpa & 15) ||
            (q->avail_gpa & 1) || (q->used_gpa & 3) || !gm_ptr(t->gm, q->desc_gpa, 16ULL * n) ||
            !gm_ptr(t->gm, q->avail_gpa, 6 + 2ULL * n) ||
            !gm_ptr(t->gm, q->used_gpa, 6 + 8ULL * n)) {
                q->broken = true;
                virtio_pci_needs_reset(t);
        }
}

static uint16_t vector(const virtio_pci *t, const uint8_t *s)
{
        uint16_t v;

        memcpy(&v, s, 2);
        return v < num_vectors(t) ? v : VIRTIO_NO_VECTOR;
}

static void queue_write(virtio_pci *t, virtq *q, unsigned off, unsigned len, const uint8_t *s)
{
        uint16_t v16;

        if (q->ready) /* a live queue's set-up is fixed until reset */
                return;
        if (overlaps(off, len, 0x18, 2))
                memcpy(&q->size, s + 0x18, 2);
        if (overlaps(off, len, 0x1a, 2))
                q->msix_vector = vector(t, s + 0x1a);
        if (overlaps(off, len, 0x20, 8))
                memcpy(&q->desc_gpa, s + 0x20, 8);
        if (overlaps(off, len, 0x28, 8))
                memcpy(&q->avail_gpa, s + 0x28, 8);
        if (overlaps(off, len, 0x30, 8))
                memcpy(&q->used_gpa, s + 0x30, 8);
        if (overlaps(off, len, 0x1c, 2)) {
                memcpy(&v16, s + 0x1c, 2);
                if (v16 == 1 && !((t->info->flags & VIRTIO_PCI_ENABLE_BEFORE_DRIVER_OK) &&
                                  virtio_pci_driver_ok(t)))
                        queue_enable(t, q);
        }
}

static void status_write(virtio_pci *t, uint8_t st)
{
        if (st == 0) {
                reset(t);
                return;
        }
        /* FEATURES_OK only sticks when VERSION_1 was accepted */
        if ((st & VIRTIO_STATUS_FEATURES_OK) && !(t->driver_features & VIRTIO_F_VERSION_1))
                st &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
        t->status = (uint8_t)(st | (t->status & VIRTIO_STATUS_NEEDS_RESET));
        if (t->ops->status)
                t->ops->status(t->dev, false);
}

/* The driver's write applied to a snapshot of the registers, then each
 * field it touched taken from there, checked. */
static void common_write(virtio_pci *t, unsigned off, const uint8_t *data, unsigned len)
{
        uint8_t s[COMMON_LEN];
        uint32_t v32;

        if (off >= COMMON_LEN || len > COMMON_LEN - off)
                return;
        common_snapshot(t, s);
        memcpy(s + off, data, len);
        if (overlaps(off, len, 0x00, 4))
                memcpy(&t->dfselect, s + 0x00, 4);
        if (overlaps(off, len, 0x08, 4))
                memcpy(&t->gfselect, s + 0x08, 4);
        if (overlaps(off, len, 0x0c, 4) && !(t->status & VIRTIO_STATUS_FEATURES_OK) &&
            t->gfselect < 2) {
                unsigned sh = 32 * t->gfselect;

                memcpy(&v32, s + 0x0c, 4);
                t->driver_features &= ~(0xffffffffULL << sh);
                t->driver_features |= ((uint64_t)v32 << sh) & t->features;
        }
        if (overlaps(off, len, 0x10, 2))
                t->msix_config = vector(t, s + 0x10);
        if (overlaps(off, len, 0x14, 1))
                status_write(t, s[0x14]);
        if (overlaps(off, len, 0x16, 2))
                memcpy(&t->queue_select, s + 0x16, 2);
        if (t->queue_select < t->info->num_queues)
                queue_write(t, &t->vq[t->queue_select], off, len, s);
}

/* --- the BAR --- */

static void common_read(const virtio_pci *t, unsigned off, uint8_t *data, unsigned len)
{
        uint8_t s[COMMON_LEN];

        common_snapshot(t, s);
        if (len <= COMMON_LEN - off)
                memcpy(data, s + off, len);
}

static void config_read(const virtio_pci *t, unsigned off, uint8_t *data, unsigned len)
{
        uint8_t c[VIRTIO_PCI_CONFIG_MAX] = {0};

        t->ops->config(t->dev, c);
        if (len <= t->info->config_len - off)
                memcpy(data, c + off, len);
}

static bool in(uint64_t off, uint64_t start, uint64_t len)
{
        return off >= start && off - start < len;
}

void virtio_pci_bar_access(pci_function *f, uint64_t off, uint8_t *data, unsigned len, bool write)
{
        virtio_pci *t = f->opaque;
        unsigned nq = t->info->num_queues;

        if (len == 0 || len > 8)
                return;
        if (!write)
                memset(data, 0, len);
        if (in(off, COMMON_OFF, COMMON_LEN)) {
                if (write)
                        common_write(t, (unsigned)off, data, len);
                else
                        common_read(t, (unsigned)off, data, len);
        } else if (off == ISR_OFF) {
                if (!write) {
                        data[0] = t->isr;
                        t->isr = 0;
                        set_intx(t, 0);
                }
        } else if (in(off, DEVCFG_OFF, t->info->config_len)) {
                if (!write)
                        config_read(t, (unsigned)(off - DEVCFG_OFF), data, len);
        } else if (in(off, VIRTIO_PCI_NOTIFY_OFF, VIRTIO_PCI_NOTIFY_MULT * nq)) {
                if (write)
                        t->ops->notify(t->dev, (unsigned)(off - VIRTIO_PCI_NOTIFY_OFF) /
                                                   VIRTIO_PCI_NOTIFY_MULT);
        } else if (in(off, MSIX_TABLE_OFF, 16 * num_vectors(t))) {
                msix_access(t, (unsigned)(off - MSIX_TABLE_OFF), data, len, write);
        } else if (in(off, MSIX_PBA_OFF, 8)) {
                if (!write) {
                        uint64_t pba = t->pba;
                        unsigned o = (unsigned)(off - MSIX_PBA_OFF);

                        memcpy(data, (uint8_t *)&pba + o, len < 8 - o ? len : 8 - o);
                }
        }
}

bool virtio_pci_mmio(pci_function *f, uint64_t addr, uint8_t *data, unsigned len, bool write)
{
        uint64_t base = vmm_pci_bar_addr(f, 0);

        if (base == 0 || addr < base || addr - base >= VIRTIO_PCI_BAR_SIZE)
                return false;
        virtio_pci_bar_access(f, addr - base, data, len, write);
        return true;
}

uint64_t virtio_pci_notify_addr(uint64_t bar, unsigned queue)
{
        return bar + VIRTIO_PCI_NOTIFY_OFF + VIRTIO_PCI_NOTIFY_MULT * queue;
}

/* --- the PCI function --- */

static void add_vcap(virtio_pci *t, uint8_t type, uint32_t off, uint32_t len)
{
        uint8_t cap[20] = {CAP_VENDOR, 0, 16, type, 0 /* bar */, 0};

        memcpy(cap + 8, &off, 4);
        memcpy(cap + 12, &len, 4);
        if (type == CAP_NOTIFY) {
                uint32_t mult = VIRTIO_PCI_NOTIFY_MULT;

                cap[2] = 20;
                memcpy(cap + 16, &mult, 4);
        }
        vmm_pci_function_cap(&t->pci, cap, cap[2], 0, 0);
}

static void add_msix_cap(virtio_pci *t)
{
        uint8_t msix[12] = {MSIX_CAP_ID, 0};
        uint16_t ctl = (uint16_t)(num_vectors(t) - 1);
        uint32_t table = MSIX_TABLE_OFF, pba = MSIX_PBA_OFF;

        memcpy(msix + 2, &ctl, 2);
        memcpy(msix + 4, &table, 4);
        memcpy(msix + 8, &pba, 4);
        /* only enable and function mask (the top bits of message control) are writable */
        t->msix_cap = vmm_pci_function_cap(&t->pci, msix, sizeof(msix), 3, 0);
        t->pci.wmask[t->msix_cap + 3] = 0xc0;
        for (unsigned v = 0; v < num_vectors(t); v++)
                t->msix[v][3] = 1;
}

static void cfg_written(pci_function *f, unsigned off, unsigned len)
{
        virtio_pci *t = f->opaque;

        if (off <= t->msix_cap + 3 && t->msix_cap + 2 < off + len)
                msix_changed(t);
}

void virtio_pci_init(virtio_pci *t, const virtio_pci_info *info, const virtio_pci_ops *ops,
                     void *dev, uint64_t features, const guest_mem *gm, uint64_t bar_addr,
                     const vblk_irq_ops *irq)
{
        t->info = info;
        t->ops = ops;
        t->dev = dev;
        t->features = features;
        t->gm = gm;
        if (irq)
                t->irq = *irq;
        vmm_pci_function_init(&t->pci, VIRTIO_VENDOR, info->device_id, info->class_rev,
                              VIRTIO_VENDOR, VIRTIO_SUBSYS);
        if (info->flags & VIRTIO_PCI_INTX) {
                t->pci.cfg[0x3d] = 1; /* INTA# */
                t->pci.cfg[0x3c] = PCI_INTX_GSI;
        }
        vmm_pci_function_bar(&t->pci, 0, VIRTIO_PCI_BAR_SIZE, bar_addr, true);
        vmm_pci_cfg_write(&t->pci, 0x04, 2, 0x0006); /* memory decode, bus master: firmware's job */
        add_vcap(t, CAP_COMMON, COMMON_OFF, COMMON_LEN);
        add_vcap(t, CAP_ISR, ISR_OFF, 4);
        add_vcap(t, CAP_DEVICE, DEVCFG_OFF, info->config_len);
        add_vcap(t, CAP_NOTIFY, VIRTIO_PCI_NOTIFY_OFF, VIRTIO_PCI_NOTIFY_MULT * info->num_queues);
        add_msix_cap(t);
        t->pci.cfg_written = cfg_written;
        t->pci.opaque = t;
        reset(t);
}
