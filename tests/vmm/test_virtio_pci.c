/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci transport (virtio/pci-transport.c) with a fake device
 * behind its ops: the PCI identity and capability list, feature negotiation
 * and queue set-up through the common configuration, what a hostile driver
 * writes (unoffered features, bad queue sizes and rings, vectors past the
 * table, accesses past each window), MSI-X masking and the PBA, INTx and the
 * ISR, and which device hooks run when.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/vmm/virtio-pci.h"

#define MEM (16ULL << 20)
#define BAR 0xe0500000ULL
#define DESC 0x100000ULL
#define AVAIL 0x110000ULL
#define USED 0x120000ULL
#define CFG_LEN 0x10
#define F_DEV (1ULL << 0) /* a device feature bit */
#define F_OFFERED (F_DEV | VIRTIO_F_INDIRECT_DESC | VIRTIO_F_VERSION_1)

typedef struct fake {
        virtio_pci t;
        guest_mem gm;
        int notified[VIRTIO_PCI_MAX_QUEUES];
        int resets, statuses, msix_changes;
        int msi, intx_level;
        uint64_t msi_addr;
        uint32_t msi_data;
        bool own_msi; /* the device delivers messages itself */
        int own_msi_count;
} fake;

static void config(void *dev, uint8_t *cfg)
{
        (void)dev;
        for (unsigned i = 0; i < CFG_LEN; i++)
                cfg[i] = (uint8_t)(0xa0 + i);
}

static void notify(void *dev, unsigned queue)
{
        ((fake *)dev)->notified[queue]++;
}

static void status(void *dev, bool reset)
{
        fake *f = dev;

        if (reset)
                f->resets++;
        else
                f->statuses++;
}

static void msix_changed(void *dev)
{
        ((fake *)dev)->msix_changes++;
}

static bool own_msi(void *dev, uint16_t vec, uint64_t addr, uint32_t data)
{
        fake *f = dev;

        (void)vec;
        (void)addr;
        (void)data;
        if (f->own_msi)
                f->own_msi_count++;
        return f->own_msi;
}

static void on_msi(void *o, uint64_t addr, uint32_t data)
{
        fake *f = o;

        f->msi++;
        f->msi_addr = addr;
        f->msi_data = data;
}

static void on_intx(void *o, int level)
{
        ((fake *)o)->intx_level = level;
}

static const virtio_pci_info info = {0x1040 + 99, 0x0a000001, 2, CFG_LEN, VIRTIO_PCI_INTX};
static const virtio_pci_info info_handoff = {0x1040 + 98, 0x0a000001, 2, CFG_LEN,
                                             VIRTIO_PCI_ENABLE_BEFORE_DRIVER_OK};
static const virtio_pci_ops ops = {.config = config,
                                   .notify = notify,
                                   .status = status,
                                   .msix_changed = msix_changed,
                                   .msi = own_msi};

static fake *fake_new(const virtio_pci_info *inf)
{
        fake *f = calloc(1, sizeof(*f));
        vblk_irq_ops irq = {.msi = on_msi, .intx = on_intx, .opaque = f};

        assert_non_null(f);
        f->gm.host = calloc(1, MEM);
        assert_non_null(f->gm.host);
        f->gm.size = f->gm.low_size = MEM;
        virtio_pci_init(&f->t, inf, &ops, f, F_OFFERED, &f->gm, BAR, &irq);
        return f;
}

static void fake_free(fake *f)
{
        free(f->gm.host);
        free(f);
}

static void w(fake *f, uint64_t off, uint64_t v, unsigned len)
{
        uint8_t b[8];

        for (unsigned i = 0; i < 8; i++)
                b[i] = (uint8_t)(v >> (8 * i));
        virtio_pci_bar_access(&f->t.pci, off, b, len, true);
}

static uint64_t r(fake *f, uint64_t off, unsigned len)
{
        uint8_t b[8];
        uint64_t v = 0;

        memset(b, 0x5a, sizeof(b)); /* what the transport does not write shows */
        virtio_pci_bar_access(&f->t.pci, off, b, len, false);
        for (unsigned i = 0; i < len; i++)
                v |= (uint64_t)b[i] << (8 * i);
        return v;
}

