/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the guest-facing device code: the input is a guest
 * memory image plus a script of PCI configuration and BAR accesses that
 * drive the virtio-blk and virtio-net devices (queue set-up, notifications,
 * MSI-X, frames received from the backend) and the virtqueue parser over that
 * memory. Whatever the guest writes, the launcher must neither crash nor
 * touch memory outside the guest's.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/vmm/vmm-internal.h"

#define GUEST_MEM (1u << 20) /* small: guest addresses hit its end often */
#define DISK_SIZE (64u * 1024)

static blk_backend *disk;
static int net_sink = -1; /* the net backend: transmitted frames vanish */

static void no_msi(void *o, uint64_t a, uint32_t d)
{
        (void)o;
        (void)a;
        (void)d;
}

static void no_intx(void *o, int l)
{
        (void)o;
        (void)l;
}

static void setup_once(void)
{
        char path[] = "/tmp/forge-fuzz-disk-XXXXXX";
        int fd;
        forge_error *err = NULL;

        if (disk)
                return;
        fd = mkstemp(path);
        if (fd < 0 || ftruncate(fd, DISK_SIZE) < 0)
                abort();
        close(fd);
        if (vmm_blk_open(path, -1, false, &disk, &err) < 0)
                abort();
        unlink(path);
        net_sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (net_sink < 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static guest_mem gm;
        static uint8_t *mem;
        vblk_irq_ops ops = {no_msi, no_intx, NULL};
        pci_bus bus = {0};
        pci_function bridge;
        pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        vblk *d;
        vnet *n;
        size_t mem_part;

        setup_once();
        if (mem == NULL) {
                mem = malloc(GUEST_MEM);
                if (mem == NULL)
                        abort();
        }
        /* first half of the input seeds the start of guest memory (rings,
         * descriptors, requests), the rest is the access script */
        mem_part = size / 2 < GUEST_MEM ? size / 2 : GUEST_MEM;
        memset(mem, 0, GUEST_MEM);
        memcpy(mem, data, mem_part);
        gm = (guest_mem){.host = mem, .size = GUEST_MEM, .low_size = GUEST_MEM};
        d = vblk_new(disk, &gm, 0xe0000000, &ops);
        if (d == NULL)
                abort();
        vmm_pci_function_init(&bridge, 0x1b36, 8, 0x06000000, 0x1b36, 8);
        bus.dev[0] = &bridge;
        bus.dev[1] = vblk_pci(d);
        /* vnet_free closes its fd: give it a copy of the sink */
        n = vnet_new(dup(net_sink), &gm, 0xe0010000, &ops, &lock);
        if (n == NULL)
                abort();
        bus.dev[2] = vnet_pci(n);

        for (size_t i = mem_part; i + 12 <= size; i += 12) {
                const uint8_t *op = data + i;
                uint8_t buf[8];
                unsigned len = (op[1] % 8) + 1;
                uint64_t off;

                memcpy(buf, op + 4, 8);
                switch (op[0] % 10) {
                case 0: /* BAR read */
                case 1: /* BAR write */
                        off = (uint64_t)(op[2] | op[3] << 8) % 0x8100;
                        virtio_pci_bar_access(vblk_pci(d), off, buf, len, op[0] % 10 == 1);
                        break;
                case 2: /* notify queue 0: process whatever the rings say */
                        virtio_pci_bar_access(vblk_pci(d), 0x3000, buf, 2, true);
                        break;
                case 3: /* config space through the ports */
                case 4:
                        vmm_pci_bus_io(&bus, (uint16_t)(0xcf8 + op[2] % 8), buf, len > 4 ? 4 : len,
                                       op[0] % 10 == 4);
                        break;
                case 6: /* net BAR read */
                case 7: /* net BAR write */
                        off = (uint64_t)(op[2] | op[3] << 8) % 0x8100;
                        virtio_pci_bar_access(vnet_pci(n), off, buf, len, op[0] % 10 == 7);
                        break;
                case 8: /* net: notify tx (queue 1) or rx (queue 0) */
                        virtio_pci_bar_access(vnet_pci(n), 0x3000 + (op[2] & 1) * 4, buf, 2, true);
                        break;
                case 9: /* net: a frame from the backend, its bytes from the input */
                        vnet_rx_frame(n, data,
                                      (size_t)(op[2] | op[3] << 8) %
                                          (size < 1600 ? size + 1 : 1600));
                        break;
                default: /* direct config access, any offset */
                        vmm_pci_cfg_write(vblk_pci(d), op[2], len > 4 ? 4 : len,
                                          (uint32_t)(buf[0] | buf[1] << 8 | buf[2] << 16 |
                                                     (uint32_t)buf[3] << 24));
                        (void)vmm_pci_cfg_read(vblk_pci(d), op[3], len > 4 ? 4 : len);
                        break;
                }
        }
        vblk_free(d);
        vnet_free(n);
        return 0;
}
