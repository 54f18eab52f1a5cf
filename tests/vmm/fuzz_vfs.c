/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the virtio-fs device: a script of BAR and PCI
 * configuration accesses (feature negotiation, queue set-up, DRIVER_OK,
 * MSI-X table and masking, notifications, resets) against a device whose
 * vhost-user back-end is a thread answering as virtiofsd would. Whatever the
 * guest writes, the launcher must neither crash, leak a descriptor nor hand
 * the back-end rings outside guest memory.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/vmm/vmm-fs.h"
#include "vmm-test.h"

#define GUEST_MEM (1u << 20)
#define BAR 0xe0300000ULL

static guest_mem gm;

static int ok_ioeventfd(void *o, uint64_t a, int fd, bool assign)
{
        (void)o;
        (void)a;
        (void)fd;
        (void)assign;
        return 0;
}

static int ok_irqfd(void *o, int fd, uint64_t a, uint32_t d, bool assign)
{
        (void)o;
        (void)fd;
        (void)a;
        (void)d;
        (void)assign;
        return 0;
}

/* The fake back-end: reads every message (closing passed fds), checks that
 * ring addresses lie in guest memory, answers GET_FEATURES and GET_VRING_BASE. */
static void *backend(void *arg)
{
        int fd = (int)(intptr_t)arg;

        for (;;) {
                uint8_t hdr[12], payload[512];
                int fds[VHU_TEST_MAX_FDS];
                unsigned n_fds;
                uint32_t req, size;

                if (vhu_test_recv_hdr(fd, hdr, fds, &n_fds) != 12)
                        break;
                for (unsigned i = 0; i < n_fds; i++)
                        close(fds[i]);
                memcpy(&req, hdr, 4);
                memcpy(&size, hdr + 8, 4);
                if (size > sizeof(payload) ||
                    (size && recv(fd, payload, size, MSG_WAITALL) != (ssize_t)size))
                        abort();
                if (req == VHU_SET_VRING_ADDR) {
                        struct vhu_vring_addr a;
                        uintptr_t lo = (uintptr_t)gm.host, hi = lo + gm.size;
                        memcpy(&a, payload, sizeof(a));
                        if (a.desc < lo || a.desc >= hi || a.used < lo || a.used >= hi ||
                            a.avail < lo || a.avail >= hi)
                                abort();
                }
                if (req == VHU_GET_FEATURES || req == VHU_GET_VRING_BASE) {
                        uint8_t r[20];
                        uint32_t flags = 0x5, len = 8;
                        uint64_t v = 0x1f0000000ULL | (1ULL << 28) | (1ULL << 29);
                        memcpy(r, &req, 4);
                        memcpy(r + 4, &flags, 4);
                        memcpy(r + 8, &len, 4);
                        if (req == VHU_GET_VRING_BASE)
                                memcpy(r + 12, payload, 8); /* index, base 0 */
                        else
                                memcpy(r + 12, &v, 8);
                        if (send(fd, r, 20, MSG_NOSIGNAL) != 20)
                                break;
                }
        }
        close(fd);
        return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        vfs_host_ops ops = {ok_ioeventfd, ok_irqfd, NULL};
        forge_error *err = NULL;
        pthread_t t;
        vfs *d;
        int sp[2];

        if (gm.host == NULL) {
                gm.fd = memfd_create("fuzz-ram", MFD_CLOEXEC);
                if (gm.fd < 0 || ftruncate(gm.fd, GUEST_MEM) < 0)
                        abort();
                gm.host = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_SHARED, gm.fd, 0);
                if (gm.host == MAP_FAILED)
                        abort();
                gm.size = gm.low_size = GUEST_MEM;
                gm.shared = true;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 ||
            pthread_create(&t, NULL, backend, (void *)(intptr_t)sp[1]) != 0)
                abort();
        if (vfs_new("forge0", sp[0], &gm, BAR, &ops, &d, &err) < 0)
                abort();
        for (size_t i = 0; i + 12 <= size; i += 12) {
                const uint8_t *op = data + i;
                uint8_t buf[8];
                unsigned len = (op[1] % 8) + 1;

                memcpy(buf, op + 4, 8);
                switch (op[0] % 4) {
                case 0: /* BAR read */
                case 1: /* BAR write */
                        virtio_pci_bar_access(vfs_pci(d), (uint64_t)(op[2] | op[3] << 8) % 0x8100,
                                              buf, len, op[0] % 4 == 1);
                        break;
                case 2: /* a common-configuration write: the interesting part */
                        virtio_pci_bar_access(vfs_pci(d), op[2] % 0x38, buf, len, true);
                        break;
                default: /* config space, any offset */
                        vmm_pci_cfg_write(vfs_pci(d), op[2], len > 4 ? 4 : len,
                                          (uint32_t)(buf[0] | buf[1] << 8 | buf[2] << 16 |
                                                     (uint32_t)buf[3] << 24));
                        (void)vmm_pci_cfg_read(vfs_pci(d), op[3], len > 4 ? 4 : len);
                        break;
                }
        }
        vfs_free(d); /* closes sp[0]: the back-end thread ends */
        pthread_join(t, NULL);
        return 0;
}
