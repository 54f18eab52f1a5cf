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
 * is a 4-byte big-endian length and the frame. Transmit runs on the
 * notifying vCPU: each frame is written whole; when the socket stays full
 * for a second the backend is declared dead (no queue of frames builds up in
 * the launcher: the guest's own ring is the only buffer). Receive runs on a
 * thread of its own that reads one frame at a time and waits for the guest
 * to post a buffer (so passt, not forge-vmm, holds what the guest has not
 * taken). Every entry point runs under the caller's device lock.
 */
#include "runtime/vmm/vmm-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
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

#define F_NET_MAC (1ULL << 5)
#define F_NET_STATUS (1ULL << 16)
#define F_VERSION_1 (1ULL << 32)
#define DEVICE_FEATURES (F_NET_MAC | F_NET_STATUS | F_VERSION_1)
#define NET_S_LINK_UP 1

#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 0x40

#define MSIX_CAP_ID 0x11
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000

#define TX_WAIT_MS 1000

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

struct vnet {
        pci_function pci;
        unsigned msix_cap;
        int sock; /* the backend socket (closed by vnet_free) */
        int fd;   /* sock while the backend works, -1 once it failed */
        pthread_t rx_tid;
        bool rx_started;
        const guest_mem *gm;
        vblk_irq_ops irq;
        pthread_mutex_t *lock;  /* the caller's device lock */
        pthread_cond_t rx_cond; /* the guest posted receive buffers, or stop */
        bool stopping;
        uint32_t dfselect, gfselect;
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
        uint16_t ctl = (uint16_t)pci_cfg_read(&d->pci, d->msix_cap + 2, 2);

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

static void msix_fire(vnet *d, uint16_t vec)
{
        if (vec >= NUM_VECTORS)
                return;
        d->pba &= ~(1ULL << vec);
        if (d->irq.msi)
                d->irq.msi(d->irq.opaque, (uint64_t)d->msix[vec][1] << 32 | d->msix[vec][0],
                           d->msix[vec][2]);
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

static void tx_process(vnet *d)
{
        virtq *q = &d->vq[TXQ];
        bool used = false;

        while (virtq_pop(q, d->gm, &d->chain) > 0) {
                uint64_t out = chain_len(&d->chain, false);

                if (out > VNET_HDR_LEN && out - VNET_HDR_LEN <= VNET_MAX_FRAME && d->fd >= 0) {
                        uint32_t n = (uint32_t)(out - VNET_HDR_LEN);

                        d->tx_frame[0] = (uint8_t)(n >> 24);
                        d->tx_frame[1] = (uint8_t)(n >> 16);
                        d->tx_frame[2] = (uint8_t)(n >> 8);
                        d->tx_frame[3] = (uint8_t)n;
                        chain_read(&d->chain, VNET_HDR_LEN, d->tx_frame + 4, n);
                        if (backend_write(d, d->tx_frame, 4 + (size_t)n) < 0)
                                backend_fail(d);
                } else {
                        d->tx_dropped++;
                }
                if (virtq_push(q, d->gm, d->chain.head, 0) < 0)
                        break;
                used = true;
        }
        if (q->broken)
                d->status |= STATUS_NEEDS_RESET;
        if (used && virtq_should_notify(q, d->gm))
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

int vnet_rx_frame(vnet *d, const uint8_t *frame, size_t len)
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
                 * driver may have added one before it saw the flag) */
                virtq_set_notify(q, d->gm, true);
                r = virtq_pop(q, d->gm, &d->chain);
        }
        if (r < 0 || q->broken) {
                d->status |= STATUS_NEEDS_RESET;
                d->rx_dropped++;
                return 1;
        }
        if (r == 0)
                return 0;
        /* the receive thread comes back for more: no kick per refill */
        virtq_set_notify(q, d->gm, false);
        if (len <= VNET_MAX_FRAME && chain_len(&d->chain, true) >= VNET_HDR_LEN + len) {
                rx_copy(&d->chain, frame, len);
                used = (uint32_t)(VNET_HDR_LEN + len);
        } else {
                /* larger than the guest's buffer: the buffer goes back empty */
                d->rx_dropped++;
        }
        virtq_push(q, d->gm, d->chain.head, used);
        if (virtq_should_notify(q, d->gm))
                interrupt(d, q->msix_vector, 1);
        return 1;
}

/* --- the BAR (the transport as blk.c has it, with two queues) --- */

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
        pthread_cond_broadcast(&d->rx_cond);
}

