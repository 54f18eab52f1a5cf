/* SPDX-License-Identifier: MIT */
/*
 * virtio-fs (virtio 1.x section 5.11) as a vhost-user device on the modern
 * virtio-pci transport: forge-vmm owns the PCI function, the common
 * configuration, the device configuration (tag, one request queue) and the
 * MSI-X table; the queues themselves (hiprio and one request queue, FUSE
 * requests) are served by virtiofsd straight in guest memory. When the
 * driver sets DRIVER_OK, the back-end gets the memory table, the rings and
 * two eventfds per queue: the kick is a KVM ioeventfd on the queue's notify
 * address, the call a KVM irqfd on the vector's MSI route (unbound while the
 * vector is masked: KVM delivers what is pending when it is bound again).
 * The guest can only program the device through the BAR, where every field is
 * checked as in virtio/blk.c; the caller serialises every entry point.
 */
#include "runtime/vmm/vmm-fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_FS_MODERN (0x1040 + 26)

/* BAR0 layout (as virtio-blk's) */
#define BAR_SIZE 0x8000
#define COMMON_OFF 0x0000
#define COMMON_LEN 0x38
#define ISR_OFF 0x1000
#define DEVCFG_OFF 0x2000
#define DEVCFG_LEN 0x28 /* tag[36], num_request_queues */
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULT 4
#define MSIX_TABLE_OFF 0x4000
#define MSIX_PBA_OFF 0x5000

#define NUM_QUEUES 2 /* hiprio, one request queue (virtiofsd serves one) */
#define NUM_VECTORS (NUM_QUEUES + 1)
#define NO_VECTOR 0xffff

#define F_INDIRECT_DESC (1ULL << 28)
#define F_EVENT_IDX (1ULL << 29)
#define F_VERSION_1 (1ULL << 32)
/* what forge offers the guest, of what the back-end has: no transport
 * features forge does not implement (IOMMU, packed rings, ...) */
#define FEATURES_ALLOWED (F_INDIRECT_DESC | F_EVENT_IDX | F_VERSION_1)

#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 0x40

#define MSIX_CAP_ID 0x11
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000

typedef struct vfs_queue {
        virtq q; /* size, ready, ring addresses, vector: the driver's set-up */
        bool started;
        int kick_fd, call_fd;
        bool ioevent, wired;
        uint64_t ioevent_addr, wired_addr;
        uint32_t wired_data;
} vfs_queue;

struct vfs {
        pci_function pci;
        unsigned msix_cap;
        const guest_mem *gm;
        vfs_host_ops host;
        vhu *backend;
        char tag[VFS_TAG_MAX];
        uint64_t device_features, driver_features;
        uint32_t dfselect, gfselect;
        uint8_t status;
        uint16_t msix_config;
        uint16_t queue_select;
        bool started;
        bool closing; /* the back-end is going away with the VM: no more messages */
        vfs_queue vq[NUM_QUEUES];
        uint32_t msix[NUM_VECTORS][4]; /* addr lo, addr hi, data, control */
        char error[256];               /* why the back-end could not be started */
};

static void fail(vfs *d, forge_error **err)
{
        if (d->error[0] == '\0')
                snprintf(d->error, sizeof(d->error), "%s",
                         *err && (*err)->msg ? (*err)->msg : "failed");
        forge_error_release(err);
        d->status |= STATUS_NEEDS_RESET;
}

/* --- interrupts: each started queue's call eventfd bound to its vector --- */

static bool msix_deliverable(const vfs *d, uint16_t vec)
{
        uint16_t ctl = (uint16_t)vmm_pci_cfg_read(&d->pci, d->msix_cap + 2, 2);

        return (ctl & MSIX_ENABLE) && !(ctl & MSIX_MASKALL) && vec < NUM_VECTORS &&
               !(d->msix[vec][3] & 1);
}

static void wire(vfs *d, vfs_queue *q)
{
        uint16_t vec = q->q.msix_vector;
        bool want = q->started && msix_deliverable(d, vec);
        uint64_t addr = want ? (uint64_t)d->msix[vec][1] << 32 | d->msix[vec][0] : 0;
        uint32_t data = want ? d->msix[vec][2] : 0;

        if (want && (!q->wired || addr != q->wired_addr || data != q->wired_data)) {
                if (d->host.irqfd &&
                    d->host.irqfd(d->host.opaque, q->call_fd, addr, data, true) == 0) {
                        q->wired = true;
                        q->wired_addr = addr;
                        q->wired_data = data;
                }
        } else if (!want && q->wired) {
                if (d->host.irqfd)
                        d->host.irqfd(d->host.opaque, q->call_fd, 0, 0, false);
                q->wired = false;
        }
}