/* the driver's side of negotiation: ACKNOWLEDGE, DRIVER, features, FEATURES_OK */
static void negotiate(fake *f, uint64_t features)
{
        w(f, 0x14, 1 | 2, 1);
        w(f, 0x08, 0, 4);
        w(f, 0x0c, (uint32_t)features, 4);
        w(f, 0x08, 1, 4);
        w(f, 0x0c, (uint32_t)(features >> 32), 4);
        w(f, 0x14, 1 | 2 | 8, 1);
}

static void queue(fake *f, unsigned q, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
        w(f, 0x16, q, 2);
        w(f, 0x18, size, 2);
        w(f, 0x1a, q + 1, 2);
        w(f, 0x20, desc, 8);
        w(f, 0x28, avail, 8);
        w(f, 0x30, used, 8);
        w(f, 0x1c, 1, 2);
}

static unsigned find_cap(const pci_function *p, uint8_t id, uint8_t vtype)
{
        for (unsigned c = p->cfg[0x34]; c; c = p->cfg[c + 1])
                if (p->cfg[c] == id && (id != 0x09 || p->cfg[c + 3] == vtype))
                        return c;
        return 0;
}

static void test_identity(void **state)
{
        fake *f = fake_new(&info), *g = fake_new(&info_handoff);
        const pci_function *p = &f->t.pci;
        unsigned c;

        (void)state;
        assert_int_equal(vmm_pci_cfg_read(p, 0, 2), 0x1af4);
        assert_int_equal(vmm_pci_cfg_read(p, 2, 2), 0x1040 + 99);
        assert_int_equal(vmm_pci_cfg_read(p, 8, 4), 0x0a000001);
        assert_int_equal(vmm_pci_cfg_read(p, 0x2c, 2), 0x1af4);
        assert_int_equal(vmm_pci_cfg_read(p, 0x2e, 2), 0x0040);
        assert_int_equal(vmm_pci_bar_addr(p, 0), BAR);
        assert_int_equal(p->bar_size[0], VIRTIO_PCI_BAR_SIZE);
        assert_int_equal(p->cfg[0x3d], 1); /* INTA# */
        assert_int_equal(g->t.pci.cfg[0x3d], 0);
        /* common 0x0/0x38, ISR 0x1000, device 0x2000/CFG_LEN, notify 0x3000, x4 */
        c = find_cap(p, 0x09, 1);
        assert_int_not_equal(c, 0);
        assert_int_equal(vmm_pci_cfg_read(p, c + 8, 4), 0);
        assert_int_equal(vmm_pci_cfg_read(p, c + 12, 4), 0x38);
        c = find_cap(p, 0x09, 3);
        assert_int_equal(vmm_pci_cfg_read(p, c + 8, 4), 0x1000);
        c = find_cap(p, 0x09, 4);
        assert_int_equal(vmm_pci_cfg_read(p, c + 8, 4), 0x2000);
        assert_int_equal(vmm_pci_cfg_read(p, c + 12, 4), CFG_LEN);
        c = find_cap(p, 0x09, 2);
        assert_int_equal(p->cfg[c + 2], 20);
        assert_int_equal(vmm_pci_cfg_read(p, c + 8, 4), 0x3000);
        assert_int_equal(vmm_pci_cfg_read(p, c + 12, 4), 2 * 4);
        assert_int_equal(vmm_pci_cfg_read(p, c + 16, 4), 4);
        c = find_cap(p, 0x11, 0);
        assert_int_equal(vmm_pci_cfg_read(p, c + 2, 2), 2); /* 3 vectors, off */
        assert_int_equal(vmm_pci_cfg_read(p, c + 4, 4), 0x4000);
        assert_int_equal(vmm_pci_cfg_read(p, c + 8, 4), 0x5000);
        assert_int_equal(f->resets, 1); /* set-up resets the device */
        fake_free(f);
        fake_free(g);
}

