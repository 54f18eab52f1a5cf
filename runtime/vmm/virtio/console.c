/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (virtio 1.x section 5.3) with one port and no multiport
 * feature, on the modern virtio-pci transport (the same BAR layout as
 * virtio-blk, blk.c): the guest sees /dev/hvc0. It carries the control
 * channel of detached VMs (docs/vm-protocol.md) between the guest init and
 * a UNIX socket of forge-vmm. The device only moves bytes: it parses
 * nothing the guest sends. Output is buffered up to OUT_CAP (beyond that the
 * guest's transmit buffers wait); input goes into the receive buffers the
 * guest posted. The caller serialises every entry point (vm.c's device lock).
 */
#include "runtime/vmm/vmm-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_CONSOLE_MODERN 0x1043

/* BAR0 layout */
#define BAR_SIZE 0x8000
#define COMMON_OFF 0x0000
#define COMMON_LEN 0x38
#define ISR_OFF 0x1000
#define DEVCFG_OFF 0x2000
#define DEVCFG_LEN 0x10
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULT 4
#define MSIX_TABLE_OFF 0x4000
#define MSIX_PBA_OFF 0x5000

#define NUM_QUEUES 2 /* receiveq (host to guest), transmitq */
#define RXQ 0
#define TXQ 1
#define OUT_CAP (256 * 1024)
#define IN_CAP (64 * 1024)
#define NUM_VECTORS (NUM_QUEUES + 1)
#define NO_VECTOR 0xffff

#define F_INDIRECT_DESC (1ULL << 28)
#define F_VERSION_1 (1ULL << 32)
#define DEVICE_FEATURES (F_INDIRECT_DESC | F_VERSION_1)

#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 0x40

#define MSIX_CAP_ID 0x11
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000

struct vcon {
        pci_function pci;
        unsigned msix_cap;
        const guest_mem *gm;
        vcon_irq_ops irq;
        uint32_t dfselect, gfselect;
        uint64_t driver_features;
        uint8_t status;
        uint8_t isr;
        uint16_t msix_config;
        uint16_t queue_select;
        virtq vq[NUM_QUEUES];
        uint32_t msix[NUM_VECTORS][4]; /* addr lo, addr hi, data, control */
        uint64_t pba;
        int intx_level;
        virtq_chain chain;
        uint8_t out[OUT_CAP]; /* guest output not yet taken by the host */
        size_t out_len;
        uint8_t in[IN_CAP]; /* host input not yet in a receive buffer */
        size_t in_off, in_len;
};

/* --- interrupts --- */

static bool msix_enabled(const vcon *d, bool *masked_all)
{
        uint16_t ctl = (uint16_t)vmm_pci_cfg_read(&d->pci, d->msix_cap + 2, 2);

        *masked_all = (ctl & MSIX_MASKALL) != 0;
        return (ctl & MSIX_ENABLE) != 0;
}

static void set_intx(vcon *d, int level)
{
        if (level != d->intx_level) {
                d->intx_level = level;
                if (d->irq.intx)
                        d->irq.intx(d->irq.opaque, level);
        }
}

static void msix_fire(vcon *d, uint16_t vec)
{
        if (vec >= NUM_VECTORS)
                return;
        d->pba &= ~(1ULL << vec);
        if (d->irq.msi)
                d->irq.msi(d->irq.opaque, (uint64_t)d->msix[vec][1] << 32 | d->msix[vec][0],
                           d->msix[vec][2]);
}

static void interrupt(vcon *d, uint16_t vec, uint8_t isr_bit)
{
        bool masked_all;

        d->isr |= isr_bit;
        if (msix_enabled(d, &masked_all)) {
                if (vec >= NUM_VECTORS)
                        return;
                if (masked_all || (d->msix[vec][3] & 1))
                        d->pba |= 1ULL << vec;
                else
                        msix_fire(d, vec);
                return;
        }
        set_intx(d, 1);
}

static void msix_unmasked(vcon *d)
{
        bool masked_all;

        if (!msix_enabled(d, &masked_all) || masked_all)
                return;
        for (uint16_t v = 0; v < NUM_VECTORS; v++)
                if ((d->pba & (1ULL << v)) && !(d->msix[v][3] & 1))
                        msix_fire(d, v);
}

/* --- the queues --- */

static uint64_t chain_len(const virtq_chain *c, bool write)
{
        uint64_t n = 0;

        for (unsigned i = 0; i < c->n; i++)
                if (c->buf[i].write == write)
                        n += c->buf[i].len;
        return n;
}

/* Guest output: taken while it fits in out[]; a chain that does not waits
 * on the ring until the host has taken some (vcon_take_output). */
static void process_tx(vcon *d, virtq *q)
{
        bool used = false;

        for (;;) {
                uint16_t idx_before = q->last_avail;
                uint64_t len;
                int r = virtq_pop(q, d->gm, &d->chain);

                if (r <= 0)
                        break;
                len = chain_len(&d->chain, false);
                if (len > OUT_CAP - d->out_len) {
                        if (d->out_len > 0) {
                                q->last_avail = idx_before; /* again once there is room */
                                break;
                        }
                        len = OUT_CAP; /* a huge buffer: only what fits, the rest is dropped */
                }
                for (unsigned i = 0; i < d->chain.n && len > 0; i++) {
                        const virtq_buf *b = &d->chain.buf[i];
                        uint64_t n = b->len < len ? b->len : len;

                        if (b->write)
                                continue;
                        memcpy(d->out + d->out_len, b->ptr, n);
                        d->out_len += n;
                        len -= n;
                }
                if (virtq_push(q, d->gm, d->chain.head, 0) < 0)
                        break;
                used = true;
        }
        if (q->broken)
                d->status |= STATUS_NEEDS_RESET;
        if (used && virtq_should_notify(q, d->gm))
                interrupt(d, q->msix_vector, 1);
        if (d->out_len > 0 && d->irq.output)
                d->irq.output(d->irq.opaque);
}

/* Host input into the receive buffers the guest has posted. */
static void process_rx(vcon *d, virtq *q)
{
        bool used = false;

        while (d->in_off < d->in_len && q->ready && !q->broken) {
                uint32_t written = 0;
                int r = virtq_pop(q, d->gm, &d->chain);

                if (r <= 0)
                        break;
                for (unsigned i = 0; i < d->chain.n && d->in_off < d->in_len; i++) {
                        const virtq_buf *b = &d->chain.buf[i];
                        size_t n = d->in_len - d->in_off;

                        if (!b->write)
                                continue;
                        if (n > b->len)
                                n = b->len;
                        memcpy(b->ptr, d->in + d->in_off, n);
                        d->in_off += n;
                        written += (uint32_t)n;
                }
                if (virtq_push(q, d->gm, d->chain.head, written) < 0)
                        break;
                used = true;
        }
        if (d->in_off == d->in_len)
                d->in_off = d->in_len = 0;
        if (q->broken)
                d->status |= STATUS_NEEDS_RESET;
        if (used && virtq_should_notify(q, d->gm))
                interrupt(d, q->msix_vector, 1);
}

static void process_queue(vcon *d, virtq *q)
{
        if (q == &d->vq[TXQ])
                process_tx(d, q);
        else
                process_rx(d, q);
}

/* --- the BAR --- */

static void reset(vcon *d)
{
        d->dfselect = d->gfselect = 0;
        d->driver_features = 0;
        d->status = 0;
        d->isr = 0;
        d->msix_config = NO_VECTOR;
        d->queue_select = 0;
        for (unsigned i = 0; i < NUM_QUEUES; i++)
                d->vq[i] = (virtq){.size = VIRTQ_MAX_SIZE, .msix_vector = NO_VECTOR};
        d->pba = 0;
        set_intx(d, 0);
}

static void common_snapshot(const vcon *d, uint8_t *s)
{
        const virtq *q = d->queue_select < NUM_QUEUES ? &d->vq[d->queue_select] : NULL;
        uint32_t df = d->dfselect == 0   ? (uint32_t)DEVICE_FEATURES
                      : d->dfselect == 1 ? (uint32_t)(DEVICE_FEATURES >> 32)
                                         : 0;
        uint32_t gf = d->gfselect == 0   ? (uint32_t)d->driver_features
                      : d->gfselect == 1 ? (uint32_t)(d->driver_features >> 32)
                                         : 0;
        uint16_t u16;

        memset(s, 0, COMMON_LEN);
        memcpy(s + 0x00, &d->dfselect, 4);
        memcpy(s + 0x04, &df, 4);
        memcpy(s + 0x08, &d->gfselect, 4);
        memcpy(s + 0x0c, &gf, 4);
        memcpy(s + 0x10, &d->msix_config, 2);
        u16 = NUM_QUEUES;
        memcpy(s + 0x12, &u16, 2);
        s[0x14] = d->status;
        s[0x15] = 0; /* config generation */
        memcpy(s + 0x16, &d->queue_select, 2);
        if (q) {
                u16 = q->size;
                memcpy(s + 0x18, &u16, 2);
                memcpy(s + 0x1a, &q->msix_vector, 2);
                u16 = q->ready;
                memcpy(s + 0x1c, &u16, 2);
                /* queue_notify_off: each queue its own slot in the notify area */
                memcpy(s + 0x1e, &d->queue_select, 2);
                memcpy(s + 0x20, &q->desc_gpa, 8);
                memcpy(s + 0x28, &q->avail_gpa, 8);
                memcpy(s + 0x30, &q->used_gpa, 8);
        }
}

static bool overlaps(unsigned off, unsigned len, unsigned f, unsigned flen)
{
        return off < f + flen && f < off + len;
}

static void queue_enable(vcon *d, virtq *q)
{
        uint16_t n = q->size;

        q->ready = true;
        q->last_avail = 0;
        if (n == 0 || (n & (n - 1)) || n > VIRTQ_MAX_SIZE || (q->desc_gpa & 15) ||
            (q->avail_gpa & 1) || (q->used_gpa & 3) || !gm_ptr(d->gm, q->desc_gpa, 16ULL * n) ||
            !gm_ptr(d->gm, q->avail_gpa, 6 + 2ULL * n) ||
            !gm_ptr(d->gm, q->used_gpa, 6 + 8ULL * n)) {
                q->broken = true;
                d->status |= STATUS_NEEDS_RESET;
        }
}

static void common_write(vcon *d, unsigned off, const uint8_t *data, unsigned len)
{
        uint8_t s[COMMON_LEN];
        virtq *q;
        uint64_t v64;
        uint32_t v32;
        uint16_t v16;

        if (off >= COMMON_LEN || len > COMMON_LEN - off)
                return;
        common_snapshot(d, s);
        memcpy(s + off, data, len);
        if (overlaps(off, len, 0x00, 4))
                memcpy(&d->dfselect, s + 0x00, 4);
        if (overlaps(off, len, 0x08, 4))
                memcpy(&d->gfselect, s + 0x08, 4);
        if (overlaps(off, len, 0x0c, 4) && !(d->status & STATUS_FEATURES_OK)) {
                memcpy(&v32, s + 0x0c, 4);
                if (d->gfselect < 2) {
                        unsigned sh = 32 * d->gfselect;
                        d->driver_features &= ~(0xffffffffULL << sh);
                        d->driver_features |= ((uint64_t)v32 << sh) & DEVICE_FEATURES;
                }
        }
        if (overlaps(off, len, 0x10, 2)) {
                memcpy(&v16, s + 0x10, 2);
                d->msix_config = v16 < NUM_VECTORS ? v16 : NO_VECTOR;
        }
        if (overlaps(off, len, 0x14, 1)) {
                uint8_t st = s[0x14];
                if (st == 0) {
                        reset(d);
                } else {
                        /* FEATURES_OK only sticks when VERSION_1 was accepted */
                        if ((st & STATUS_FEATURES_OK) && !(d->driver_features & F_VERSION_1))
                                st &= (uint8_t)~STATUS_FEATURES_OK;
                        d->status = (uint8_t)(st | (d->status & STATUS_NEEDS_RESET));
                }
        }
        if (overlaps(off, len, 0x16, 2))
                memcpy(&d->queue_select, s + 0x16, 2);
        if (d->queue_select >= NUM_QUEUES)
                return;
        q = &d->vq[d->queue_select];
        if (q->ready) /* a live queue's setup is fixed until reset */
                return;
        if (overlaps(off, len, 0x18, 2)) {
                memcpy(&v16, s + 0x18, 2);
                q->size = v16;
        }
        if (overlaps(off, len, 0x1a, 2)) {
                memcpy(&v16, s + 0x1a, 2);
                q->msix_vector = v16 < NUM_VECTORS ? v16 : NO_VECTOR;
        }
        if (overlaps(off, len, 0x20, 8)) {
                memcpy(&v64, s + 0x20, 8);
                q->desc_gpa = v64;
        }
        if (overlaps(off, len, 0x28, 8)) {
                memcpy(&v64, s + 0x28, 8);
                q->avail_gpa = v64;
        }
        if (overlaps(off, len, 0x30, 8)) {
                memcpy(&v64, s + 0x30, 8);
                q->used_gpa = v64;
        }
        if (overlaps(off, len, 0x1c, 2)) {
                memcpy(&v16, s + 0x1c, 2);
                if (v16 == 1)
                        queue_enable(d, q);
        }
}

static void devcfg_read(const vcon *d, unsigned off, uint8_t *data, unsigned len)
{
        uint8_t c[DEVCFG_LEN] = {0}; /* cols, rows, max_nr_ports, emerg_wr: unused */

        (void)d;
        if (off < DEVCFG_LEN && len <= DEVCFG_LEN - off)
                memcpy(data, c + off, len);
}

static void msix_access(vcon *d, unsigned off, uint8_t *data, unsigned len, bool write)
{
        unsigned vec = off / 16, word = (off % 16) / 4;

        /* dword accesses only (the PCI spec's rule for the MSI-X table) */
        if (len != 4 || (off & 3) || vec >= NUM_VECTORS) {
                if (!write)
                        memset(data, 0, len);
                return;
        }
        if (!write) {
                memcpy(data, &d->msix[vec][word], 4);
                return;
        }
        memcpy(&d->msix[vec][word], data, 4);
        if (word == 3) {
                d->msix[vec][3] &= 1;
                msix_unmasked(d);
        }
}

void vcon_bar_access(vcon *d, uint64_t off, uint8_t *data, unsigned len, bool write)
{
        if (len == 0 || len > 8)
                return;
        if (off < COMMON_OFF + COMMON_LEN) {
                if (write) {
                        common_write(d, (unsigned)off, data, len);
                } else {
                        uint8_t s[COMMON_LEN];
                        common_snapshot(d, s);
                        memset(data, 0, len);
                        if (len <= COMMON_LEN - off)
                                memcpy(data, s + off, len);
                }
        } else if (off == ISR_OFF) {
                if (!write) {
                        memset(data, 0, len);
                        data[0] = d->isr;
                        d->isr = 0;
                        set_intx(d, 0);
                }
        } else if (off >= DEVCFG_OFF && off < DEVCFG_OFF + DEVCFG_LEN) {
                if (!write) {
                        memset(data, 0, len);
                        devcfg_read(d, (unsigned)(off - DEVCFG_OFF), data, len);
                }
        } else if (off >= NOTIFY_OFF && off < NOTIFY_OFF + NOTIFY_MULT * NUM_QUEUES) {
                unsigned qi = (unsigned)(off - NOTIFY_OFF) / NOTIFY_MULT;
                if (write && (d->status & STATUS_DRIVER_OK))
                        process_queue(d, &d->vq[qi]);
                else if (!write)
                        memset(data, 0, len);
        } else if (off >= MSIX_TABLE_OFF && off < MSIX_TABLE_OFF + 16 * NUM_VECTORS) {
                msix_access(d, (unsigned)(off - MSIX_TABLE_OFF), data, len, write);
        } else if (off >= MSIX_PBA_OFF && off < MSIX_PBA_OFF + 8) {
                if (!write) {
                        uint64_t pba = d->pba;
                        unsigned o = (unsigned)(off - MSIX_PBA_OFF);
                        memset(data, 0, len);
                        memcpy(data, (uint8_t *)&pba + o, len < 8 - o ? len : 8 - o);
                }
        } else if (!write) {
                memset(data, 0, len);
        }
}

bool vcon_mmio(vcon *d, uint64_t addr, uint8_t *data, unsigned len, bool write)
{
        uint64_t base = vmm_pci_bar_addr(&d->pci, 0);

        if (base == 0 || addr < base || addr - base >= BAR_SIZE)
                return false;
        vcon_bar_access(d, addr - base, data, len, write);
        return true;
}

static void add_vcap(vcon *d, uint8_t type, uint32_t off, uint32_t len)
{
        uint8_t cap[20] = {0x09, 0, 16, type, 0 /* bar */, 0};

        memcpy(cap + 8, &off, 4);
        memcpy(cap + 12, &len, 4);
        if (type == 2) {
                uint32_t mult = NOTIFY_MULT;
                cap[2] = 20;
                memcpy(cap + 16, &mult, 4);
        }
        vmm_pci_function_cap(&d->pci, cap, cap[2], 0, 0);
}

static void cfg_written(pci_function *f, unsigned off, unsigned len)
{
        vcon *d = f->opaque;

        /* MSI-X enable or function mask changed: deliver what was held back */
        if (off <= d->msix_cap + 3 && d->msix_cap + 2 < off + len)
                msix_unmasked(d);
}

vcon *vcon_new(const guest_mem *gm, uint64_t bar_addr, const vcon_irq_ops *irq)
{
        vcon *d = calloc(1, sizeof(*d));
        uint8_t msix[12] = {MSIX_CAP_ID, 0};
        uint16_t ctl = NUM_VECTORS - 1;
        uint32_t table = MSIX_TABLE_OFF, pba = MSIX_PBA_OFF;

        if (d == NULL)
                return NULL;
        d->gm = gm;
        if (irq)
                d->irq = *irq;
        vmm_pci_function_init(&d->pci, VIRTIO_VENDOR, VIRTIO_CONSOLE_MODERN, 0x07800001,
                              VIRTIO_VENDOR, 0x0040);
        /* MSI-X only: the INTx line is the disk's */
        vmm_pci_function_bar(&d->pci, 0, BAR_SIZE, bar_addr, true);
        vmm_pci_cfg_write(&d->pci, 0x04, 2, 0x0006); /* memory decode, bus master: firmware's job */
        add_vcap(d, 1, COMMON_OFF, COMMON_LEN);
        add_vcap(d, 3, ISR_OFF, 4);
        add_vcap(d, 4, DEVCFG_OFF, DEVCFG_LEN);
        add_vcap(d, 2, NOTIFY_OFF, NOTIFY_MULT * NUM_QUEUES);
        memcpy(msix + 2, &ctl, 2);
        memcpy(msix + 4, &table, 4);
        memcpy(msix + 8, &pba, 4);
        /* only enable and function mask (the top bits of message control) are writable */
        d->msix_cap = vmm_pci_function_cap(&d->pci, msix, sizeof(msix), 3, 0);
        d->pci.wmask[d->msix_cap + 3] = 0xc0;
        for (unsigned v = 0; v < NUM_VECTORS; v++)
                d->msix[v][3] = 1;
        d->pci.cfg_written = cfg_written;
        d->pci.opaque = d;
        reset(d);
        return d;
}

void vcon_free(vcon *d)
{
        free(d);
}

pci_function *vcon_pci(vcon *d)
{
        return &d->pci;
}

size_t vcon_take_output(vcon *d, uint8_t *buf, size_t max)
{
        size_t n = d->out_len < max ? d->out_len : max;

        memcpy(buf, d->out, n);
        memmove(d->out, d->out + n, d->out_len - n);
        d->out_len -= n;
        /* transmit buffers that waited for room */
        if (n > 0 && (d->status & STATUS_DRIVER_OK) && d->vq[TXQ].ready && !d->vq[TXQ].broken)
                process_tx(d, &d->vq[TXQ]);
        return n;
}

bool vcon_input_room(const vcon *d)
{
        return d->in_len == 0;
}

size_t vcon_put_input(vcon *d, const uint8_t *buf, size_t len)
{
        if (d->in_len != 0)
                return 0;
        if (len > IN_CAP)
                len = IN_CAP;
        memcpy(d->in, buf, len);
        d->in_off = 0;
        d->in_len = len;
        if ((d->status & STATUS_DRIVER_OK) && d->vq[RXQ].ready)
                process_rx(d, &d->vq[RXQ]);
        return len;
}

void vcon_drop_input(vcon *d)
{
        d->in_off = d->in_len = 0;
}
