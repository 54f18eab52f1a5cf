/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Bootable VM disk images: GPT with an EFI system partition (a unified kernel
 * image for UEFI firmware), a forge boot partition (kernel, initramfs and
 * command line for forge's own launcher) and an ext4 root. See
 * docs/vm-disk.md and the guest <-> host protocol in docs/vm-protocol.md.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "store/store.h"

/* What a launcher needs to boot a forge disk image, read from the image itself. */
typedef struct vmimage_boot {
        void *kernel; /* bzImage bytes */
        size_t kernel_len;
        void *initrd; /* initramfs bytes */
        size_t initrd_len;
        char *cmdline;             /* NUL-terminated kernel command line */
        unsigned long long memory; /* the image's vm.memory in bytes (0 = unset) */
        unsigned cpus;             /* the image's vm.cpus (0 = unset) */
        uint64_t kernel_off;       /* where the kernel and initramfs lie in the disk file */
        uint64_t initrd_off;
        /* the kernel uncompressed (an ELF with its relocations, for
         * forge-vmm), never read here; vmlinux_len 0: the disk has none */
        uint64_t vmlinux_off, vmlinux_len;
} vmimage_boot;

int vmimage_boot_load(const char *disk_path, vmimage_boot *ret, forge_error **err);
/* The same without reading the kernel and initramfs (kernel and initrd NULL;
 * their extents, checked against the file, in *_off and *_len). */
int vmimage_boot_locate(const char *disk_path, vmimage_boot *ret, forge_error **err);
void vmimage_boot_release(vmimage_boot *b);

/* An image config's "dev.forge".vm section, checked: it comes with the image,
 * so any field may be missing, of the wrong type or absurd. Strings point
 * into the JSON. */
typedef struct vmimage_vm_config {
        const char *kernel_deb;     /* a blob digest, or */
        const char *kernel_bzimage; /* a blob digest */
        const char *kernel_modules; /* a layer blob digest, or NULL */
        const char *cmdline;        /* NULL: none */
        uint64_t memory;            /* 0: unset */
        unsigned cpus;              /* 0: unset */
        uint64_t disk_size;         /* 0: content plus headroom */
} vmimage_vm_config;

/* 1 and *ret filled when the config has a valid vm section, 0 when it has
 * none, < 0 (EINVAL, saying which field) when the section is malformed. */
int vmimage_vm_config_parse(const json_t *image_config, vmimage_vm_config *ret, forge_error **err);

/* Bump when the bytes of a disk image change for the same inputs. */
#define VMIMAGE_FORMAT 4

typedef struct vmimage_opts {
        const char *rootfs_dir;  /* the flattened image; /.forge/run is added */
        const char *kernel_deb;  /* a Debian linux-image package, or */
        const char *bzimage;     /* a bzImage plus */
        const char *modules_dir; /* lib/modules/VERSION (may be NULL) */
        const char *init_path;   /* forge-vminit */
        const char *run_config;  /* the content of /.forge/run */
        const char *cmdline;     /* extra kernel arguments, or NULL */
        uint64_t memory;         /* recorded for launchers (0 = unset) */
        unsigned cpus;
        uint64_t disk_size; /* 0: content plus headroom */
        uint64_t sde;       /* every timestamp */
        const char *seed;   /* the image digest: GUIDs, UUIDs, serials */
        const char *tmpdir; /* scratch, on the same file system as out_path ideally */
        const char *out_path;
        /* Kernel artifacts of an earlier build with the same kernel, init,
         * command line and EFI stub (all three, or NULL: built, and left in
         * tmpdir as bzImage, initrd.cpio and uki.efi for the caller to keep). */
        const char *prepared_bzimage;
        const char *prepared_initrd;
        const char *prepared_uki;
} vmimage_opts;

/* Builds the disk image at out_path (written to a temp file, renamed). */
int vmimage_build(const vmimage_opts *o, forge_error **err);

/* The run configuration (/.forge/run) for an image config; malloc'd. */
char *vmimage_run_config(const json_t *image_config);

/* Builds (or takes from the store's cache) the disk image of an image and
 * copies it, sparsely, to out_path. */
int vmimage_export(store *s, const char *manifest_digest, const char *out_path, forge_error **err);

/* The store's cached disk image of an image (built when missing): the path of
 * a read-only blob, valid while the store is open (and its shared lock held). */
int vmimage_disk_get(store *s, const char *manifest_digest, char **ret_path, forge_error **err);

/* Whether path starts like a disk image (a GPT behind a protective MBR). */
bool vmimage_is_disk(const char *path);
