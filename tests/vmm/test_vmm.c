/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the KVM launcher's pure parts, over a fake guest memory:
 * boot protocol (zero page, e820, page tables, GDT, MP table), virtqueue
 * parsing with hostile rings, PCI configuration space, virtio-blk requests
 * end to end through the BAR, the UART and the copy-on-write disk.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/vmm/vmm-fs.h"
#include "vmm-test.h"

#define MEM (128ULL << 20)

static guest_mem *new_mem(uint64_t size)
{
        guest_mem *gm = calloc(1, sizeof(*gm));
        gm->host = calloc(1, size);
        gm->size = size;
        gm->low_size = size;
        assert_non_null(gm->host);
        return gm;
}

static void free_mem(guest_mem *gm)
{
        free(gm->host);
        free(gm);
}

/* a minimal bzImage: setup header, 4 setup sectors, a payload */
static uint8_t *fake_bzimage(size_t payload, size_t *ret_len)
{
        size_t len = 5 * 512 + payload;
        uint8_t *k = calloc(1, len);

        k[0x1f1] = 4;
        wr16(k + 0x1fe, 0xaa55);
        k[0x200] = 0xeb;
        k[0x201] = 0x6a; /* header up to 0x26c */
        memcpy(k + 0x202, "HdrS", 4);
        wr16(k + 0x206, 0x020f);
        k[0x211] = 0x01;             /* LOADED_HIGH */
        wr32(k + 0x22c, 0x7fffffff); /* initrd_addr_max */
        wr16(k + 0x236, 0x1);        /* XLF_KERNEL_64 */
        wr32(k + 0x238, 2048);       /* cmdline_size */
        wr32(k + 0x260, 8 << 20);    /* init_size */
        for (size_t i = 0; i < payload; i++)
                k[5 * 512 + i] = (uint8_t)(i * 7);
        *ret_len = len;
        return k;
}

static void test_boot_load(void **state)
{
        guest_mem *gm = new_mem(MEM);
        size_t klen;
        uint8_t *k = fake_bzimage(4096, &klen);
        uint8_t initrd[10000];
        boot_layout l;
        forge_error *err = NULL;
        uint8_t *zp = gm->host + ZERO_PAGE_ADDR;

        (void)state;
        memset(initrd, 0x5a, sizeof(initrd));
        assert_int_equal(
            vmm_boot_load(gm, k, klen, NULL, initrd, sizeof(initrd), "console=ttyS0 x=1", &l, &err),
            0);
        assert_int_equal(l.kernel_entry, KERNEL_ADDR + 0x200);
        /* payload copied to 1 MiB */
        assert_memory_equal(gm->host + KERNEL_ADDR, k + 5 * 512, 4096);
        /* initrd at the top of RAM, page aligned, intact */
        assert_int_equal(l.initrd_addr % 4096, 0);
        assert_true(l.initrd_addr + sizeof(initrd) <= MEM);
        assert_true(l.initrd_addr >= MEM - sizeof(initrd) - 4096);
        assert_memory_equal(gm->host + l.initrd_addr, initrd, sizeof(initrd));
        assert_int_equal(rd32(zp + 0x218), l.initrd_addr);
        assert_int_equal(rd32(zp + 0x21c), sizeof(initrd));
        /* header copied, loader fields set */
        assert_memory_equal(zp + 0x202, "HdrS", 4);
        assert_int_equal(zp[0x210], 0xff);
        assert_true(zp[0x211] & 0x80);
        assert_int_equal(rd32(zp + 0x228), CMDLINE_ADDR);
        assert_string_equal((char *)gm->host + CMDLINE_ADDR, "console=ttyS0 x=1");
        /* e820: low RAM, reserved BIOS area, RAM from 1 MiB */
        assert_int_equal(zp[0x1e8], 3);
        assert_int_equal(rd64(zp + 0x2d0), 0);
        assert_int_equal(rd64(zp + 0x2d0 + 8), EBDA_START);
        assert_int_equal(rd32(zp + 0x2d0 + 16), E820_RAM);
        assert_int_equal(rd32(zp + 0x2d0 + 20 + 16), E820_RESERVED);
        assert_int_equal(rd64(zp + 0x2d0 + 40), HIGH_MEMORY);
        assert_int_equal(rd64(zp + 0x2d0 + 48), MEM - HIGH_MEMORY);
        /* identity page tables: 2 MiB pages covering 4 GiB */
        assert_int_equal(rd64(gm->host + PML4_ADDR), PDPT_ADDR | 3);
        assert_int_equal(rd64(gm->host + PDPT_ADDR + 8 * 3), (PD_ADDR + 3 * 4096) | 3);
        assert_int_equal(rd64(gm->host + PD_ADDR), 0x83);
        assert_int_equal(rd64(gm->host + PD_ADDR + 8 * 2047), (2047ULL << 21) | 0x83);
        /* GDT: flat 64-bit code at 0x10, data at 0x18 */
        assert_int_equal(rd64(gm->host + GDT_ADDR + 0x10), 0x00af9b000000ffffULL);
        assert_int_equal(rd64(gm->host + GDT_ADDR + 0x18), 0x00cf93000000ffffULL);
        free(k);
        free_mem(gm);
}

static void test_boot_rejects(void **state)
{
        guest_mem *gm = new_mem(MEM);
        size_t klen;
        uint8_t *k = fake_bzimage(4096, &klen);
        boot_layout l;
        forge_error *err = NULL;
        char *longcmd = malloc(4096);

        (void)state;
        /* not a bzImage */
        k[0x202] = 'X';
        assert_int_equal(vmm_boot_load(gm, k, klen, NULL, NULL, 0, "", &l, &err), -1);
        assert_non_null(strstr(err->msg, "bzImage"));
        forge_error_release(&err);
        k[0x202] = 'H';
        /* no 64-bit entry */
        wr16(k + 0x236, 0);
        assert_int_equal(vmm_boot_load(gm, k, klen, NULL, NULL, 0, "", &l, &err), -1);
        assert_non_null(strstr(err->msg, "64-bit"));
        forge_error_release(&err);
        wr16(k + 0x236, 1);
        /* truncated: fewer bytes than the setup sectors */
        assert_int_equal(vmm_boot_load(gm, k, 0x400 + 10, NULL, NULL, 0, "", &l, &err), -1);
        forge_error_release(&err);
        /* a command line longer than the kernel takes */
        memset(longcmd, 'a', 4095);
        longcmd[4095] = '\0';
        assert_int_equal(vmm_boot_load(gm, k, klen, NULL, NULL, 0, longcmd, &l, &err), -1);
        assert_non_null(strstr(err->msg, "command line"));
        forge_error_release(&err);
        /* an initrd that cannot fit */
        assert_int_equal(vmm_boot_load(gm, k, klen, NULL, gm->host, MEM - (8 << 20), "", &l, &err),
                         -1);
        assert_non_null(strstr(err->msg, "too small"));
        forge_error_release(&err);
        /* a huge init_size */
        wr32(k + 0x260, 0xffffffff);
        assert_int_equal(vmm_boot_load(gm, k, klen, NULL, NULL, 0, "", &l, &err), -1);
        forge_error_release(&err);
        free(longcmd);
        free(k);
        free_mem(gm);
}

static void test_e820_high(void **state)
{
        guest_mem gm = {.host = NULL, .size = 5ULL << 30, .low_size = MMIO_HOLE_START};
        struct e820_entry t[8];
        unsigned n = vmm_boot_e820(&gm, t, 8);

        (void)state;
        assert_int_equal(n, 4);
        assert_int_equal(t[2].addr + t[2].size, MMIO_HOLE_START);
        assert_int_equal(t[3].addr, MMIO_HOLE_END);
        assert_int_equal(t[3].size, (5ULL << 30) - MMIO_HOLE_START);
        /* the translation follows the same map, and refuses the hole */
        gm.host = (uint8_t *)0x10000;
        assert_null(gm_ptr(&gm, MMIO_HOLE_START, 1));
        assert_null(gm_ptr(&gm, MMIO_HOLE_START - 1, 2));
        assert_ptr_equal(gm_ptr(&gm, MMIO_HOLE_END, 16), (uint8_t *)0x10000 + MMIO_HOLE_START);
        assert_null(gm_ptr(&gm, MMIO_HOLE_END + t[3].size - 8, 16));
        assert_null(gm_ptr(&gm, UINT64_MAX - 4, 8));
}

static void test_mptable(void **state)
{
        guest_mem *gm = new_mem(MEM);
        forge_error *err = NULL;
        uint8_t *fp = gm->host + MPTABLE_ADDR, *cfg, sum = 0;
        unsigned len, procs = 0, bsp = 0;

        (void)state;
        assert_int_equal(vmm_boot_mptable(gm, 4, 1, &err), 0);
        assert_memory_equal(fp, "_MP_", 4);
        for (int i = 0; i < 16; i++)
                sum = (uint8_t)(sum + fp[i]);
        assert_int_equal(sum, 0);
        cfg = gm->host + rd32(fp + 4);
        assert_memory_equal(cfg, "PCMP", 4);
        len = rd16(cfg + 4);
        sum = 0;
        for (unsigned i = 0; i < len; i++)
                sum = (uint8_t)(sum + cfg[i]);
        assert_int_equal(sum, 0);
        assert_int_equal(rd32(cfg + 36), LAPIC_ADDR);
        for (uint8_t *p = cfg + 44; p < cfg + len;) {
                if (p[0] == 0) {
                        assert_int_equal(p[1], procs);
                        procs++;
                        bsp += (p[3] & 2) != 0;
                        p += 20;
                } else {
                        if (p[0] == 2)
                                assert_int_equal(rd32(p + 4), IOAPIC_ADDR);
                        p += 8;
                }
        }
        assert_int_equal(procs, 4);
        assert_int_equal(bsp, 1);
        assert_int_equal(vmm_boot_mptable(gm, 0, 1, &err), -1);
        forge_error_release(&err);
        assert_int_equal(vmm_boot_mptable(gm, VMM_MAX_CPUS + 1, 1, &err), -1);
        forge_error_release(&err);
        free_mem(gm);
}

