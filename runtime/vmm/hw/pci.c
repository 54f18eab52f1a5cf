/* SPDX-License-Identifier: MIT */
/*
 * PCI configuration space (type 0 headers) and configuration mechanism #1
 * (ports 0xcf8/0xcfc) for bus 0. Guest writes go through a per-byte write
 * mask, so read-only fields stay read-only and BAR sizing works the standard
 * way (all ones written, the size mask read back).
 */
#include "runtime/vmm/vmm-internal.h"

#include <string.h>

#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34
#define PCI_INT_LINE 0x3c
#define PCI_CMD_MEMORY 0x2
#define PCI_STATUS_CAP_LIST 0x10

static void put(uint8_t *p, unsigned len, uint32_t v)
{
        for (unsigned i = 0; i < len; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

void vmm_pci_function_init(pci_function *f, uint16_t vendor, uint16_t device, uint32_t class_rev,
                           uint16_t subsys_vendor, uint16_t subsys)
{
        memset(f->cfg, 0, sizeof(f->cfg));
        memset(f->wmask, 0, sizeof(f->wmask));
        memset(f->bar_size, 0, sizeof(f->bar_size));
        memset(f->bar_is64, 0, sizeof(f->bar_is64));
        put(f->cfg + 0x00, 2, vendor);
        put(f->cfg + 0x02, 2, device);
        put(f->cfg + 0x08, 4, class_rev);
        put(f->cfg + 0x2c, 2, subsys_vendor);
        put(f->cfg + 0x2e, 2, subsys);
        put(f->wmask + PCI_COMMAND, 2, 0x0507); /* io, memory, master, serr, intx disable */
        f->wmask[PCI_INT_LINE] = 0xff;
        f->wmask[0x0c] = 0xff; /* cache line size */
        f->wmask[0x0d] = 0xff; /* latency timer */
        f->cap_last = 0;
        f->cap_free = 0x40;
        f->cfg_written = NULL;
        f->opaque = NULL;
}

void vmm_pci_function_bar(pci_function *f, unsigned bar, uint64_t size, uint64_t addr, bool is64)
{
        unsigned off = PCI_BAR0 + 4 * bar;
        uint64_t mask = ~(size - 1);

        if (bar >= 6 || (is64 && bar >= 5) || size < 16 || (size & (size - 1)))
                return;
        f->bar_size[bar] = size;
        f->bar_is64[bar] = is64;
        put(f->cfg + off, 4, (uint32_t)(addr & mask) | (is64 ? 0x4 : 0));
        put(f->wmask + off, 4, (uint32_t)mask & ~0xfu);
        if (is64) {
                put(f->cfg + off + 4, 4, (uint32_t)(addr >> 32));
                put(f->wmask + off + 4, 4, (uint32_t)(mask >> 32));
        }
}

unsigned vmm_pci_function_cap(pci_function *f, const uint8_t *cap, unsigned len,
                              unsigned wmask_from, unsigned wmask_len)
{
        unsigned off = (f->cap_free + 3) & ~3u;

        if (len < 2 || off + len > PCI_CFG_SIZE || wmask_from + wmask_len > len)
                return 0;
        memcpy(f->cfg + off, cap, len);
        f->cfg[off + 1] = 0;
        memset(f->wmask + off + wmask_from, 0xff, wmask_len);
        if (f->cap_last == 0)
                f->cfg[PCI_CAP_PTR] = (uint8_t)off;
        else
                f->cfg[f->cap_last + 1] = (uint8_t)off;
        f->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
        f->cap_last = off;
        f->cap_free = off + len;
        return off;
}

uint32_t vmm_pci_cfg_read(const pci_function *f, unsigned off, unsigned len)
{
        uint32_t v = 0;

        if (len == 0 || len > 4 || off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off)
                return 0xffffffff;
        for (unsigned i = 0; i < len; i++)
                v |= (uint32_t)f->cfg[off + i] << (8 * i);
        return v;
}

void vmm_pci_cfg_write(pci_function *f, unsigned off, unsigned len, uint32_t val)
{
        if (len == 0 || len > 4 || off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off)
                return;
        for (unsigned i = 0; i < len; i++) {
                uint8_t b = (uint8_t)(val >> (8 * i));
                f->cfg[off + i] =
                    (uint8_t)((f->cfg[off + i] & ~f->wmask[off + i]) | (b & f->wmask[off + i]));
        }
        if (f->cfg_written)
                f->cfg_written(f, off, len);
}

uint64_t vmm_pci_bar_addr(const pci_function *f, unsigned bar)
{
        unsigned off = PCI_BAR0 + 4 * bar;
        uint64_t a;

        if (bar >= 6 || f->bar_size[bar] == 0 || !(f->cfg[PCI_COMMAND] & PCI_CMD_MEMORY))
                return 0;
        a = vmm_pci_cfg_read(f, off, 4) & ~0xfULL;
        if (f->bar_is64[bar])
                a |= (uint64_t)vmm_pci_cfg_read(f, off + 4, 4) << 32;
        return a;
}

void vmm_pci_bus_io(pci_bus *bus, uint16_t port, uint8_t *data, unsigned len, bool write)
{
        uint32_t v = 0;

        if (port >= PCI_CONFIG_ADDR && port < PCI_CONFIG_ADDR + 4) {
                /* only whole-dword accesses reach the address latch (a byte
                 * write to 0xcfb is how Linux tells mechanism #1 from #2) */
                if (port != PCI_CONFIG_ADDR || len != 4) {
                        if (!write)
                                memset(data, 0xff, len);
                        return;
                }
                if (write)
                        memcpy(&bus->config_addr, data, 4);
                else
                        memcpy(data, &bus->config_addr, 4);
                return;
        }
        if (port < PCI_CONFIG_DATA || port >= PCI_CONFIG_DATA + 4 || len == 0 || len > 4 ||
            (unsigned)(port - PCI_CONFIG_DATA) + len > 4) {
                if (!write)
                        memset(data, 0xff, len > 4 ? 4 : len);
                return;
        }
        {
                uint32_t a = bus->config_addr;
                unsigned busno = (a >> 16) & 0xff, slot = (a >> 11) & 0x1f, fn = (a >> 8) & 0x7;
                unsigned off = (a & 0xfc) + (port - PCI_CONFIG_DATA);
                pci_function *f = NULL;

                if ((a & 0x80000000u) && busno == 0 && fn == 0 && slot < PCI_MAX_DEVICES)
                        f = bus->dev[slot];
                if (f == NULL) {
                        if (!write)
                                memset(data, 0xff, len);
                        return;
                }
                if (write) {
                        for (unsigned i = 0; i < len; i++)
                                v |= (uint32_t)data[i] << (8 * i);
                        vmm_pci_cfg_write(f, off, len, v);
                } else {
                        v = vmm_pci_cfg_read(f, off, len);
                        for (unsigned i = 0; i < len; i++)
                                data[i] = (uint8_t)(v >> (8 * i));
                }
        }
}
