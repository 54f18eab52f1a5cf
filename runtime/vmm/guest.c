/* SPDX-License-Identifier: MIT */
/* Guest physical -> host address translation, bounds-checked. */
#include "runtime/vmm/vmm-internal.h"

void *gm_ptr(const guest_mem *gm, uint64_t gpa, uint64_t len)
{
        uint64_t high_size = gm->size - gm->low_size;

        if (gpa < gm->low_size) {
                if (len > gm->low_size - gpa)
                        return NULL;
                return gm->host + gpa;
        }
        if (gpa >= MMIO_HOLE_END && gpa - MMIO_HOLE_END < high_size) {
                uint64_t off = gpa - MMIO_HOLE_END;
                if (len > high_size - off)
                        return NULL;
                return gm->host + gm->low_size + off;
        }
        return NULL;
}