/* --- virtqueues --- */

#define DESC 0x10000
#define AVAIL 0x20000
#define USED 0x30000
#define DATA 0x40000

static void set_desc(guest_mem *gm, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next)
{
        uint8_t *d = gm->host + table + 16 * i;
        wr64(d, addr);
        wr32(d + 8, len);
        wr16(d + 12, flags);
        wr16(d + 14, next);
}

static void offer(guest_mem *gm, virtq *q, uint16_t head)
{
        uint8_t *a = gm->host + AVAIL;
        uint16_t idx = rd16(a + 2);
        wr16(a + 4 + 2 * (idx % q->size), head);
        wr16(a + 2, (uint16_t)(idx + 1));
}

static virtq make_q(void)
{
        return (virtq){
            .size = 8, .ready = true, .desc_gpa = DESC, .avail_gpa = AVAIL, .used_gpa = USED};
}

static void test_virtq_chain(void **state)
{
        guest_mem *gm = new_mem(MEM);
        virtq q = make_q();
        static virtq_chain c;

        (void)state;
        assert_int_equal(virtq_pop(&q, gm, &c), 0); /* nothing offered */
        set_desc(gm, DESC, 0, DATA, 16, 1, 3);
        set_desc(gm, DESC, 3, DATA + 512, 512, 1 | 2, 5);
        set_desc(gm, DESC, 5, DATA + 4096, 1, 2, 0);
        offer(gm, &q, 0);
        assert_int_equal(virtq_pop(&q, gm, &c), 1);
        assert_int_equal(c.head, 0);
        assert_int_equal(c.n, 3);
        assert_ptr_equal(c.buf[0].ptr, gm->host + DATA);
        assert_false(c.buf[0].write);
        assert_true(c.buf[1].write);
        assert_int_equal(c.buf[2].len, 1);
        assert_int_equal(virtq_pop(&q, gm, &c), 0);
        assert_int_equal(virtq_push(&q, gm, 0, 513), 0);
        assert_int_equal(rd16(gm->host + USED + 2), 1);
        assert_int_equal(rd32(gm->host + USED + 4), 0);
        assert_int_equal(rd32(gm->host + USED + 8), 513);
        /* the driver asks for no interrupts */
        assert_true(virtq_should_notify(&q, gm));
        wr16(gm->host + AVAIL, 1);
        assert_false(virtq_should_notify(&q, gm));
        free_mem(gm);
}

static void test_virtq_indirect(void **state)
{
        guest_mem *gm = new_mem(MEM);
        virtq q = make_q();
        static virtq_chain c;
        const uint64_t ind = DATA + 0x10000;

        (void)state;
        set_desc(gm, ind, 0, DATA, 16, 1, 1);
        set_desc(gm, ind, 1, DATA + 100, 1, 2, 0);
        set_desc(gm, DESC, 2, ind, 32, 4, 0);
        offer(gm, &q, 2);
        assert_int_equal(virtq_pop(&q, gm, &c), 1);
        assert_int_equal(c.n, 2);
        assert_true(c.buf[1].write);
        /* nested indirect: refused */
        set_desc(gm, ind, 1, ind, 32, 4, 0);
        set_desc(gm, ind, 0, DATA, 16, 1, 1);
        offer(gm, &q, 2);
        assert_int_equal(virtq_pop(&q, gm, &c), -1);
        assert_true(q.broken);
        free_mem(gm);
}

static void test_virtq_hostile(void **state)
{
        guest_mem *gm = new_mem(MEM);
        virtq q;
        static virtq_chain c;

        (void)state;
        /* a loop in the chain */
        q = make_q();
        set_desc(gm, DESC, 0, DATA, 16, 1, 1);
        set_desc(gm, DESC, 1, DATA, 16, 1, 0);
        offer(gm, &q, 0);
        assert_int_equal(virtq_pop(&q, gm, &c), -1);
        /* next out of range */
        memset(gm->host + AVAIL, 0, 64);
        q = make_q();
        set_desc(gm, DESC, 0, DATA, 16, 1, 9);
        offer(gm, &q, 0);
        assert_int_equal(virtq_pop(&q, gm, &c), -1);
        /* head out of range */
        memset(gm->host + AVAIL, 0, 64);
        q = make_q();
        offer(gm, &q, 8);
        assert_int_equal(virtq_pop(&q, gm, &c), -1);
        /* a buffer outside guest memory, or wrapping around */
        memset(gm->host + AVAIL, 0, 64);
        q = make_q();
        set_desc(gm, DESC, 0, MEM - 8, 16, 0, 0);
        offer(gm, &q, 0);
        assert_int_equal(virtq_pop(&q, gm, &c), -1);
        memset(gm->host + AVAIL, 0, 64);
        q = make_q();
        set_desc(gm, DESC, 0, UINT64_MAX - 4, 16, 0, 0);
        offer(gm, &q, 0);
        assert_int_equal(virtq_pop(&q, gm, &c), -1);
        /* the driver claims more new buffers than the ring holds */
        memset(gm->host + AVAIL, 0, 64);
        q = make_q();
        wr16(gm->host + AVAIL + 2, 100);
        assert_int_equal(virtq_pop(&q, gm, &c), -1);
        /* rings outside memory */
        q = make_q();
        q.used_gpa = MEM - 4;
        assert_int_equal(virtq_push(&q, gm, 0, 0), -1);
        q = make_q();
        q.desc_gpa = MEM;
        assert_int_equal(virtq_pop(&q, gm, &c), -1);
        /* a broken queue stays quiet */
        assert_int_equal(virtq_pop(&q, gm, &c), 0);
        free_mem(gm);
}

/* --- PCI --- */

static void test_pci_config(void **state)
{
        pci_function f;
        pci_bus bus = {0};
        uint8_t d[4];
        uint32_t v;

        (void)state;
        vmm_pci_function_init(&f, 0x1af4, 0x1042, 0x01000001, 0x1af4, 0x40);
        vmm_pci_function_bar(&f, 0, 0x8000, 0xe0000000, true);
        bus.dev[1] = &f;
        /* vendor/device through 0xcf8/0xcfc */
        v = 0x80000000u | (1u << 11);
        memcpy(d, &v, 4);
        vmm_pci_bus_io(&bus, 0xcf8, d, 4, true);
        vmm_pci_bus_io(&bus, 0xcfc, d, 4, false);
        assert_int_equal(rd32(d), 0x10421af4);
        vmm_pci_bus_io(&bus, 0xcfe, d, 2, false);
        assert_int_equal(rd16(d), 0x1042);
        /* read-only fields stay */
        vmm_pci_cfg_write(&f, 0, 4, 0x12345678);
        assert_int_equal(vmm_pci_cfg_read(&f, 0, 4), 0x10421af4);
        /* BAR sizing: all ones in, the size mask out; 64-bit BAR */
        vmm_pci_cfg_write(&f, 0x10, 4, 0xffffffff);
        assert_int_equal(vmm_pci_cfg_read(&f, 0x10, 4), 0xffff8004);
        vmm_pci_cfg_write(&f, 0x14, 4, 0xffffffff);
        assert_int_equal(vmm_pci_cfg_read(&f, 0x14, 4), 0xffffffff);
        vmm_pci_cfg_write(&f, 0x10, 4, 0xd0001234);
        vmm_pci_cfg_write(&f, 0x14, 4, 0);
        assert_int_equal(vmm_pci_bar_addr(&f, 0), 0); /* decoding off */
        vmm_pci_cfg_write(&f, 4, 2, 0x2);
        assert_int_equal(vmm_pci_bar_addr(&f, 0), 0xd0000000);
        /* no such device, function or bus: all ones */
        v = 0x80000000u | (3u << 11);
        memcpy(d, &v, 4);
        vmm_pci_bus_io(&bus, 0xcf8, d, 4, true);
        vmm_pci_bus_io(&bus, 0xcfc, d, 4, false);
        assert_int_equal(rd32(d), 0xffffffff);
        v = 0x80000000u | (1u << 16) | (1u << 11);
        memcpy(d, &v, 4);
        vmm_pci_bus_io(&bus, 0xcf8, d, 4, true);
        vmm_pci_bus_io(&bus, 0xcfc, d, 4, false);
        assert_int_equal(rd32(d), 0xffffffff);
        /* out-of-range accesses are ignored */
        assert_int_equal(vmm_pci_cfg_read(&f, 254, 4), 0xffffffff);
        vmm_pci_cfg_write(&f, 255, 4, 0);
        vmm_pci_bus_io(&bus, 0xcff, d, 4, false);
        /* byte writes to 0xcfb do not touch the address latch */
        d[0] = 1;
        vmm_pci_bus_io(&bus, 0xcfb, d, 1, true);
        vmm_pci_bus_io(&bus, 0xcf8, d, 4, false);
        assert_int_equal(rd32(d), v);
}

