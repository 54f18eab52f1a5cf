/* SPDX-License-Identifier: MIT */
/* Disk image pieces: GPT round trip and hostile tables, bzImage checks,
 * derived GUIDs, boot partition bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <zlib.h>

#include "common/fs.h"
#include "common/vmproto.h"
#include "vmimage/vmimage-internal.h"
#include "testutil.h"

static int tmp_disk(uint64_t size, char path[64])
{
        int fd;
        snprintf(path, 64, "/tmp/forge-gpt-XXXXXX");
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t)size), 0);
        return fd;
}

static void test_gpt_roundtrip(void **state)
{
        char path[64];
        int fd = tmp_disk(64 << 20, path);
        vm_part parts[2] = {{"forge-esp", VM_ESP_TYPE, 1 << 20, 8 << 20},
                            {"forge-boot", VM_FORGE_BOOT_TYPE, 9 << 20, 4 << 20}};
        forge_error *e = NULL;
        uint64_t off, size;

        assert_int_equal(vm_gpt_write(fd, 64 << 20, parts, 2, "sha256:seed", &e), 0);
        assert_int_equal(vm_gpt_find(fd, 64 << 20, "forge-boot", &off, &size, &e), 0);
        assert_int_equal(off, 9 << 20);
        assert_int_equal(size, 4 << 20);
        assert_true(vm_gpt_find(fd, 64 << 20, "nope", &off, &size, &e) < 0);
        forge_error_release(&e);
        /* a flipped byte in the entries: CRC mismatch, refused */
        assert_int_equal(pwrite(fd, "X", 1, 1024 + 40), 1);
        assert_true(vm_gpt_find(fd, 64 << 20, "forge-boot", &off, &size, &e) < 0);
        assert_non_null(strstr(e->msg, "CRC"));
        forge_error_release(&e);
        /* not GPT at all */
        assert_int_equal(pwrite(fd, "NOTAGPT!", 8, 512), 8);
        assert_true(vm_gpt_find(fd, 64 << 20, "forge-boot", &off, &size, &e) < 0);
        forge_error_release(&e);
        close(fd);
        unlink(path);
}

static void test_guid(void **state)
{
        uint8_t a[16], b[16], c[16];
        char txt[37];
        vm_guid_derive("sha256:x", "root", a);
        vm_guid_derive("sha256:x", "root", b);
        vm_guid_derive("sha256:y", "root", c);
        assert_memory_equal(a, b, 16);
        assert_memory_not_equal(a, c, 16);
        vm_guid_format(a, txt);
        assert_int_equal(txt[14], '4'); /* version 4 shape */
        vm_guid_parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", a);
        assert_int_equal(a[0], 0x28);
        assert_int_equal(a[3], 0xc1);
        vm_guid_format(a, txt);
        assert_string_equal(txt, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
}

static void test_bzimage_check(void **state)
{
        uint8_t k[0x300] = {0};
        forge_error *e = NULL;

        assert_true(vm_bzimage_check(k, sizeof(k), &e) < 0);
        assert_non_null(strstr(e->msg, "not a bzImage"));
        forge_error_release(&e);
        memcpy(k + 0x202, "HdrS", 4);
        k[0x206] = 0x0f;
        k[0x207] = 0x02;                                     /* 2.15 */
        assert_true(vm_bzimage_check(k, sizeof(k), &e) < 0); /* no XLF_KERNEL_64 */
        assert_non_null(strstr(e->msg, "64-bit"));
        forge_error_release(&e);
        k[0x236] = 1;
        assert_int_equal(vm_bzimage_check(k, sizeof(k), &e), 0);
        k[0x206] = 0x0a; /* 2.10 */
        assert_true(vm_bzimage_check(k, sizeof(k), &e) < 0);
        forge_error_release(&e);
        assert_true(vm_bzimage_check(k, 0x100, &e) < 0); /* truncated */
        forge_error_release(&e);
}

/* gzip of len bytes (zlib's gzip wrapper) */
static uint8_t *gzip_of(const uint8_t *in, size_t len, size_t *ret_len)
{
        z_stream z = {0};
        uint8_t *out = malloc(len + 1024);

        assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
        z.next_in = (uint8_t *)in;
        z.avail_in = (uInt)len;
        z.next_out = out;
        z.avail_out = (uInt)(len + 1024);
        assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
        *ret_len = z.total_out;
        deflateEnd(&z);
        return out;
}

/* A bzImage of 4 setup sectors whose payload is the given bytes. */
static void write_bzimage(const char *path, const uint8_t *payload, size_t plen)
{
        size_t len = 5 * 512 + 16 + plen;
        uint8_t *k = calloc(1, len);
        int fd;

        k[0x1f1] = 4;
        memcpy(k + 0x202, "HdrS", 4);
        k[0x206] = 0x0f;
        k[0x207] = 0x02;
        k[0x236] = 1;
        k[0x248] = 16; /* payload_offset, from the protected-mode part */
        k[0x24c] = (uint8_t)plen;
        k[0x24d] = (uint8_t)(plen >> 8);
        k[0x24e] = (uint8_t)(plen >> 16);
        memcpy(k + 5 * 512 + 16, payload, plen);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, k, len), (ssize_t)len);
        close(fd);
        free(k);
}

