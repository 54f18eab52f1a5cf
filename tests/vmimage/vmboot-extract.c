/* SPDX-License-Identifier: MIT */
/* Test tool: writes the kernel, initramfs and command line a forge disk
 * image carries (vmimage_boot_load) to DIR/{kernel,initrd,cmdline}, and
 * the uncompressed kernel, when the disk has one, to DIR/vmlinux. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "vmimage/vmimage.h"

static int put(const char *dir, const char *name, const void *buf, size_t len)
{
        char path[4096];
        FILE *f;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "w");
        if (f == NULL || fwrite(buf, 1, len, f) != len)
                return -1;
        return fclose(f);
}

int main(int argc, char **argv)
{
        vmimage_boot b;
        forge_error *err = NULL;

        if (argc != 3) {
                fprintf(stderr, "usage: vmboot-extract DISK DIR\n");
                return 2;
        }
        if (vmimage_boot_load(argv[1], &b, &err) < 0) {
                fprintf(stderr, "vmboot-extract: %s\n", err->msg);
                return 1;
        }
        if (put(argv[2], "kernel", b.kernel, b.kernel_len) < 0 ||
            put(argv[2], "initrd", b.initrd, b.initrd_len) < 0 ||
            put(argv[2], "cmdline", b.cmdline, strlen(b.cmdline)) < 0) {
                perror("vmboot-extract");
                return 1;
        }
        if (b.vmlinux_len) {
                char *v = malloc(b.vmlinux_len);
                int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
                if (v == NULL || fd < 0 ||
                    pread(fd, v, b.vmlinux_len, (off_t)b.vmlinux_off) != (ssize_t)b.vmlinux_len ||
                    put(argv[2], "vmlinux", v, b.vmlinux_len) < 0) {
                        perror("vmboot-extract: vmlinux");
                        return 1;
                }
                close(fd);
                free(v);
        }
        printf("memory=%llu cpus=%u\n", b.memory, b.cpus);
        vmimage_boot_release(&b);
        return 0;
}