static void test_pci_caps(void **state)
{
        pci_function f;
        uint8_t cap[16] = {0x09, 0xaa, 16, 1};
        unsigned a, b;

        (void)state;
        vmm_pci_function_init(&f, 1, 2, 0, 0, 0);
        a = vmm_pci_function_cap(&f, cap, 16, 0, 0);
        b = vmm_pci_function_cap(&f, cap, 16, 0, 0);
        assert_int_equal(a, 0x40);
        assert_int_equal(f.cfg[0x34], a);
        assert_int_equal(f.cfg[a + 1], b);
        assert_int_equal(f.cfg[b + 1], 0);
        assert_true(f.cfg[6] & 0x10);
        /* no room left */
        for (int i = 0; i < 20; i++)
                vmm_pci_function_cap(&f, cap, 16, 0, 0);
        assert_int_equal(vmm_pci_function_cap(&f, cap, 16, 0, 0), 0);
}

/* --- virtio-blk through its BAR --- */

typedef struct irq_log {
        int msi, intx_level;
        uint32_t last_data;
} irq_log;

static void log_msi(void *o, uint64_t addr, uint32_t data)
{
        irq_log *l = o;
        (void)addr;
        l->msi++;
        l->last_data = data;
}

static void log_intx(void *o, int level)
{
        ((irq_log *)o)->intx_level = level;
}

static char disk_path[] = "/tmp/forge-test-vmm-XXXXXX";

static blk_backend *test_disk(bool persist)
{
        int fd = mkstemp(disk_path);
        uint8_t sector[512];
        blk_backend *b = NULL;
        forge_error *err = NULL;

        assert_true(fd >= 0);
        for (int i = 0; i < 64; i++) {
                memset(sector, i, sizeof(sector));
                assert_int_equal(write(fd, sector, sizeof(sector)), 512);
        }
        close(fd);
        assert_int_equal(vmm_blk_open(disk_path, -1, persist, &b, &err), 0);
        return b;
}

VMM_TEST_BAR_ACCESSORS(bar_w, bar_r, vblk, vblk_pci)

/* the driver's side of initialisation (virtio 1.x 3.1.1) with MSI-X */
static void driver_init(vblk *d, bool msix)
{
        pci_function *f = vblk_pci(d);
        unsigned cap = 0;

        bar_w(d, 0x14, 0, 1); /* reset */
        bar_w(d, 0x14, 1 | 2, 1);
        bar_w(d, 0x00, 1, 4);
        assert_true(bar_r(d, 0x04, 4) & 1); /* VERSION_1 */
        bar_w(d, 0x08, 1, 4);
        bar_w(d, 0x0c, 1, 4);
        bar_w(d, 0x14, 1 | 2 | 8, 1);
        assert_true(bar_r(d, 0x14, 1) & 8);
        if (msix) {
                for (unsigned p = f->cfg[0x34]; p; p = f->cfg[p + 1])
                        if (f->cfg[p] == 0x11)
                                cap = p;
                assert_true(cap != 0);
                vmm_pci_cfg_write(f, cap + 2, 2, 0x8000);
                bar_w(d, 0x4000 + 16 + 0, 0xfee00000, 4);
                bar_w(d, 0x4000 + 16 + 8, 0x41, 4);
                bar_w(d, 0x4000 + 16 + 12, 0, 4);
        }
        bar_w(d, 0x16, 0, 2);
        assert_int_equal(bar_r(d, 0x18, 2), VIRTQ_MAX_SIZE);
        bar_w(d, 0x18, 8, 2);
        bar_w(d, 0x1a, msix ? 1 : 0xffff, 2);
        assert_int_equal(bar_r(d, 0x1a, 2), msix ? 1 : 0xffff);
        bar_w(d, 0x20, DESC, 8);
        bar_w(d, 0x28, AVAIL, 4); /* 64-bit fields in two halves, as Linux does */
        bar_w(d, 0x2c, 0, 4);
        bar_w(d, 0x30, USED, 8);
        bar_w(d, 0x1c, 1, 2);
        bar_w(d, 0x14, 1 | 2 | 8 | 4, 1);
}

/* a request at descriptor 0: header, data (len), status */
static void request(guest_mem *gm, virtq *unused, uint32_t type, uint64_t sector, uint32_t len,
                    bool dev_writes)
{
        uint8_t *h = gm->host + DATA;
        (void)unused;
        wr32(h, type);
        wr32(h + 4, 0);
        wr64(h + 8, sector);
        set_desc(gm, DESC, 0, DATA, 16, 1, 1);
        set_desc(gm, DESC, 1, DATA + 4096, len, (uint16_t)(1 | (dev_writes ? 2 : 0)), 2);
        set_desc(gm, DESC, 2, DATA + 512, 1, 2, 0);
        {
                uint8_t *a = gm->host + AVAIL;
                uint16_t idx = rd16(a + 2);
                wr16(a + 4 + 2 * (idx % 8), 0);
                wr16(a + 2, (uint16_t)(idx + 1));
        }
}

static void test_vblk_io(void **state)
{
        guest_mem *gm = new_mem(MEM);
        irq_log log = {0};
        vblk_irq_ops ops = {log_msi, log_intx, &log};
        blk_backend *b = test_disk(false);
        vblk *d = vblk_new(b, gm, 0xe0000000, &ops);
        uint8_t expect[1024];

        (void)state;
        assert_int_equal(bar_r(d, 0x2000, 8), 64); /* capacity in sectors */
        driver_init(d, true);
        /* read sectors 3 and 4 */
        request(gm, NULL, 0, 3, 1024, true);
        bar_w(d, 0x3000, 0, 2);
        memset(expect, 3, 512);
        memset(expect + 512, 4, 512);
        assert_memory_equal(gm->host + DATA + 4096, expect, 1024);
        assert_int_equal(gm->host[DATA + 512], 0);
        assert_int_equal(rd16(gm->host + USED + 2), 1);
        assert_int_equal(rd32(gm->host + USED + 8), 1025);
        assert_int_equal(log.msi, 1);
        assert_int_equal(log.last_data, 0x41);
        /* write sector 4, read it back: copy-on-write, the file unchanged */
        memset(gm->host + DATA + 4096, 0xee, 512);
        request(gm, NULL, 1, 4, 512, false);
        bar_w(d, 0x3000, 0, 2);
        assert_int_equal(gm->host[DATA + 512], 0);
        memset(gm->host + DATA + 4096, 0, 1024);
        request(gm, NULL, 0, 3, 1024, true);
        bar_w(d, 0x3000, 0, 2);
        memset(expect + 512, 0xee, 512);
        assert_memory_equal(gm->host + DATA + 4096, expect, 1024);
        {
                FILE *f = fopen(disk_path, "rb");
                uint8_t s[512];
                assert_int_equal(fseek(f, 4 * 512, SEEK_SET), 0);
                assert_int_equal(fread(s, 1, 512, f), 512);
                memset(expect, 4, 512);
                assert_memory_equal(s, expect, 512);
                fclose(f);
        }
        /* past the end: I/O error; unknown type: unsupported */
        request(gm, NULL, 0, 63, 1024, true);
        bar_w(d, 0x3000, 0, 2);
        assert_int_equal(gm->host[DATA + 512], 1);
        request(gm, NULL, 0, UINT64_MAX / 256, 512, true);
        bar_w(d, 0x3000, 0, 2);
        assert_int_equal(gm->host[DATA + 512], 1);
        request(gm, NULL, 77, 0, 512, true);
        bar_w(d, 0x3000, 0, 2);
        assert_int_equal(gm->host[DATA + 512], 2);
        /* GET_ID */
        request(gm, NULL, 8, 0, 20, true);
        bar_w(d, 0x3000, 0, 2);
        assert_string_equal((char *)gm->host + DATA + 4096, "forge-vda");
        /* masked vector: pending, delivered on unmask */
        log.msi = 0;
        bar_w(d, 0x4000 + 16 + 12, 1, 4);
        request(gm, NULL, 0, 0, 512, true);
        bar_w(d, 0x3000, 0, 2);
        assert_int_equal(log.msi, 0);
        assert_int_equal(bar_r(d, 0x5000, 8), 2);
        bar_w(d, 0x4000 + 16 + 12, 0, 4);
        assert_int_equal(log.msi, 1);
        assert_int_equal(bar_r(d, 0x5000, 8), 0);
        vblk_free(d);
        vmm_blk_close(b);
        unlink(disk_path);
        free_mem(gm);
}

static void test_vblk_intx_and_hostile(void **state)
{
        guest_mem *gm = new_mem(MEM);
        irq_log log = {0};
        vblk_irq_ops ops = {log_msi, log_intx, &log};
        blk_backend *b;
        vblk *d;

        (void)state;
        strcpy(disk_path, "/tmp/forge-test-vmm-XXXXXX");
        b = test_disk(false);
        d = vblk_new(b, gm, 0xe0000000, &ops);
        driver_init(d, false);
        request(gm, NULL, 0, 0, 512, true);
        bar_w(d, 0x3000, 0, 2);
        assert_int_equal(log.intx_level, 1);
        assert_int_equal(bar_r(d, 0x1000, 1), 1); /* ISR: read clears, line drops */
        assert_int_equal(log.intx_level, 0);
        assert_int_equal(bar_r(d, 0x1000, 1), 0);
        /* a request without a status byte or header: returned, no crash */
        set_desc(gm, DESC, 0, DATA, 8, 0, 0);
        {
                uint8_t *a = gm->host + AVAIL;
                uint16_t idx = rd16(a + 2);
                wr16(a + 4 + 2 * (idx % 8), 0);
                wr16(a + 2, (uint16_t)(idx + 1));
        }
        bar_w(d, 0x3000, 0, 2);
        assert_int_equal(rd16(gm->host + USED + 2), 2);
        /* a queue in the wrong place: needs reset, no crash */
        bar_w(d, 0x14, 0, 1);
        bar_w(d, 0x14, 1 | 2 | 8, 1);
        bar_w(d, 0x16, 0, 2);
        bar_w(d, 0x18, 7, 2); /* not a power of two */
        bar_w(d, 0x1c, 1, 2);
        assert_true(bar_r(d, 0x14, 1) & 0x40);
        /* odd accesses anywhere in the BAR */
        for (uint64_t off = 0; off < 0x8000; off += 3) {
                bar_w(d, off, 0xffffffffffffffffULL, (unsigned)(off % 8) + 1);
                (void)bar_r(d, off, (unsigned)(off % 8) + 1);
        }
        vblk_free(d);
        vmm_blk_close(b);
        unlink(disk_path);
        free_mem(gm);
}