/* The bzImage's compressed payload comes out as the ELF it holds; other
 * payloads leave the bzImage alone; a broken one is an error. */
static void test_vmlinux_extract(void **state)
{
        char dir[] = "/tmp/forge-vmlinux-XXXXXX", bz[64], out[64];
        uint8_t elf[70000];
        uint8_t *gz;
        size_t gzlen, got_len;
        char *got = NULL;
        forge_error *e = NULL;
        bool made;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(bz, sizeof(bz), "%s/bz", dir);
        snprintf(out, sizeof(out), "%s/vmlinux", dir);
        for (size_t i = 0; i < sizeof(elf); i++)
                elf[i] = (uint8_t)(i * 31 / 7);
        memcpy(elf, "\177ELF\2\1\1", 7);
        memset(elf + 7, 0, 9);
        elf[18] = 62; /* EM_X86_64 */
        elf[19] = 0;
        gz = gzip_of(elf, sizeof(elf), &gzlen);
        write_bzimage(bz, gz, gzlen);
        assert_int_equal(vm_vmlinux_extract(bz, out, &made, &e), 0);
        assert_true(made);
        assert_int_equal(fs_read_all(AT_FDCWD, out, 1 << 20, &got, &got_len, &e), 0);
        assert_int_equal(got_len, sizeof(elf));
        assert_memory_equal(got, elf, sizeof(elf));
        free(got);
        unlink(out);

        /* a broken stream in a known format: refused, nothing written */
        write_bzimage(bz, gz, gzlen / 2);
        assert_int_equal(vm_vmlinux_extract(bz, out, &made, &e), -1);
        assert_non_null(strstr(e->msg, "compressed payload"));
        forge_error_release(&e);
        assert_false(made);
        assert_int_equal(access(out, F_OK), -1);
        free(gz);

        /* compressed, but not an x86-64 ELF (another machine) */
        elf[18] = 3;
        gz = gzip_of(elf, sizeof(elf), &gzlen);
        write_bzimage(bz, gz, gzlen);
        assert_int_equal(vm_vmlinux_extract(bz, out, &made, &e), 0);
        assert_false(made);
        free(gz);
        /* not compressed in any format libarchive reads */
        write_bzimage(bz, elf, 4096);
        assert_int_equal(vm_vmlinux_extract(bz, out, &made, &e), 0);
        assert_false(made);
        /* a payload extent past the file */
        write_bzimage(bz, elf, 4096);
        {
                int fd = open(bz, O_WRONLY);
                assert_int_equal(ftruncate(fd, 5 * 512 + 100), 0);
                close(fd);
        }
        assert_int_equal(vm_vmlinux_extract(bz, out, &made, &e), 0);
        assert_false(made);
        assert_int_equal(access(out, F_OK), -1);
        unlink(bz);
        rmdir(dir);
}

