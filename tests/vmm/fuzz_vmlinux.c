/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for forge-vmm's uncompressed-kernel loader
 * (runtime/vmm/x86/vmlinux.c): the input is the kernel file as a disk image
 * carries it (an ELF, then the KASLR relocation table), loaded with KASLR
 * into a guest memory of exactly GUEST_MEM bytes. Whatever the file says,
 * the loader must neither crash nor touch memory outside the guest's (ASan
 * catches a byte past the buffer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/vmm/vmm-internal.h"

#define GUEST_MEM (40u << 20) /* the seed's kernel at 16 MiB fits, others hit the end */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static guest_mem gm;
        static int fd = -1;
        forge_error *err = NULL;
        vmlinux_loaded l;
        uint64_t random = 0;

        if (fd < 0) {
                gm.host = malloc(GUEST_MEM);
                gm.size = gm.low_size = GUEST_MEM;
                fd = memfd_create("vmlinux", MFD_CLOEXEC);
                if (gm.host == NULL || fd < 0)
                        abort();
        }
        if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
                abort();
        /* the slot from the input's last bytes, so both KASLR and none run */
        if (size >= 8)
                memcpy(&random, data + size - 8, 8);
        boot_vmlinux v = {fd, 0, size};
        if (vmm_vmlinux_load(&gm, &v, size % 2 == 0, random, &l, &err) == 0) {
                if (l.entry < l.start || l.entry >= l.end || l.end > GUEST_MEM)
                        abort();
        }
        forge_error_release(&err);
        return 0;
}