static void test_features(void **state)
{
        fake *f = fake_new(&info);

        (void)state;
        assert_int_equal(r(f, 0x04, 4), (uint32_t)F_OFFERED);
        w(f, 0x00, 1, 4);
        assert_int_equal(r(f, 0x04, 4), (uint32_t)(F_OFFERED >> 32));
        w(f, 0x00, 7, 4);
        assert_int_equal(r(f, 0x04, 4), 0);
        /* bits not offered do not stick; without VERSION_1 no FEATURES_OK */
        negotiate(f, 0xffffffffULL);
        assert_int_equal(f->t.driver_features, (uint32_t)F_OFFERED);
        assert_int_equal(r(f, 0x14, 1), 1 | 2);
        negotiate(f, F_DEV | VIRTIO_F_VERSION_1 | (1ULL << 40));
        assert_int_equal(f->t.driver_features, F_DEV | VIRTIO_F_VERSION_1);
        assert_int_equal(r(f, 0x14, 1), 1 | 2 | 8);
        w(f, 0x08, 1, 4);
        assert_int_equal(r(f, 0x0c, 4), 1); /* VERSION_1 */
        /* fixed once FEATURES_OK is set; a select past 1 reads and writes nothing */
        w(f, 0x08, 0, 4);
        w(f, 0x0c, 0, 4);
        assert_int_equal(f->t.driver_features, F_DEV | VIRTIO_F_VERSION_1);
        w(f, 0x08, 2, 4);
        assert_int_equal(r(f, 0x0c, 4), 0);
        assert_true(f->statuses > 0);
        /* 0 resets: features, status and the device forgotten */
        w(f, 0x14, 0, 1);
        assert_int_equal(f->resets, 2);
        assert_int_equal(f->t.driver_features, 0);
        assert_int_equal(r(f, 0x14, 1), 0);
        fake_free(f);
}

static void test_queues(void **state)
{
        fake *f = fake_new(&info);

        (void)state;
        negotiate(f, VIRTIO_F_VERSION_1);
        assert_int_equal(r(f, 0x12, 2), 2);
        w(f, 0x16, 1, 2);
        assert_int_equal(r(f, 0x18, 2), VIRTQ_MAX_SIZE); /* the maximum until set */
        assert_int_equal(r(f, 0x1a, 2), VIRTIO_NO_VECTOR);
        queue(f, 1, 64, DESC, AVAIL, USED);
        assert_true(f->t.vq[1].ready);
        assert_false(f->t.vq[1].broken);
        assert_int_equal(f->t.vq[1].size, 64);
        assert_int_equal(f->t.vq[1].desc_gpa, DESC);
        assert_int_equal(f->t.vq[1].avail_gpa, AVAIL);
        assert_int_equal(f->t.vq[1].used_gpa, USED);
        assert_int_equal(r(f, 0x1a, 2), 2);
        assert_int_equal(r(f, 0x1c, 2), 1);
        assert_int_equal(r(f, 0x1e, 2), 1); /* notify offset: its own slot */
        assert_int_equal(r(f, 0x20, 8), DESC);
        /* a live queue's set-up is fixed until reset */
        w(f, 0x18, 8, 2);
        w(f, 0x20, 0x200000, 8);
        assert_int_equal(f->t.vq[1].size, 64);
        assert_int_equal(f->t.vq[1].desc_gpa, DESC);
        /* doorbells: the device learns which queue, whatever the status */
        w(f, 0x3000 + 4, 1, 2);
        w(f, 0x3000, 0, 2);
        assert_int_equal(f->notified[1], 1);
        assert_int_equal(f->notified[0], 1);
        assert_int_equal(r(f, 0x3000, 2), 0);
        w(f, 0x3000 + 8, 2, 2); /* past the last queue */
        assert_int_equal(f->notified[0] + f->notified[1], 2);
        /* a queue past the last reads as nothing and takes nothing */
        w(f, 0x16, 2, 2);
        assert_int_equal(r(f, 0x18, 2), 0);
        w(f, 0x18, 16, 2);
        w(f, 0x1c, 1, 2);
        assert_int_equal(r(f, 0x1c, 2), 0);
        fake_free(f);
}

