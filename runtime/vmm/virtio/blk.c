/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.x section 5.2) on the modern virtio-pci transport
 * (section 4.1, pci-transport.c: one 64-bit memory BAR holding the common
 * configuration, ISR, device configuration, notification area and the MSI-X
 * table and PBA); this file is the device: its features, its configuration
 * (capacity, seg_max, blk_size) and its requests. Requests are served
 * synchronously on the notifying vCPU; the caller serialises every entry
 * point (vm.c's device lock).
 */
#include "runtime/vmm/virtio-pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VIRTIO_BLK_MODERN 0x1042
#define DEVCFG_LEN 0x40

#define F_BLK_SEG_MAX (1ULL << 2)
#define F_BLK_RO (1ULL << 5)
#define F_BLK_BLK_SIZE (1ULL << 6)
#define F_BLK_FLUSH (1ULL << 9)
#define DEVICE_FEATURES                                                                            \
        (F_BLK_SEG_MAX | F_BLK_BLK_SIZE | F_BLK_FLUSH | VIRTIO_F_INDIRECT_DESC | VIRTIO_F_VERSION_1)
#define SEG_MAX (VIRTQ_MAX_SIZE - 2)

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2
#define MAX_REQUEST (8u << 20) /* Linux sends at most max_sectors_kb (1280 KiB by default) */

struct vblk {
        virtio_pci t;
        blk_backend *backend;
        const guest_mem *gm;
        virtq_chain chain;
};

/* --- requests --- */

/* the driver-readable or the device-writable part of a chain as a byte stream */
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
                uint64_t out_len = virtq_chain_len(c, false), in_len = virtq_chain_len(c, true);
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
        virtio_pci_queue_done(&d->t, q, used);
}

/* --- the device behind the transport --- */

static void device_config(void *dev, uint8_t *c)
{
        const vblk *d = dev;
        uint64_t capacity = vmm_blk_size(d->backend) / 512;
        uint32_t seg_max = SEG_MAX, blk = 512;

        memcpy(c + 0, &capacity, 8);
        memcpy(c + 12, &seg_max, 4);
        memcpy(c + 20, &blk, 4);
}

static void notify(void *dev, unsigned qi)
{
        vblk *d = dev;

        if (virtio_pci_driver_ok(&d->t))
                process_queue(d, &d->t.vq[qi]);
}

/* a SCSI storage controller (class 0x0100), revision 1 (modern only); one
 * queue; INTA# */
static const virtio_pci_info info = {VIRTIO_BLK_MODERN, 0x01000001, 1, DEVCFG_LEN, VIRTIO_PCI_INTX};
static const virtio_pci_ops ops = {.config = device_config, .notify = notify};

vblk *vblk_new(blk_backend *backend, const guest_mem *gm, uint64_t bar_addr,
               const vblk_irq_ops *irq)
{
        vblk *d = calloc(1, sizeof(*d));

        if (d == NULL)
                return NULL;
        d->backend = backend;
        d->gm = gm;
        /* a read-only disk says so (the guest kernel then refuses writes itself) */
        virtio_pci_init(&d->t, &info, &ops, d,
                        DEVICE_FEATURES | (vmm_blk_read_only(backend) ? F_BLK_RO : 0), gm, bar_addr,
                        irq);
        return d;
}

void vblk_free(vblk *d)
{
        free(d);
}

pci_function *vblk_pci(vblk *d)
{
        return &d->t.pci;
}