static void test_disk_persist(void **state)
{
        blk_backend *b;
        uint8_t buf[1024], s[512];
        FILE *f;

        (void)state;
        strcpy(disk_path, "/tmp/forge-test-vmm-XXXXXX");
        b = test_disk(true);
        memset(buf, 0x77, sizeof(buf));
        assert_int_equal(vmm_blk_write(b, buf, 512, 512 * 10), 0);
        assert_int_equal(vmm_blk_flush(b), 0);
        assert_true(vmm_blk_write(b, buf, 100, 0) < 0);         /* not whole sectors */
        assert_true(vmm_blk_write(b, buf, 1024, 63 * 512) < 0); /* past the end */
        assert_true(vmm_blk_read(b, buf, 512, UINT64_MAX - 511) < 0);
        vmm_blk_close(b);
        f = fopen(disk_path, "rb");
        assert_int_equal(fseek(f, 10 * 512, SEEK_SET), 0);
        assert_int_equal(fread(s, 1, 512, f), 512);
        fclose(f);
        assert_memory_equal(s, buf, 512);
        unlink(disk_path);
}

/* --- UART --- */

static int uart_level;
static void uart_irq(void *o, int level)
{
        (void)o;
        uart_level = level;
}

static void test_uart(void **state)
{
        int p[2];
        uart *u;
        uint8_t v;
        char out[64] = {0};
        const char *panic = "[  1.0] Kernel panic - not syncing: Attempted to kill init!\n";
        char line[256];

        (void)state;
        assert_int_equal(pipe(p), 0);
        u = uart_new(p[1], uart_irq, NULL);
        /* scratch register and LSR: THR empty */
        v = 0x5a;
        uart_io(u, 7, &v, true);
        v = 0;
        uart_io(u, 7, &v, false);
        assert_int_equal(v, 0x5a);
        uart_io(u, 5, &v, false);
        assert_int_equal(v & 0x60, 0x60);
        /* loopback: MSR mirrors MCR as Linux's autoconfig checks */
        v = 0x1a;
        uart_io(u, 4, &v, true);
        uart_io(u, 6, &v, false);
        assert_int_equal(v & 0xf0, 0x90);
        v = 0;
        uart_io(u, 4, &v, true);
        /* transmit */
        for (const char *c = "hi\n"; *c; c++) {
                v = (uint8_t)*c;
                uart_io(u, 0, &v, true);
        }
        assert_int_equal(read(p[0], out, sizeof(out)), 3);
        assert_string_equal(out, "hi\n");
        /* THRE interrupt on enabling, acknowledged by reading IIR */
        v = 0x02;
        uart_io(u, 1, &v, true);
        assert_int_equal(uart_level, 1);
        uart_io(u, 2, &v, false);
        assert_int_equal(v & 0x0f, 0x02);
        assert_int_equal(uart_level, 0);
        /* receive: data ready, interrupt, read */
        v = 0x01;
        uart_io(u, 1, &v, true);
        assert_int_equal(uart_input(u, (const uint8_t *)"ab", 2), 2);
        assert_int_equal(uart_level, 1);
        uart_io(u, 5, &v, false);
        assert_true(v & 1);
        uart_io(u, 0, &v, false);
        assert_int_equal(v, 'a');
        uart_io(u, 0, &v, false);
        assert_int_equal(v, 'b');
        assert_int_equal(uart_level, 0);
        uart_io(u, 5, &v, false);
        assert_false(v & 1);
        /* divisor latch */
        v = 0x80;
        uart_io(u, 3, &v, true);
        v = 1;
        uart_io(u, 0, &v, true);
        v = 0;
        uart_io(u, 0, &v, false);
        assert_int_equal(v, 1);
        v = 0x03;
        uart_io(u, 3, &v, true);
        /* a panic line is noticed */
        assert_false(uart_panicked(u, line, sizeof(line)));
        for (const char *c = panic; *c; c++) {
                v = (uint8_t)*c;
                uart_io(u, 0, &v, true);
        }
        assert_true(uart_panicked(u, line, sizeof(line)));
        assert_non_null(strstr(line, "Attempted to kill init"));
        /* out-of-range registers */
        uart_io(u, 9, &v, false);
        assert_int_equal(v, 0xff);
        uart_free(u);
        close(p[0]);
        close(p[1]);
}

/* ---- virtio-net ---- */

#define TXDESC 0x50000
#define TXAVAIL 0x58000
#define TXUSED 0x5c000
#define PKT 0x100000

VMM_TEST_BAR_ACCESSORS(nbar_w, nbar_r, vnet, vnet_pci)

static void net_queue(vnet *d, unsigned qi, uint64_t desc, uint64_t avail, uint64_t used)
{
        nbar_w(d, 0x16, qi, 2);
        nbar_w(d, 0x18, 8, 2);
        nbar_w(d, 0x1a, 0xffff, 2);
        nbar_w(d, 0x20, desc, 8);
        nbar_w(d, 0x28, avail, 8);
        nbar_w(d, 0x30, used, 8);
        nbar_w(d, 0x1c, 1, 2);
}

static void net_driver_init(vnet *d)
{
        nbar_w(d, 0x14, 0, 1);
        nbar_w(d, 0x14, 1 | 2, 1);
        nbar_w(d, 0x00, 0, 4);
        assert_true(nbar_r(d, 0x04, 4) & (1u << 5)); /* MAC */
        nbar_w(d, 0x00, 1, 4);
        assert_true(nbar_r(d, 0x04, 4) & 1); /* VERSION_1 */
        nbar_w(d, 0x08, 0, 4);
        nbar_w(d, 0x0c, (1u << 5) | (1u << 16) | (1u << 15) /* not offered: ignored */, 4);
        nbar_w(d, 0x08, 1, 4);
        nbar_w(d, 0x0c, 1, 4);
        nbar_w(d, 0x14, 1 | 2 | 8, 1);
        assert_true(nbar_r(d, 0x14, 1) & 8);
        nbar_w(d, 0x08, 0, 4);
        assert_int_equal(nbar_r(d, 0x0c, 4), (1u << 5) | (1u << 16));
        assert_int_equal(nbar_r(d, 0x12, 2), 2); /* rx and tx */
        net_queue(d, 0, DESC, AVAIL, USED);
        net_queue(d, 1, TXDESC, TXAVAIL, TXUSED);
        nbar_w(d, 0x14, 1 | 2 | 8 | 4, 1);
}

static void offer_at(guest_mem *gm, uint64_t avail, uint16_t head)
{
        uint8_t *a = gm->host + avail;
        uint16_t idx = rd16(a + 2);
        wr16(a + 4 + 2 * (idx % 8), head);
        wr16(a + 2, (uint16_t)(idx + 1));
}

/* A frame of len bytes on the tx queue (header and frame in two descriptors). */
static void tx_offer(guest_mem *gm, unsigned slot, uint32_t len, uint8_t fill)
{
        uint64_t buf = PKT + (uint64_t)slot * 0x20000;

        memset(gm->host + buf, 0, 12);
        memset(gm->host + buf + 0x1000, fill, len);
        set_desc(gm, TXDESC, 2 * slot, buf, 12, 1, (uint16_t)(2 * slot + 1));
        set_desc(gm, TXDESC, 2 * slot + 1, buf + 0x1000, len, 0, 0);
        offer_at(gm, TXAVAIL, (uint16_t)(2 * slot));
}

/* A virtio-net device on fresh guest memory, its backend one end of a
 * socket pair; the test holds the other end (peer). */
typedef struct net_fixture {
        guest_mem *gm;
        irq_log log;
        vblk_irq_ops ops;
        pthread_mutex_t lock;
        int peer;
        vnet *d;
} net_fixture;

/* sockbuf > 0: both ends' socket buffers that small (SO_SNDBUF of the
 * backend's, SO_RCVBUF of the peer), so the backend falls behind at once. */
static int net_open(void **state, int sockbuf)
{
        net_fixture *f = calloc(1, sizeof(*f));
        int sv[2];

        assert_non_null(f);
        f->gm = new_mem(MEM);
        f->ops = (vblk_irq_ops){log_msi, log_intx, &f->log};
        assert_int_equal(pthread_mutex_init(&f->lock, NULL), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        if (sockbuf > 0) {
                setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof(sockbuf));
                setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof(sockbuf));
        }
        f->peer = sv[1];
        f->d = vnet_new(sv[0], f->gm, 0xe0010000, &f->ops, &f->lock);
        assert_non_null(f->d);
        *state = f;
        return 0;
}

