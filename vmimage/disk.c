/* SPDX-License-Identifier: MIT */
/*
 * The disk image:
 *
 *   LBA 0..33        protective MBR, GPT header and entries
 *   forge-esp        FAT, \EFI\BOOT\BOOTX64.EFI = systemd-stub + kernel +
 *                    initramfs + command line (a unified kernel image), so
 *                    any UEFI firmware boots the disk with no arguments
 *   forge-boot       raw: a header and the command line; the header points
 *                    at the kernel and initramfs inside the UKI (version 2),
 *                    or, when they can't be found there, they follow it
 *                    (version 1): what forge's own launcher reads
 *   forge-root       ext4 with the flattened image and /.forge/run
 *   last 33 LBAs     backup GPT
 *
 * Reproducible: every GUID, UUID, serial and hash seed is derived from the
 * image digest; mke2fs runs with a fixed clock in a fresh PID namespace (its
 * random inode generations are seeded from pid and time), inode times are
 * then set to source_date_epoch with debugfs.
 */
#include "vmimage/vmimage-internal.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/safe-open.h"

#define MiB (1ULL << 20)
#define STUB "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

static uint64_t align_up(uint64_t v, uint64_t a)
{
        return (v + a - 1) / a * a;
}

/* Runs argv (with extra environment) and waits; output goes to a log file
 * whose tail becomes the error message. */
static int run(char *const argv[], char *const extra_env[], const char *log, forge_error **err)
{
        pid_t pid = fork();
        int st;

        if (pid < 0)
                return forge_error_make(err, errno, "fork");
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                for (size_t i = 0; extra_env && extra_env[i]; i++)
                        putenv(extra_env[i]);
                execvp(argv[0], argv);
                fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return forge_error_make(err, errno, "wait for %s", argv[0]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                cleanup_free char *out = NULL;
                size_t len = 0;
                forge_error *e = NULL;
                fs_read_all(AT_FDCWD, log, 1 << 20, &out, &len, &e);
                forge_error_release(&e);
                return forge_error_make(err, 0, "%s failed (%s %d): %s", argv[0],
                                        WIFEXITED(st) ? "exit" : "signal",
                                        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                                        out && len > 400 ? out + len - 400
                                        : out            ? out
                                                         : "");
        }
        return 0;
}

int vm_tree_walk(const char *dir, int max_depth, vm_tree_fn fn, void *ctx)
{
        cleanup_strv char **names = NULL;
        forge_error *e = NULL;

        if (max_depth < 0 || fs_dir_list_sorted(AT_FDCWD, dir, &names, &e) < 0) {
                forge_error_release(&e);
                return 0;
        }
        for (size_t i = 0; names[i]; i++) {
                cleanup_free char *p = fs_path_join(dir, names[i]);
                struct stat st;
                if (p == NULL || lstat(p, &st) < 0)
                        continue;
                if (fn(ctx, p, names[i], &st) < 0)
                        return -1;
                if (S_ISDIR(st.st_mode) && vm_tree_walk(p, max_depth - 1, fn, ctx) < 0)
                        return -1;
        }
        return 0;
}

typedef struct tree_size {
        uint64_t bytes, inodes;
} tree_size;

static int add_size(void *ctx, const char *path, const char *name, const struct stat *st)
{
        tree_size *t = ctx;
        (void)path;
        (void)name;
        t->inodes++;
        t->bytes += align_up((uint64_t)st->st_size, 4096);
        return 0;
}

/* debugfs script: every inode's atime/ctime/crtime = source_date_epoch. */
static int write_time_script(FILE *f, const char *dir, const char *rel, uint64_t sde,
                             forge_error **err)
{
        cleanup_strv char **names = NULL;

        fprintf(f, "sif \"%s\" atime @%llu\nsif \"%s\" ctime @%llu\nsif \"%s\" crtime @%llu\n",
                rel[0] ? rel : "/", (unsigned long long)sde, rel[0] ? rel : "/",
                (unsigned long long)sde, rel[0] ? rel : "/", (unsigned long long)sde);
        if (fs_dir_list_sorted(AT_FDCWD, dir, &names, err) < 0)
                return -1;
        for (size_t i = 0; names[i]; i++) {
                cleanup_free char *p = fs_path_join(dir, names[i]), *r = NULL;
                struct stat st;
                /* debugfs takes a backslash literally (systemd's unit names
                 * such as system-systemd\x2dcryptsetup.slice have them), but
                 * cannot quote a '"' or a newline */
                if (strpbrk(names[i], "\"\n") != NULL)
                        return forge_error_make(err, EINVAL,
                                                "file name '%s' can't be put in a "
                                                "disk image",
                                                names[i]);
                if (p == NULL || asprintf(&r, "%s/%s", rel, names[i]) < 0 || lstat(p, &st) < 0)
                        return forge_error_make(err, errno ? errno : ENOMEM, "disk image");
                if (S_ISDIR(st.st_mode)) {
                        if (write_time_script(f, p, r, sde, err) < 0)
                                return -1;
                } else {
                        fprintf(f,
                                "sif \"%s\" atime @%llu\nsif \"%s\" ctime @%llu\nsif \"%s\" "
                                "crtime @%llu\n",
                                r, (unsigned long long)sde, r, (unsigned long long)sde, r,
                                (unsigned long long)sde);
                }
        }
        return 0;
}

