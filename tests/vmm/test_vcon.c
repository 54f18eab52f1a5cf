/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (the control channel of detached VMs) through its BAR over a
 * fake guest memory: guest output buffered and taken by the host, host input
 * into the receive buffers, back-pressure when the output buffer is full,
 * input held until the guest posts buffers, hostile queue setups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/vmm/vmm-internal.h"
#include "vmm-test.h"

#define MEM (16ULL << 20)
/* queue 0 (receive) and 1 (transmit): rings and buffers */
#define RING(q) (0x100000ULL + (q)*0x10000ULL)
#define DESC(q) RING(q)
#define AVAIL(q) (RING(q) + 0x1000)
#define USED(q) (RING(q) + 0x2000)
#define BUF(q, i) (0x200000ULL + (q)*0x100000ULL + (i)*0x10000ULL)
#define QSIZE 8

typedef struct env {
        guest_mem gm;
        vcon *d;
        int msi, outputs;
} env;

static void on_msi(void *o, uint64_t a, uint32_t d)
{
        (void)a;
        (void)d;
        ((env *)o)->msi++;
}

static void on_output(void *o)
{
        ((env *)o)->outputs++;
}

VMM_TEST_BAR_ACCESSORS(bar_w, bar_r, vcon, vcon_pci)

static void queue_setup(vcon *d, unsigned q)
{
        bar_w(d, 0x16, q, 2);
        bar_w(d, 0x18, QSIZE, 2);
        bar_w(d, 0x1a, q + 1, 2);
        bar_w(d, 0x20, DESC(q), 8);
        bar_w(d, 0x28, AVAIL(q), 8);
        bar_w(d, 0x30, USED(q), 8);
        bar_w(d, 0x1c, 1, 2);
}

static void setup(env *e)
{
        pci_function *f;
        unsigned cap = 0;
        vcon_irq_ops ops = {.msi = on_msi, .output = on_output, .opaque = e};

        memset(e, 0, sizeof(*e));
        e->gm.host = calloc(1, MEM);
        e->gm.size = e->gm.low_size = MEM;
        assert_non_null(e->gm.host);
        e->d = vcon_new(&e->gm, 0xe0400000, &ops);
        assert_non_null(e->d);
        f = vcon_pci(e->d);
        assert_int_equal(vmm_pci_cfg_read(f, 2, 2), 0x1043); /* virtio-console, modern */
        bar_w(e->d, 0x14, 0, 1);
        bar_w(e->d, 0x14, 1 | 2, 1);
        bar_w(e->d, 0x08, 1, 4);
        bar_w(e->d, 0x0c, 1, 4); /* VERSION_1 */
        bar_w(e->d, 0x14, 1 | 2 | 8, 1);
        assert_true(bar_r(e->d, 0x14, 1) & 8);
        assert_int_equal(bar_r(e->d, 0x12, 2), 2); /* two queues: no multiport */
        for (unsigned p = f->cfg[0x34]; p; p = f->cfg[p + 1])
                if (f->cfg[p] == 0x11)
                        cap = p;
        vmm_pci_cfg_write(f, cap + 2, 2, 0x8000);
        for (unsigned v = 0; v < 3; v++)
                bar_w(e->d, 0x4000 + 16 * v + 12, 0, 4);
        queue_setup(e->d, 0);
        queue_setup(e->d, 1);
        bar_w(e->d, 0x14, 1 | 2 | 8 | 4, 1);
}

static void teardown(env *e)
{
        vcon_free(e->d);
        free(e->gm.host);
}

/* a one-descriptor chain at index i of queue q, made available */
static void post(env *e, unsigned q, unsigned i, uint32_t len, bool device_writes)
{
        uint8_t *desc = e->gm.host + DESC(q) + 16 * i, *a = e->gm.host + AVAIL(q);
        uint16_t idx = rd16(a + 2);

        wr64(desc, BUF(q, i));
        wr32(desc + 8, len);
        wr16(desc + 12, device_writes ? 2 : 0);
        wr16(desc + 14, 0);
        wr16(a + 4 + 2 * (idx % QSIZE), (uint16_t)i);
        wr16(a + 2, (uint16_t)(idx + 1));
}

/* where the driver notifies queue q: the notify area plus its queue_notify_off
 * times the multiplier (4), as Linux computes it */
static void notify(env *e, unsigned q)
{
        unsigned off;

        bar_w(e->d, 0x16, q, 2);
        off = bar_r(e->d, 0x1e, 2);
        bar_w(e->d, 0x3000 + 4 * off, q, 2);
}