static void bad_queue(uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
        fake *f = fake_new(&info);

        negotiate(f, VIRTIO_F_VERSION_1);
        queue(f, 0, size, desc, avail, used);
        assert_true(f->t.vq[0].broken);
        assert_true(r(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
        /* NEEDS_RESET stays through status writes; only a reset clears it */
        w(f, 0x14, 1 | 2 | 8 | 4, 1);
        assert_true(r(f, 0x14, 1) & VIRTIO_STATUS_NEEDS_RESET);
        w(f, 0x14, 0, 1);
        assert_int_equal(r(f, 0x14, 1), 0);
        assert_false(f->t.vq[0].broken);
        assert_false(f->t.vq[0].ready);
        fake_free(f);
}

static void test_bad_queues(void **state)
{
        (void)state;
        bad_queue(0, DESC, AVAIL, USED);
        bad_queue(48, DESC, AVAIL, USED);                  /* not a power of two */
        bad_queue(512, DESC, AVAIL, USED);                 /* beyond VIRTQ_MAX_SIZE */
        bad_queue(64, DESC + 8, AVAIL, USED);              /* descriptors 16-byte aligned */
        bad_queue(64, DESC, AVAIL + 1, USED);              /* avail 2-byte aligned */
        bad_queue(64, DESC, AVAIL, USED + 2);              /* used 4-byte aligned */
        bad_queue(64, MEM - 16, AVAIL, USED);              /* rings past guest memory */
        bad_queue(64, DESC, AVAIL, 0xfffffffffffffff0ULL); /* wrapping */
}

static void test_windows(void **state)
{
        fake *f = fake_new(&info);
        uint8_t b[16];

        (void)state;
        /* the device configuration, and nothing around it */
        assert_int_equal(r(f, 0x2000, 4), 0xa3a2a1a0);
        assert_int_equal(r(f, 0x2000 + CFG_LEN - 1, 1), 0xa0 + CFG_LEN - 1);
        assert_int_equal(r(f, 0x2000 + CFG_LEN - 2, 4), 0); /* straddles the end */
        assert_int_equal(r(f, 0x2000 + CFG_LEN, 4), 0);
        w(f, 0x2000, 0, 4); /* read only */
        assert_int_equal(r(f, 0x2000, 4), 0xa3a2a1a0);
        /* past the common configuration, the PBA, the BAR */
        assert_int_equal(r(f, 0x36, 4), 0); /* straddles the end */
        assert_int_equal(r(f, 0x38, 8), 0);
        w(f, 0x36, 0xffffffff, 4);
        assert_int_equal(r(f, 0x30, 8), 0);
        assert_int_equal(r(f, 0x5008, 8), 0);
        assert_int_equal(r(f, 0x7ff8, 8), 0);
        assert_int_equal(r(f, 0x10000000, 8), 0);
        /* lengths 0 and past 8 touch nothing */
        memset(b, 0x5a, sizeof(b));
        virtio_pci_bar_access(&f->t.pci, 0x00, b, 16, false);
        virtio_pci_bar_access(&f->t.pci, 0x00, b, 0, false);
        assert_int_equal(b[0], 0x5a);
        /* MMIO: only inside the BAR, only while memory decoding is on */
        assert_true(virtio_pci_mmio(&f->t.pci, BAR + 0x2000, b, 4, false));
        assert_int_equal(b[0], 0xa0);
        assert_false(virtio_pci_mmio(&f->t.pci, BAR + VIRTIO_PCI_BAR_SIZE, b, 4, false));
        assert_false(virtio_pci_mmio(&f->t.pci, BAR - 4, b, 4, false));
        vmm_pci_cfg_write(&f->t.pci, 0x04, 2, 0);
        assert_false(virtio_pci_mmio(&f->t.pci, BAR + 0x2000, b, 4, false));
        fake_free(f);
}

static void msix_on(fake *f, bool mask_all)
{
        unsigned c = find_cap(&f->t.pci, 0x11, 0);

        vmm_pci_cfg_write(&f->t.pci, c + 2, 2, 0x8000 | (mask_all ? 0x4000 : 0));
}

static void test_msix(void **state)
{
        fake *f = fake_new(&info);

        (void)state;
        negotiate(f, VIRTIO_F_VERSION_1);
        /* vectors past the table are refused */
        w(f, 0x10, 3, 2);
        assert_int_equal(r(f, 0x10, 2), VIRTIO_NO_VECTOR);
        w(f, 0x10, 0, 2);
        assert_int_equal(r(f, 0x10, 2), 0);
        /* the table: dword accesses only, entries masked at first */
        w(f, 0x4010, 0xfee01000, 4);
        w(f, 0x4014, 0, 4);
        w(f, 0x4018, 0x41, 4);
        assert_int_equal(r(f, 0x4010, 4), 0xfee01000);
        assert_int_equal(r(f, 0x401c, 4), 1);
        assert_int_equal(r(f, 0x4010, 2), 0);
        assert_int_equal(r(f, 0x4030, 4), 0); /* past the 3 vectors */
        assert_true(f->msix_changes > 0);
        /* masked: held in the PBA; unmasked: delivered once */
        msix_on(f, false);
        virtio_pci_interrupt(&f->t, 1);
        assert_int_equal(f->msi, 0);
        assert_int_equal(r(f, 0x5000, 8), 1u << 1);
        w(f, 0x401c, 0xfffffffe, 4); /* only the mask bit is kept */
        assert_int_equal(r(f, 0x401c, 4), 0);
        assert_int_equal(f->msi, 1);
        assert_int_equal(f->msi_addr, 0xfee01000);
        assert_int_equal(f->msi_data, 0x41);
        assert_int_equal(r(f, 0x5000, 8), 0);
        /* the function mask holds it too, until it is lifted */
        msix_on(f, true);
        virtio_pci_interrupt(&f->t, 1);
        assert_int_equal(f->msi, 1);
        msix_on(f, false);
        assert_int_equal(f->msi, 2);
        /* a device that delivers itself (an irqfd) is asked first */
        f->own_msi = true;
        virtio_pci_interrupt(&f->t, 1);
        assert_int_equal(f->own_msi_count, 1);
        assert_int_equal(f->msi, 2);
        /* a vector past the table: nothing */
        virtio_pci_interrupt(&f->t, VIRTIO_NO_VECTOR);
        assert_int_equal(f->own_msi_count, 1);
        fake_free(f);
}

static void test_intx_isr(void **state)
{
        fake *f = fake_new(&info);

        (void)state;
        virtio_pci_interrupt(&f->t, 0); /* MSI-X off: INTx */
        assert_int_equal(f->intx_level, 1);
        assert_int_equal(f->msi, 0);
        assert_int_equal(r(f, 0x1000, 1), 1); /* the read clears it and the line */
        assert_int_equal(f->intx_level, 0);
        assert_int_equal(r(f, 0x1000, 1), 0);
        w(f, 0x1000, 0xff, 1); /* read only */
        assert_int_equal(r(f, 0x1000, 4), 0);
        virtio_pci_interrupt(&f->t, 0);
        w(f, 0x14, 0, 1); /* a reset lowers it too */
        assert_int_equal(f->intx_level, 0);
        fake_free(f);
}

/* A device whose rings go to a back-end at DRIVER_OK: no queue enabled after. */
static void test_enable_before_driver_ok(void **state)
{
        fake *f = fake_new(&info_handoff), *g = fake_new(&info);

        (void)state;
        negotiate(f, VIRTIO_F_VERSION_1);
        queue(f, 0, 64, DESC, AVAIL, USED);
        w(f, 0x14, 1 | 2 | 8 | 4, 1);
        assert_int_equal(f->statuses, 3);
        queue(f, 1, 64, DESC + 0x4000, AVAIL + 0x4000, USED + 0x4000);
        assert_true(f->t.vq[0].ready);
        assert_false(f->t.vq[1].ready);
        negotiate(g, VIRTIO_F_VERSION_1);
        w(g, 0x14, 1 | 2 | 8 | 4, 1);
        queue(g, 1, 64, DESC, AVAIL, USED);
        assert_true(g->t.vq[1].ready);
        fake_free(f);
        fake_free(g);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_identity), cmocka_unit_test(test_features),
            cmocka_unit_test(test_queues),   cmocka_unit_test(test_bad_queues),
            cmocka_unit_test(test_windows),  cmocka_unit_test(test_msix),
            cmocka_unit_test(test_intx_isr), cmocka_unit_test(test_enable_before_driver_ok),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
