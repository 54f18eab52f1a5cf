/* SPDX-License-Identifier: MIT */
/*
 * forge export --format disk: flatten the image, build the disk, keep it in
 * the store (a blob, found again through kv "disk" by image digest and disk
 * format version) and copy it out sparsely.
 */
#include "vmimage/vmimage-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/safe-open.h"

static void hex_strv(FILE *f, const char *key, json_t *a, json_t *b)
{
        size_t i;
        json_t *v;
        bool first = true;

        fprintf(f, "%s=", key);
        for (int part = 0; part < 2; part++) {
                json_array_foreach(part ? b : a, i, v)
                {
                        const char *s = json_string_value(v);
                        if (s == NULL)
                                continue;
                        if (!first)
                                fprintf(f, "00");
                        for (const unsigned char *c = (const unsigned char *)s; *c; c++)
                                fprintf(f, "%02x", *c);
                        first = false;
                }
        }
        fprintf(f, "\n");
}

char *vmimage_run_config(const json_t *image_config)
{
        json_t *rc = json_object_get(image_config, "config");
        json_t *ep = json_object_get(rc, "Entrypoint"), *cmd = json_object_get(rc, "Cmd");
        const char *wd = json_string_value(json_object_get(rc, "WorkingDir"));
        const char *user = json_string_value(json_object_get(rc, "User"));
        const char *host = json_string_value(json_object_get(rc, "Hostname"));
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);

        if (f == NULL)
                return NULL;
        hex_strv(f, "argv", ep, cmd);
        fprintf(f, "entrypoint=%zu\n", json_array_size(ep));
        hex_strv(f, "env", json_object_get(rc, "Env"), NULL);
        if (wd && !strchr(wd, '\n'))
                fprintf(f, "workdir=%s\n", wd);
        if (user && !strchr(user, '\n'))
                fprintf(f, "user=%s\n", user);
        if (host && !strchr(host, '\n'))
                fprintf(f, "hostname=%s\n", host);
        fclose(f);
        return out;
}

#define VM_MAX_MEMORY (1ULL << 40)
#define VM_MAX_CPUS 255
#define VM_MAX_DISK (16ULL << 40)
#define VM_MAX_CMDLINE 2048

static int vm_digest(const json_t *vm, const char *key, const char **ret, forge_error **err)
{
        const json_t *v = json_object_get(vm, key);

        *ret = NULL;
        if (v == NULL || json_is_null(v))
                return 0;
        if (!json_is_string(v) || !digest_valid(json_string_value(v)))
                return forge_error_make(err, EINVAL, "vm.%s is not a sha256 digest", key);
        *ret = json_string_value(v);
        return 0;
}

static int vm_uint(const json_t *vm, const char *key, uint64_t max, uint64_t *ret,
                   forge_error **err)
{
        const json_t *v = json_object_get(vm, key);

        *ret = 0;
        if (v == NULL || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (uint64_t)json_integer_value(v) > max)
                return forge_error_make(err, EINVAL, "vm.%s must be an integer from 0 to %llu", key,
                                        (unsigned long long)max);
        *ret = (uint64_t)json_integer_value(v);
        return 0;
}

int vmimage_vm_config_parse(const json_t *image_config, vmimage_vm_config *ret, forge_error **err)
{
        const json_t *vm =
            json_object_get(json_object_get(image_config, STORE_CONFIG_FORGE_KEY), "vm");
        const json_t *cl;
        vmimage_vm_config c = {0};
        uint64_t cpus;

        if (vm == NULL || json_is_null(vm))
                return 0;
        if (!json_is_object(vm))
                return forge_error_make(err, EINVAL, "the vm section is not an object");
        if (vm_digest(vm, "kernel_deb", &c.kernel_deb, err) < 0 ||
            vm_digest(vm, "kernel_bzimage", &c.kernel_bzimage, err) < 0 ||
            vm_digest(vm, "kernel_modules", &c.kernel_modules, err) < 0 ||
            vm_uint(vm, "memory", VM_MAX_MEMORY, &c.memory, err) < 0 ||
            vm_uint(vm, "cpus", VM_MAX_CPUS, &cpus, err) < 0 ||
            vm_uint(vm, "disk_size", VM_MAX_DISK, &c.disk_size, err) < 0)
                return -1;
        c.cpus = (unsigned)cpus;
        if ((c.kernel_deb == NULL) == (c.kernel_bzimage == NULL))
                return forge_error_make(err, EINVAL,
                                        "the vm section needs exactly one kernel (kernel_deb or "
                                        "kernel_bzimage)");
        cl = json_object_get(vm, "cmdline");
        if (cl != NULL && !json_is_null(cl)) {
                if (!json_is_string(cl) || strlen(json_string_value(cl)) > VM_MAX_CMDLINE ||
                    strpbrk(json_string_value(cl), "\n\r") != NULL)
                        return forge_error_make(err, EINVAL,
                                                "vm.cmdline must be one line of at most %d bytes",
                                                VM_MAX_CMDLINE);
                c.cmdline = json_string_value(cl);
        }
        *ret = c;
        return 1;
}