static void test_boot_partition_bounds(void **state)
{
        char path[64];
        int fd = tmp_disk(16 << 20, path);
        vm_part parts[1] = {{VM_BOOT_NAME, VM_FORGE_BOOT_TYPE, 1 << 20, 4 << 20}};
        struct vm_boot_header h = {0};
        forge_error *e = NULL;
        vmimage_boot b;
        char buf[4];

        assert_int_equal(vm_gpt_write(fd, 16 << 20, parts, 1, "s", &e), 0);
        memcpy(h.magic, VM_BOOT_MAGIC, 8);
        h.version = 1;
        h.kernel_off = 4096;
        h.kernel_len = 1ULL << 40; /* lies: beyond the partition */
        h.initrd_off = 8192;
        h.initrd_len = 10;
        h.cmdline_off = 12288;
        h.cmdline_len = 3;
        assert_int_equal(pwrite(fd, &h, sizeof(h), 1 << 20), sizeof(h));
        assert_true(vmimage_boot_load(path, &b, &e) < 0);
        assert_non_null(strstr(e->msg, "kernel"));
        forge_error_release(&e);
        h.kernel_len = 100;
        h.kernel_off = (4 << 20) - 50; /* runs past the end */
        assert_int_equal(pwrite(fd, &h, sizeof(h), 1 << 20), sizeof(h));
        assert_true(vmimage_boot_load(path, &b, &e) < 0);
        forge_error_release(&e);
        /* version 2: extents relative to the disk, still bounded by it */
        h.version = 2;
        h.kernel_off = (16 << 20) - 50;
        assert_int_equal(pwrite(fd, &h, sizeof(h), 1 << 20), sizeof(h));
        assert_true(vmimage_boot_load(path, &b, &e) < 0);
        assert_non_null(strstr(e->msg, "kernel"));
        forge_error_release(&e);
        /* the uncompressed kernel's extent: within the partition (v1), its
         * offset from the partition's start */
        h.version = 1;
        h.kernel_off = 4096;
        h.cmdline_len = 3;
        memcpy(buf, "abc", 3);
        assert_int_equal(pwrite(fd, buf, 3, (1 << 20) + 12288), 3);
        h.vmlinux_off = 16384;
        h.vmlinux_len = 4 << 20; /* 16 KiB past the partition's end */
        assert_int_equal(pwrite(fd, &h, sizeof(h), 1 << 20), sizeof(h));
        assert_true(vmimage_boot_locate(path, &b, &e) < 0);
        assert_non_null(strstr(e->msg, "uncompressed kernel"));
        forge_error_release(&e);
        h.vmlinux_off = UINT64_MAX - 10;
        h.vmlinux_len = 100;
        assert_int_equal(pwrite(fd, &h, sizeof(h), 1 << 20), sizeof(h));
        assert_true(vmimage_boot_locate(path, &b, &e) < 0);
        forge_error_release(&e);
        h.vmlinux_off = 16384;
        h.vmlinux_len = 4096;
        assert_int_equal(pwrite(fd, &h, sizeof(h), 1 << 20), sizeof(h));
        assert_int_equal(vmimage_boot_locate(path, &b, &e), 0);
        assert_int_equal(b.vmlinux_off, (1 << 20) + 16384);
        assert_int_equal(b.vmlinux_len, 4096);
        vmimage_boot_release(&b);
        h.vmlinux_off = h.vmlinux_len = 0;
        h.version = 3; /* unknown */
        assert_int_equal(pwrite(fd, &h, sizeof(h), 1 << 20), sizeof(h));
        assert_true(vmimage_boot_load(path, &b, &e) < 0);
        assert_non_null(strstr(e->msg, "corrupt forge boot partition"));
        forge_error_release(&e);
        close(fd);
        unlink(path);
}