static int make_ext4(const vmimage_opts *o, const char *img, uint64_t size, const char *log,
                     forge_error **err)
{
        uint8_t g[16];
        char uuid[37], size_arg[32], fake[64], eopt[160];
        cleanup_free char *script = NULL;
        cleanup_fclose FILE *f = NULL;
        cleanup_close int fd = -1;

        vm_guid_derive(o->seed, "root-fs", g);
        vm_guid_format(g, uuid);
        snprintf(size_arg, sizeof(size_arg), "%lluk", (unsigned long long)(size / 1024));
        /* e2fsprogs reads E2FSPROGS_FAKE_TIME=0 as "unset" and takes the wall
         * clock: at the default epoch the file system's own times (superblock,
         * lost+found) are 1 instead; every file's are set to sde below. */
        snprintf(fake, sizeof(fake), "E2FSPROGS_FAKE_TIME=%llu",
                 (unsigned long long)(o->sde > 0 ? o->sde : 1));
        snprintf(eopt, sizeof(eopt),
                 "hash_seed=%s,root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0", uuid);
        fd = open(img, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
                return forge_error_make(err, errno, "create '%s'", img);
        {
                /* a fresh PID namespace: mke2fs seeds its randomness from pid and time */
                char *argv[] = {
                    "unshare", "--pid",     "--fork", "mke2fs",     "-q",
                    "-t",      "ext4",      "-L",     "forge-root", "-U",
                    uuid,      "-E",        eopt,     "-d",         (char *)o->rootfs_dir,
                    "-F",      (char *)img, size_arg, NULL,         NULL,
                    NULL};
                if (geteuid() != 0) {
                        /* unprivileged: a user namespace makes the PID namespace possible */
                        memmove(argv + 3, argv + 1, sizeof(argv) - 3 * sizeof(argv[0]));
                        argv[1] = "--user";
                        argv[2] = "--map-root-user";
                }
                char *env[] = {fake, NULL};
                if (run(argv, env, log, err) < 0)
                        return forge_error_prefix(err, "make the root file system");
        }
        if (asprintf(&script, "%s.debugfs", img) < 0 || (f = fopen(script, "we")) == NULL)
                return forge_error_make(err, errno, "debugfs script");
        if (write_time_script(f, o->rootfs_dir, "", o->sde, err) < 0)
                return -1;
        fclose(take_ptr(f));
        {
                char *argv[] = {"debugfs", "-w", "-f", script, (char *)img, NULL};
                char *env[] = {fake, NULL};
                if (run(argv, env, log, err) < 0)
                        return forge_error_prefix(err, "set the root file system's timestamps");
        }
        return 0;
}

/* objcopy stamps PE files with the current time: set the COFF TimeDateStamp
 * to source_date_epoch and recompute the PE checksum. */
static int pe_fix_timestamp(const char *path, uint64_t sde, forge_error **err)
{
        cleanup_free uint8_t *b = NULL;
        size_t len;
        uint32_t pe, ts = (uint32_t)sde, sum = 0;

        if (fs_read_all(AT_FDCWD, path, 512 << 20, (char **)&b, &len, err) < 0)
                return -1;
        if (len < 0x40 || b[0] != 'M' || b[1] != 'Z')
                return forge_error_make(err, EINVAL, "the unified kernel image is not a PE file");
        pe = (uint32_t)(b[0x3c] | b[0x3d] << 8 | b[0x3e] << 16 | (uint32_t)b[0x3f] << 24);
        if ((uint64_t)pe + 0x5c > len || memcmp(b + pe, "PE\0\0", 4) != 0)
                return forge_error_make(err, EINVAL, "the unified kernel image is not a PE file");
        memcpy(b + pe + 8, &ts, 4);
        memset(b + pe + 0x58, 0, 4);
        for (size_t i = 0; i + 1 < len; i += 2) {
                sum += (uint32_t)(b[i] | b[i + 1] << 8);
                sum = (sum & 0xffff) + (sum >> 16);
        }
        if (len & 1) {
                sum += b[len - 1];
                sum = (sum & 0xffff) + (sum >> 16);
        }
        sum = (sum & 0xffff) + (uint32_t)len;
        memcpy(b + pe + 0x58, &sum, 4);
        {
                cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
                if (fd < 0 || pwrite(fd, b, len, 0) != (ssize_t)len)
                        return forge_error_make(err, errno, "write '%s'", path);
        }
        return 0;
}

/* The end of the stub's last section (image base included, as objcopy takes
 * VMAs) and its section alignment, from its PE headers: the added sections
 * go after it, like ukify places them (systemd 252's stub needs that). */
static int stub_layout(uint64_t *ret_end, uint64_t *ret_align, forge_error **err)
{
        cleanup_free char *b = NULL;
        size_t len;
        uint32_t pe, opt, nsec, optsize;
        uint64_t base, align, end = 0;

        /* -1, not forge_error_*()'s result: at -O2 gcc can't see that is always
         * negative and warns that the caller's out-parameters may be unset */
        if (fs_read_all(AT_FDCWD, STUB, 16 << 20, &b, &len, err) < 0) {
                forge_error_prefix(err, "the EFI stub (package systemd-boot-efi)");
                return -1;
        }
#define U16(o) ((uint32_t)(uint8_t)b[o] | (uint32_t)(uint8_t)b[(o) + 1] << 8)
#define U32(o) (U16(o) | U16((o) + 2) << 16)
        if (len < 0x40 || b[0] != 'M' || b[1] != 'Z')
                goto bad;
        pe = U32(0x3c);
        if ((uint64_t)pe + 24 + 40 > len || memcmp(b + pe, "PE\0\0", 4) != 0)
                goto bad;
        nsec = U16(pe + 6);
        optsize = U16(pe + 20);
        opt = pe + 24;
        if (U16(opt) != 0x20b || (uint64_t)opt + optsize + (uint64_t)nsec * 40 > len)
                goto bad; /* not PE32+ */
        base = (uint64_t)U32(opt + 24) | (uint64_t)U32(opt + 28) << 32;
        align = U32(opt + 32);
        if (align == 0 || (align & (align - 1)) != 0)
                goto bad;
        for (uint32_t i = 0; i < nsec; i++) {
                uint32_t sec = opt + optsize + i * 40;
                uint64_t e = (uint64_t)U32(sec + 12) + U32(sec + 8);
                if (e > end)
                        end = e;
        }
#undef U16
#undef U32
        *ret_end = base + align_up(end, align);
        *ret_align = align;
        return 0;
bad:
        forge_error_make(err, EINVAL, "'%s' is not a PE32+ EFI stub", STUB);
        return -1;
}

static int make_uki(const vmimage_opts *o, const vm_kernel *k, const char *initrd,
                    const char *cmdline_file, const char *out, const char *log, forge_error **err)
{
        struct stat st;
        cleanup_free char *osrel = NULL;
        const char *names[4] = {".osrel", ".cmdline", ".linux", ".initrd"};
        const char *files[4];
        char add[4][600], vma[4][64];
        uint64_t at, align;

        if (access(STUB, R_OK) < 0)
                return forge_error_make(err, errno,
                                        "'%s' (package systemd-boot-efi) is needed for "
                                        "UEFI boot",
                                        STUB);
        if (stub_layout(&at, &align, err) < 0)
                return -1;
        if (asprintf(&osrel, "%s.osrel", out) < 0)
                return forge_error_make(err, ENOMEM, "uki");
        {
                const char *txt = "NAME=forge\nID=forge\nPRETTY_NAME=\"forge VM\"\n";
                cleanup_close int fd = open(osrel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || fs_write_all(fd, txt, strlen(txt)) < 0)
                        return forge_error_make(err, errno, "uki");
        }
        files[0] = osrel;
        files[1] = cmdline_file;
        files[2] = k->bzimage;
        files[3] = initrd;
        for (int i = 0; i < 4; i++) {
                if (stat(files[i], &st) < 0)
                        return forge_error_make(err, errno, "uki: '%s'", files[i]);
                if ((size_t)snprintf(add[i], sizeof(add[i]), "%s=%s", names[i], files[i]) >=
                    sizeof(add[i]))
                        return forge_error_make(err, ENAMETOOLONG, "uki: '%s'", files[i]);
                snprintf(vma[i], sizeof(vma[i]), "%s=0x%llx", names[i], (unsigned long long)at);
                at = align_up(at + (uint64_t)st.st_size, align);
        }
        {
                char *argv[] = {"objcopy",   "--add-section",
                                add[0],      "--change-section-vma",
                                vma[0],      "--add-section",
                                add[1],      "--change-section-vma",
                                vma[1],      "--add-section",
                                add[2],      "--change-section-vma",
                                vma[2],      "--add-section",
                                add[3],      "--change-section-vma",
                                vma[3],      STUB,
                                (char *)out, NULL};
                if (run(argv, NULL, log, err) < 0)
                        return forge_error_prefix(err, "build the unified kernel image");
        }
        /* the kernel artifacts are shared by every image with the same kernel
         * (cached in the store): their timestamps don't depend on the image */
        (void)o;
        return pe_fix_timestamp(out, VM_KERNEL_EPOCH, err);
}

static int make_esp(const vmimage_opts *o, const char *uki, const char *img, uint64_t size,
                    const char *log, forge_error **err)
{
        char serial[16], kb[32], sde_env[64];
        uint8_t g[16];
        cleanup_free char *tree = NULL, *efi = NULL, *boot = NULL, *dst = NULL;
        struct timespec ts[2] = {{(time_t)o->sde, 0}, {(time_t)o->sde, 0}};

        vm_guid_derive(o->seed, "esp", g);
        snprintf(serial, sizeof(serial), "%02X%02X%02X%02X", g[0], g[1], g[2], g[3]);
        snprintf(kb, sizeof(kb), "%llu", (unsigned long long)(size / 1024));
        snprintf(sde_env, sizeof(sde_env), "SOURCE_DATE_EPOCH=%llu", (unsigned long long)o->sde);
        unlink(img);
        {
                char *argv[] = {"mkfs.fat",  "--invariant", "-i",        serial, "-n",
                                "FORGE-ESP", "-C",          (char *)img, kb,     NULL};
                char *env[] = {sde_env, NULL};
                if (run(argv, env, log, err) < 0)
                        return forge_error_prefix(err, "make the EFI system partition");
        }
        if (asprintf(&tree, "%s.tree", img) < 0 || asprintf(&efi, "%s/EFI", tree) < 0 ||
            asprintf(&boot, "%s/EFI/BOOT", tree) < 0 ||
            asprintf(&dst, "%s/EFI/BOOT/BOOTX64.EFI", tree) < 0)
                return forge_error_make(err, ENOMEM, "esp");
        if (fs_mkdir_p(boot, 0755, err) < 0)
                return -1;
        if (link(uki, dst) < 0) {
                cleanup_close int in = open(uki, O_RDONLY | O_CLOEXEC);
                cleanup_close int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (in < 0 || out < 0 || fs_copy_fd(in, out, err) < 0)
                        return forge_error_make(err, errno, "esp");
        }
        utimensat(AT_FDCWD, dst, ts, 0);
        utimensat(AT_FDCWD, boot, ts, 0);
        utimensat(AT_FDCWD, efi, ts, 0);
        {
                char *argv[] = {"mcopy", "-s", "-m", "-i", (char *)img, efi, "::/", NULL};
                char *env[] = {sde_env, NULL};
                if (run(argv, env, log, err) < 0)
                        return forge_error_prefix(err, "fill the EFI system partition");
        }
        return 0;
}

/* Copies src into dst at offset, skipping holes. */
static int copy_sparse(const char *src, int dst, uint64_t offset, forge_error **err)
{
        cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC);
        cleanup_free char *buf = malloc(MiB);
        struct stat st;
        off_t pos = 0;

        if (in < 0 || fstat(in, &st) < 0 || buf == NULL)
                return forge_error_make(err, errno ? errno : ENOMEM, "read '%s'", src);
        while (pos < st.st_size) {
                off_t data = lseek(in, pos, SEEK_DATA), hole;
                if (data < 0)
                        break; /* the rest is a hole */
                hole = lseek(in, data, SEEK_HOLE);
                if (hole < 0)
                        hole = st.st_size;
                for (off_t p = data; p < hole;) {
                        size_t want = (size_t)(hole - p < (off_t)MiB ? hole - p : (off_t)MiB);
                        ssize_t n = pread(in, buf, want, p);
                        if (n <= 0)
                                return forge_error_make(err, n < 0 ? errno : EIO, "read '%s'", src);
                        if (pwrite(dst, buf, (size_t)n, (off_t)offset + p) != n)
                                return forge_error_make(err, errno, "write the disk image");
                        p += n;
                }
                pos = hole;
        }
        return 0;
}

