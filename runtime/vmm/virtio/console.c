/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (virtio 1.x section 5.3) with one port and no multiport
 * feature, on the modern virtio-pci transport (pci-transport.c): the guest
 * sees /dev/hvc0. It carries the control
 * channel of detached VMs (docs/vm-protocol.md) between the guest init and
 * a UNIX socket of forge-vmm. The device only moves bytes: it parses
 * nothing the guest sends. Output is buffered up to OUT_CAP (beyond that the
 * guest's transmit buffers wait); input goes into the receive buffers the
 * guest posted. The caller serialises every entry point (vm.c's device lock).
 */
#include "runtime/vmm/virtio-pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VIRTIO_CONSOLE_MODERN 0x1043
#define DEVCFG_LEN 0x10

#define NUM_QUEUES 2 /* receiveq (host to guest), transmitq */
#define RXQ 0
#define TXQ 1
#define OUT_CAP (256 * 1024)
#define IN_CAP (64 * 1024)

#define DEVICE_FEATURES (VIRTIO_F_INDIRECT_DESC | VIRTIO_F_VERSION_1)

struct vcon {
        virtio_pci t;
        const guest_mem *gm;
        vcon_irq_ops irq;
        virtq_chain chain;
        uint8_t out[OUT_CAP]; /* guest output not yet taken by the host */
        size_t out_len;
        uint8_t in[IN_CAP]; /* host input not yet in a receive buffer */
        size_t in_off, in_len;
};

/* --- the queues --- */

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
                len = virtq_chain_len(&d->chain, false);
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
        virtio_pci_queue_done(&d->t, q, used);
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
        virtio_pci_queue_done(&d->t, q, used);
}

/* --- the device behind the transport --- */

/* cols, rows, max_nr_ports, emerg_wr: unused (zero) */
static void device_config(void *dev, uint8_t *cfg)
{
        (void)dev;
        (void)cfg;
}

static void notify(void *dev, unsigned qi)
{
        vcon *d = dev;

        if (!virtio_pci_driver_ok(&d->t))
                return;
        if (qi == TXQ)
                process_tx(d, &d->t.vq[TXQ]);
        else
                process_rx(d, &d->t.vq[RXQ]);
}

/* another communication controller (class 0x0780), revision 1; MSI-X only
 * (the INTx line is the disk's) */
static const virtio_pci_info info = {VIRTIO_CONSOLE_MODERN, 0x07800001, NUM_QUEUES, DEVCFG_LEN, 0};
static const virtio_pci_ops ops = {.config = device_config, .notify = notify};

vcon *vcon_new(const guest_mem *gm, uint64_t bar_addr, const vcon_irq_ops *irq)
{
        vcon *d = calloc(1, sizeof(*d));
        vblk_irq_ops t_irq = {0};

        if (d == NULL)
                return NULL;
        d->gm = gm;
        if (irq) {
                d->irq = *irq;
                t_irq = (vblk_irq_ops){.msi = irq->msi, .intx = irq->intx, .opaque = irq->opaque};
        }
        virtio_pci_init(&d->t, &info, &ops, d, DEVICE_FEATURES, gm, bar_addr, &t_irq);
        return d;
}

void vcon_free(vcon *d)
{
        free(d);
}

pci_function *vcon_pci(vcon *d)
{
        return &d->t.pci;
}

size_t vcon_take_output(vcon *d, uint8_t *buf, size_t max)
{
        size_t n = d->out_len < max ? d->out_len : max;

        memcpy(buf, d->out, n);
        memmove(d->out, d->out + n, d->out_len - n);
        d->out_len -= n;
        /* transmit buffers that waited for room */
        if (n > 0 && virtio_pci_driver_ok(&d->t) && d->t.vq[TXQ].ready && !d->t.vq[TXQ].broken)
                process_tx(d, &d->t.vq[TXQ]);
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
        if (virtio_pci_driver_ok(&d->t) && d->t.vq[RXQ].ready)
                process_rx(d, &d->t.vq[RXQ]);
        return len;
}

void vcon_drop_input(vcon *d)
{
        d->in_off = d->in_len = 0;
}
