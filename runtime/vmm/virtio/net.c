/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.x section 5.1) on the modern virtio-pci transport
 * (pci-transport.c), whose device configuration holds the MAC, the link
 * status and the MTU. Queue 0 receives, queue 1 transmits. No offloads and
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
#include "runtime/vmm/virtio-pci.h"
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

#define VIRTIO_NET_MODERN 0x1041
#define DEVCFG_LEN 0x10

#define RXQ 0
#define TXQ 1
#define NUM_QUEUES 2
#define NUM_VECTORS (NUM_QUEUES + 1)

#define F_NET_MTU (1ULL << 3)
#define F_NET_MAC (1ULL << 5)
#define F_NET_STATUS (1ULL << 16)
#define DEVICE_FEATURES                                                                            \
        (F_NET_MTU | F_NET_MAC | F_NET_STATUS | VIRTIO_F_INDIRECT_DESC | VIRTIO_F_EVENT_IDX |      \
         VIRTIO_F_VERSION_1)
#define NET_S_LINK_UP 1

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
        virtio_pci t;
        int sock; /* the backend socket (closed by vnet_free) */
        int fd;   /* sock while the backend works, -1 once it failed */
        pthread_t io_tid;
        bool io_started;
        const guest_mem *gm;
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
        uint16_t mtu;
        virtq_chain chain;
        uint8_t tx_frame[4 + VNET_MAX_FRAME];
        uint64_t tx_dropped, rx_dropped;
};

/* --- interrupts: through the vector's irqfd once there is one --- */

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

static bool msi(void *dev, uint16_t vec, uint64_t addr, uint32_t data)
{
        vnet *d = dev;

        if (!wire(d, vec, addr, data))
                return false;
        eventfd_write(d->call_fd[vec], 1);
        return true;
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
        return (d->t.driver_features & VIRTIO_F_EVENT_IDX) != 0;
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
        uint64_t out = virtq_chain_len(c, false);
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
        virtq *q = &d->t.vq[TXQ];
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
                virtio_pci_needs_reset(&d->t);
        if (event_idx(d))
                want_kicks(d, q, true);
        if (used && should_interrupt(d, q, old))
                virtio_pci_interrupt(&d->t, q->msix_vector);
}

/* The I/O thread's transmit: chains into the out buffer while it has room
 * for the largest frame, each returned once copied. */
static void tx_drain(vnet *d)
{
        virtq *q = &d->t.vq[TXQ];
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
                virtio_pci_needs_reset(&d->t);
        if (used && should_interrupt(d, q, old))
                virtio_pci_interrupt(&d->t, q->msix_vector);
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
        virtq *q = &d->t.vq[RXQ];
        uint32_t used = 0;
        int r;

        if (!virtio_pci_driver_ok(&d->t) || !q->ready || q->broken) {
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
                virtio_pci_needs_reset(&d->t);
                d->rx_dropped++;
                return 1;
        }
        if (r == 0)
                return 0;
        /* the device comes back for more: no kick per refill */
        want_kicks(d, q, false);
        if (len <= VNET_MAX_FRAME && virtq_chain_len(&d->chain, true) >= VNET_HDR_LEN + len) {
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
        virtq *q = &d->t.vq[RXQ];
        uint16_t old = virtq_used_idx(q, d->gm);
        bool pushed = false;
        int r = rx_place(d, frame, len, &pushed);

        if (pushed && should_interrupt(d, q, old))
                virtio_pci_interrupt(&d->t, q->msix_vector);
        return r;
}

/* --- the device behind the transport --- */

/* Wakes the I/O thread: the queues or the device's state changed. */
static void wake(vnet *d)
{
        if (d->io_started)
                eventfd_write(d->kick_fd[RXQ], 1);
}

/* a reset, or the driver is ready: the thread looks at the queues again */
static void device_status(void *dev, bool reset)
{
        vnet *d = dev;

        if (reset || virtio_pci_driver_ok(&d->t))
                wake(d);
}

static void device_config(void *dev, uint8_t *c)
{
        const vnet *d = dev;
        uint16_t status = d->fd >= 0 ? NET_S_LINK_UP : 0, pairs = 1, mtu = d->mtu;

        memcpy(c + 0, guest_mac, 6);
        memcpy(c + 6, &status, 2);
        memcpy(c + 8, &pairs, 2);
        memcpy(c + 10, &mtu, 2);
}

static void notify(void *dev, unsigned qi)
{
        vnet *d = dev;

        if (!virtio_pci_driver_ok(&d->t))
                return;
        /* with the thread: a kick KVM's ioeventfd did not catch (another
         * size, a moved BAR) */
        if (d->io_started)
                eventfd_write(d->kick_fd[qi], 1);
        else if (qi == TXQ)
                tx_process(d);
}

/* an Ethernet controller (class 0x0200), revision 1; INTA# */
static const virtio_pci_info info = {VIRTIO_NET_MODERN, 0x02000001, NUM_QUEUES, DEVCFG_LEN,
                                     VIRTIO_PCI_INTX};
static const virtio_pci_ops ops = {
    .config = device_config, .notify = notify, .status = device_status, .msi = msi};

/* --- the I/O thread --- */

/* After a send or read that moved nothing (n <= 0): whether the backend is
 * gone (the link then goes down), not only busy. */
static bool lost(vnet *d, ssize_t n)
{
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return false;
        pthread_mutex_lock(d->lock);
        backend_fail(d);
        pthread_mutex_unlock(d->lock);
        return true;
}

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
        if (lost(d, n))
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
        lost(d, n);
        return false;
}