static void test_run_config(void **state)
{
        json_t *cfg =
            json_pack("{s:{s:[s], s:[s,s], s:[s], s:s, s:s}}", "config", "Entrypoint", "/bin/th",
                      "Cmd", "args", "x", "Env", "A=1", "WorkingDir", "/srv", "User", "1000:1000");
        char *rc = vmimage_run_config(cfg);
        assert_non_null(strstr(rc, "argv=2f62696e2f7468006172677300"
                                   "78\n"));
        assert_non_null(strstr(rc, "entrypoint=1\n"));
        assert_non_null(strstr(rc, "env=413d31\n"));
        assert_non_null(strstr(rc, "workdir=/srv\n"));
        assert_non_null(strstr(rc, "user=1000:1000\n"));
        free(rc);
        json_decref(cfg);
}

/* What the guest init reads back (common/vmproto): values that are not
 * strings skipped (the entrypoint count too), a workdir with a newline left
 * out, ENTRYPOINT [""] as none. */
static void test_run_config_edges(void **state)
{
        json_t *cfg = json_pack("{s:{s:[s,i,s], s:[s], s:[s,n], s:s, s:s}}", "config", "Entrypoint",
                                "/e", 7, "-x", "Cmd", "c", "Env", "A=\n1", "WorkingDir",
                                "/a\nuser=root", "Hostname", "h");
        char *rc = vmimage_run_config(cfg);
        vmproto_image im;
        const char *bad;

        (void)state;
        assert_non_null(rc);
        assert_int_equal(vmproto_image_decode(rc, &im, &bad), 0);
        assert_int_equal(im.argc, 3);
        assert_string_equal(im.argv[1], "-x");
        assert_string_equal(im.argv[2], "c");
        assert_int_equal(im.n_entrypoint, 2);
        assert_int_equal(im.n_env, 1);
        assert_string_equal(im.env[0], "A=\n1");
        assert_null(im.workdir);
        assert_null(im.user);
        assert_string_equal(im.hostname, "h");
        vmproto_image_free(&im);
        free(rc);
        json_decref(cfg);
        cfg = json_pack("{s:{s:[s]}}", "config", "Entrypoint", "");
        rc = vmimage_run_config(cfg);
        assert_non_null(rc);
        assert_string_equal(rc, "argv=\nentrypoint=0\nenv=\n");
        free(rc);
        json_decref(cfg);
}

static void put_file(const char *dir, const char *rel, const char *text)
{
        tu_write_file(dir, rel, text, 0644);
}

/* The initramfs: modules resolved through modules.dep (dependencies first),
 * built-ins skipped, compressed modules decompressed, entries sorted with
 * fixed metadata; a missing driver is an error naming it. */
