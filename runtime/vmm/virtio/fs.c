/* SPDX-License-Identifier: MIT */
/*
 * virtio-fs (virtio 1.x section 5.11) as a vhost-user device on the modern
 * virtio-pci transport (pci-transport.c): forge-vmm owns the PCI function, the
 * common configuration, the device configuration (tag, one request queue)
 * and the MSI-X table; the queues themselves (hiprio and one request queue, FUSE
 * requests) are served by virtiofsd straight in guest memory. When the
 * driver sets DRIVER_OK, the back-end gets the memory table, the rings and
 * two eventfds per queue: the kick is a KVM ioeventfd on the queue's notify
 * address, the call a KVM irqfd on the vector's MSI route (unbound while the
 * vector is masked: KVM delivers what is pending when it is bound again).
 * The guest can only program the device through the BAR, where the transport
 * checks every field; the caller serialises every entry point.
 */
#include "runtime/vmm/virtio-pci.h"
#include "runtime/vmm/vmm-fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define VIRTIO_FS_MODERN (0x1040 + 26)
#define DEVCFG_LEN 0x28 /* tag[36], num_request_queues */

#define NUM_QUEUES 2 /* hiprio, one request queue (virtiofsd serves one) */

/* what forge offers the guest, of what the back-end has: no transport
 * features forge does not implement (IOMMU, packed rings, ...) */
#define FEATURES_ALLOWED (VIRTIO_F_INDIRECT_DESC | VIRTIO_F_EVENT_IDX | VIRTIO_F_VERSION_1)

/* a queue as the back-end has it (the driver's set-up is the transport's vq[]) */
typedef struct vfs_queue {
        bool started;
        int kick_fd, call_fd;
        bool ioevent, wired;
        uint64_t ioevent_addr, wired_addr;
        uint32_t wired_data;
} vfs_queue;

struct vfs {
        virtio_pci t;
        const guest_mem *gm;
        vfs_host_ops host;
        vhu *backend;
        char tag[VFS_TAG_MAX];
        bool started;
        bool closing; /* the back-end is going away with the VM: no more messages */
        vfs_queue vq[NUM_QUEUES];
        char error[256]; /* why the back-end could not be started */
};

static void fail(vfs *d, forge_error **err)
{
        if (d->error[0] == '\0')
                snprintf(d->error, sizeof(d->error), "%s",
                         *err && (*err)->msg ? (*err)->msg : "failed");
        forge_error_release(err);
        virtio_pci_needs_reset(&d->t);
}

/* --- interrupts: each started queue's call eventfd bound to its vector --- */

static void wire(vfs *d, unsigned i)
{
        vfs_queue *q = &d->vq[i];
        uint64_t addr = 0;
        uint32_t data = 0;
        bool want =
            q->started && virtio_pci_msix_message(&d->t, d->t.vq[i].msix_vector, &addr, &data);

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

static void rewire(void *dev)
{
        for (unsigned i = 0; i < NUM_QUEUES; i++)
                wire(dev, i);
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
        wire(d, i);
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
        const virtq *vq = &d->t.vq[i];
        uint16_t n = vq->size;
        struct vhu_vring_addr a = {
            .index = i,
            .desc = (uint64_t)(uintptr_t)gm_ptr(d->gm, vq->desc_gpa, 16ULL * n),
            .avail = (uint64_t)(uintptr_t)gm_ptr(d->gm, vq->avail_gpa, 6 + 2ULL * n),
            .used = (uint64_t)(uintptr_t)gm_ptr(d->gm, vq->used_gpa, 6 + 8ULL * n),
        };

        if (a.desc == 0 || a.avail == 0 || a.used == 0)
                return forge_error_make(err, EINVAL, "queue %u: rings outside guest memory", i);
        q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (q->kick_fd < 0 || q->call_fd < 0)
                return forge_error_make(err, errno, "queue %u: eventfd", i);
        /* without an ioeventfd, notifications still arrive as MMIO exits */
        q->ioevent_addr = virtio_pci_notify_addr(bar, i);
        q->ioevent = d->host.ioeventfd &&
                     d->host.ioeventfd(d->host.opaque, q->ioevent_addr, q->kick_fd, true) == 0;
        if (vhu_set_vring_num(d->backend, i, n, err) < 0 ||
            vhu_set_vring_base(d->backend, i, 0, err) < 0 ||
            vhu_set_vring_addr(d->backend, &a, err) < 0 ||
            vhu_set_vring_kick(d->backend, i, q->kick_fd, err) < 0 ||
            vhu_set_vring_call(d->backend, i, q->call_fd, err) < 0)
                return forge_error_prefix(err, "queue %u", i);
        q->started = true;
        wire(d, i);
        return 0;
}

static void start(vfs *d)
{
        forge_error *err = NULL;
        uint64_t bar = vmm_pci_bar_addr(&d->t.pci, 0);

        if (!(d->t.status & VIRTIO_STATUS_FEATURES_OK) || (d->t.status & VIRTIO_STATUS_NEEDS_RESET))
                return;
        if (vhu_set_features(d->backend, d->t.driver_features, &err) < 0 ||
            send_mem_table(d, &err) < 0)
                goto fail;
        for (unsigned i = 0; i < NUM_QUEUES; i++) {
                if (!d->t.vq[i].ready)
                        continue;
                if (d->t.vq[i].broken) {
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

/* --- the device behind the transport --- */

/* a reset stops the back-end's rings; DRIVER_OK starts them */
static void device_status(void *dev, bool reset)
{
        vfs *d = dev;

        if (reset)
                stop(d);
        else if (virtio_pci_driver_ok(&d->t) && !d->started)
                start(d);
}

static void device_config(void *dev, uint8_t *c)
{
        const vfs *d = dev;
        uint32_t nreq = NUM_QUEUES - 1;

        memcpy(c, d->tag, VFS_TAG_MAX);
        memcpy(c + VFS_TAG_MAX, &nreq, 4);
}

static void notify(void *dev, unsigned qi)
{
        vfs *d = dev;
        vfs_queue *q = &d->vq[qi];

        /* a write KVM's ioeventfd did not catch (another size, a moved BAR) */
        if (q->started)
                eventfd_write(q->kick_fd, 1);
}

/* other mass storage (class 0x0180), revision 1 (modern only); MSI-X only:
 * the back-end's call eventfds are irqfds, so the ISR and the PBA stay 0 */
static const virtio_pci_info info = {VIRTIO_FS_MODERN, 0x01800001, NUM_QUEUES, DEVCFG_LEN,
                                     VIRTIO_PCI_ENABLE_BEFORE_DRIVER_OK};
static const virtio_pci_ops ops = {
    .config = device_config, .notify = notify, .status = device_status, .msix_changed = rewire};

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
        if (!(features & VIRTIO_F_VERSION_1)) {
                vfs_free(d);
                return forge_error_make(
                    err, EPROTO, "virtio-fs '%s': the back-end offers no VIRTIO_F_VERSION_1", tag);
        }
        virtio_pci_init(&d->t, &info, &ops, d, features & FEATURES_ALLOWED, gm, bar_addr, NULL);
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
        return &d->t.pci;
}

bool vfs_started(const vfs *d)
{
        return d->started;
}

const char *vfs_error(const vfs *d)
{
        return d->error[0] ? d->error : NULL;
}