/* The whole frames in the in buffer to the guest, one interrupt for all. */
static void rx_deliver(vnet *d)
{
        virtq *q = &d->t.vq[RXQ];
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
                virtio_pci_interrupt(&d->t, q->msix_vector);
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
        uint64_t base = vmm_pci_bar_addr(&d->t.pci, 0);

        d->ioevent_base = base;
        d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d->stop_fd < 0)
                return -1;
        for (unsigned i = 0; i < NUM_QUEUES; i++) {
                d->kick_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (d->kick_fd[i] < 0)
                        return -1;
                /* without an ioeventfd a kick still arrives as an MMIO exit */
                d->ioevent[i] = base != 0 && d->host.ioeventfd &&
                                d->host.ioeventfd(d->host.opaque, virtio_pci_notify_addr(base, i),
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

vnet *vnet_new(int sock, const guest_mem *gm, uint64_t bar_addr, const vblk_irq_ops *irq,
               pthread_mutex_t *lock)
{
        vnet *d = calloc(1, sizeof(*d));
        uint64_t features = DEVICE_FEATURES;

        if (d == NULL)
                return NULL;
        d->sock = d->fd = sock;
        if (sock >= 0)
                fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
        d->gm = gm;
        d->lock = lock;
        d->mtu = NET_MTU;
        /* FORGE_VMM_NET_MTU=N: another MTU, 1500 without VIRTIO_NET_F_MTU
         * (a benchmarking aid) */
        if (getenv("FORGE_VMM_NET_MTU") != NULL) {
                unsigned long mtu = strtoul(getenv("FORGE_VMM_NET_MTU"), NULL, 10);

                if (mtu >= 1280 && mtu <= NET_MTU_MAX)
                        d->mtu = (uint16_t)mtu;
                if (d->mtu == 1500)
                        features &= ~F_NET_MTU;
        }
        d->stop_fd = -1;
        for (unsigned i = 0; i < NUM_QUEUES; i++)
                d->kick_fd[i] = -1;
        for (unsigned v = 0; v < NUM_VECTORS; v++)
                d->call_fd[v] = -1;
        virtio_pci_init(&d->t, &info, &ops, d, features, gm, bar_addr, irq);
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
                                          virtio_pci_notify_addr(d->ioevent_base, i), d->kick_fd[i],
                                          false);
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
        return &d->t.pci;
}

void vnet_counters(const vnet *d, uint64_t *ret_tx_dropped, uint64_t *ret_rx_dropped)
{
        *ret_tx_dropped = d->tx_dropped;
        *ret_rx_dropped = d->rx_dropped;
}
