/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.x section 5.2) on the modern virtio-pci transport
 * (section 4.1): one 64-bit memory BAR holding the common configuration, ISR,
 * device configuration, notification area and the MSI-X table and PBA.
 * Requests are served synchronously on the notifying vCPU; the caller
 * serialises every entry point (vm.c's device lock).
 */
#include "runtime/vmm/vmm-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_BLK_MODERN 0x1042

/* BAR0 layout */
#define BAR_SIZE 0x8000
#define COMMON_OFF 0x0000
#define COMMON_LEN 0x38
#define ISR_OFF 0x1000
#define DEVCFG_OFF 0x2000
#define DEVCFG_LEN 0x40
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULT 4
#define MSIX_TABLE_OFF 0x4000
#define MSIX_PBA_OFF 0x5000

#define NUM_QUEUES 1
#define NUM_VECTORS (NUM_QUEUES + 1)
#define NO_VECTOR 0xffff

#define F_BLK_SEG_MAX (1ULL << 2)
#define F_BLK_RO (1ULL << 5)
#define F_BLK_BLK_SIZE (1ULL << 6)
#define F_BLK_FLUSH (1ULL << 9)
#define F_INDIRECT_DESC (1ULL << 28)
#define F_VERSION_1 (1ULL << 32)
#define DEVICE_FEATURES                                                                            \
        (F_BLK_SEG_MAX | F_BLK_BLK_SIZE | F_BLK_FLUSH | F_INDIRECT_DESC | F_VERSION_1)
#define SEG_MAX (VIRTQ_MAX_SIZE - 2)

#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 0x40

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2
#define MAX_REQUEST (8u << 20) /* Linux sends at most max_sectors_kb (1280 KiB by default) */

#define MSIX_CAP_ID 0x11
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000

struct vblk {
        pci_function pci;
        unsigned msix_cap;
        blk_backend *backend;
        const guest_mem *gm;
        vblk_irq_ops irq;
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
};

/* --- interrupts --- */

static bool msix_enabled(const vblk *d, bool *masked_all)
{
        uint16_t ctl = (uint16_t)vmm_pci_cfg_read(&d->pci, d->msix_cap + 2, 2);

        *masked_all = (ctl & MSIX_MASKALL) != 0;
        return (ctl & MSIX_ENABLE) != 0;
}

static void set_intx(vblk *d, int level)
{
        if (level != d->intx_level) {
                d->intx_level = level;
                if (d->irq.intx)
                        d->irq.intx(d->irq.opaque, level);
        }
}

static void msix_fire(vblk *d, uint16_t vec)
{
        if (vec >= NUM_VECTORS)
                return;
        d->pba &= ~(1ULL << vec);
        if (d->irq.msi)
                d->irq.msi(d->irq.opaque, (uint64_t)d->msix[vec][1] << 32 | d->msix[vec][0],
                           d->msix[vec][2]);
}

static void interrupt(vblk *d, uint16_t vec, uint8_t isr_bit)
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

static void msix_unmasked(vblk *d)
{
        bool masked_all;

        if (!msix_enabled(d, &masked_all) || masked_all)
                return;
        for (uint16_t v = 0; v < NUM_VECTORS; v++)
                if ((d->pba & (1ULL << v)) && !(d->msix[v][3] & 1))
                        msix_fire(d, v);
}

/* --- requests --- */

/* the driver-readable and the device-writable parts of a chain as byte streams */
static uint64_t chain_len(const virtq_chain *c, bool write)
{
        uint64_t n = 0;
        for (unsigned i = 0; i < c->n; i++)
                if (c->buf[i].write == write)
                        n += c->buf[i].len;
        return n;
}

static void chain_copy(const virtq_chain *c, bool write, uint64_t off, void *mem, uint64_t len,
                       bool to_chain)
{
        uint8_t *m = mem;

        for (unsigned i = 0; i < c->n && len > 0; i++) {
                const virtq_buf *b = &c->buf[i];
                uint64_t n;

                if (b->write != write)
                        continue;
                if (off >= b->len) {
                        off -= b->len;
                        continue;
                }
                n = b->len - off;
                if (n > len)
                        n = len;
                if (to_chain)
                        memcpy((uint8_t *)b->ptr + off, m, n);
                else
                        memcpy(m, (uint8_t *)b->ptr + off, n);
                m += n;
                len -= n;
                off = 0;
        }
}

static uint8_t do_request(vblk *d, const virtq_chain *c, uint64_t in_len, uint64_t out_len,
                          uint32_t *ret_written)
{
        struct {
                uint32_t type;
                uint32_t reserved;
                uint64_t sector;
        } hdr;
        uint64_t data_len, off;
        void *buf;
        int r;

        *ret_written = 0;
        chain_copy(c, false, 0, &hdr, sizeof(hdr), false);
        switch (hdr.type) {
        case BLK_T_IN:
        case BLK_T_OUT:
                data_len = hdr.type == BLK_T_IN ? in_len - 1 : out_len - sizeof(hdr);
                if (data_len > MAX_REQUEST || hdr.sector > vmm_blk_size(d->backend) / 512)
                        return BLK_S_IOERR;
                off = hdr.sector * 512;
                if (data_len == 0)
                        return BLK_S_OK;
                buf = malloc(data_len);
                if (buf == NULL)
                        return BLK_S_IOERR;
                if (hdr.type == BLK_T_IN) {
                        r = vmm_blk_read(d->backend, buf, data_len, off);
                        if (r == 0) {
                                chain_copy(c, true, 0, buf, data_len, true);
                                *ret_written = (uint32_t)data_len;
                        }
                } else {
                        chain_copy(c, false, sizeof(hdr), buf, data_len, false);
                        r = vmm_blk_write(d->backend, buf, data_len, off);
                }
                free(buf);
                return r == 0 ? BLK_S_OK : BLK_S_IOERR;
        case BLK_T_FLUSH:
                return vmm_blk_flush(d->backend) == 0 ? BLK_S_OK : BLK_S_IOERR;
        case BLK_T_GET_ID: {
                char id[20] = "forge-vda";
                uint64_t n = in_len - 1 < sizeof(id) ? in_len - 1 : sizeof(id);
                chain_copy(c, true, 0, id, n, true);
                *ret_written = (uint32_t)n;
                return BLK_S_OK;
        }
        default:
                return BLK_S_UNSUPP;
        }
}

static void process_queue(vblk *d, virtq *q)
{
        bool used = false;
        int r;

        while ((r = virtq_pop(q, d->gm, &d->chain)) > 0) {
                virtq_chain *c = &d->chain;
                uint64_t out_len = chain_len(c, false), in_len = chain_len(c, true);
                uint32_t written = 0;
                uint8_t st;

                if (out_len < 16 || in_len < 1 || in_len > UINT32_MAX) {
                        /* no header or no status byte: give the buffer back untouched */
                        st = BLK_S_IOERR;
                } else {
                        st = do_request(d, c, in_len, out_len, &written);
                        chain_copy(c, true, in_len - 1, &st, 1, true);
                        written++;
                }
                if (virtq_push(q, d->gm, c->head, written) < 0)
                        break;
                used = true;
        }
        if (q->broken)
                d->status |= STATUS_NEEDS_RESET;
        if (used && virtq_should_notify(q, d->gm))
                interrupt(d, q->msix_vector, 1);
}

/* --- the BAR --- */

static void reset(vblk *d)
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

/* a read-only disk says so (the guest kernel then refuses writes itself) */
static uint64_t device_features(const vblk *d)
{
        return DEVICE_FEATURES | (vmm_blk_read_only(d->backend) ? F_BLK_RO : 0);
}

static void common_snapshot(const vblk *d, uint8_t *s)
{
        const virtq *q = d->queue_select < NUM_QUEUES ? &d->vq[d->queue_select] : NULL;
        uint64_t features = device_features(d);
        uint32_t df = d->dfselect == 0   ? (uint32_t)features
                      : d->dfselect == 1 ? (uint32_t)(features >> 32)
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
                /* queue_notify_off 0 */
                memcpy(s + 0x20, &q->desc_gpa, 8);
                memcpy(s + 0x28, &q->avail_gpa, 8);
                memcpy(s + 0x30, &q->used_gpa, 8);
        }
}