static int net_setup(void **state)
{
        return net_open(state, 0);
}

static int net_setup_small_sockbuf(void **state)
{
        return net_open(state, 4096);
}

static int net_teardown(void **state)
{
        net_fixture *f = *state;

        vnet_free(f->d);
        close(f->peer);
        free_mem(f->gm);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return 0;
}

/* Four frames of 60000 bytes in tx slots 0-3, slot i's filled with
 * base + i, then the tx queue's kick. */
static void tx_offer_four(net_fixture *f, uint8_t base)
{
        for (unsigned slot = 0; slot < 4; slot++)
                tx_offer(f->gm, slot, 60000, (uint8_t)(base + slot));
        nbar_w(f->d, 0x3004, 1, 2);
}

static void test_vnet_tx_rx(void **state)
{
        net_fixture *f = *state;
        uint8_t got[256], frame[100], mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
        uint64_t txd, rxd;

        for (unsigned i = 0; i < 6; i++)
                assert_int_equal(nbar_r(f->d, 0x2000 + i, 1), mac[i]);
        assert_int_equal(nbar_r(f->d, 0x2006, 2), 1); /* link up */
        /* before DRIVER_OK a frame is dropped, not held */
        assert_int_equal(vnet_rx_frame(f->d, frame, sizeof(frame)), 1);
        net_driver_init(f->d);

        /* tx: the frame reaches the socket behind its 4-byte big-endian length */
        tx_offer(f->gm, 0, 60, 0xab);
        nbar_w(f->d, 0x3004, 1, 2);
        assert_int_equal(read(f->peer, got, 64), 64);
        assert_int_equal(got[0] | got[1] | got[2], 0);
        assert_int_equal(got[3], 60);
        for (unsigned i = 0; i < 60; i++)
                assert_int_equal(got[4 + i], 0xab);
        assert_int_equal(rd16(f->gm->host + TXUSED + 2), 1);
        assert_int_equal(f->log.intx_level, 1); /* no MSI-X set up: INTx */

        /* hostile tx chains: no room for the header, a frame beyond 64 KiB,
         * a device-writable buffer only: each returned, none sent */
        set_desc(f->gm, TXDESC, 2, PKT, 8, 0, 0);
        offer_at(f->gm, TXAVAIL, 2);
        set_desc(f->gm, TXDESC, 3, PKT, 12 + VNET_MAX_FRAME + 1, 0, 0);
        offer_at(f->gm, TXAVAIL, 3);
        set_desc(f->gm, TXDESC, 4, PKT, 100, 2, 0);
        offer_at(f->gm, TXAVAIL, 4);
        nbar_w(f->d, 0x3004, 1, 2);
        assert_int_equal(rd16(f->gm->host + TXUSED + 2), 4);
        vnet_counters(f->d, &txd, &rxd);
        assert_int_equal(txd, 3);
        assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), -1);

        /* rx: nothing posted yet, then one buffer: header with num_buffers 1, frame */
        for (unsigned i = 0; i < sizeof(frame); i++)
                frame[i] = (uint8_t)i;
        assert_int_equal(vnet_rx_frame(f->d, frame, sizeof(frame)), 0);
        assert_int_equal(rd16(f->gm->host + USED), 0); /* out of buffers: kick me */
        memset(f->gm->host + DATA, 0xee, 2048);
        set_desc(f->gm, DESC, 0, DATA, 12 + 1514, 2, 0);
        offer_at(f->gm, AVAIL, 0);
        assert_int_equal(vnet_rx_frame(f->d, frame, sizeof(frame)), 1);
        assert_int_equal(rd16(f->gm->host + USED + 2), 1);
        assert_int_equal(rd16(f->gm->host + USED),
                         1); /* VRING_USED_F_NO_NOTIFY: no kick per refill */
        assert_int_equal(rd32(f->gm->host + USED + 8), 12 + sizeof(frame));
        assert_int_equal(rd16(f->gm->host + DATA + 10), 1);
        assert_int_equal(f->gm->host[DATA], 0);
        assert_memory_equal(f->gm->host + DATA + 12, frame, sizeof(frame));
        assert_int_equal(f->gm->host[DATA + 12 + sizeof(frame)], 0xee);
        /* a frame larger than the posted buffer: the buffer comes back empty */
        set_desc(f->gm, DESC, 1, DATA + 4096, 50, 2, 0);
        offer_at(f->gm, AVAIL, 1);
        assert_int_equal(vnet_rx_frame(f->d, frame, sizeof(frame)), 1);
        assert_int_equal(rd16(f->gm->host + USED + 2), 2);
        assert_int_equal(rd32(f->gm->host + USED + 8 + 8), 0);
        /* a read-only buffer posted for receive: not written */
        memset(f->gm->host + DATA + 8192, 0x11, 256);
        set_desc(f->gm, DESC, 2, DATA + 8192, 256, 0, 0);
        offer_at(f->gm, AVAIL, 2);
        assert_int_equal(vnet_rx_frame(f->d, frame, sizeof(frame)), 1);
        assert_int_equal(f->gm->host[DATA + 8192 + 12], 0x11);
        vnet_counters(f->d, &txd, &rxd);
        assert_int_equal(rxd, 3);
}

/* A guest sending faster than the backend reads: forge-vmm keeps no queue.
 * Once the socket stays full the link is declared dead, later frames are
 * returned to the guest and dropped. */
static void test_vnet_tx_flood(void **state)
{
        net_fixture *f = *state;
        uint64_t txd, rxd;
        uint16_t used = 0;

        net_driver_init(f->d);
        for (unsigned round = 0; round < 16 && nbar_r(f->d, 0x2006, 2) == 1; round++) {
                tx_offer_four(f, 0);
                used = rd16(f->gm->host + TXUSED + 2);
                assert_int_equal(used, 4 * (round + 1)); /* every chain came back */
        }
        assert_int_equal(nbar_r(f->d, 0x2006, 2), 0); /* link down */
        tx_offer(f->gm, 0, 60, 1);
        nbar_w(f->d, 0x3004, 1, 2);
        assert_int_equal(rd16(f->gm->host + TXUSED + 2), (uint16_t)(used + 1));
        vnet_counters(f->d, &txd, &rxd);
        assert_true(txd >= 1);
}

/* VIRTIO_RING_F_EVENT_IDX: the device publishes avail_event after the used
 * ring and interrupts only when the driver's used_event is passed. */
static void test_vnet_event_idx(void **state)
{
        net_fixture *f = *state;
        uint8_t got[64];
        static const struct {
                uint16_t used_event;  /* the driver's, in its avail ring */
                uint16_t used;        /* the used index after the step */
                int intx;             /* the INTx level after it */
                uint16_t avail_event; /* the device's, after its used ring */
        } steps[] = {
            {5, 1, 0, 1}, /* an interrupt only after the 6th used chain; kick at the next one */
            {1, 2, 1, 2}, /* used_event 1: the second used chain passes it */
        };

        nbar_w(f->d, 0x14, 0, 1);
        nbar_w(f->d, 0x14, 1 | 2, 1);
        nbar_w(f->d, 0x00, 0, 4);
        assert_true(nbar_r(f->d, 0x04, 4) & (1u << 29)); /* EVENT_IDX offered */
        assert_true(nbar_r(f->d, 0x04, 4) & (1u << 3));  /* MTU offered */
        assert_int_equal(nbar_r(f->d, 0x200a, 2), 16000);
        nbar_w(f->d, 0x08, 0, 4);
        nbar_w(f->d, 0x0c, (1u << 5) | (1u << 29), 4);
        nbar_w(f->d, 0x08, 1, 4);
        nbar_w(f->d, 0x0c, 1, 4);
        nbar_w(f->d, 0x14, 1 | 2 | 8, 1);
        net_queue(f->d, 0, DESC, AVAIL, USED);
        net_queue(f->d, 1, TXDESC, TXAVAIL, TXUSED);
        nbar_w(f->d, 0x14, 1 | 2 | 8 | 4, 1);

        /* one frame a step, in tx slot i, filled with i + 1 */
        for (unsigned i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                wr16(f->gm->host + TXAVAIL + 4 + 2 * 8, steps[i].used_event);
                tx_offer(f->gm, i, 60, (uint8_t)(i + 1));
                nbar_w(f->d, 0x3004, 1, 2);
                assert_int_equal(read(f->peer, got, 64), 64);
                assert_int_equal(rd16(f->gm->host + TXUSED + 2), steps[i].used);
                assert_int_equal(f->log.intx_level, steps[i].intx);
                assert_int_equal(rd16(f->gm->host + TXUSED + 4 + 8 * 8), steps[i].avail_event);
        }
}

static uint16_t used_idx_now(guest_mem *gm, uint64_t used)
{
        return __atomic_load_n((uint16_t *)(gm->host + used + 2), __ATOMIC_ACQUIRE);
}

/* The I/O thread transmitting: a guest offering frames faster than the
 * backend reads fills forge-vmm's one buffer, then its chains stay in its
 * own ring (nothing more is taken, nothing dropped); once the backend reads,
 * every frame arrives whole and in order. */