static void rewire(vfs *d)
{
        for (unsigned i = 0; i < NUM_QUEUES; i++)
                wire(d, &d->vq[i]);
}

/* --- the back-end --- */

static void queue_stop(vfs *d, unsigned i)
{
        vfs_queue *q = &d->vq[i];
        forge_error *e = NULL;
        uint32_t base;

        if (q->started && !d->closing && vhu_get_vring_base(d->backend, i, &base, &e) < 0)
                forge_error_release(&e);
        q->started = false;
        wire(d, q);
        if (q->ioevent && d->host.ioeventfd)
                d->host.ioeventfd(d->host.opaque, q->ioevent_addr, q->kick_fd, false);
        q->ioevent = false;
        if (q->kick_fd >= 0)
                close(q->kick_fd);
        if (q->call_fd >= 0)
                close(q->call_fd);
        q->kick_fd = q->call_fd = -1;
}

static void stop(vfs *d)
{
        for (unsigned i = 0; i < NUM_QUEUES; i++)
                queue_stop(d, i);
        d->started = false;
}

static int send_mem_table(vfs *d, forge_error **err)
{
        const guest_mem *gm = d->gm;
        struct vhu_region r[2] = {{0, gm->low_size, (uint64_t)(uintptr_t)gm->host, 0}};
        int fds[2] = {gm->fd, gm->fd};
        unsigned n = 1;

        if (!gm->shared)
                return forge_error_make(err, 0, "guest memory is not shared (no memfd)");
        if (gm->size > gm->low_size)
                r[n++] = (struct vhu_region){MMIO_HOLE_END, gm->size - gm->low_size,
                                             (uint64_t)(uintptr_t)(gm->host + gm->low_size),
                                             gm->low_size};
        return vhu_set_mem_table(d->backend, r, n, fds, err);
}

static int queue_start(vfs *d, unsigned i, uint64_t bar, forge_error **err)
{
        vfs_queue *q = &d->vq[i];
        uint16_t n = q->q.size;
        struct vhu_vring_addr a = {
            .index = i,
            .desc = (uint64_t)(uintptr_t)gm_ptr(d->gm, q->q.desc_gpa, 16ULL * n),
            .avail = (uint64_t)(uintptr_t)gm_ptr(d->gm, q->q.avail_gpa, 6 + 2ULL * n),
            .used = (uint64_t)(uintptr_t)gm_ptr(d->gm, q->q.used_gpa, 6 + 8ULL * n),
        };

        if (a.desc == 0 || a.avail == 0 || a.used == 0)
                return forge_error_make(err, EINVAL, "queue %u: rings outside guest memory", i);
        q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (q->kick_fd < 0 || q->call_fd < 0)
                return forge_error_make(err, errno, "queue %u: eventfd", i);
        /* without an ioeventfd, notifications still arrive as MMIO exits */
        q->ioevent_addr = bar + NOTIFY_OFF + NOTIFY_MULT * i;
        q->ioevent = d->host.ioeventfd &&
                     d->host.ioeventfd(d->host.opaque, q->ioevent_addr, q->kick_fd, true) == 0;
        if (vhu_set_vring_num(d->backend, i, n, err) < 0 ||
            vhu_set_vring_base(d->backend, i, 0, err) < 0 ||
            vhu_set_vring_addr(d->backend, &a, err) < 0 ||
            vhu_set_vring_kick(d->backend, i, q->kick_fd, err) < 0 ||
            vhu_set_vring_call(d->backend, i, q->call_fd, err) < 0)
                return forge_error_prefix(err, "queue %u", i);
        q->started = true;
        wire(d, q);
        return 0;
}

static void start(vfs *d)
{
        forge_error *err = NULL;
        uint64_t bar = vmm_pci_bar_addr(&d->pci, 0);

        if (!(d->status & STATUS_FEATURES_OK) || (d->status & STATUS_NEEDS_RESET))
                return;
        if (vhu_set_features(d->backend, d->driver_features, &err) < 0 ||
            send_mem_table(d, &err) < 0)
                goto fail;
        for (unsigned i = 0; i < NUM_QUEUES; i++) {
                if (!d->vq[i].q.ready)
                        continue;
                if (d->vq[i].q.broken) {
                        forge_error_make(&err, 0, "queue %u is broken", i);
                        goto fail;
                }
                if (queue_start(d, i, bar, &err) < 0)
                        goto fail;
        }
        d->started = true;
        return;
fail:
        fail(d, &err);
        stop(d);
}

/* --- the BAR --- */

