/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/hash.h"
#include "common/vmproto.h"
#include "vmimage/vmimage.h"

#define VM_ESP_TYPE "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define VM_LINUX_TYPE "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
#define VM_FORGE_BOOT_TYPE "6A8D1F2E-5B3C-4E7A-9C0D-F0F0E0D0C0B1"
#define VM_ROOT_NAME VMPROTO_ROOT_NAME /* the guest init looks for it */
#define VM_BOOT_NAME "forge-boot"
#define VM_ESP_NAME "forge-esp"
/* Timestamp of the kernel artifacts (initramfs entries, UKI): they are
 * shared between images, so they don't take the image's source_date_epoch. */
#define VM_KERNEL_EPOCH 0

typedef struct vm_part {
        const char *name;
        const char *type_guid;
        uint64_t offset; /* bytes, 1 MiB aligned */
        uint64_t size;
} vm_part;

void vm_guid_parse(const char *s, uint8_t out[16]);
void vm_guid_format(const uint8_t g[16], char out[37]);
void vm_guid_derive(const char *seed, const char *label, uint8_t out[16]);
int vm_gpt_write(int fd, uint64_t disk_bytes, const vm_part *parts, size_t n, const char *seed,
                 forge_error **err);
int vm_gpt_find(int fd, uint64_t disk_bytes, const char *name, uint64_t *ret_offset,
                uint64_t *ret_size, forge_error **err);

/* Calls fn for each entry below dir (lstat'ed, in sorted order, a directory
 * before what it holds), at most max_depth levels down; an unreadable
 * directory is passed over, fn returning < 0 stops the walk (returns -1). */
struct stat;
typedef int (*vm_tree_fn)(void *ctx, const char *path, const char *name, const struct stat *st);
int vm_tree_walk(const char *dir, int max_depth, vm_tree_fn fn, void *ctx);

/* The kernel, unpacked into a work directory (kernel.c). */
typedef struct vm_kernel {
        char *bzimage;     /* path */
        char *modules_dir; /* lib/modules/VERSION, or NULL */
        char *version;
} vm_kernel;
int vm_kernel_prepare(const vmimage_opts *o, const char *work, vm_kernel *ret, forge_error **err);
void vm_kernel_release(vm_kernel *k);
/* Checks the Linux boot protocol header of a bzImage. */
int vm_bzimage_check(const void *buf, size_t len, forge_error **err);
/* Decompresses a bzImage's payload (the kernel as an ELF with its
 * relocation table, vmlinux.c) into out; *ret_made false when the kernel
 * carries none libarchive reads (the bzImage is then all there is). */
int vm_vmlinux_extract(const char *bzimage, const char *out, bool *ret_made, forge_error **err);
/* Writes the initramfs: /init and the modules needed to reach the root disk. */
int vm_initramfs_write(const vmimage_opts *o, const vm_kernel *k, const char *out_path,
                       forge_error **err);

/* The boot partition header (boot.c). Version 1: extents relative to the
 * partition, the data in it; version 2: extents relative to the disk (the
 * kernel and initramfs are the UKI's sections in the ESP). Both: the
 * uncompressed kernel (vmlinux_len 0: none; disks from before it have zeros
 * there), in the boot partition, at an offset counted as the others. */
#define VM_BOOT_MAGIC "FORGEBT1"
#define VM_BOOT_CMDLINE_MAX 4096u   /* the command line's room, NUL excluded */
#define VM_BOOT_VMLINUX_ALIGN 4096u /* page aligned: read into guest memory as is */
struct vm_boot_header {
        char magic[8];
        uint32_t version;
        uint32_t cpus;
        uint64_t memory;
        uint64_t kernel_off, kernel_len;
        uint64_t initrd_off, initrd_len;
        uint64_t cmdline_off, cmdline_len;
        uint64_t vmlinux_off, vmlinux_len;
} __attribute__((packed));