static void test_vnet_io_thread_tx(void **state)
{
        net_fixture *f = *state;
        static uint8_t got[64 * 1024];
        uint16_t offered = 0, used = 0;
        uint64_t txd, rxd, want, have = 0;
        bool stalled = false;

        net_driver_init(f->d);
        assert_int_equal(vnet_start(f->d), 0);
        for (unsigned round = 0; round < 64 && !stalled; round++) {
                pthread_mutex_lock(&f->lock);
                tx_offer_four(f, (uint8_t)offered);
                offered = (uint16_t)(offered + 4);
                pthread_mutex_unlock(&f->lock);
                for (int i = 0; i < 50 && used_idx_now(f->gm, TXUSED) != offered; i++)
                        usleep(10 * 1000);
                used = used_idx_now(f->gm, TXUSED);
                stalled = used != offered;
        }
        assert_true(stalled);
        /* what forge-vmm took is bounded by its buffer and the socket's */
        assert_true((uint64_t)used * 60004 <= (256 << 10) + (512 << 10));
        assert_int_equal(nbar_r(f->d, 0x2006, 2), 1); /* the link stays up */
        /* the backend reads: everything offered arrives, in order */
        want = (uint64_t)offered * 60004;
        while (have < want) {
                ssize_t n = read(f->peer, got, sizeof(got));
                assert_true(n > 0);
                for (ssize_t i = 0; i < n; i++) {
                        uint64_t at = (have + (uint64_t)i) % 60004;
                        uint8_t expect = at < 4 ? (uint8_t)(at == 2   ? 0xea
                                                            : at == 3 ? 0x60
                                                                      : 0)
                                                : (uint8_t)((have + (uint64_t)i) / 60004);
                        if (got[i] != expect)
                                fail_msg("byte %llu: %02x, want %02x",
                                         (unsigned long long)(have + (uint64_t)i), got[i], expect);
                }
                have += (uint64_t)n;
        }
        for (int i = 0; i < 100 && used_idx_now(f->gm, TXUSED) != offered; i++)
                usleep(10 * 1000);
        assert_int_equal(used_idx_now(f->gm, TXUSED), offered);
        vnet_counters(f->d, &txd, &rxd);
        assert_int_equal(txd, 0);
}

/* The receive thread end to end: frames written to the socket land in the
 * guest's buffers as they are posted; vnet_free stops the thread. */
static void test_vnet_rx_thread(void **state)
{
        net_fixture *f = *state;
        uint8_t msg[4 + 64] = {0, 0, 0, 64};

        pthread_mutex_lock(&f->lock);
        net_driver_init(f->d);
        pthread_mutex_unlock(&f->lock);
        assert_int_equal(vnet_start(f->d), 0);
        memset(msg + 4, 0x5a, 64);
        assert_int_equal(write(f->peer, msg, sizeof(msg)), sizeof(msg));
        usleep(100 * 1000); /* the thread waits: no buffer yet */
        assert_int_equal(rd16(f->gm->host + USED + 2), 0);
        pthread_mutex_lock(&f->lock);
        set_desc(f->gm, DESC, 0, DATA, 2048, 2, 0);
        offer_at(f->gm, AVAIL, 0);
        nbar_w(f->d, 0x3000, 0, 2); /* the guest kicks the rx queue */
        pthread_mutex_unlock(&f->lock);
        for (int i = 0; i < 200 && __atomic_load_n((uint16_t *)(f->gm->host + USED + 2),
                                                   __ATOMIC_ACQUIRE) == 0;
             i++)
                usleep(10 * 1000);
        assert_int_equal(rd16(f->gm->host + USED + 2), 1);
        assert_int_equal(rd32(f->gm->host + USED + 8), 12 + 64);
        assert_int_equal(f->gm->host[DATA + 12 + 63], 0x5a);
        /* a length beyond any frame: the stream is not the protocol, the link goes down */
        msg[0] = 0x7f;
        assert_int_equal(write(f->peer, msg, 4), 4);
        for (int i = 0; i < 200 && nbar_r(f->d, 0x2006, 2) != 0; i++)
                usleep(10 * 1000);
        assert_int_equal(nbar_r(f->d, 0x2006, 2), 0);
}

/* --- --read-only: VIRTIO_BLK_F_RO and writes refused --- */

static void test_vblk_read_only(void **state)
{
        guest_mem *gm = new_mem(MEM);
        blk_backend *b;
        vblk *d;
        uint8_t s[512], expect[512];

        (void)state;
        strcpy(disk_path, "/tmp/forge-test-vmm-XXXXXX");
        b = test_disk(true);
        vmm_blk_set_read_only(b);
        d = vblk_new(b, gm, 0xe0000000, NULL);
        bar_w(d, 0x00, 0, 4);
        assert_true(bar_r(d, 0x04, 4) & (1u << 5)); /* VIRTIO_BLK_F_RO */
        driver_init(d, false);
        /* a driver that ignores F_RO still cannot write */
        memset(gm->host + DATA + 4096, 0xee, 512);
        request(gm, NULL, 1, 4, 512, false);
        bar_w(d, 0x3000, 0, 2);
        assert_int_equal(gm->host[DATA + 512], 1); /* IOERR */
        assert_int_equal(vmm_blk_write(b, s, 512, 0), -EROFS);
        {
                FILE *f = fopen(disk_path, "rb");
                assert_int_equal(fseek(f, 4 * 512, SEEK_SET), 0);
                assert_int_equal(fread(s, 1, 512, f), 512);
                memset(expect, 4, 512);
                assert_memory_equal(s, expect, 512);
                fclose(f);
        }
        vblk_free(d);
        vmm_blk_close(b);
        unlink(disk_path);
        free_mem(gm);
}

/* --- virtio-fs: the PCI device, and vhost-user against a fake back-end --- */

#define VFS_BAR 0xe0300000ULL

static guest_mem *new_shared_mem(uint64_t size)
{
        guest_mem *gm = calloc(1, sizeof(*gm));
        gm->fd = memfd_create("test-ram", MFD_CLOEXEC);
        assert_true(gm->fd >= 0);
        assert_int_equal(ftruncate(gm->fd, (off_t)size), 0);
        gm->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, gm->fd, 0);
        assert_true(gm->host != MAP_FAILED);
        gm->size = gm->low_size = size;
        gm->shared = true;
        return gm;
}

static void free_shared_mem(guest_mem *gm)
{
        munmap(gm->host, gm->size);
        close(gm->fd);
        free(gm);
}

