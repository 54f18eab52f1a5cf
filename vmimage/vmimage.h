/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Bootable VM disk images (vmimage owner). See docs/vm-disk.md and the
 * guest <-> host protocol in docs/vm-protocol.md.
 */

#include <stddef.h>

#include "common/error.h"
#include "store/store.h"

/* What a launcher needs to boot a forge disk image, read from the image itself. */
typedef struct vmimage_boot {
        void *kernel; /* bzImage bytes */
        size_t kernel_len;
        void *initrd; /* initramfs bytes */
        size_t initrd_len;
        char *cmdline; /* NUL-terminated kernel command line */
        unsigned long long memory; /* the image's vm.memory in bytes (0 = unset) */
        unsigned cpus;             /* the image's vm.cpus (0 = unset) */
} vmimage_boot;

int vmimage_boot_load(const char *disk_path, vmimage_boot *ret, forge_error **err);
void vmimage_boot_release(vmimage_boot *b);