static char *find_vminit(void)
{
        const char *env = getenv("FORGE_VMINIT");

        if (env && access(env, X_OK) == 0)
                return strdup(env);
        return fs_companion_find("forge-vminit", "runtime/init");
}

static int copy_out(const char *src, const char *dst, forge_error **err)
{
        cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC), out = -1;
        cleanup_free char *tmp = NULL;
        cleanup_free char *buf = malloc(1 << 20);
        struct stat st;
        off_t pos = 0;

        if (in < 0 || fstat(in, &st) < 0 || buf == NULL)
                return forge_error_make(err, errno, "read the disk image");
        if (asprintf(&tmp, "%s.forge-tmp.%d", dst, (int)getpid()) < 0)
                return forge_error_make(err, ENOMEM, "export");
        out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out < 0 || ftruncate(out, st.st_size) < 0)
                return forge_error_make(err, errno, "create '%s'", tmp);
        while (pos < st.st_size) {
                off_t data = lseek(in, pos, SEEK_DATA), hole;
                if (data < 0)
                        break;
                hole = lseek(in, data, SEEK_HOLE);
                if (hole < 0)
                        hole = st.st_size;
                for (off_t p = data; p < hole;) {
                        ssize_t n = pread(in, buf,
                                          (size_t)(hole - p < (1 << 20) ? hole - p : (1 << 20)), p);
                        if (n <= 0 || pwrite(out, buf, (size_t)n, p) != n) {
                                unlink(tmp);
                                return forge_error_make(err, errno ? errno : EIO,
                                                        "copy the disk image");
                        }
                        p += n;
                }
                pos = hole;
        }
        if (fsync(out) < 0 || rename(tmp, dst) < 0) {
                unlink(tmp);
                return forge_error_make(err, errno, "write '%s'", dst);
        }
        return 0;
}

/* The kernel artifacts (bzImage, initramfs, UKI) depend only on the kernel,
 * forge-vminit, the command line and the EFI stub: kept in the store as blobs
 * under kv "vmkernel", so images sharing a kernel don't unpack it again. */
#define STUB_PATH "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

