/* SPDX-License-Identifier: MIT */
/*
 * Reads what a launcher needs from a forge disk image: the forge-boot
 * partition's header, kernel, initramfs and command line. The image is
 * untrusted: every offset and length is checked against the partition.
 */
#include "vmimage/vmimage-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"

#define MAX_KERNEL (256ULL << 20)
#define MAX_INITRD (1ULL << 30)

static int read_range(int fd, uint64_t part_off, uint64_t part_size, uint64_t off, uint64_t len,
                      uint64_t max, const char *what, void **ret, forge_error **err)
{
        char *buf;

        if (len == 0 || len > max || off > part_size || len > part_size - off)
                return forge_error_make(err, EINVAL, "corrupt disk image: bad %s extent", what);
        buf = malloc(len + 1);
        if (buf == NULL)
                return forge_error_make(err, ENOMEM, "read the %s", what);
        if (pread(fd, buf, len, (off_t)(part_off + off)) != (ssize_t)len) {
                free(buf);
                return forge_error_make(err, EIO, "corrupt disk image: short %s", what);
        }
        buf[len] = '\0';
        *ret = buf;
        return 0;
}

/* The boot partition's header and extents; the kernel and initramfs are read
 * only when read_data. */
static int boot_open(const char *disk_path, bool read_data, vmimage_boot *ret, forge_error **err)
{
        cleanup_close int fd = open(disk_path, O_RDONLY | O_CLOEXEC);
        struct vm_boot_header h;
        struct stat st;
        uint64_t off, size;
        vmimage_boot b = {0};
        void *cmd = NULL;

        if (fd < 0 || fstat(fd, &st) < 0)
                return forge_error_make(err, errno, "open disk image '%s'", disk_path);
        if (vm_gpt_find(fd, (uint64_t)st.st_size, VM_BOOT_NAME, &off, &size, err) < 0)
                return forge_error_prefix(err, "'%s'", disk_path);
        if (size < sizeof(h) || pread(fd, &h, sizeof(h), (off_t)off) != sizeof(h) ||
            memcmp(h.magic, VM_BOOT_MAGIC, 8) != 0 || (h.version != 1 && h.version != 2))
                return forge_error_make(err, EINVAL, "'%s': corrupt forge boot partition",
                                        disk_path);
        if (h.version == 2) {
                /* kernel and initramfs inside the ESP's UKI: extents are
                 * relative to the disk */
                off = 0;
                size = (uint64_t)st.st_size;
        }
        if (h.kernel_len == 0 || h.kernel_len > MAX_KERNEL || h.kernel_off > size ||
            h.kernel_len > size - h.kernel_off || h.initrd_len == 0 || h.initrd_len > MAX_INITRD ||
            h.initrd_off > size || h.initrd_len > size - h.initrd_off)
                return forge_error_make(err, EINVAL,
                                        "'%s': corrupt disk image: bad kernel or initramfs extent",
                                        disk_path);
        if ((read_data && (read_range(fd, off, size, h.kernel_off, h.kernel_len, MAX_KERNEL,
                                      "kernel", &b.kernel, err) < 0 ||
                           read_range(fd, off, size, h.initrd_off, h.initrd_len, MAX_INITRD,
                                      "initramfs", &b.initrd, err) < 0)) ||
            read_range(fd, off, size, h.cmdline_off, h.cmdline_len, VM_BOOT_CMDLINE_MAX,
                       "command line", &cmd, err) < 0) {
                vmimage_boot_release(&b);
                return forge_error_prefix(err, "'%s'", disk_path);
        }
        b.kernel_off = off + h.kernel_off;
        b.initrd_off = off + h.initrd_off;
        b.kernel_len = h.kernel_len;
        b.initrd_len = h.initrd_len;
        b.cmdline = cmd;
        if (strlen(b.cmdline) != h.cmdline_len) {
                vmimage_boot_release(&b);
                return forge_error_make(err, EINVAL, "'%s': corrupt command line", disk_path);
        }
        if (h.vmlinux_len != 0) {
                if (h.vmlinux_len > MAX_KERNEL || h.vmlinux_off > size ||
                    h.vmlinux_len > size - h.vmlinux_off) {
                        vmimage_boot_release(&b);
                        return forge_error_make(
                            err, EINVAL, "'%s': corrupt disk image: bad uncompressed kernel extent",
                            disk_path);
                }
                b.vmlinux_off = off + h.vmlinux_off;
                b.vmlinux_len = h.vmlinux_len;
        }
        b.memory = h.memory;
        b.cpus = h.cpus;
        if (read_data && vm_bzimage_check(b.kernel, b.kernel_len, err) < 0) {
                vmimage_boot_release(&b);
                return forge_error_prefix(err, "'%s'", disk_path);
        }
        *ret = b;
        return 0;
}

int vmimage_boot_load(const char *disk_path, vmimage_boot *ret, forge_error **err)
{
        return boot_open(disk_path, true, ret, err);
}

int vmimage_boot_locate(const char *disk_path, vmimage_boot *ret, forge_error **err)
{
        return boot_open(disk_path, false, ret, err);
}

void vmimage_boot_release(vmimage_boot *b)
{
        free(b->kernel);
        free(b->initrd);
        free(b->cmdline);
        memset(b, 0, sizeof(*b));
}

bool vmimage_is_disk(const char *path)
{
        cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
        char sig[8];

        return fd >= 0 && pread(fd, sig, sizeof(sig), 512) == (ssize_t)sizeof(sig) &&
               memcmp(sig, "EFI PART", 8) == 0;
}