/* Where the UKI's .linux and .initrd bytes lie in the ESP image, so the
 * forge boot partition can point at them instead of holding a second copy:
 * mcopy writes the only file of a fresh FAT into consecutive clusters; every
 * byte is compared, and when anything doesn't match the caller falls back to
 * copying (returns 0 = not found, 1 = found). */
static int pe_section(const uint8_t *b, size_t len, const char *name, uint64_t *ret_off,
                      uint64_t *ret_len)
{
        uint32_t pe, nsec, optsize;

        if (len < 0x40)
                return -1;
        pe = (uint32_t)b[0x3c] | (uint32_t)b[0x3d] << 8 | (uint32_t)b[0x3e] << 16 |
             (uint32_t)b[0x3f] << 24;
        if ((uint64_t)pe + 24 > len || memcmp(b + pe, "PE\0\0", 4) != 0)
                return -1;
        nsec = (uint32_t)b[pe + 6] | (uint32_t)b[pe + 7] << 8;
        optsize = (uint32_t)b[pe + 20] | (uint32_t)b[pe + 21] << 8;
        for (uint32_t i = 0; i < nsec; i++) {
                uint64_t sec = (uint64_t)pe + 24 + optsize + (uint64_t)i * 40;
                uint32_t vsize, raw;
                if (sec + 40 > len)
                        return -1;
                if (strncmp((const char *)b + sec, name, 8) != 0)
                        continue;
                memcpy(&vsize, b + sec + 8, 4);
                memcpy(&raw, b + sec + 20, 4);
                vsize = le32toh(vsize);
                raw = le32toh(raw);
                if ((uint64_t)raw + vsize > len)
                        return -1;
                *ret_off = raw;
                *ret_len = vsize;
                return 0;
        }
        return -1;
}

