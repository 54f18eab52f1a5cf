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
#include "common/vmproto.h"

/* The strings of a JSON array (other values skipped) appended to v[*n] */
static void json_strings(const json_t *a, const char **v, size_t *n)
{
        size_t i;
        json_t *e;

        json_array_foreach(a, i, e)
        {
                if (json_is_string(e))
                        v[(*n)++] = json_string_value(e);
        }
}

/* A workdir, user or hostname: a line of /.forge/run, so none with a newline */
static char *one_line(const json_t *v)
{
        const char *s = json_string_value(v);

        return (char *)(s && !strchr(s, '\n') ? s : NULL);
}

char *vmimage_run_config(const json_t *image_config)
{
        json_t *rc = json_object_get(image_config, "config");
        json_t *ep = json_object_get(rc, "Entrypoint"), *cmd = json_object_get(rc, "Cmd");
        json_t *env = json_object_get(rc, "Env");
        cleanup_free const char **argv =
            calloc(json_array_size(ep) + json_array_size(cmd) + 1, sizeof(char *));
        cleanup_free const char **envv = calloc(json_array_size(env) + 1, sizeof(char *));
        vmproto_image im = {.argv = (char **)argv,
                            .env = (char **)envv,
                            .workdir = one_line(json_object_get(rc, "WorkingDir")),
                            .user = one_line(json_object_get(rc, "User")),
                            .hostname = one_line(json_object_get(rc, "Hostname"))};
        char *out = NULL;

        if (argv == NULL || envv == NULL) {
                errno = ENOMEM;
                return NULL;
        }
        json_strings(ep, argv, &im.argc);
        im.n_entrypoint = im.argc;
        json_strings(cmd, argv, &im.argc);
        json_strings(env, envv, &im.n_env);
        /* one empty string (ENTRYPOINT [""]) is none: the wire cannot tell them apart */
        if (im.argc == 1 && argv[0][0] == '\0')
                im.argc = im.n_entrypoint = 0;
        if (im.n_env == 1 && envv[0][0] == '\0')
                im.n_env = 0;
        return vmproto_image_encode(&im, &out) == 0 ? out : NULL;
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

/* A disk image being built: its work directory and what is made there */
typedef struct disk_work {
        char *dir, *rootfs, *disk, *run;
        char *kdeb, *kbz, *modsdir; /* the kernel's files */
        char *kpaths[3];            /* cached kernel artifacts (kernel_cached) */
} disk_work;

static void disk_work_release(disk_work *w)
{
        forge_error *e = NULL;
        char *owned[] = {w->rootfs,  w->disk,      w->run,       w->kdeb,     w->kbz,
                         w->modsdir, w->kpaths[0], w->kpaths[1], w->kpaths[2]};

        for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
                free(owned[i]);
        if (w->dir != NULL)
                fs_rm_rf(w->dir, &e);
        forge_error_release(&e);
        free(w->dir);
}

/* The work directory with the image flattened into rootfs/ and its run
 * configuration */
static int work_prepare(store *s, const store_image *img, disk_work *w, forge_error **err)
{
        if (store_tmpdir(s, &w->dir, err) < 0)
                return -1;
        w->rootfs = fs_path_join(w->dir, "rootfs");
        w->disk = fs_path_join(w->dir, "disk.img");
        if (!w->rootfs || !w->disk || mkdir(w->rootfs, 0755) < 0)
                return forge_error_make(err, errno ? errno : ENOMEM, "disk image work dir");
        errno = 0;
        w->run = vmimage_run_config(img->config);
        if (w->run == NULL)
                return forge_error_make(err, errno ? errno : ENOMEM,
                                        "the image's run configuration");
        if (store_flatten(s, img, w->rootfs, err) < 0)
                return forge_error_prefix(err, "flatten the image");
        return 0;
}

static int kernel_locate(store *s, const vmimage_vm_config *vm, disk_work *w, forge_error **err)
{
        const char *kd = vm->kernel_deb, *kb = vm->kernel_bzimage;

        if (!store_blob_exists(s, kd ? kd : kb))
                return forge_error_make(err, ENOENT, "the image's kernel %s is not in the store",
                                        kd ? kd : kb);
        if (kd)
                w->kdeb = store_blob_path(s, kd);
        if (kb)
                w->kbz = store_blob_path(s, kb);
        if (w->kdeb == NULL && w->kbz == NULL)
                return forge_error_make(err, ENOMEM, "kernel path");
        return 0;
}

/* lib/modules/VERSION of the unpacked modules layer at mods, as a real
 * directory of the layer (a symlink there could lead to the host's); NULL
 * in *ret when there is none */
static int modules_version_dir(const char *mods, char **ret, forge_error **err)
{
        cleanup_strv char **names = NULL;
        cleanup_close int mfd = open(mods, O_PATH | O_DIRECTORY | O_CLOEXEC);
        cleanup_close int lfd = mfd < 0 ? -1 : safe_opendir_nofollow(mfd, "lib/modules", err);
        struct stat st;

        if (lfd < 0)
                return forge_error_prefix(err, "the kernel modules layer");
        if (fs_dir_list_sorted(lfd, ".", &names, err) < 0)
                return -1;
        if (names[0] && fstatat(lfd, names[0], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode)) {
                cleanup_free char *lm = fs_path_join(mods, "lib/modules");
                *ret = lm ? fs_path_join(lm, names[0]) : NULL;
        }
        return 0;
}

/* the modules tree was stored as a layer: unpacked into the work directory */
static int modules_unpack(store *s, const char *km, disk_work *w, forge_error **err)
{
        cleanup_free char *mods = fs_path_join(w->dir, "modules");
        cleanup_close int fd = -1;

        if (mods == NULL || mkdir(mods, 0755) < 0)
                return forge_error_make(err, errno ? errno : ENOMEM, "kernel modules");
        if (store_blob_open(s, km, &fd, err) < 0 || store_extract_fd(fd, mods, 0, err) < 0)
                return -1;
        return modules_version_dir(mods, &w->modsdir, err);
}

/* the image's creation time, the disk's every timestamp */
static uint64_t image_epoch(const store_image *img)
{
        json_t *created = json_object_get(img->config, "created");
        struct tm tm = {0};

        if (json_is_string(created) &&
            strptime(json_string_value(created), "%Y-%m-%dT%H:%M:%SZ", &tm))
                return (uint64_t)timegm(&tm);
        return 0;
}

static int disk_keep(store *s, const char *path, char ret[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return forge_error_make(err, errno, "open the disk image");
        return store_blob_put_fd(s, fd, ret, NULL, err);
}

/* init: forge-vminit; kkey: kernel_key() of vm and init */
static int build_into_store(store *s, const store_image *img, const vmimage_vm_config *vm,
                            const char *init, const char *kkey, char ret[DIGEST_STR_SIZE],
                            forge_error **err)
{
        disk_work w = {0};
        vmimage_opts o;
        int r = -1;

        if (work_prepare(s, img, &w, err) < 0 || kernel_locate(s, vm, &w, err) < 0 ||
            (vm->kernel_modules && modules_unpack(s, vm->kernel_modules, &w, err) < 0))
                goto out;
        o = (vmimage_opts){.rootfs_dir = w.rootfs,
                           .kernel_deb = w.kdeb,
                           .bzimage = w.kbz,
                           .modules_dir = w.modsdir,
                           .init_path = init,
                           .run_config = w.run,
                           .cmdline = vm->cmdline,
                           .memory = vm->memory,
                           .cpus = vm->cpus,
                           .disk_size = vm->disk_size,
                           .sde = image_epoch(img),
                           .seed = img->digest,
                           .tmpdir = w.dir,
                           .out_path = w.disk};
        if (kernel_cached(s, kkey, w.kpaths)) {
                o.prepared_bzimage = w.kpaths[0];
                o.prepared_initrd = w.kpaths[1];
                o.prepared_uki = w.kpaths[2];
        }
        if (vmimage_build(&o, err) < 0 ||
            (o.prepared_uki == NULL && kernel_keep(s, kkey, w.dir, err) < 0))
                goto out;
        if (disk_keep(s, w.disk, ret, err) < 0)
                goto out;
        r = 0;
out:
        disk_work_release(&w);
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
        init = fs_companion_lookup("FORGE_VMINIT", "forge-vminit", "runtime/init");
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