static void test_output(void **state)
{
        env e;
        uint8_t out[64];

        (void)state;
        setup(&e);
        memcpy(e.gm.host + BUF(1, 0), "hello ", 6);
        memcpy(e.gm.host + BUF(1, 1), "host", 4);
        post(&e, 1, 0, 6, false);
        post(&e, 1, 1, 4, false);
        notify(&e, 1);
        assert_int_equal(rd16(e.gm.host + USED(1) + 2), 2);
        assert_true(e.outputs > 0);
        assert_true(e.msi > 0);
        assert_int_equal(vcon_take_output(e.d, out, sizeof(out)), 10);
        assert_memory_equal(out, "hello host", 10);
        assert_int_equal(vcon_take_output(e.d, out, sizeof(out)), 0);
        teardown(&e);
}

static void test_output_backpressure(void **state)
{
        static uint8_t big[256 * 1024];
        env e;
        uint32_t chunk = 0xf000;
        unsigned posted = 0;

        (void)state;
        setup(&e);
        /* eight 60 KiB buffers: the 256 KiB output buffer takes four, the rest wait */
        for (unsigned i = 0; i < QSIZE; i++, posted++)
                post(&e, 1, i, chunk, false);
        notify(&e, 1);
        assert_int_equal(rd16(e.gm.host + USED(1) + 2), 4);
        /* the host takes some: the waiting buffers move on */
        assert_int_equal(vcon_take_output(e.d, big, sizeof(big)), 4 * chunk);
        assert_int_equal(rd16(e.gm.host + USED(1) + 2), 8);
        assert_int_equal(vcon_take_output(e.d, big, sizeof(big)), 4 * chunk);
        (void)posted;
        teardown(&e);
}

static void test_input(void **state)
{
        env e;

        (void)state;
        setup(&e);
        /* no receive buffer yet: the input waits, and no more is taken */
        assert_true(vcon_input_room(e.d));
        assert_int_equal(vcon_put_input(e.d, (const uint8_t *)"abcdefgh", 8), 8);
        assert_false(vcon_input_room(e.d));
        assert_int_equal(vcon_put_input(e.d, (const uint8_t *)"x", 1), 0);
        /* a 5-byte buffer, then another: 5 + 3 */
        post(&e, 0, 0, 5, true);
        notify(&e, 0);
        assert_int_equal(rd16(e.gm.host + USED(0) + 2), 1);
        assert_int_equal(rd32(e.gm.host + USED(0) + 8), 5);
        assert_memory_equal(e.gm.host + BUF(0, 0), "abcde", 5);
        assert_false(vcon_input_room(e.d));
        post(&e, 0, 1, 64, true);
        notify(&e, 0);
        assert_int_equal(rd32(e.gm.host + USED(0) + 8 + 8), 3);
        assert_memory_equal(e.gm.host + BUF(0, 1), "fgh", 3);
        assert_true(vcon_input_room(e.d));
        /* a device-readable buffer on the receive queue takes nothing */
        assert_int_equal(vcon_put_input(e.d, (const uint8_t *)"zz", 2), 2);
        post(&e, 0, 2, 64, false);
        notify(&e, 0);
        assert_int_equal(rd32(e.gm.host + USED(0) + 8 + 16), 0);
        vcon_drop_input(e.d);
        assert_true(vcon_input_room(e.d));
        teardown(&e);
}

static void test_hostile(void **state)
{
        env e;
        uint8_t out[16];

        (void)state;
        setup(&e);
        /* a descriptor pointing outside guest memory: the queue breaks, no crash */
        {
                uint8_t *desc = e.gm.host + DESC(1) + 16 * 3, *a = e.gm.host + AVAIL(1);
                uint16_t idx = rd16(a + 2);
                wr64(desc, MEM + 4096);
                wr32(desc + 8, 4096);
                wr16(desc + 12, 0);
                wr16(a + 4 + 2 * (idx % QSIZE), 3);
                wr16(a + 2, (uint16_t)(idx + 1));
        }
        notify(&e, 1);
        assert_true(bar_r(e.d, 0x14, 1) & 0x40); /* DEVICE_NEEDS_RESET */
        assert_int_equal(vcon_take_output(e.d, out, sizeof(out)), 0);
        /* a notify of a queue that does not exist, odd accesses: ignored */
        bar_w(e.d, 0x3000 + 4 * 7, 0, 2);
        bar_w(e.d, 0x2000, 0xffffffff, 4);
        assert_int_equal(bar_r(e.d, 0x2000, 4), 0);
        bar_w(e.d, 0x7fff, 1, 1);
        /* a reset clears it */
        bar_w(e.d, 0x14, 0, 1);
        assert_int_equal(bar_r(e.d, 0x14, 1), 0);
        teardown(&e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_output),
            cmocka_unit_test(test_output_backpressure),
            cmocka_unit_test(test_input),
            cmocka_unit_test(test_hostile),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