static int uki_locate(const char *esp, const char *uki, const char *kernel, const char *initrd,
                      uint64_t *ret_kernel, uint64_t *ret_initrd)
{
        cleanup_free char *u = NULL, *e = NULL, *kb = NULL, *ib = NULL;
        size_t ulen, elen, klen, ilen;
        uint64_t ko, kl, io, il;
        forge_error *err = NULL;
        int found = 0;

        if (fs_read_all(AT_FDCWD, uki, 512 << 20, &u, &ulen, &err) < 0 ||
            fs_read_all(AT_FDCWD, esp, 1 << 30, &e, &elen, &err) < 0 ||
            fs_read_all(AT_FDCWD, kernel, 512 << 20, &kb, &klen, &err) < 0 ||
            fs_read_all(AT_FDCWD, initrd, 1 << 30, &ib, &ilen, &err) < 0) {
                forge_error_release(&err);
                return 0;
        }
        if (pe_section((const uint8_t *)u, ulen, ".linux", &ko, &kl) < 0 ||
            pe_section((const uint8_t *)u, ulen, ".initrd", &io, &il) < 0 || kl != klen ||
            il != ilen || memcmp(u + ko, kb, klen) != 0 || memcmp(u + io, ib, ilen) != 0 ||
            ulen < 4096)
                return 0;
        for (size_t pos = 0; pos + ulen <= elen && !found; pos += 512) {
                if (memcmp(e + pos, u, 4096) != 0 || memcmp(e + pos, u, ulen) != 0)
                        continue;
                *ret_kernel = pos + ko;
                *ret_initrd = pos + io;
                found = 1;
        }
        return found;
}

