/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.x, section 2.7) read from guest memory. The
 * driver is untrusted: every index is checked against the queue size, every
 * buffer against guest RAM, chains are bounded (loops end), and indirect
 * tables may not nest. A queue found corrupt is marked broken and ignored.
 */
#include "runtime/vmm/vmm-internal.h"

#include <string.h>

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

struct vring_desc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        uint16_t next;
};

static int broken(virtq *q)
{
        q->broken = true;
        return -1;
}

static uint16_t load16(const void *p)
{
        return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static int add_buf(virtq_chain *c, const guest_mem *gm, const struct vring_desc *d)
{
        void *p;

        if (c->n >= VIRTQ_MAX_CHAIN)
                return -1;
        p = gm_ptr(gm, d->addr, d->len);
        if (p == NULL)
                return -1;
        c->buf[c->n++] = (virtq_buf){p, d->len, (d->flags & VRING_DESC_F_WRITE) != 0};
        return 0;
}

static int walk_indirect(virtq_chain *c, const guest_mem *gm, const struct vring_desc *ind)
{
        const struct vring_desc *t;
        uint32_t n, i;
        unsigned steps = 0;

        if (ind->len == 0 || ind->len % sizeof(struct vring_desc) != 0 ||
            (ind->flags & VRING_DESC_F_NEXT))
                return -1;
        n = ind->len / sizeof(struct vring_desc);
        if (n > VIRTQ_MAX_CHAIN)
                return -1;
        t = gm_ptr(gm, ind->addr, ind->len);
        if (t == NULL || (ind->addr & 0xf))
                return -1;
        i = 0;
        for (;;) {
                struct vring_desc d;

                memcpy(&d, &t[i], sizeof(d));
                if (d.flags & VRING_DESC_F_INDIRECT)
                        return -1;
                if (add_buf(c, gm, &d) < 0)
                        return -1;
                if (!(d.flags & VRING_DESC_F_NEXT))
                        return 0;
                i = d.next;
                if (i >= n || ++steps >= n)
                        return -1;
        }
}

int virtq_pop(virtq *q, const guest_mem *gm, virtq_chain *c)
{
        const uint8_t *avail;
        const struct vring_desc *table;
        uint16_t idx, head, i;
        unsigned steps = 0;

        if (!q->ready || q->broken || q->size == 0)
                return 0;
        avail = gm_ptr(gm, q->avail_gpa, 4 + 2ULL * q->size + 2);
        table = gm_ptr(gm, q->desc_gpa, 16ULL * q->size);
        if (avail == NULL || table == NULL)
                return broken(q);
        idx = load16(avail + 2);
        if ((uint16_t)(idx - q->last_avail) > q->size)
                return broken(q);
        if (idx == q->last_avail)
                return 0;
        head = load16(avail + 4 + 2 * (q->last_avail % q->size));
        if (head >= q->size)
                return broken(q);
        c->head = head;
        c->n = 0;
        i = head;
        for (;;) {
                struct vring_desc d;

                memcpy(&d, &table[i], sizeof(d));
                if (d.flags & VRING_DESC_F_INDIRECT) {
                        if (c->n != 0 || walk_indirect(c, gm, &d) < 0)
                                return broken(q);
                        break;
                }
                if (add_buf(c, gm, &d) < 0)
                        return broken(q);
                if (!(d.flags & VRING_DESC_F_NEXT))
                        break;
                i = d.next;
                if (i >= q->size || ++steps >= q->size)
                        return broken(q);
        }
        q->last_avail++;
        return 1;
}

int virtq_push(virtq *q, const guest_mem *gm, uint16_t head, uint32_t len)
{
        uint8_t *used = gm_ptr(gm, q->used_gpa, 4 + 8ULL * q->size + 2);
        uint16_t idx;
        uint8_t *elem;

        if (used == NULL || q->size == 0)
                return broken(q);
        idx = load16(used + 2);
        elem = used + 4 + 8 * (idx % q->size);
        memcpy(elem, &(uint32_t){head}, 4);
        memcpy(elem + 4, &len, 4);
        __atomic_store_n((uint16_t *)(used + 2), (uint16_t)(idx + 1), __ATOMIC_RELEASE);
        return 0;
}

void virtq_set_notify(virtq *q, const guest_mem *gm, bool want)
{
        uint8_t *used = gm_ptr(gm, q->used_gpa, 2);

        if (used == NULL || !q->ready || q->broken)
                return;
        __atomic_store_n((uint16_t *)used, (uint16_t)(want ? 0 : VRING_USED_F_NO_NOTIFY),
                         __ATOMIC_RELEASE);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtq_should_notify(const virtq *q, const guest_mem *gm)
{
        const uint8_t *avail = gm_ptr(gm, q->avail_gpa, 4);

        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return avail != NULL && !(load16(avail) & VRING_AVAIL_F_NO_INTERRUPT);
}

/* VIRTIO_RING_F_EVENT_IDX: the driver's used_event sits after the avail
 * ring, the device's avail_event after the used ring (both inside the areas
 * queue set-up checked). */
uint16_t virtq_used_idx(const virtq *q, const guest_mem *gm)
{
        const uint8_t *used = gm_ptr(gm, q->used_gpa, 4);

        return used != NULL ? load16(used + 2) : 0;
}

void virtq_set_avail_event(virtq *q, const guest_mem *gm, uint16_t idx)
{
        uint8_t *used = gm_ptr(gm, q->used_gpa, 4 + 8ULL * q->size + 2);

        if (used == NULL || !q->ready || q->broken || q->size == 0)
                return;
        __atomic_store_n((uint16_t *)(used + 4 + 8 * q->size), idx, __ATOMIC_RELEASE);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtq_need_event(const virtq *q, const guest_mem *gm, uint16_t old_used, uint16_t new_used)
{
        const uint8_t *avail = gm_ptr(gm, q->avail_gpa, 4 + 2ULL * q->size + 2);
        uint16_t event;

        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (avail == NULL || q->size == 0)
                return false;
        event = load16(avail + 4 + 2 * q->size);
        return (uint16_t)(new_used - event - 1) < (uint16_t)(new_used - old_used);
}

uint64_t virtq_chain_len(const virtq_chain *c, bool write)
{
        uint64_t n = 0;

        for (unsigned i = 0; i < c->n; i++)
                if (c->buf[i].write == write)
                        n += c->buf[i].len;
        return n;
}