static void reset(vfs *d)
{
        stop(d);
        d->dfselect = d->gfselect = 0;
        d->driver_features = 0;
        d->status = 0;
        d->msix_config = NO_VECTOR;
        d->queue_select = 0;
        for (unsigned i = 0; i < NUM_QUEUES; i++)
                d->vq[i].q = (virtq){.size = VIRTQ_MAX_SIZE, .msix_vector = NO_VECTOR};
}

static void common_snapshot(const vfs *d, uint8_t *s)
{
        const virtq *q = d->queue_select < NUM_QUEUES ? &d->vq[d->queue_select].q : NULL;
        uint32_t df = d->dfselect == 0   ? (uint32_t)d->device_features
                      : d->dfselect == 1 ? (uint32_t)(d->device_features >> 32)
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

static void queue_enable(vfs *d, virtq *q)
{
        uint16_t n = q->size;

        q->ready = true;
        if (n == 0 || (n & (n - 1)) || n > VIRTQ_MAX_SIZE || (q->desc_gpa & 15) ||
            (q->avail_gpa & 1) || (q->used_gpa & 3) || !gm_ptr(d->gm, q->desc_gpa, 16ULL * n) ||
            !gm_ptr(d->gm, q->avail_gpa, 6 + 2ULL * n) ||
            !gm_ptr(d->gm, q->used_gpa, 6 + 8ULL * n)) {
                q->broken = true;
                d->status |= STATUS_NEEDS_RESET;
        }
}

static void status_write(vfs *d, uint8_t st)
{
        if (st == 0) {
                reset(d);
                return;
        }
        /* FEATURES_OK only sticks when VERSION_1 was accepted */
        if ((st & STATUS_FEATURES_OK) && !(d->driver_features & F_VERSION_1))
                st &= (uint8_t)~STATUS_FEATURES_OK;
        d->status = (uint8_t)(st | (d->status & STATUS_NEEDS_RESET));
        if ((d->status & STATUS_DRIVER_OK) && !d->started)
                start(d);
}

static void queue_write(vfs *d, virtq *q, unsigned off, unsigned len, const uint8_t *s)
{
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
        if (overlaps(off, len, 0x20, 8))
                memcpy(&q->desc_gpa, s + 0x20, 8);
        if (overlaps(off, len, 0x28, 8))
                memcpy(&q->avail_gpa, s + 0x28, 8);
        if (overlaps(off, len, 0x30, 8))
                memcpy(&q->used_gpa, s + 0x30, 8);
        if (overlaps(off, len, 0x1c, 2)) {
                memcpy(&v16, s + 0x1c, 2);
                if (v16 == 1 && !(d->status & STATUS_DRIVER_OK))
                        queue_enable(d, q);
        }
}

static void common_write(vfs *d, unsigned off, const uint8_t *data, unsigned len)
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
        if (overlaps(off, len, 0x0c, 4) && !(d->status & STATUS_FEATURES_OK) && d->gfselect < 2) {
                unsigned sh = 32 * d->gfselect;
                memcpy(&v32, s + 0x0c, 4);
                d->driver_features &= ~(0xffffffffULL << sh);
                d->driver_features |= ((uint64_t)v32 << sh) & d->device_features;
        }
        if (overlaps(off, len, 0x10, 2)) {
                memcpy(&v16, s + 0x10, 2);
                d->msix_config = v16 < NUM_VECTORS ? v16 : NO_VECTOR;
        }
        if (overlaps(off, len, 0x16, 2))
                memcpy(&d->queue_select, s + 0x16, 2);
        if (d->queue_select < NUM_QUEUES)
                queue_write(d, &d->vq[d->queue_select].q, off, len, s);
        if (overlaps(off, len, 0x14, 1))
                status_write(d, s[0x14]);
}

static void devcfg_read(const vfs *d, unsigned off, uint8_t *data, unsigned len)
{
        uint8_t c[DEVCFG_LEN] = {0};
        uint32_t nreq = NUM_QUEUES - 1;

        memcpy(c, d->tag, VFS_TAG_MAX);
        memcpy(c + VFS_TAG_MAX, &nreq, 4);
        if (off < DEVCFG_LEN && len <= DEVCFG_LEN - off)
                memcpy(data, c + off, len);
}

static void msix_access(vfs *d, unsigned off, uint8_t *data, unsigned len, bool write)
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
        if (word == 3)
                d->msix[vec][3] &= 1;
        rewire(d);
}

static void notify(vfs *d, unsigned qi)
{
        vfs_queue *q = &d->vq[qi];

        /* a write KVM's ioeventfd did not catch (another size, a moved BAR) */
        if (q->started)
                eventfd_write(q->kick_fd, 1);
}