static int file_digest(const char *path, char out[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return forge_error_make(err, errno, "open '%s'", path);
        return hash_sha256_fd(fd, out, err);
}

static int kernel_key(const vmimage_vm_config *vm, const char *init, char key[DIGEST_STR_SIZE],
                      forge_error **err)
{
        char init_d[DIGEST_STR_SIZE], stub_d[DIGEST_STR_SIZE] = "none";
        cleanup_free char *text = NULL;
        const char *cl = vm->cmdline;

        if (file_digest(init, init_d, err) < 0)
                return -1;
        if (access(STUB_PATH, R_OK) == 0 && file_digest(STUB_PATH, stub_d, err) < 0)
                return -1;
        if (asprintf(&text, "v%d\ndeb=%s\nbz=%s\nmods=%s\ninit=%s\nstub=%s\ncmdline=%s\n",
                     VMIMAGE_FORMAT, vm->kernel_deb ?: "", vm->kernel_bzimage ?: "",
                     vm->kernel_modules ?: "", init_d, stub_d, cl ? cl : "") < 0)
                return forge_error_make(err, ENOMEM, "kernel key");
        hash_sha256_buf(text, strlen(text), key);
        return 0;
}

/* kv value: "BZIMAGE INITRD UKI" blob digests; paths when all three exist. */
static bool kernel_cached(store *s, const char *key, char *paths[3])
{
        cleanup_free char *v = NULL;
        forge_error *e = NULL;
        char d[3][DIGEST_STR_SIZE];

        if (store_kv_get(s, "vmkernel", digest_hex(key), &v, &e) <= 0) {
                forge_error_release(&e);
                return false;
        }
        {
                const char *p = v;
                for (int i = 0; i < 3; i++) {
                        size_t len = strcspn(p, " \n");
                        if (len != DIGEST_STR_SIZE - 1)
                                return false;
                        memcpy(d[i], p, len);
                        d[i][len] = '\0';
                        p += len;
                        if (*p == ' ')
                                p++;
                }
        }
        for (int i = 0; i < 3; i++)
                if (!digest_valid(d[i]) || !store_blob_exists(s, d[i]))
                        return false;
        for (int i = 0; i < 3; i++)
                paths[i] = store_blob_path(s, d[i]);
        return paths[0] && paths[1] && paths[2];
}

static int kernel_keep(store *s, const char *key, const char *work, forge_error **err)
{
        const char *names[3] = {"bzImage", "initrd.cpio", "uki.efi"};
        char d[3][DIGEST_STR_SIZE];
        char v[3 * DIGEST_STR_SIZE + 4];

        for (int i = 0; i < 3; i++) {
                cleanup_free char *p = fs_path_join(work, names[i]);
                cleanup_close int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
                if (fd < 0)
                        return forge_error_make(err, errno ? errno : ENOMEM, "keep '%s'", names[i]);
                if (store_blob_put_fd(s, fd, d[i], NULL, err) < 0)
                        return -1;
        }
        snprintf(v, sizeof(v), "%s %s %s", d[0], d[1], d[2]);
        return store_kv_put(s, "vmkernel", digest_hex(key), v, err);
}

/* init: forge-vminit; kkey: kernel_key() of vm and init */
static int build_into_store(store *s, const store_image *img, const vmimage_vm_config *vm,
                            const char *init, const char *kkey, char ret[DIGEST_STR_SIZE],
                            forge_error **err)
{
        cleanup_free char *work = NULL, *rootfs = NULL, *disk = NULL, *run = NULL, *kdeb = NULL,
                          *kbz = NULL, *mods = NULL, *modsdir = NULL;
        const char *kd = vm->kernel_deb, *kb = vm->kernel_bzimage, *km = vm->kernel_modules;
        vmimage_opts o = {0};
        json_t *created;
        struct tm tm = {0};
        forge_error *e2 = NULL;
        char *kpaths[3] = {NULL, NULL, NULL};
        int r = -1;

        if (store_tmpdir(s, &work, err) < 0)
                return -1;
        rootfs = fs_path_join(work, "rootfs");
        disk = fs_path_join(work, "disk.img");
        run = vmimage_run_config(img->config);
        if (!rootfs || !disk || !run || mkdir(rootfs, 0755) < 0) {
                forge_error_make(err, errno ? errno : ENOMEM, "disk image work dir");
                goto out;
        }
        if (store_flatten(s, img, rootfs, err) < 0) {
                forge_error_prefix(err, "flatten the image");
                goto out;
        }
        if (!store_blob_exists(s, kd ? kd : kb)) {
                forge_error_make(err, ENOENT, "the image's kernel %s is not in the store",
                                 kd ? kd : kb);
                goto out;
        }
        if (kd)
                kdeb = store_blob_path(s, kd);
        if (kb)
                kbz = store_blob_path(s, kb);
        if (kdeb == NULL && kbz == NULL) {
                forge_error_make(err, ENOMEM, "kernel path");
                goto out;
        }
        if (km) {
                /* the modules tree was stored as a layer: unpack it */
                store_layer l = {0};
                snprintf(l.digest, sizeof(l.digest), "%s", km);
                snprintf(l.diff_id, sizeof(l.diff_id), "%s", km);
                mods = fs_path_join(work, "modules");
                cleanup_close int fd = -1;
                if (mods == NULL || mkdir(mods, 0755) < 0 || store_blob_open(s, km, &fd, err) < 0 ||
                    store_extract_fd(fd, mods, 0, err) < 0)
                        goto out;
                {
                        /* lib/modules/VERSION as real directories of the
                         * layer: a symlink there could lead to the host's */
                        cleanup_strv char **names = NULL;
                        cleanup_close int mfd = open(mods, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        cleanup_close int lfd =
                            mfd < 0 ? -1 : safe_opendir_nofollow(mfd, "lib/modules", err);
                        struct stat st;
                        if (lfd < 0) {
                                forge_error_prefix(err, "the kernel modules layer");
                                goto out;
                        }
                        if (fs_dir_list_sorted(lfd, ".", &names, err) < 0)
                                goto out;
                        if (names[0] && fstatat(lfd, names[0], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                            S_ISDIR(st.st_mode)) {
                                cleanup_free char *lm = fs_path_join(mods, "lib/modules");
                                modsdir = lm ? fs_path_join(lm, names[0]) : NULL;
                        }
                }
        }
        o.rootfs_dir = rootfs;
        o.kernel_deb = kdeb;
        o.bzimage = kbz;
        o.modules_dir = modsdir;
        o.init_path = init;
        o.run_config = run;
        o.cmdline = vm->cmdline;
        o.memory = vm->memory;
        o.cpus = vm->cpus;
        o.disk_size = vm->disk_size;
        created = json_object_get(img->config, "created");
        if (json_is_string(created) &&
            strptime(json_string_value(created), "%Y-%m-%dT%H:%M:%SZ", &tm))
                o.sde = (uint64_t)timegm(&tm);
        o.seed = img->digest;
        o.tmpdir = work;
        o.out_path = disk;
        if (kernel_cached(s, kkey, kpaths)) {
                o.prepared_bzimage = kpaths[0];
                o.prepared_initrd = kpaths[1];
                o.prepared_uki = kpaths[2];
        }
        if (vmimage_build(&o, err) < 0)
                goto out;
        if (o.prepared_uki == NULL && kernel_keep(s, kkey, work, err) < 0)
                goto out;
        {
                cleanup_close int fd = open(disk, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || store_blob_put_fd(s, fd, ret, NULL, err) < 0)
                        goto out;
        }
        r = 0;
out:
        for (int i = 0; i < 3; i++)
                free(kpaths[i]);
        fs_rm_rf(work, &e2);
        forge_error_release(&e2);
        return r;
}

int vmimage_disk_get(store *s, const char *manifest_digest, char **ret_path, forge_error **err)
{
        cleanup_store_image store_image *img = NULL;
        char key[160], disk[DIGEST_STR_SIZE], kkey[DIGEST_STR_SIZE];
        cleanup_free char *cached = NULL, *init = NULL;
        vmimage_vm_config vm;
        int r;

        if (store_lock_shared(s, err) < 0 || store_image_load(s, manifest_digest, &img, err) < 0)
                return -1;
        r = vmimage_vm_config_parse(img->config, &vm, err);
        if (r < 0)
                return forge_error_prefix(err, "image %s", manifest_digest);
        if (r == 0)
                return forge_error_usage(err,
                                         "image %s has no vm section: add 'vm:' with a kernel "
                                         "to its spec",
                                         manifest_digest);
        init = find_vminit();
        if (init == NULL)
                return forge_error_make(err, ENOENT,
                                        "forge-vminit not found (set FORGE_VMINIT or "
                                        "install it next to forge)");
        /* the disk depends on the image and on the kernel artifacts (kernel,
         * forge-vminit, EFI stub, command line) */
        if (kernel_key(&vm, init, kkey, err) < 0)
                return -1;
        snprintf(key, sizeof(key), "%s-v%d-%.16s", digest_hex(manifest_digest), VMIMAGE_FORMAT,
                 digest_hex(kkey));
        r = store_kv_get(s, "disk", key, &cached, err);
        if (r < 0)
                return -1;
        if (r == 0 || !digest_valid(cached) || !store_blob_exists(s, cached)) {
                if (build_into_store(s, img, &vm, init, kkey, disk, err) < 0)
                        return -1;
                if (store_kv_put(s, "disk", key, disk, err) < 0)
                        return -1;
        } else {
                memcpy(disk, cached, DIGEST_STR_SIZE);
        }
        *ret_path = store_blob_path(s, disk);
        if (*ret_path == NULL)
                return forge_error_make(err, ENOMEM, "disk image path");
        return 0;
}

int vmimage_export(store *s, const char *manifest_digest, const char *out_path, forge_error **err)
{
        cleanup_free char *path = NULL;
        struct stat st;

        if (lstat(out_path, &st) == 0)
                return forge_error_usage(err,
                                         "'%s' already exists: remove it or choose another "
                                         "output path",
                                         out_path);
        if (vmimage_disk_get(s, manifest_digest, &path, err) < 0)
                return -1;
        return copy_out(path, out_path, err);
}