static void test_initramfs(void **state)
{
        char dir[] = "/tmp/forge-initrd-XXXXXX", path[600], out[600], initp[600];
        vmimage_opts o = {0};
        vm_kernel k = {0};
        forge_error *e = NULL;
        struct archive *a;
        struct archive_entry *ae;
        const char *want[] = {"init",
                              "modules",
                              "modules/00-virtio_pci_modern_dev.ko",
                              "modules/01-virtio_ring.ko",
                              "modules/02-virtio.ko",
                              "modules/03-virtio_pci.ko",
                              "modules/04-virtio_blk.ko",
                              "modules/order"};
        size_t n = 0;
        gzFile gz;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/kernel/drivers/virtio", dir);
        assert_int_equal(fs_mkdir_p(path, 0755, &e), 0);
        snprintf(path, sizeof(path), "%s/kernel/drivers/block", dir);
        assert_int_equal(fs_mkdir_p(path, 0755, &e), 0);
        put_file(dir, "modules.builtin", "kernel/fs/ext4/ext4.ko\n");
        put_file(
            dir, "modules.dep",
            "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko "
            "kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n"
            "kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"
            "kernel/drivers/virtio/virtio_ring.ko:\nkernel/drivers/virtio/virtio.ko:\n"
            "kernel/drivers/block/virtio_blk.ko.gz: kernel/drivers/virtio/virtio_ring.ko "
            "kernel/drivers/virtio/virtio.ko\n");
        put_file(dir, "kernel/drivers/virtio/virtio_pci.ko", "KO virtio_pci");
        put_file(dir, "kernel/drivers/virtio/virtio_pci_modern_dev.ko", "KO modern");
        put_file(dir, "kernel/drivers/virtio/virtio_ring.ko", "KO ring");
        put_file(dir, "kernel/drivers/virtio/virtio.ko", "KO virtio");
        put_file(dir, "init", "#!init");
        snprintf(path, sizeof(path), "%s/kernel/drivers/block/virtio_blk.ko.gz", dir);
        gz = gzopen(path, "wb");
        assert_non_null(gz);
        assert_int_equal(gzputs(gz, "KO blk, was compressed"), 22);
        gzclose(gz);

        snprintf(initp, sizeof(initp), "%s/init", dir);
        o.init_path = initp;
        k.modules_dir = dir;
        k.version = "test";
        snprintf(out, sizeof(out), "%s/initrd.cpio", dir);
        assert_int_equal(vm_initramfs_write(&o, &k, out, &e), 0);

        a = archive_read_new();
        archive_read_support_format_cpio(a);
        assert_int_equal(archive_read_open_filename(a, out, 10240), ARCHIVE_OK);
        while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
                char buf[256] = "";
                assert_true(n < sizeof(want) / sizeof(want[0]));
                assert_string_equal(archive_entry_pathname(ae), want[n]);
                assert_int_equal(archive_entry_uid(ae), 0);
                assert_int_equal(archive_entry_gid(ae), 0);
                assert_int_equal(archive_entry_mtime(ae), VM_KERNEL_EPOCH);
                archive_read_data(a, buf, sizeof(buf) - 1);
                if (strcmp(want[n], "modules/04-virtio_blk.ko") == 0)
                        assert_string_equal(buf, "KO blk, was compressed");
                if (strcmp(want[n], "modules/order") == 0)
                        assert_string_equal(buf,
                                            "00-virtio_pci_modern_dev.ko\n01-virtio_ring.ko\n"
                                            "02-virtio.ko\n03-virtio_pci.ko\n04-virtio_blk.ko\n");
                n++;
        }
        assert_int_equal(n, sizeof(want) / sizeof(want[0]));
        archive_read_free(a);

        /* ext4 neither built in nor a module */
        put_file(dir, "modules.builtin", "");
        assert_true(vm_initramfs_write(&o, &k, out, &e) < 0);
        assert_non_null(strstr(e->msg, "ext4"));
        forge_error_release(&e);
        /* no virtio_blk */
        put_file(dir, "modules.builtin", "kernel/fs/ext4/ext4.ko\n");
        assert_int_equal(
            unlink((snprintf(path, sizeof(path), "%s/kernel/drivers/block/virtio_blk.ko.gz", dir),
                    path)),
            0);
        assert_true(vm_initramfs_write(&o, &k, out, &e) < 0);
        assert_non_null(strstr(e->msg, "virtio_blk"));
        forge_error_release(&e);
        assert_int_equal(fs_rm_rf(dir, &e), 0);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_gpt_roundtrip), cmocka_unit_test(test_guid),
             cmocka_unit_test(test_bzimage_check), cmocka_unit_test(test_vmlinux_extract),
             cmocka_unit_test(test_boot_partition_bounds), cmocka_unit_test(test_run_config),
             cmocka_unit_test(test_run_config_edges), cmocka_unit_test(test_initramfs))