/* A message as a back-end would send it. */
static void be_send(int fd, uint32_t request, uint32_t flags, const void *payload, uint32_t len,
                    int pass_fd)
{
        uint8_t buf[64];
        union {
                struct cmsghdr h;
                uint8_t b[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct iovec iov = {buf, 12 + len};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

        assert_true(len <= sizeof(buf) - 12);
        wr32(buf, request);
        wr32(buf + 4, flags);
        wr32(buf + 8, len);
        memcpy(buf + 12, payload, len);
        if (pass_fd >= 0) {
                memset(&ctl, 0, sizeof(ctl));
                m.msg_control = ctl.b;
                m.msg_controllen = sizeof(ctl.b);
                struct cmsghdr *c = CMSG_FIRSTHDR(&m);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        assert_int_equal(sendmsg(fd, &m, 0), (ssize_t)(12 + len));
}

static void be_reply_u64(int fd, uint32_t request, uint64_t v)
{
        uint8_t p[8];
        wr64(p, v);
        be_send(fd, request, 0x5, p, 8, -1);
}

typedef struct be_msg {
        uint32_t request, flags, size;
        uint8_t payload[512];
        int fds[VHU_TEST_MAX_FDS];
        unsigned n_fds;
} be_msg;

/* The next message the front-end sent, with its fds. */
static void be_recv(int fd, be_msg *r)
{
        uint8_t hdr[12];

        memset(r, 0, sizeof(*r));
        assert_int_equal(vhu_test_recv_hdr(fd, hdr, r->fds, &r->n_fds), 12);
        r->request = rd32(hdr);
        r->flags = rd32(hdr + 4);
        r->size = rd32(hdr + 8);
        assert_true(r->size <= sizeof(r->payload));
        if (r->size)
                assert_int_equal(recv(fd, r->payload, r->size, MSG_WAITALL), (ssize_t)r->size);
}

static void be_expect(int fd, uint32_t request, uint32_t size, be_msg *r)
{
        be_recv(fd, r);
        assert_int_equal(r->request, request);
        assert_int_equal(r->flags, 1); /* version 1, not a reply */
        assert_int_equal(r->size, size);
}

typedef struct host_log {
        uint64_t ioevent_addr[4];
        int ioevent_fd[4];
        unsigned n_ioevent, n_ioevent_off;
        int irq_fd;
        uint64_t irq_addr;
        uint32_t irq_data;
        unsigned n_irq_on, n_irq_off;
} host_log;

static int log_ioeventfd(void *o, uint64_t addr, int fd, bool assign)
{
        host_log *l = o;
        if (!assign) {
                l->n_ioevent_off++;
                return 0;
        }
        l->ioevent_addr[l->n_ioevent] = addr;
        l->ioevent_fd[l->n_ioevent++] = fd;
        return 0;
}

static int log_irqfd(void *o, int fd, uint64_t addr, uint32_t data, bool assign)
{
        host_log *l = o;
        if (!assign) {
                l->n_irq_off++;
                return 0;
        }
        l->n_irq_on++;
        l->irq_fd = fd;
        l->irq_addr = addr;
        l->irq_data = data;
        return 0;
}

#define F_VERSION_1 (1ULL << 32)
#define BACKEND_FEATURES                                                                           \
        (F_VERSION_1 | (1ULL << 28) | (1ULL << 29) | (1ULL << 30) | (1ULL << 24) | (1ULL << 26))

static vfs *new_vfs(const guest_mem *gm, host_log *hl, int *ret_be)
{
        vfs_host_ops ops = {log_ioeventfd, log_irqfd, hl};
        forge_error *err = NULL;
        be_msg m;
        vfs *d = NULL;
        int sp[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        be_reply_u64(sp[1], VHU_GET_FEATURES, BACKEND_FEATURES);
        assert_int_equal(vfs_new("forge0", sp[0], gm, VFS_BAR, &ops, &d, &err), 0);
        be_expect(sp[1], VHU_SET_OWNER, 0, &m);
        be_expect(sp[1], VHU_GET_FEATURES, 0, &m);
        *ret_be = sp[1];
        return d;
}

VMM_TEST_BAR_ACCESSORS(vfs_w, vfs_r, vfs, vfs_pci)

static void test_vfs_pci(void **state)
{
        guest_mem *gm = new_shared_mem(MEM);
        host_log hl = {0};
        int be;
        vfs *d = new_vfs(gm, &hl, &be);
        pci_function *f = vfs_pci(d);
        unsigned types = 0, msix = 0;
        char tag[37] = {0};

        (void)state;
        assert_int_equal(vmm_pci_cfg_read(f, 0, 2), 0x1af4);
        assert_int_equal(vmm_pci_cfg_read(f, 2, 2), 0x1040 + 26);
        assert_int_equal(vmm_pci_cfg_read(f, 0x0b, 1), 0x01); /* mass storage */
        assert_true(vmm_pci_cfg_read(f, 0x2e, 2) >= 0x40);
        vmm_pci_cfg_write(f, 2, 2, 0x1234); /* read-only */
        assert_int_equal(vmm_pci_cfg_read(f, 2, 2), 0x1040 + 26);
        assert_int_equal(vmm_pci_bar_addr(f, 0), VFS_BAR);
        for (unsigned p = f->cfg[0x34], n = 0; p && n < 16; p = f->cfg[p + 1], n++) {
                if (f->cfg[p] == 0x09) {
                        types |= 1u << f->cfg[p + 3];
                        if (f->cfg[p + 3] == 4) /* device config: where and how long */
                                assert_int_equal(rd32(f->cfg + p + 8), 0x2000);
                } else if (f->cfg[p] == 0x11) {
                        msix = p;
                }
        }
        assert_int_equal(types, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4));
        assert_true(msix != 0);
        assert_int_equal(vmm_pci_cfg_read(f, msix + 2, 2) & 0x7ff, 2); /* three vectors */
        /* device config: the tag, one request queue; nothing beyond */
        for (unsigned i = 0; i < 36; i++)
                tag[i] = (char)vfs_r(d, 0x2000 + i, 1);
        assert_string_equal(tag, "forge0");
        assert_int_equal(vfs_r(d, 0x2000 + 36, 4), 1);
        assert_int_equal(vfs_r(d, 0x2000 + 38, 4), 0); /* straddles the end: zeros */
        assert_int_equal(vfs_r(d, 0x2000 + 0x28, 4), 0);
        assert_int_equal(vfs_r(d, 0x12, 2), 2); /* num_queues */
        /* features: what the back-end offers and forge implements only */
        vfs_w(d, 0x00, 0, 4);
        assert_int_equal(vfs_r(d, 0x04, 4), (1u << 28) | (1u << 29));
        vfs_w(d, 0x00, 1, 4);
        assert_int_equal(vfs_r(d, 0x04, 4), 1);
        vfs_w(d, 0x00, 7, 4);
        assert_int_equal(vfs_r(d, 0x04, 4), 0);
        /* hostile accesses: any size and offset, nothing breaks */
        for (uint64_t off = 0; off < 0x8000; off += 0x3f)
                for (unsigned len = 1; len <= 8; len++) {
                        vfs_r(d, off, len);
                        if (off != 0x14)
                                vfs_w(d, off, 0xffffffffffffffffULL, len);
                }
        virtio_pci_bar_access(vfs_pci(d), 0x10000000, (uint8_t[8]){0}, 8, false);
        assert_false(vfs_started(d));
        assert_false(virtio_pci_mmio(vfs_pci(d), VFS_BAR + 0x8000, (uint8_t[4]){0}, 4, false));
        assert_true(virtio_pci_mmio(vfs_pci(d), VFS_BAR + 0x2000, (uint8_t[4]){0}, 4, false));
        vfs_free(d);
        close(be);
        free_shared_mem(gm);
}

/* driver set-up of both queues with MSI-X vectors 1 and 2, then DRIVER_OK */
static void vfs_driver_init(vfs *d)
{
        pci_function *f = vfs_pci(d);
        unsigned cap = 0;

        for (unsigned p = f->cfg[0x34]; p; p = f->cfg[p + 1])
                if (f->cfg[p] == 0x11)
                        cap = p;
        vfs_w(d, 0x14, 0, 1);
        vfs_w(d, 0x14, 1 | 2, 1);
        vfs_w(d, 0x08, 0, 4);
        vfs_w(d, 0x0c, (1u << 29) | (1u << 30) /* not offered: dropped */, 4);
        vfs_w(d, 0x08, 1, 4);
        vfs_w(d, 0x0c, 1, 4);
        vfs_w(d, 0x14, 1 | 2 | 8, 1);
        assert_true(vfs_r(d, 0x14, 1) & 8);
        vmm_pci_cfg_write(f, cap + 2, 2, 0x8000);
        for (unsigned q = 0; q < 2; q++) {
                vfs_w(d, 0x4000 + 16 * (q + 1), 0xfee00000, 4);
                vfs_w(d, 0x4000 + 16 * (q + 1) + 8, 0x40 + q, 4);
                vfs_w(d, 0x4000 + 16 * (q + 1) + 12, 0, 4);
                vfs_w(d, 0x16, q, 2);
                assert_int_equal(vfs_r(d, 0x1e, 2), q); /* queue_notify_off */
                vfs_w(d, 0x18, 8, 2);
                vfs_w(d, 0x1a, q + 1, 2);
                vfs_w(d, 0x20, DESC + 0x1000 * q, 8);
                vfs_w(d, 0x28, AVAIL + 0x1000 * q, 8);
                vfs_w(d, 0x30, USED + 0x1000 * q, 8);
                vfs_w(d, 0x1c, 1, 2);
        }
        vfs_w(d, 0x14, 1 | 2 | 8 | 4, 1);
}

static void test_vfs_vhost_user(void **state)
{
        guest_mem *gm = new_shared_mem(MEM);
        host_log hl = {0};
        int be, kick[2] = {-1, -1};
        vfs *d = new_vfs(gm, &hl, &be);
        be_msg m;
        uint64_t v;

        (void)state;
        vfs_driver_init(d);
        assert_true(vfs_started(d));
        be_expect(be, VHU_SET_FEATURES, 8, &m);
        assert_int_equal(rd64(m.payload),
                         F_VERSION_1 | (1ULL << 29)); /* acked, offered, no protocol features */
        be_expect(be, VHU_SET_MEM_TABLE, 8 + 32, &m);
        assert_int_equal(rd32(m.payload), 1);
        assert_int_equal(rd64(m.payload + 8), 0);    /* guest address */
        assert_int_equal(rd64(m.payload + 16), MEM); /* size */
        assert_int_equal(rd64(m.payload + 24),
                         (uint64_t)(uintptr_t)gm->host); /* front-end address */
        assert_int_equal(rd64(m.payload + 32), 0);       /* offset */
        assert_int_equal(m.n_fds, 1);
        {
                /* the fd is the guest's RAM itself */
                uint8_t *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, m.fds[0], 0x5000);
                assert_true(p != MAP_FAILED);
                gm->host[0x5123] = 0xa5;
                assert_int_equal(p[0x123], 0xa5);
                munmap(p, 4096);
                close(m.fds[0]);
        }
        for (unsigned q = 0; q < 2; q++) {
                be_expect(be, VHU_SET_VRING_NUM, 8, &m);
                assert_int_equal(rd32(m.payload), q);
                assert_int_equal(rd32(m.payload + 4), 8);
                be_expect(be, VHU_SET_VRING_BASE, 8, &m);
                assert_int_equal(rd32(m.payload), q);
                assert_int_equal(rd32(m.payload + 4), 0);
                be_expect(be, VHU_SET_VRING_ADDR, sizeof(struct vhu_vring_addr), &m);
                assert_int_equal(rd32(m.payload), q);
                assert_int_equal(rd64(m.payload + 8),
                                 (uint64_t)(uintptr_t)(gm->host + DESC + 0x1000 * q));
                assert_int_equal(rd64(m.payload + 16),
                                 (uint64_t)(uintptr_t)(gm->host + USED + 0x1000 * q));
                assert_int_equal(rd64(m.payload + 24),
                                 (uint64_t)(uintptr_t)(gm->host + AVAIL + 0x1000 * q));
                be_expect(be, VHU_SET_VRING_KICK, 8, &m);
                assert_int_equal(rd64(m.payload), q);
                assert_int_equal(m.n_fds, 1);
                kick[q] = m.fds[0];
                be_expect(be, VHU_SET_VRING_CALL, 8, &m);
                assert_int_equal(rd64(m.payload), q);
                assert_int_equal(m.n_fds, 1);
                close(m.fds[0]);
                /* the notify doorbell is an ioeventfd on the kick */
                assert_int_equal(hl.ioevent_addr[q], VFS_BAR + 0x3000 + 4 * q);
        }
        assert_int_equal(hl.n_ioevent, 2);
        /* the call is an irqfd on the vector's MSI */
        assert_int_equal(hl.n_irq_on, 2);
        assert_int_equal(hl.irq_addr, 0xfee00000);
        assert_int_equal(hl.irq_data, 0x41);
        /* a notify that reaches the VMM (no ioeventfd caught it) still kicks */
        vfs_w(d, 0x3004, 1, 2);
        assert_int_equal(read(kick[1], &v, 8), 8);
        assert_int_equal(v, 1);
        /* masking a vector unbinds its irqfd; unmasking binds it again; so does a new MSI data */
        vfs_w(d, 0x4000 + 32 + 12, 1, 4);
        assert_int_equal(hl.n_irq_off, 1);
        vfs_w(d, 0x4000 + 32 + 12, 0, 4);
        assert_int_equal(hl.n_irq_on, 3);
        vfs_w(d, 0x4000 + 32 + 8, 0x55, 4);
        assert_int_equal(hl.n_irq_on, 4);
        assert_int_equal(hl.irq_data, 0x55);
        /* a live queue's set-up is fixed */
        vfs_w(d, 0x16, 0, 2);
        vfs_w(d, 0x20, 0x123450, 8);
        assert_int_equal(vfs_r(d, 0x20, 8), DESC);
        /* reset: each ring stopped (GET_VRING_BASE), eventfds released */
        be_send(be, VHU_GET_VRING_BASE, 0x5, (uint8_t[8]){0, 0, 0, 0, 3, 0, 0, 0}, 8, -1);
        be_send(be, VHU_GET_VRING_BASE, 0x5, (uint8_t[8]){1, 0, 0, 0, 5, 0, 0, 0}, 8, -1);
        vfs_w(d, 0x14, 0, 1);
        assert_false(vfs_started(d));
        be_expect(be, VHU_GET_VRING_BASE, 8, &m);
        assert_int_equal(rd32(m.payload), 0);
        be_expect(be, VHU_GET_VRING_BASE, 8, &m);
        assert_int_equal(rd32(m.payload), 1);
        assert_int_equal(hl.n_ioevent_off, 2);
        assert_int_equal(hl.n_irq_off, 3);
        assert_null(vfs_error(d));
        close(kick[0]);
        close(kick[1]);
        vfs_free(d);
        close(be);
        free_shared_mem(gm);
}

/* A back-end that answers wrongly is refused, never trusted. */
static void test_vhost_user_hostile(void **state)
{
        guest_mem *gm = new_shared_mem(MEM);
        static const struct {
                uint32_t request, flags, len;
                bool pass_fd, close_early;
        } bad[] = {
            {VHU_GET_FEATURES, 0x1, 8, false, false},  /* no REPLY flag */
            {VHU_GET_FEATURES, 0x6, 8, false, false},  /* version 2 */
            {VHU_SET_FEATURES, 0x5, 8, false, false},  /* another request's reply */
            {VHU_GET_FEATURES, 0x5, 4, false, false},  /* short payload */
            {VHU_GET_FEATURES, 0x5, 16, false, false}, /* long payload */
            {VHU_GET_FEATURES, 0x5, 8, true, false},   /* file descriptors */
            {0, 0, 0, false, true},                    /* gone */
            {0, 0, 0, false, false},                   /* silent: times out */
        };
        uint8_t zeros[16] = {0};

        (void)state;
        wr64(zeros, BACKEND_FEATURES);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                forge_error *err = NULL;
                vfs *d = NULL;
                int sp[2], before, after;

                before = dup(0);
                close(before);
                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
                if (bad[i].request)
                        be_send(sp[1], bad[i].request, bad[i].flags, zeros, bad[i].len,
                                bad[i].pass_fd ? sp[1] : -1);
                if (bad[i].close_early)
                        shutdown(sp[1], SHUT_WR);
                if (!bad[i].request && !bad[i].close_early) {
                        /* the default wait is seconds: the same path with a short one */
                        vhu *u;
                        uint64_t f;
                        assert_int_equal(vhu_new(sp[0], &u), 0);
                        vhu_set_timeout(u, 50);
                        assert_int_equal(vhu_get_features(u, &f, &err), -1);
                        assert_non_null(err);
                        forge_error_release(&err);
                        vhu_free(u);
                        close(sp[1]);
                        continue;
                }
                assert_int_equal(vfs_new("forge0", sp[0], gm, VFS_BAR, NULL, &d, &err), -1);
                assert_null(d);
                assert_non_null(err);
                forge_error_release(&err);
                close(sp[1]);
                /* nothing leaked: neither the socket nor a passed fd */
                after = dup(0);
                close(after);
                assert_int_equal(after, before);
        }
        /* a back-end without VIRTIO_F_VERSION_1 */
        {
                forge_error *err = NULL;
                vfs *d = NULL;
                int sp[2];
                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
                be_reply_u64(sp[1], VHU_GET_FEATURES, 1ULL << 28);
                assert_int_equal(vfs_new("forge0", sp[0], gm, VFS_BAR, NULL, &d, &err), -1);
                assert_non_null(strstr(err->msg, "VERSION_1"));
                forge_error_release(&err);
                close(sp[1]);
        }
        /* tags: 1 to 36 bytes */
        {
                forge_error *err = NULL;
                vfs *d = NULL;
                int sp[2];
                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
                assert_int_equal(vfs_new("0123456789012345678901234567890123456", sp[0], gm,
                                         VFS_BAR, NULL, &d, &err),
                                 -1);
                forge_error_release(&err);
                close(sp[1]);
        }
        /* message encoding: header and bounds */
        {
                uint8_t buf[20];
                uint64_t p = 0x1122334455667788ULL;
                assert_int_equal(vhu_encode(buf, sizeof(buf), VHU_SET_FEATURES, &p, 8), 20);
                assert_int_equal(rd32(buf), VHU_SET_FEATURES);
                assert_int_equal(rd32(buf + 4), 1);
                assert_int_equal(rd32(buf + 8), 8);
                assert_int_equal(rd64(buf + 12), p);
                assert_int_equal(vhu_encode(buf, sizeof(buf), VHU_SET_FEATURES, &p, 9), -1);
                wr32(buf, VHU_GET_FEATURES);
                wr32(buf + 4, 0x5);
                wr32(buf + 8, 8);
                assert_int_equal(vhu_decode_reply(buf, VHU_GET_FEATURES, 8), 0);
                assert_int_equal(vhu_decode_reply(buf, VHU_GET_VRING_BASE, 8), -1);
        }
        free_shared_mem(gm);
}

/* a driver that starts the device with broken rings gets NEEDS_RESET, no back-end set-up */
static void test_vfs_hostile_driver(void **state)
{
        guest_mem *gm = new_shared_mem(MEM);
        host_log hl = {0};
        int be;
        vfs *d = new_vfs(gm, &hl, &be);

        (void)state;
        vfs_w(d, 0x14, 1 | 2, 1);
        vfs_w(d, 0x08, 1, 4);
        vfs_w(d, 0x0c, 1, 4);
        vfs_w(d, 0x14, 1 | 2 | 8, 1);
        vfs_w(d, 0x16, 1, 2);
        vfs_w(d, 0x18, 8, 2);
        vfs_w(d, 0x20, MEM - 16, 8); /* the ring runs past RAM */
        vfs_w(d, 0x28, AVAIL, 8);
        vfs_w(d, 0x30, USED, 8);
        vfs_w(d, 0x1c, 1, 2);
        vfs_w(d, 0x14, 1 | 2 | 8 | 4, 1);
        assert_true(vfs_r(d, 0x14, 1) & 0x40);
        assert_false(vfs_started(d));
        assert_int_equal(hl.n_ioevent, 0);
        vfs_free(d);
        close(be);
        free_shared_mem(gm);
        /* guest memory that is not shared cannot be served */
        {
                guest_mem *pm = new_mem(MEM);
                host_log h2 = {0};
                int be2;
                vfs *d2 = new_vfs(pm, &h2, &be2);
                vfs_driver_init(d2);
                assert_false(vfs_started(d2));
                assert_non_null(vfs_error(d2));
                vfs_free(d2);
                close(be2);
                free_mem(pm);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_boot_load),
            cmocka_unit_test(test_boot_rejects),
            cmocka_unit_test(test_e820_high),
            cmocka_unit_test(test_mptable),
            cmocka_unit_test(test_virtq_chain),
            cmocka_unit_test(test_virtq_indirect),
            cmocka_unit_test(test_virtq_hostile),
            cmocka_unit_test(test_pci_config),
            cmocka_unit_test(test_pci_caps),
            cmocka_unit_test(test_vblk_io),
            cmocka_unit_test(test_vblk_intx_and_hostile),
            cmocka_unit_test(test_disk_persist),
            cmocka_unit_test(test_uart),
            cmocka_unit_test(test_vblk_read_only),
            cmocka_unit_test(test_vfs_pci),
            cmocka_unit_test(test_vfs_vhost_user),
            cmocka_unit_test(test_vhost_user_hostile),
            cmocka_unit_test(test_vfs_hostile_driver),
            cmocka_unit_test_setup_teardown(test_vnet_tx_rx, net_setup, net_teardown),
            cmocka_unit_test_setup_teardown(test_vnet_tx_flood, net_setup_small_sockbuf,
                                            net_teardown),
            cmocka_unit_test_setup_teardown(test_vnet_rx_thread, net_setup, net_teardown),
            cmocka_unit_test_setup_teardown(test_vnet_event_idx, net_setup, net_teardown),
            cmocka_unit_test_setup_teardown(test_vnet_io_thread_tx, net_setup_small_sockbuf,
                                            net_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