static bool overlaps(unsigned off, unsigned len, unsigned f, unsigned flen)
{
        return off < f + flen && f < off + len;
}

static void queue_enable(vblk *d, virtq *q)
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

static void common_write(vblk *d, unsigned off, const uint8_t *data, unsigned len)
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
                        d->driver_features |= ((uint64_t)v32 << sh) & device_features(d);
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

static void devcfg_read(const vblk *d, unsigned off, uint8_t *data, unsigned len)
{
        uint8_t c[DEVCFG_LEN] = {0};
        uint64_t capacity = vmm_blk_size(d->backend) / 512;
        uint32_t seg_max = SEG_MAX, blk = 512;

        memcpy(c + 0, &capacity, 8);
        memcpy(c + 12, &seg_max, 4);
        memcpy(c + 20, &blk, 4);
        if (off < DEVCFG_LEN && len <= DEVCFG_LEN - off)
                memcpy(data, c + off, len);
}

static void msix_access(vblk *d, unsigned off, uint8_t *data, unsigned len, bool write)
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

void vblk_bar_access(vblk *d, uint64_t off, uint8_t *data, unsigned len, bool write)
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

bool vblk_mmio(vblk *d, uint64_t addr, uint8_t *data, unsigned len, bool write)
{
        uint64_t base = vmm_pci_bar_addr(&d->pci, 0);

        if (base == 0 || addr < base || addr - base >= BAR_SIZE)
                return false;
        vblk_bar_access(d, addr - base, data, len, write);
        return true;
}

static void add_vcap(vblk *d, uint8_t type, uint32_t off, uint32_t len)
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
        vblk *d = f->opaque;

        /* MSI-X enable or function mask changed: deliver what was held back */
        if (off <= d->msix_cap + 3 && d->msix_cap + 2 < off + len)
                msix_unmasked(d);
}

vblk *vblk_new(blk_backend *backend, const guest_mem *gm, uint64_t bar_addr,
               const vblk_irq_ops *irq)
{
        vblk *d = calloc(1, sizeof(*d));
        uint8_t msix[12] = {MSIX_CAP_ID, 0};
        uint16_t ctl = NUM_VECTORS - 1;
        uint32_t table = MSIX_TABLE_OFF, pba = MSIX_PBA_OFF;

        if (d == NULL)
                return NULL;
        d->backend = backend;
        d->gm = gm;
        if (irq)
                d->irq = *irq;
        vmm_pci_function_init(&d->pci, VIRTIO_VENDOR, VIRTIO_BLK_MODERN, 0x01000001, VIRTIO_VENDOR,
                              0x0040);
        d->pci.cfg[0x3d] = 1; /* INTA# */
        d->pci.cfg[0x3c] = PCI_INTX_GSI;
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

void vblk_free(vblk *d)
{
        free(d);
}

pci_function *vblk_pci(vblk *d)
{
        return &d->pci;
}
