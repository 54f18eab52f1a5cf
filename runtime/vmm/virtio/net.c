/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.x section 5.1) on the modern virtio-pci transport,
 * laid out as virtio-blk is (blk.c): one 64-bit BAR with the common
 * configuration, ISR, device configuration (MAC, link status), notification
 * area and MSI-X table. Queue 0 receives, queue 1 transmits. No offloads and
 * no mergeable receive buffers: a frame is one chain, at most the standard
 * 1514 bytes plus the 12-byte header the guest's small buffers hold, larger
 * frames from the host are dropped (the guest's MTU is 1500).
 *
 * The backend is a stream socket speaking QEMU's protocol (passt): each frame
 * is a 4-byte big-endian length and the frame. Once started (vnet_start) an
 * I/O thread of the device's own serves both queues: the guest's doorbells
 * are eventfds (KVM ioeventfds on the notify addresses, so a kick costs no
 * exit to forge-vmm), its interrupts eventfds bound to the MSI-X vectors'
 * routes (irqfds), and frames move in batches through one fixed buffer each
 * way: transmit stops taking chains from the guest while its buffer is full
 * (the guest's own ring is the queue), receive stops reading the socket
 * while the guest has no buffer posted (passt and the kernel's socket buffer
 * hold the backlog). Without the thread (the unit tests, the fuzzer) a
 * transmit kick is served on the spot and a full socket for a second takes
 * the link down. Every entry point runs under the caller's device lock,
 * which the thread takes too.
 */
#include "runtime/vmm/vmm-fs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_NET_MODERN 0x1041

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

#define RXQ 0
#define TXQ 1
#define NUM_QUEUES 2
#define NUM_VECTORS (NUM_QUEUES + 1)
#define NO_VECTOR 0xffff

#define F_NET_MTU (1ULL << 3)
#define F_NET_MAC (1ULL << 5)
#define F_NET_STATUS (1ULL << 16)
#define F_INDIRECT_DESC (1ULL << 28)
#define F_EVENT_IDX (1ULL << 29)
#define F_VERSION_1 (1ULL << 32)
#define DEVICE_FEATURES                                                                            \
        (F_NET_MTU | F_NET_MAC | F_NET_STATUS | F_INDIRECT_DESC | F_EVENT_IDX | F_VERSION_1)
#define NET_S_LINK_UP 1

#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 0x40

#define MSIX_CAP_ID 0x11
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000

#define TX_WAIT_MS 1000
/* Above 1500 Linux posts receive chains of 64 KiB ("big packets") and a TCP
 * segment is one frame of up to the MTU. Not passt's own 65520: a guest's
 * initial receive window (64 KiB) would then hold one segment, and each
 * waits for a delayed ACK; at 16000 it holds four (bench/README.md). */
#define NET_MTU 16000
#define NET_MTU_MAX 65520
/* the I/O thread's buffers: each holds a few of the largest frames */
#define IO_BUF (256u << 10)

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

struct vnet {
        pci_function pci;
        unsigned msix_cap;
        int sock; /* the backend socket (closed by vnet_free) */
        int fd;   /* sock while the backend works, -1 once it failed */
        pthread_t io_tid;
        bool io_started;
        const guest_mem *gm;
        vblk_irq_ops irq;
        vfs_host_ops host;     /* ioeventfds and irqfds (vnet_set_host), or none */
        pthread_mutex_t *lock; /* the caller's device lock */
        bool stopping;
        int kick_fd[NUM_QUEUES]; /* the guest's doorbells, for the I/O thread */
        bool ioevent[NUM_QUEUES];
        uint64_t ioevent_base;    /* the BAR's address when they were set up */
        int call_fd[NUM_VECTORS]; /* a vector's irqfd once it is wired */
        bool wired[NUM_VECTORS];
        uint64_t wired_addr[NUM_VECTORS];
        uint32_t wired_data[NUM_VECTORS];
        int stop_fd;
        /* the I/O thread's: frames for the socket, bytes read from it */
        uint8_t *out, *in;
        size_t out_off, out_len, in_len;
        bool rx_stalled; /* a whole frame waits for a guest buffer */
        uint32_t dfselect, gfselect;
        uint64_t features; /* offered */
        uint16_t mtu;
        uint64_t driver_features;
        uint8_t status;
        uint8_t isr;
        uint16_t msix_config;
        uint16_t queue_select;
        virtq vq[NUM_QUEUES];
        uint32_t msix[NUM_VECTORS][4];
        uint64_t pba;
        int intx_level;
        virtq_chain chain;
        uint8_t tx_frame[4 + VNET_MAX_FRAME];
        uint64_t tx_dropped, rx_dropped;
};

/* --- interrupts (as blk.c) --- */

static bool msix_enabled(const vnet *d, bool *masked_all)
{
        uint16_t ctl = (uint16_t)vmm_pci_cfg_read(&d->pci, d->msix_cap + 2, 2);

        *masked_all = (ctl & MSIX_MASKALL) != 0;
        return (ctl & MSIX_ENABLE) != 0;
}

static void set_intx(vnet *d, int level)
{
        if (level != d->intx_level) {
                d->intx_level = level;
                if (d->irq.intx)
                        d->irq.intx(d->irq.opaque, level);
        }
}

/* The vector's eventfd bound to its current message (a rebind when the
 * guest reprogrammed it): false when there is no irqfd to use. */
static bool wire(vnet *d, uint16_t vec, uint64_t addr, uint32_t data)
{
        if (d->call_fd[vec] < 0 || d->host.irqfd == NULL)
                return false;
        if (d->wired[vec] && d->wired_addr[vec] == addr && d->wired_data[vec] == data)
                return true;
        d->wired[vec] = d->host.irqfd(d->host.opaque, d->call_fd[vec], addr, data, true) == 0;
        d->wired_addr[vec] = addr;
        d->wired_data[vec] = data;
        return d->wired[vec];
}

static void msix_fire(vnet *d, uint16_t vec)
{
        uint64_t addr;
        uint32_t data;

        if (vec >= NUM_VECTORS)
                return;
        d->pba &= ~(1ULL << vec);
        addr = (uint64_t)d->msix[vec][1] << 32 | d->msix[vec][0];
        data = d->msix[vec][2];
        if (wire(d, vec, addr, data))
                eventfd_write(d->call_fd[vec], 1);
        else if (d->irq.msi)
                d->irq.msi(d->irq.opaque, addr, data);
}

static void interrupt(vnet *d, uint16_t vec, uint8_t isr_bit)
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

static void msix_unmasked(vnet *d)
{
        bool masked_all;

        if (!msix_enabled(d, &masked_all) || masked_all)
                return;
        for (uint16_t v = 0; v < NUM_VECTORS; v++)
                if ((d->pba & (1ULL << v)) && !(d->msix[v][3] & 1))
                        msix_fire(d, v);
}

/* --- the backend --- */

/* Writes all of buf within TX_WAIT_MS of no progress; a frame is never
 * left half-written on a live backend. */
static int backend_write(vnet *d, const uint8_t *buf, size_t len)
{
        while (len > 0) {
                /* no SIGPIPE when passt is gone (a file for the fuzzer) */
                ssize_t n = send(d->fd, buf, len, MSG_NOSIGNAL);

                if (n < 0 && errno == ENOTSOCK)
                        n = write(d->fd, buf, len);

                if (n > 0) {
                        buf += n;
                        len -= (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        struct pollfd p = {d->fd, POLLOUT, 0};

                        if (poll(&p, 1, TX_WAIT_MS) == 1)
                                continue;
                }
                return -1;
        }
        return 0;
}

/* A dead backend stays dead (the link goes down); vnet_free closes it. */
static void backend_fail(vnet *d)
{
        if (d->fd >= 0)
                shutdown(d->fd, SHUT_RDWR);
        d->fd = -1;
}

/* --- queues --- */

static bool event_idx(const vnet *d)
{
        return (d->driver_features & F_EVENT_IDX) != 0;
}

/* Whether the driver should kick after adding buffers to q: with EVENT_IDX
 * the next one (avail_event = the next index the device will read), else the
 * used ring's flag. Not wanting kicks leaves avail_event behind, which the
 * driver only crosses again after 64 Ki more buffers. */
static void want_kicks(vnet *d, virtq *q, bool want)
{
        if (!event_idx(d))
                virtq_set_notify(q, d->gm, want);
        else if (want)
                virtq_set_avail_event(q, d->gm, q->last_avail);
}

/* Whether returning chains moved the used index from old to where it is
 * asks for an interrupt. */
static bool should_interrupt(const vnet *d, const virtq *q, uint16_t old)
{
        if (event_idx(d))
                return virtq_need_event(q, d->gm, old, virtq_used_idx(q, d->gm));
        return virtq_should_notify(q, d->gm);
}

static uint64_t chain_len(const virtq_chain *c, bool write)
{
        uint64_t n = 0;

        for (unsigned i = 0; i < c->n; i++)
                if (c->buf[i].write == write)
                        n += c->buf[i].len;
        return n;
}

/* Copies the chain's driver-readable bytes from off into mem (at most len). */
static uint64_t chain_read(const virtq_chain *c, uint64_t off, uint8_t *mem, uint64_t len)
{
        uint64_t done = 0;

        for (unsigned i = 0; i < c->n && done < len; i++) {
                const virtq_buf *b = &c->buf[i];
                uint64_t n;

                if (b->write)
                        continue;
                if (off >= b->len) {
                        off -= b->len;
                        continue;
                }
                n = b->len - off;
                if (n > len - done)
                        n = len - done;
                memcpy(mem + done, (uint8_t *)b->ptr + off, n);
                done += n;
                off = 0;
        }
        return done;
}

static void chain_write(const virtq_chain *c, const uint8_t *mem, uint64_t len)
{
        for (unsigned i = 0; i < c->n && len > 0; i++) {
                const virtq_buf *b = &c->buf[i];
                uint64_t n = b->len < len ? b->len : len;

                if (!b->write)
                        continue;
                memcpy(b->ptr, mem, n);
                mem += n;
                len -= n;
        }
}

/* The chain's frame behind its 4-byte big-endian length at buf (room for
 * 4 + VNET_MAX_FRAME); 0 when the chain is no frame (no room for the
 * header, beyond the bound, nothing the driver wrote) or the link is down. */
static size_t tx_frame(vnet *d, const virtq_chain *c, uint8_t *buf)
{
        uint64_t out = chain_len(c, false);
        uint32_t n;

        if (out <= VNET_HDR_LEN || out - VNET_HDR_LEN > VNET_MAX_FRAME || d->fd < 0) {
                d->tx_dropped++;
                return 0;
        }
        n = (uint32_t)(out - VNET_HDR_LEN);
        buf[0] = (uint8_t)(n >> 24);
        buf[1] = (uint8_t)(n >> 16);
        buf[2] = (uint8_t)(n >> 8);
        buf[3] = (uint8_t)n;
        chain_read(c, VNET_HDR_LEN, buf + 4, n);
        return 4 + (size_t)n;
}

/* Without the I/O thread: each frame written whole, now. */
static void tx_process(vnet *d)
{
        virtq *q = &d->vq[TXQ];
        uint16_t old = virtq_used_idx(q, d->gm);
        bool used = false;

        while (virtq_pop(q, d->gm, &d->chain) > 0) {
                size_t n = tx_frame(d, &d->chain, d->tx_frame);

                if (n > 0 && backend_write(d, d->tx_frame, n) < 0)
                        backend_fail(d);
                if (virtq_push(q, d->gm, d->chain.head, 0) < 0)
                        break;
                used = true;
        }
        if (q->broken)
                d->status |= STATUS_NEEDS_RESET;
        if (event_idx(d))
                want_kicks(d, q, true);
        if (used && should_interrupt(d, q, old))
                interrupt(d, q->msix_vector, 1);
}

/* The I/O thread's transmit: chains into the out buffer while it has room
 * for the largest frame, each returned once copied. */
static void tx_drain(vnet *d)
{
        virtq *q = &d->vq[TXQ];
        uint16_t old = virtq_used_idx(q, d->gm);
        bool used = false, kicks = false;

        if (d->out_off > 0) {
                memmove(d->out, d->out + d->out_off, d->out_len - d->out_off);
                d->out_len -= d->out_off;
                d->out_off = 0;
        }
        while (IO_BUF - d->out_len >= 4 + VNET_MAX_FRAME) {
                int r = virtq_pop(q, d->gm, &d->chain);

                if (r == 0 && !kicks) {
                        /* empty: ask for a kick, then look once more (the
                         * driver may have added one before it saw that) */
                        want_kicks(d, q, true);
                        kicks = true;
                        continue;
                }
                if (r <= 0)
                        break;
                if (kicks) {
                        want_kicks(d, q, false);
                        kicks = false;
                }
                d->out_len += tx_frame(d, &d->chain, d->out + d->out_len);
                if (virtq_push(q, d->gm, d->chain.head, 0) < 0)
                        break;
                used = true;
        }
        if (q->broken)
                d->status |= STATUS_NEEDS_RESET;
        if (used && should_interrupt(d, q, old))
                interrupt(d, q->msix_vector, 1);
}

/* Copies the frame behind the header into the chain's device-writable buffers. */
static void rx_copy(const virtq_chain *c, const uint8_t *frame, size_t len)
{
        uint8_t hdr[VNET_HDR_LEN] = {0};
        uint64_t skip = VNET_HDR_LEN;

        hdr[10] = 1; /* num_buffers (always present in virtio 1.x) */
        chain_write(c, hdr, VNET_HDR_LEN);
        for (unsigned i = 0; i < c->n && len > 0; i++) {
                const virtq_buf *b = &c->buf[i];
                uint64_t n;

                if (!b->write)
                        continue;
                if (skip >= b->len) {
                        skip -= b->len;
                        continue;
                }
                n = b->len - skip < len ? b->len - skip : len;
                memcpy((uint8_t *)b->ptr + skip, frame, n);
                frame += n;
                len -= n;
                skip = 0;
        }
}

/* One frame into the guest's next receive buffer, without an interrupt:
 * 1 when placed (*pushed) or dropped, 0 when no buffer is posted. */
static int rx_place(vnet *d, const uint8_t *frame, size_t len, bool *pushed)
{
        virtq *q = &d->vq[RXQ];
        uint32_t used = 0;
        int r;

        if (!(d->status & STATUS_DRIVER_OK) || !q->ready || q->broken) {
                d->rx_dropped++;
                return 1;
        }
        r = virtq_pop(q, d->gm, &d->chain);
        if (r == 0) {
                /* out of buffers: ask for a kick, then look once more (the
                 * driver may have added one before it saw the request) */
                want_kicks(d, q, true);
                r = virtq_pop(q, d->gm, &d->chain);
        }
        if (r < 0 || q->broken) {
                d->status |= STATUS_NEEDS_RESET;
                d->rx_dropped++;
                return 1;
        }
        if (r == 0)
                return 0;
        /* the device comes back for more: no kick per refill */
        want_kicks(d, q, false);
        if (len <= VNET_MAX_FRAME && chain_len(&d->chain, true) >= VNET_HDR_LEN + len) {
                rx_copy(&d->chain, frame, len);
                used = (uint32_t)(VNET_HDR_LEN + len);
        } else {
                /* larger than the guest's buffer: the buffer goes back empty */
                d->rx_dropped++;
        }
        if (virtq_push(q, d->gm, d->chain.head, used) == 0)
                *pushed = true;
        return 1;
}

int vnet_rx_frame(vnet *d, const uint8_t *frame, size_t len)
{
        virtq *q = &d->vq[RXQ];
        uint16_t old = virtq_used_idx(q, d->gm);
        bool pushed = false;
        int r = rx_place(d, frame, len, &pushed);

        if (pushed && should_interrupt(d, q, old))
                interrupt(d, q->msix_vector, 1);
        return r;
}

/* --- the BAR (the transport as blk.c has it, with two queues) --- */

/* Wakes the I/O thread: the queues or the device's state changed. */
static void wake(vnet *d)
{
        if (d->io_started)
                eventfd_write(d->kick_fd[RXQ], 1);
}

static void reset(vnet *d)
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
        wake(d);
}

static void common_snapshot(const vnet *d, uint8_t *s)
{
        const virtq *q = d->queue_select < NUM_QUEUES ? &d->vq[d->queue_select] : NULL;
        uint32_t df = d->dfselect == 0   ? (uint32_t)d->features
                      : d->dfselect == 1 ? (uint32_t)(d->features >> 32)
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
        memcpy(s + 0x16, &d->queue_select, 2);
        if (q) {
                u16 = q->size;
                memcpy(s + 0x18, &u16, 2);
                memcpy(s + 0x1a, &q->msix_vector, 2);
                u16 = q->ready;
                memcpy(s + 0x1c, &u16, 2);
                u16 = d->queue_select; /* queue_notify_off */
                memcpy(s + 0x1e, &u16, 2);
                memcpy(s + 0x20, &q->desc_gpa, 8);
                memcpy(s + 0x28, &q->avail_gpa, 8);
                memcpy(s + 0x30, &q->used_gpa, 8);
        }
}

static bool overlaps(unsigned off, unsigned len, unsigned f, unsigned flen)
{
        return off < f + flen && f < off + len;
}

static void queue_enable(vnet *d, virtq *q)
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

static void queue_write(vnet *d, virtq *q, unsigned off, unsigned len, const uint8_t *s)
{
        uint64_t v64;
        uint16_t v16;

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

static void common_write(vnet *d, unsigned off, const uint8_t *data, unsigned len)
{
        uint8_t s[COMMON_LEN];
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
                        d->driver_features |= ((uint64_t)v32 << sh) & d->features;
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
                        if ((st & STATUS_FEATURES_OK) && !(d->driver_features & F_VERSION_1))
                                st &= (uint8_t)~STATUS_FEATURES_OK;
                        d->status = (uint8_t)(st | (d->status & STATUS_NEEDS_RESET));
                        if (st & STATUS_DRIVER_OK)
                                wake(d);
                }
        }
        if (overlaps(off, len, 0x16, 2))
                memcpy(&d->queue_select, s + 0x16, 2);
        if (d->queue_select < NUM_QUEUES)
                queue_write(d, &d->vq[d->queue_select], off, len, s);
}

static void devcfg_read(const vnet *d, unsigned off, uint8_t *data, unsigned len)
{
        uint8_t c[DEVCFG_LEN] = {0};
        uint16_t status = d->fd >= 0 ? NET_S_LINK_UP : 0, pairs = 1, mtu = d->mtu;

        memcpy(c + 0, guest_mac, 6);
        memcpy(c + 6, &status, 2);
        memcpy(c + 8, &pairs, 2);
        memcpy(c + 10, &mtu, 2);
        if (off < DEVCFG_LEN && len <= DEVCFG_LEN - off)
                memcpy(data, c + off, len);
}

static void msix_access(vnet *d, unsigned off, uint8_t *data, unsigned len, bool write)
{
        unsigned vec = off / 16, word = (off % 16) / 4;

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

static void notify(vnet *d, unsigned qi)
{
        if (!(d->status & STATUS_DRIVER_OK))
                return;
        /* with the thread: a kick KVM's ioeventfd did not catch (another
         * size, a moved BAR) */
        if (d->io_started)
                eventfd_write(d->kick_fd[qi], 1);
        else if (qi == TXQ)
                tx_process(d);
}

void vnet_bar_access(vnet *d, uint64_t off, uint8_t *data, unsigned len, bool write)
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
                if (write)
                        notify(d, (unsigned)(off - NOTIFY_OFF) / NOTIFY_MULT);
                else
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

bool vnet_mmio(vnet *d, uint64_t addr, uint8_t *data, unsigned len, bool write)
{
        uint64_t base = vmm_pci_bar_addr(&d->pci, 0);

        if (base == 0 || addr < base || addr - base >= BAR_SIZE)
                return false;
        vnet_bar_access(d, addr - base, data, len, write);
        return true;
}

/* --- the I/O thread --- */

/* Writes what the out buffer holds: whether anything went. */
static bool flush_out(vnet *d)
{
        ssize_t n;

        if (d->out_off == d->out_len)
                return false;
        n = send(d->sock, d->out + d->out_off, d->out_len - d->out_off,
                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK)
                n = write(d->sock, d->out + d->out_off, d->out_len - d->out_off);
        if (n > 0) {
                d->out_off += (size_t)n;
                if (d->out_off == d->out_len)
                        d->out_off = d->out_len = 0;
                return true;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return false;
        pthread_mutex_lock(d->lock);
        backend_fail(d);
        pthread_mutex_unlock(d->lock);
        d->out_off = d->out_len = 0;
        return false;
}

/* Reads what fits in the in buffer: whether anything came. */
static bool fill_in(vnet *d)
{
        ssize_t n = read(d->sock, d->in + d->in_len, IO_BUF - d->in_len);

        if (n > 0) {
                d->in_len += (size_t)n;
                return true;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return false;
        pthread_mutex_lock(d->lock);
        backend_fail(d);
        pthread_mutex_unlock(d->lock);
        return false;
}

/* The whole frames in the in buffer to the guest, one interrupt for all. */
static void rx_deliver(vnet *d)
{
        virtq *q = &d->vq[RXQ];
        uint16_t old = virtq_used_idx(q, d->gm);
        bool pushed = false;
        size_t off = 0;

        d->rx_stalled = false;
        while (d->in_len - off >= 4) {
                const uint8_t *be = d->in + off;
                uint32_t len =
                    (uint32_t)be[0] << 24 | (uint32_t)be[1] << 16 | (uint32_t)be[2] << 8 | be[3];

                /* the stream's framing is the backend's; a length beyond any
                 * Ethernet frame means it is not speaking the protocol */
                if (len == 0 || len > VNET_MAX_FRAME) {
                        backend_fail(d);
                        off = d->in_len;
                        break;
                }
                if (d->in_len - off - 4 < len)
                        break;
                if (rx_place(d, be + 4, len, &pushed) == 0) {
                        d->rx_stalled = true;
                        break;
                }
                off += 4 + (size_t)len;
        }
        if (off > 0) {
                memmove(d->in, d->in + off, d->in_len - off);
                d->in_len -= off;
        }
        if (pushed && should_interrupt(d, q, old))
                interrupt(d, q->msix_vector, 1);
}

static void drain_eventfd(int fd)
{
        eventfd_t v;

        eventfd_read(fd, &v);
}

static void *io_thread(void *arg)
{
        vnet *d = arg;

        for (;;) {
                struct pollfd p[4] = {
                    {d->stop_fd, POLLIN, 0},
                    {d->kick_fd[RXQ], POLLIN, 0},
                    {d->kick_fd[TXQ], POLLIN, 0},
                    {d->sock, 0, 0},
                };
                bool live, progress;

                pthread_mutex_lock(d->lock);
                if (d->stopping) {
                        pthread_mutex_unlock(d->lock);
                        break;
                }
                tx_drain(d);
                rx_deliver(d);
                live = d->fd >= 0;
                pthread_mutex_unlock(d->lock);
                if (!live)
                        d->in_len = d->out_off = d->out_len = 0;
                progress = live && flush_out(d);
                if (live && !d->rx_stalled && d->in_len < IO_BUF)
                        progress |= fill_in(d);
                if (progress)
                        continue;
                if (live && !d->rx_stalled && d->in_len < IO_BUF)
                        p[3].events |= POLLIN;
                if (live && d->out_off < d->out_len)
                        p[3].events |= POLLOUT;
                if (p[3].events == 0)
                        p[3].fd = -1;
                if (poll(p, 4, -1) < 0 && errno != EINTR)
                        break;
                if (p[0].revents)
                        break;
                if (p[1].revents)
                        drain_eventfd(d->kick_fd[RXQ]);
                if (p[2].revents)
                        drain_eventfd(d->kick_fd[TXQ]);
        }
        return NULL;
}

void vnet_set_host(vnet *d, const vfs_host_ops *host)
{
        d->host = *host;
}

static int open_eventfds(vnet *d)
{
        uint64_t base = vmm_pci_bar_addr(&d->pci, 0);

        d->ioevent_base = base;
        d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d->stop_fd < 0)
                return -1;
        for (unsigned i = 0; i < NUM_QUEUES; i++) {
                d->kick_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (d->kick_fd[i] < 0)
                        return -1;
                /* without an ioeventfd a kick still arrives as an MMIO exit */
                d->ioevent[i] =
                    base != 0 && d->host.ioeventfd &&
                    d->host.ioeventfd(d->host.opaque, base + NOTIFY_OFF + NOTIFY_MULT * i,
                                      d->kick_fd[i], true) == 0;
        }
        for (unsigned v = 0; v < NUM_VECTORS && d->host.irqfd; v++) {
                d->call_fd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (d->call_fd[v] < 0)
                        return -1;
        }
        return 0;
}

int vnet_start(vnet *d)
{
        if (d->sock < 0)
                return -1;
        d->out = malloc(IO_BUF);
        d->in = malloc(IO_BUF);
        if (d->out == NULL || d->in == NULL || open_eventfds(d) < 0)
                return -1;
        pthread_mutex_lock(d->lock);
        d->io_started = pthread_create(&d->io_tid, NULL, io_thread, d) == 0;
        pthread_mutex_unlock(d->lock);
        return d->io_started ? 0 : -1;
}

/* --- set-up --- */

static void add_vcap(vnet *d, uint8_t type, uint32_t off, uint32_t len)
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
        vnet *d = f->opaque;

        if (off <= d->msix_cap + 3 && d->msix_cap + 2 < off + len)
                msix_unmasked(d);
}

vnet *vnet_new(int sock, const guest_mem *gm, uint64_t bar_addr, const vblk_irq_ops *irq,
               pthread_mutex_t *lock)
{
        vnet *d = calloc(1, sizeof(*d));
        uint8_t msix[12] = {MSIX_CAP_ID, 0};
        uint16_t ctl = NUM_VECTORS - 1;
        uint32_t table = MSIX_TABLE_OFF, pba = MSIX_PBA_OFF;

        if (d == NULL)
                return NULL;
        d->sock = d->fd = sock;
        if (sock >= 0)
                fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
        d->gm = gm;
        d->lock = lock;
        d->features = DEVICE_FEATURES;
        d->mtu = NET_MTU;
        /* FORGE_VMM_NET_MTU=N: another MTU, 1500 without VIRTIO_NET_F_MTU
         * (a benchmarking aid) */
        if (getenv("FORGE_VMM_NET_MTU") != NULL) {
                unsigned long mtu = strtoul(getenv("FORGE_VMM_NET_MTU"), NULL, 10);

                if (mtu >= 1280 && mtu <= NET_MTU_MAX)
                        d->mtu = (uint16_t)mtu;
                if (d->mtu == 1500)
                        d->features &= ~F_NET_MTU;
        }
        d->stop_fd = -1;
        for (unsigned i = 0; i < NUM_QUEUES; i++)
                d->kick_fd[i] = -1;
        for (unsigned v = 0; v < NUM_VECTORS; v++)
                d->call_fd[v] = -1;
        if (irq)
                d->irq = *irq;
        vmm_pci_function_init(&d->pci, VIRTIO_VENDOR, VIRTIO_NET_MODERN, 0x02000001, VIRTIO_VENDOR,
                              0x0040);
        d->pci.cfg[0x3d] = 1; /* INTA# */
        d->pci.cfg[0x3c] = PCI_INTX_GSI;
        vmm_pci_function_bar(&d->pci, 0, BAR_SIZE, bar_addr, true);
        vmm_pci_cfg_write(&d->pci, 0x04, 2, 0x0006);
        add_vcap(d, 1, COMMON_OFF, COMMON_LEN);
        add_vcap(d, 3, ISR_OFF, 4);
        add_vcap(d, 4, DEVCFG_OFF, DEVCFG_LEN);
        add_vcap(d, 2, NOTIFY_OFF, NOTIFY_MULT * NUM_QUEUES);
        memcpy(msix + 2, &ctl, 2);
        memcpy(msix + 4, &table, 4);
        memcpy(msix + 8, &pba, 4);
        d->msix_cap = vmm_pci_function_cap(&d->pci, msix, sizeof(msix), 3, 0);
        d->pci.wmask[d->msix_cap + 3] = 0xc0;
        for (unsigned v = 0; v < NUM_VECTORS; v++)
                d->msix[v][3] = 1;
        d->pci.cfg_written = cfg_written;
        d->pci.opaque = d;
        reset(d);
        return d;
}

void vnet_free(vnet *d)
{
        if (d == NULL)
                return;
        if (d->io_started) {
                pthread_mutex_lock(d->lock);
                d->stopping = true;
                pthread_mutex_unlock(d->lock);
                eventfd_write(d->stop_fd, 1);
                pthread_join(d->io_tid, NULL);
        }
        for (unsigned v = 0; v < NUM_VECTORS; v++) {
                if (d->wired[v])
                        d->host.irqfd(d->host.opaque, d->call_fd[v], 0, 0, false);
                if (d->call_fd[v] >= 0)
                        close(d->call_fd[v]);
        }
        for (unsigned i = 0; i < NUM_QUEUES; i++) {
                if (d->ioevent[i])
                        d->host.ioeventfd(d->host.opaque,
                                          d->ioevent_base + NOTIFY_OFF + NOTIFY_MULT * i,
                                          d->kick_fd[i], false);
                if (d->kick_fd[i] >= 0)
                        close(d->kick_fd[i]);
        }
        if (d->stop_fd >= 0)
                close(d->stop_fd);
        if (d->sock >= 0)
                close(d->sock);
        free(d->out);
        free(d->in);
        free(d);
}

pci_function *vnet_pci(vnet *d)
{
        return &d->pci;
}

void vnet_counters(const vnet *d, uint64_t *ret_tx_dropped, uint64_t *ret_rx_dropped)
{
        *ret_tx_dropped = d->tx_dropped;
        *ret_rx_dropped = d->rx_dropped;
}