void vfs_bar_access(vfs *d, uint64_t off, uint8_t *data, unsigned len, bool write)
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
        } else if (!write) {
                /* the ISR (no INTx: interrupts are MSI-X only) and the PBA (the
                 * back-end's eventfds hold what is pending) read as 0 */
                memset(data, 0, len);
        }
}

bool vfs_mmio(vfs *d, uint64_t addr, uint8_t *data, unsigned len, bool write)
{
        uint64_t base = vmm_pci_bar_addr(&d->pci, 0);

        if (base == 0 || addr < base || addr - base >= BAR_SIZE)
                return false;
        vfs_bar_access(d, addr - base, data, len, write);
        return true;
}

static void add_vcap(vfs *d, uint8_t type, uint32_t off, uint32_t len)
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
        vfs *d = f->opaque;

        /* MSI-X enable or function mask changed */
        if (off <= d->msix_cap + 3 && d->msix_cap + 2 < off + len)
                rewire(d);
}

static void init_pci(vfs *d, uint64_t bar_addr)
{
        uint8_t msix[12] = {MSIX_CAP_ID, 0};
        uint16_t ctl = NUM_VECTORS - 1;
        uint32_t table = MSIX_TABLE_OFF, pba = MSIX_PBA_OFF;

        /* class 0x0180: other mass storage, revision 1 (modern only) */
        vmm_pci_function_init(&d->pci, VIRTIO_VENDOR, VIRTIO_FS_MODERN, 0x01800001, VIRTIO_VENDOR,
                              0x0040);
        vmm_pci_function_bar(&d->pci, 0, BAR_SIZE, bar_addr, true);
        vmm_pci_cfg_write(&d->pci, 0x04, 2, 0x0006); /* memory decode, bus master */
        add_vcap(d, 1, COMMON_OFF, COMMON_LEN);
        add_vcap(d, 3, ISR_OFF, 4);
        add_vcap(d, 4, DEVCFG_OFF, DEVCFG_LEN);
        add_vcap(d, 2, NOTIFY_OFF, NOTIFY_MULT * NUM_QUEUES);
        memcpy(msix + 2, &ctl, 2);
        memcpy(msix + 4, &table, 4);
        memcpy(msix + 8, &pba, 4);
        d->msix_cap = vmm_pci_function_cap(&d->pci, msix, sizeof(msix), 3, 0);
        d->pci.wmask[d->msix_cap + 3] = 0xc0; /* enable, function mask */
        d->pci.cfg_written = cfg_written;
        d->pci.opaque = d;
}

int vfs_new(const char *tag, int sock_fd, const guest_mem *gm, uint64_t bar_addr,
            const vfs_host_ops *host, vfs **ret, forge_error **err)
{
        vfs *d;
        uint64_t features;
        size_t tlen = tag ? strlen(tag) : 0;

        if (tlen == 0 || tlen > VFS_TAG_MAX) {
                close(sock_fd);
                return forge_error_make(err, EINVAL, "virtio-fs tag '%s': 1 to %d bytes",
                                        tag ? tag : "", VFS_TAG_MAX);
        }
        d = calloc(1, sizeof(*d));
        if (d == NULL || vhu_new(sock_fd, &d->backend) < 0) {
                free(d);
                close(sock_fd);
                return forge_error_make(err, ENOMEM, "virtio-fs");
        }
        memcpy(d->tag, tag, tlen);
        d->gm = gm;
        if (host)
                d->host = *host;
        for (unsigned i = 0; i < NUM_QUEUES; i++)
                d->vq[i].kick_fd = d->vq[i].call_fd = -1;
        if (vhu_set_owner(d->backend, err) < 0 ||
            vhu_get_features(d->backend, &features, err) < 0) {
                vfs_free(d);
                return forge_error_prefix(err, "virtio-fs '%s': the back-end", tag);
        }
        if (!(features & F_VERSION_1)) {
                vfs_free(d);
                return forge_error_make(
                    err, EPROTO, "virtio-fs '%s': the back-end offers no VIRTIO_F_VERSION_1", tag);
        }
        d->device_features = features & FEATURES_ALLOWED;
        init_pci(d, bar_addr);
        for (unsigned v = 0; v < NUM_VECTORS; v++)
                d->msix[v][3] = 1;
        reset(d);
        *ret = d;
        return 0;
}

void vfs_free(vfs *d)
{
        if (d == NULL)
                return;
        d->closing = true;
        stop(d);
        vhu_free(d->backend);
        free(d);
}

pci_function *vfs_pci(vfs *d)
{
        return &d->pci;
}

bool vfs_started(const vfs *d)
{
        return d->started;
}

const char *vfs_error(const vfs *d)
{
        return d->error[0] ? d->error : NULL;
}