/* The boot partition at off. in_esp (version 2): the kernel and initramfs
 * are the UKI's sections inside the ESP, at kernel_at and initrd_at from the
 * start of the disk, and only the command line is here; otherwise (version
 * 1) both follow the header, at offsets from the partition's start. */
static int write_boot_partition(const vmimage_opts *o, int fd, uint64_t off, const char *kernel,
                                const char *initrd, const char *vmlinux, bool in_esp,
                                uint64_t kernel_at, uint64_t initrd_at, const char *cmdline,
                                forge_error **err)
{
        struct vm_boot_header h = {0};
        struct stat ks, is, vs = {0};
        uint64_t base = in_esp ? 0 : off; /* what the header's offsets count from */

        if (stat(kernel, &ks) < 0 || stat(initrd, &is) < 0 || (vmlinux && stat(vmlinux, &vs) < 0))
                return forge_error_make(err, errno, "boot partition");
        memcpy(h.magic, VM_BOOT_MAGIC, 8);
        h.version = in_esp ? 2 : 1;
        h.cpus = o->cpus;
        h.memory = o->memory;
        h.kernel_len = (uint64_t)ks.st_size;
        h.initrd_len = (uint64_t)is.st_size;
        h.cmdline_len = strlen(cmdline);
        if (h.cmdline_len > VM_BOOT_CMDLINE_MAX)
                return forge_error_make(err, E2BIG, "the kernel command line is over %u bytes",
                                        VM_BOOT_CMDLINE_MAX);
        if (in_esp) {
                h.kernel_off = kernel_at;
                h.initrd_off = initrd_at;
                h.cmdline_off = off + 4096;
        } else {
                h.kernel_off = 4096;
                h.initrd_off = align_up(h.kernel_off + h.kernel_len, 4096);
                h.cmdline_off = align_up(h.initrd_off + h.initrd_len, 4096);
        }
        if (vmlinux) {
                /* after the command line's room, page aligned in the disk
                 * too (partitions are 1 MiB aligned): forge-vmm reads its
                 * segments straight into guest memory */
                h.vmlinux_off =
                    align_up(h.cmdline_off + VM_BOOT_CMDLINE_MAX, VM_BOOT_VMLINUX_ALIGN);
                h.vmlinux_len = (uint64_t)vs.st_size;
        }
        if (pwrite(fd, &h, sizeof(h), (off_t)off) != sizeof(h) ||
            pwrite(fd, cmdline, h.cmdline_len, (off_t)(base + h.cmdline_off)) !=
                (ssize_t)h.cmdline_len)
                return forge_error_make(err, errno, "write the boot partition");
        if (!in_esp && (copy_sparse(kernel, fd, off + h.kernel_off, err) < 0 ||
                        copy_sparse(initrd, fd, off + h.initrd_off, err) < 0))
                return -1;
        if (vmlinux && copy_sparse(vmlinux, fd, base + h.vmlinux_off, err) < 0)
                return -1;
        return 0;
}