static void common_snapshot(const vnet *d, uint8_t *s)
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
                        if ((st & STATUS_FEATURES_OK) && !(d->driver_features & F_VERSION_1))
                                st &= (uint8_t)~STATUS_FEATURES_OK;
                        d->status = (uint8_t)(st | (d->status & STATUS_NEEDS_RESET));
                        if (st & STATUS_DRIVER_OK)
                                pthread_cond_broadcast(&d->rx_cond);
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
        uint16_t status = d->fd >= 0 ? NET_S_LINK_UP : 0, pairs = 1;

        memcpy(c + 0, guest_mac, 6);
        memcpy(c + 6, &status, 2);
        memcpy(c + 8, &pairs, 2);
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
        if (qi == TXQ)
                tx_process(d);
        else
                pthread_cond_broadcast(&d->rx_cond); /* new receive buffers */
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
        uint64_t base = pci_bar_addr(&d->pci, 0);

        if (base == 0 || addr < base || addr - base >= BAR_SIZE)
                return false;
        vnet_bar_access(d, addr - base, data, len, write);
        return true;
}

/* --- the receive thread --- */

/* Reads exactly len bytes (poll: the socket is non-blocking for transmit). */
static int read_full(int fd, uint8_t *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = read(fd, buf, len);

                if (n > 0) {
                        buf += n;
                        len -= (size_t)n;
                } else if (n == 0) {
                        return -1;
                } else if (errno == EAGAIN) {
                        struct pollfd p = {fd, POLLIN, 0};
                        if (poll(&p, 1, -1) < 0 && errno != EINTR)
                                return -1;
                } else if (errno != EINTR) {
                        return -1;
                }
        }
        return 0;
}

static void *rx_thread(void *arg)
{
        vnet *d = arg;
        uint8_t *frame = malloc(VNET_MAX_FRAME);
        uint8_t be[4];

        while (frame != NULL && read_full(d->sock, be, 4) == 0) {
                uint32_t len =
                    (uint32_t)be[0] << 24 | (uint32_t)be[1] << 16 | (uint32_t)be[2] << 8 | be[3];

                /* the stream's framing is the backend's; a length beyond any
                 * Ethernet frame means it is not speaking the protocol */
                if (len == 0 || len > VNET_MAX_FRAME || read_full(d->sock, frame, len) < 0)
                        break;
                pthread_mutex_lock(d->lock);
                while (!d->stopping && vnet_rx_frame(d, frame, len) == 0)
                        pthread_cond_wait(&d->rx_cond, d->lock);
                pthread_mutex_unlock(d->lock);
                if (d->stopping)
                        break;
        }
        pthread_mutex_lock(d->lock);
        backend_fail(d);
        pthread_mutex_unlock(d->lock);
        free(frame);
        return NULL;
}

int vnet_start(vnet *d)
{
        if (d->sock < 0 || pthread_create(&d->rx_tid, NULL, rx_thread, d) != 0)
                return -1;
        d->rx_started = true;
        return 0;
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
        pci_function_cap(&d->pci, cap, cap[2], 0, 0);
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
        pthread_cond_init(&d->rx_cond, NULL);
        if (irq)
                d->irq = *irq;
        pci_function_init(&d->pci, VIRTIO_VENDOR, VIRTIO_NET_MODERN, 0x02000001, VIRTIO_VENDOR,
                          0x0040);
        d->pci.cfg[0x3d] = 1; /* INTA# */
        d->pci.cfg[0x3c] = PCI_INTX_GSI;
        pci_function_bar(&d->pci, 0, BAR_SIZE, bar_addr, true);
        pci_cfg_write(&d->pci, 0x04, 2, 0x0006);
        add_vcap(d, 1, COMMON_OFF, COMMON_LEN);
        add_vcap(d, 3, ISR_OFF, 4);
        add_vcap(d, 4, DEVCFG_OFF, DEVCFG_LEN);
        add_vcap(d, 2, NOTIFY_OFF, NOTIFY_MULT * NUM_QUEUES);
        memcpy(msix + 2, &ctl, 2);
        memcpy(msix + 4, &table, 4);
        memcpy(msix + 8, &pba, 4);
        d->msix_cap = pci_function_cap(&d->pci, msix, sizeof(msix), 3, 0);
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
        if (d->rx_started) {
                pthread_mutex_lock(d->lock);
                d->stopping = true;
                pthread_cond_broadcast(&d->rx_cond);
                pthread_mutex_unlock(d->lock);
                if (d->sock >= 0)
                        shutdown(d->sock, SHUT_RDWR);
                pthread_join(d->rx_tid, NULL);
        }
        if (d->sock >= 0)
                close(d->sock);
        pthread_cond_destroy(&d->rx_cond);
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