/* The boot partition's size: header, then (in_esp: none of) kernel and
 * initramfs, the command line, then the uncompressed kernel if any. */
static uint64_t boot_part_size(bool in_esp, const char *kernel, const char *initrd,
                               const char *vmlinux)
{
        struct stat ks = {0}, is = {0}, vs = {0};
        uint64_t n = 4096;

        if (!in_esp) {
                stat(kernel, &ks);
                stat(initrd, &is);
                n += align_up((uint64_t)ks.st_size, 4096) + align_up((uint64_t)is.st_size, 4096);
        }
        n += VM_BOOT_CMDLINE_MAX;
        if (vmlinux) {
                stat(vmlinux, &vs);
                n = align_up(n, VM_BOOT_VMLINUX_ALIGN) + (uint64_t)vs.st_size;
        }
        return align_up(n, MiB);
}

static char *path_in(const char *dir, const char *name)
{
        return fs_path_join(dir, name);
}

/*
 * The guest init mounts /proc, /sys, /dev, /tmp and /run; with --read-only
 * the root is mounted read-only and cannot get them later. Missing ones are
 * added (empty, dated SOURCE_DATE_EPOCH); what the image has is left alone.
 */
static void add_mount_points(const char *rootfs, uint64_t sde)
{
        static const struct {
                const char *name;
                mode_t mode;
        } dirs[] = {{"proc", 0555}, {"sys", 0555}, {"dev", 0755}, {"tmp", 01777}, {"run", 0755}};
        struct timespec ts[2] = {{(time_t)sde, 0}, {(time_t)sde, 0}};
        cleanup_close int root = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;
        bool added = false;

        if (root < 0)
                return;
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                if (fstatat(root, dirs[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
                    mkdirat(root, dirs[i].name, dirs[i].mode) < 0)
                        continue;
                fchmodat(root, dirs[i].name, dirs[i].mode, 0);
                utimensat(root, dirs[i].name, ts, AT_SYMLINK_NOFOLLOW);
                added = true;
        }
        if (added)
                utimensat(root, ".", ts, 0);
}

/* One disk image being built: its work files and where its parts go. */
typedef struct build {
        const vmimage_opts *o;
        vm_kernel k;
        char *initrd, *uki, *esp, *root, *cmdf, *log, *cmdline;
        const char *kernel_path, *initrd_path, *uki_path; /* the boot files used */
        char *vmlinux;                 /* the kernel uncompressed (vmlinux.c), or NULL */
        bool shared;                   /* the boot partition points into the ESP */
        uint64_t kernel_at, initrd_at; /* there, from the start of the ESP */
        vm_part parts[3];
        uint64_t total;
} build;

/* The files of the build in o->tmpdir */
static const struct {
        size_t at; /* a char * in build */
        const char *name;
} tmp_files[] = {
    {offsetof(build, initrd), "initrd.cpio"}, {offsetof(build, uki), "uki.efi"},
    {offsetof(build, esp), "esp.img"},        {offsetof(build, root), "root.img"},
    {offsetof(build, cmdf), "cmdline"},       {offsetof(build, log), "log"},
};

static char **tmp_file(build *b, size_t i)
{
        return (char **)((char *)b + tmp_files[i].at);
}

static void build_release(build *b)
{
        vm_kernel_release(&b->k);
        for (size_t i = 0; i < ARRAY_SIZE(tmp_files); i++)
                free(*tmp_file(b, i));
        free(b->cmdline);
        free(b->vmlinux);
}

static int build_init(build *b, const vmimage_opts *o, forge_error **err)
{
        *b = (build){.o = o};
        for (size_t i = 0; i < ARRAY_SIZE(tmp_files); i++)
                if ((*tmp_file(b, i) = path_in(o->tmpdir, tmp_files[i].name)) == NULL)
                        return forge_error_make(err, ENOMEM, "disk image");
        if (asprintf(&b->cmdline, "console=ttyS0 panic=-1 forge.root=%s%s%s", VM_ROOT_NAME,
                     o->cmdline && o->cmdline[0] ? " " : "", o->cmdline ? o->cmdline : "") < 0) {
                b->cmdline = NULL;
                return forge_error_make(err, ENOMEM, "disk image");
        }
        return 0;
}

/* The uncompressed kernel beside the bzImage, when it has one to give. */
static int vmlinux_file(build *b, forge_error **err)
{
        cleanup_free char *p = path_in(b->o->tmpdir, "vmlinux");
        bool made;

        if (p == NULL)
                return forge_error_make(err, ENOMEM, "disk image");
        if (vm_vmlinux_extract(b->kernel_path, p, &made, err) < 0)
                return -1;
        if (made)
                b->vmlinux = take_ptr(p);
        return 0;
}

/* The kernel, initramfs and UKI: the ones given, else made from the kernel. */
static int boot_files(build *b, forge_error **err)
{
        const vmimage_opts *o = b->o;
        cleanup_free char *kcopy = NULL;
        cleanup_close int cf = -1;

        if (o->prepared_bzimage && o->prepared_initrd && o->prepared_uki) {
                b->kernel_path = o->prepared_bzimage;
                b->initrd_path = o->prepared_initrd;
                b->uki_path = o->prepared_uki;
                return vmlinux_file(b, err);
        }
        kcopy = path_in(o->tmpdir, "bzImage");
        if (kcopy == NULL)
                return forge_error_make(err, ENOMEM, "disk image");
        if (vm_kernel_prepare(o, o->tmpdir, &b->k, err) < 0 ||
            vm_initramfs_write(o, &b->k, b->initrd, err) < 0)
                return -1;
        cf = open(b->cmdf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (cf < 0 || fs_write_all(cf, b->cmdline, strlen(b->cmdline)) < 0)
                return forge_error_make(err, errno, "cmdline");
        if (make_uki(o, &b->k, b->initrd, b->cmdf, b->uki, b->log, err) < 0)
                return -1;
        if (link(b->k.bzimage, kcopy) < 0)
                return forge_error_make(err, errno, "keep the kernel");
        b->kernel_path = b->k.bzimage;
        b->initrd_path = b->initrd;
        b->uki_path = b->uki;
        return vmlinux_file(b, err);
}

/* The run configuration, inside the root file system: whatever the image
 * has at /.forge or /.forge/run (a symlink) is replaced. */
static int run_config_write(const vmimage_opts *o, forge_error **err)
{
        cleanup_close int rootfd = open(o->rootfs_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        cleanup_close int dfd = -1, rf = -1;
        struct timespec ts[2] = {{(time_t)o->sde, 0}, {(time_t)o->sde, 0}};

        if (rootfd < 0)
                return forge_error_make(err, errno, "open '%s'", o->rootfs_dir);
        if (safe_mkdir(rootfd, "/.forge", 0755, &dfd, err) < 0 ||
            safe_create_file(dfd, "run", 0644, &rf, err) < 0)
                return forge_error_prefix(err, "write /.forge/run");
        if (fs_write_all(rf, o->run_config, strlen(o->run_config)) < 0)
                return forge_error_make(err, errno, "write /.forge/run");
        futimens(rf, ts);
        futimens(dfd, ts);
        return 0;
}

/* The ESP (made here) and the sizes of the boot and root partitions. */
static int layout(build *b, forge_error **err)
{
        const vmimage_opts *o = b->o;
        tree_size t = {0, 0};
        uint64_t content, inodes, esp_size, boot_size, root_size;
        struct stat us;

        if (stat(b->uki_path, &us) < 0)
                return forge_error_make(err, errno, "'%s'", b->uki_path);
        add_mount_points(o->rootfs_dir, o->sde);
        vm_tree_walk(o->rootfs_dir, INT_MAX, add_size, &t);
        content = t.bytes;
        inodes = t.inodes;
        esp_size = align_up((uint64_t)us.st_size + 2 * MiB, MiB);
        if (esp_size < 16 * MiB)
                esp_size = 16 * MiB;
        if (make_esp(o, b->uki_path, b->esp, esp_size, b->log, err) < 0)
                return -1;
        b->shared = uki_locate(b->esp, b->uki_path, b->kernel_path, b->initrd_path, &b->kernel_at,
                               &b->initrd_at);
        boot_size = boot_part_size(b->shared, b->kernel_path, b->initrd_path, b->vmlinux);
        /* ext4 metadata (inode tables, journal) plus the content */
        root_size = align_up(content + content / 8 + inodes * 512 + 24 * MiB, MiB);
        b->total = MiB + esp_size + boot_size + root_size + MiB;
        if (o->disk_size && o->disk_size < b->total)
                return forge_error_usage(err,
                                         "vm.disk_size %llu MiB is too small: the "
                                         "content needs at least %llu MiB (set "
                                         "vm.disk_size: %lluM or more, or leave it out)",
                                         (unsigned long long)(o->disk_size / MiB),
                                         (unsigned long long)(b->total / MiB),
                                         (unsigned long long)(b->total / MiB));
        if (o->disk_size)
                root_size = align_up(o->disk_size, MiB) - MiB - esp_size - boot_size - MiB;
        else
                root_size = align_up(root_size + root_size / 4 + 64 * MiB, MiB); /* headroom */
        b->total = MiB + esp_size + boot_size + root_size + MiB;
        b->parts[0] = (vm_part){VM_ESP_NAME, VM_ESP_TYPE, MiB, esp_size};
        b->parts[1] = (vm_part){VM_BOOT_NAME, VM_FORGE_BOOT_TYPE, MiB + esp_size, boot_size};
        b->parts[2] = (vm_part){VM_ROOT_NAME, VM_LINUX_TYPE, MiB + esp_size + boot_size, root_size};
        return 0;
}

/* GPT, ESP, boot partition and root into a temp file beside out_path, renamed over it. */
static int assemble(build *b, forge_error **err)
{
        const vmimage_opts *o = b->o;
        const vm_part *p = b->parts;
        cleanup_free char *tmp_out = NULL;
        cleanup_close int fd = -1;

        if (asprintf(&tmp_out, "%s.forge-tmp.%d", o->out_path, (int)getpid()) < 0)
                return forge_error_make(err, ENOMEM, "disk image");
        fd = open(tmp_out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)b->total) < 0) {
                forge_error_make(err, errno, "create '%s'", tmp_out);
                goto fail;
        }
        if (vm_gpt_write(fd, b->total, p, 3, o->seed, err) < 0 ||
            copy_sparse(b->esp, fd, p[0].offset, err) < 0 ||
            write_boot_partition(o, fd, p[1].offset, b->kernel_path, b->initrd_path, b->vmlinux,
                                 b->shared, p[0].offset + b->kernel_at, p[0].offset + b->initrd_at,
                                 b->cmdline, err) < 0 ||
            copy_sparse(b->root, fd, p[2].offset, err) < 0)
                goto fail;
        if (fsync(fd) < 0 || rename(tmp_out, o->out_path) < 0) {
                forge_error_make(err, errno, "write '%s'", o->out_path);
                goto fail;
        }
        return 0;
fail:
        unlink(tmp_out);
        return -1;
}

int vmimage_build(const vmimage_opts *o, forge_error **err)
{
        build b;
        int r = -1;

        if (build_init(&b, o, err) == 0 && boot_files(&b, err) == 0 &&
            run_config_write(o, err) == 0 && layout(&b, err) == 0 &&
            make_ext4(o, b.root, b.parts[2].size, b.log, err) == 0 && assemble(&b, err) == 0)
                r = 0;
        build_release(&b);
        return r;
}
