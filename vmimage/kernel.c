/* SPDX-License-Identifier: MIT */
/*
 * The kernel: taken from a Debian linux-image package (read with
 * libarchive, nothing installed) or given as a bzImage plus modules. The
 * initramfs holds forge-vminit as /init and only the modules needed to reach
 * the root disk, ordered by their modinfo "depends=" fields (Debian's
 * packages ship no modules.dep: depmod runs at install time).
 */
#include "vmimage/vmimage-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/array.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/safe-open.h"
#include "store/store.h"

#define BUF (1 << 20)
#define MAX_MODULES 64

/* Modules forge wants, when not built into the kernel. The first group is
 * required; the rest are used when the kernel has them. */
static const char *const required_mods[] = {"virtio_pci", "virtio_blk"};
static const char *const optional_mods[] = {"ext4",        "ata_piix",
                                            "ata_generic", "sd_mod",
                                            "virtiofs",    "virtio_console" /* forge exec in VMs */,
                                            "virtio_net"};

int vm_bzimage_check(const void *buf, size_t len, forge_error **err)
{
        const uint8_t *b = buf;
        uint16_t version, xload;

        if (len < 0x264 || memcmp(b + 0x202, "HdrS", 4) != 0)
                return forge_error_make(err, EINVAL,
                                        "the kernel is not a bzImage (no 'HdrS' "
                                        "boot protocol header at 0x202)");
        version = (uint16_t)(b[0x206] | b[0x207] << 8);
        if (version < 0x020c)
                return forge_error_make(err, EINVAL,
                                        "the kernel's boot protocol %u.%02u is too "
                                        "old (need 2.12 or later)",
                                        version >> 8, version & 0xff);
        xload = (uint16_t)(b[0x236] | b[0x237] << 8);
        if (!(xload & 1))
                return forge_error_make(err, EINVAL,
                                        "the kernel has no 64-bit entry point "
                                        "(XLF_KERNEL_64): build it for x86_64");
        return 0;
}

/* The last (sorted) regular file of dirfd named prefix*: its name. */
static char *find_one(int dirfd, const char *prefix)
{
        cleanup_strv char **names = NULL;
        forge_error *e = NULL;
        char *r = NULL;

        if (fs_dir_list_sorted(dirfd, ".", &names, &e) < 0) {
                forge_error_release(&e);
                return NULL;
        }
        for (size_t i = 0; names[i]; i++) {
                struct stat st;
                if (strncmp(names[i], prefix, strlen(prefix)) != 0 ||
                    fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                free(r);
                r = strdup(names[i]); /* the last one, sorted */
        }
        return r;
}

int vm_kernel_prepare(const vmimage_opts *o, const char *work, vm_kernel *ret, forge_error **err)
{
        memset(ret, 0, sizeof(*ret));
        if (o->kernel_deb) {
                cleanup_free char *dir = fs_path_join(work, "kernel"), *name = NULL, *mrel = NULL;
                cleanup_close int dfd = -1, boot = -1, mfd = -1;
                forge_error *e = NULL;
                if (dir == NULL || mkdir(dir, 0755) < 0)
                        return forge_error_make(err, errno, "kernel work dir");
                if (store_deb_data_extract(o->kernel_deb, dir, 0, err) < 0)
                        return forge_error_prefix(err, "kernel package");
                /* the package's tree is the image's: boot/ and lib/modules/V
                 * must be real directories in it, the kernel a regular file */
                dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                boot = dfd < 0 ? -1 : safe_opendir_nofollow(dfd, "boot", &e);
                forge_error_release(&e);
                name = boot < 0 ? NULL : find_one(boot, "vmlinuz-");
                if (name == NULL)
                        return forge_error_make(err, ENOENT,
                                                "the kernel package has no "
                                                "boot/vmlinuz-*: is it a linux-image "
                                                "package?");
                if (asprintf(&mrel, "boot/%s", name) < 0)
                        return forge_error_make(err, ENOMEM, "kernel");
                ret->bzimage = fs_path_join(dir, mrel);
                ret->version = strdup(name + strlen("vmlinuz-"));
                free(mrel);
                mrel = NULL;
                if (ret->bzimage == NULL || ret->version == NULL ||
                    asprintf(&mrel, "lib/modules/%s", ret->version) < 0)
                        return forge_error_make(err, ENOMEM, "kernel");
                mfd = safe_opendir_nofollow(dfd, mrel, &e);
                forge_error_release(&e);
                if (mfd >= 0)
                        ret->modules_dir = fs_path_join(dir, mrel);
                {
                        cleanup_free char *k = NULL;
                        size_t len;
                        if (safe_read_file(boot, name, 256 << 20, &k, &len, err) < 0)
                                return forge_error_prefix(err, "kernel");
                        return vm_bzimage_check(k, len, err);
                }
        } else {
                if (o->bzimage == NULL)
                        return forge_error_make(err, EINVAL,
                                                "no kernel: give a kernel package "
                                                "or a bzImage");
                ret->bzimage = strdup(o->bzimage);
                if (ret->bzimage == NULL)
                        return forge_error_make(err, ENOMEM, "kernel");
                if (o->modules_dir) {
                        ret->modules_dir = strdup(o->modules_dir);
                        ret->version =
                            strdup(strrchr(o->modules_dir, '/') ? strrchr(o->modules_dir, '/') + 1
                                                                : o->modules_dir);
                }
        }
        {
                cleanup_free char *k = NULL;
                size_t len;
                if (fs_read_all(AT_FDCWD, ret->bzimage, 256 << 20, &k, &len, err) < 0)
                        return forge_error_prefix(err, "kernel");
                if (vm_bzimage_check(k, len, err) < 0)
                        return -1;
        }
        return 0;
}

void vm_kernel_release(vm_kernel *k)
{
        free(k->bzimage);
        free(k->modules_dir);
        free(k->version);
}

/* ---- modules ---- */

typedef struct modinfo {
        char name[64];
        char *path;    /* absolute .ko */
        char *depends; /* comma-separated, malloc'd */
} modinfo;

typedef struct modset {
        modinfo *v;
        size_t n, cap;
        char *builtin; /* modules.builtin text */
        char *dep;     /* modules.dep text, when there is one */
} modset;

static void name_of(const char *file, char out[64])
{
        const char *base = strrchr(file, '/');
        size_t len;
        base = base ? base + 1 : file;
        len = strcspn(base, ".");
        if (len > 63)
                len = 63;
        memcpy(out, base, len);
        out[len] = '\0';
        for (char *c = out; *c; c++)
                if (*c == '-')
                        *c = '_';
}

/* A module file's bytes: plain .ko read as is; .ko.xz / .ko.zst / .ko.gz
 * (Debian may compress them) decompressed with libarchive's raw format. */
static int module_read(const char *path, char **ret, size_t *ret_len, forge_error **err)
{
        const char *base = strrchr(path, '/');
        const char *ext = strstr(base ? base : path, ".ko");
        cleanup_archive struct archive *a = NULL;
        struct archive_entry *ae;

        if (ext == NULL || ext[3] == '\0')
                return fs_read_all(AT_FDCWD, path, 512 << 20, ret, ret_len, err);
        a = store_archive_raw_reader();
        if (a == NULL)
                return forge_error_make(err, ENOMEM, "module '%s'", path);
        if (archive_read_open_filename(a, path, BUF) != ARCHIVE_OK ||
            archive_read_next_header(a, &ae) != ARCHIVE_OK)
                return forge_error_make(err, EINVAL, "module '%s': %s", path,
                                        archive_error_string(a));
        if (store_archive_entry_read(a, 512u << 20, ret, ret_len, err) < 0)
                return forge_error_prefix(err, "module '%s'", path);
        return 0;
}

/* "depends=" from the .modinfo section of a (trusted, but checked) ELF64 module. */
static char *elf_depends(const char *path)
{
        cleanup_free char *buf = NULL;
        const uint8_t *m;
        size_t size;
        const Elf64_Ehdr *eh;
        forge_error *e = NULL;

        if (module_read(path, &buf, &size, &e) < 0) {
                forge_error_release(&e);
                return strdup("");
        }
        if (size < sizeof(Elf64_Ehdr))
                return strdup("");
        m = (const uint8_t *)buf;
        eh = (const Elf64_Ehdr *)m;
        if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
            eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > size ||
            (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > size - eh->e_shoff ||
            eh->e_shstrndx >= eh->e_shnum)
                return strdup("");
        {
                const Elf64_Shdr *sh = (const Elf64_Shdr *)(m + eh->e_shoff);
                const Elf64_Shdr *strs = &sh[eh->e_shstrndx];
                if (strs->sh_offset > size || strs->sh_size > size - strs->sh_offset)
                        return strdup("");
                for (int i = 0; i < eh->e_shnum; i++) {
                        const char *p, *end;
                        if (sh[i].sh_name >= strs->sh_size || sh[i].sh_offset > size ||
                            sh[i].sh_size > size - sh[i].sh_offset ||
                            strs->sh_size - sh[i].sh_name < 9)
                                continue;
                        if (memcmp(m + strs->sh_offset + sh[i].sh_name, ".modinfo", 9) != 0)
                                continue;
                        p = (const char *)m + sh[i].sh_offset;
                        end = p + sh[i].sh_size;
                        while (p < end) {
                                size_t len = strnlen(p, (size_t)(end - p));
                                if (len >= 8 && strncmp(p, "depends=", 8) == 0)
                                        return strndup(p + 8, len - 8);
                                p += len + 1;
                        }
                }
        }
        return strdup("");
}

/* modules.dep (when the kernel comes with one, e.g. a bzImage plus an
 * installed modules tree): "kernel/x/a.ko: kernel/y/b.ko kernel/z/c.ko".
 * Returns the comma-separated dependency names of module name, or NULL. */
static char *dep_from_modules_dep(const char *dep, const char *name)
{
        char *r = NULL;
        size_t rlen = 0;
        FILE *f;

        if (dep == NULL)
                return NULL;
        for (const char *line = dep; *line;) {
                const char *nl = strchr(line, '\n'), *colon = strchr(line, ':');
                size_t llen = nl ? (size_t)(nl - line) : strlen(line);
                char n[64];
                if (colon && colon < line + llen) {
                        cleanup_free char *target = strndup(line, (size_t)(colon - line));
                        if (target == NULL)
                                return NULL;
                        name_of(target, n);
                        if (strcmp(n, name) == 0) {
                                cleanup_free char *deps =
                                    strndup(colon + 1, llen - (size_t)(colon + 1 - line));
                                char *tok, *save = NULL;
                                bool first = true;
                                if (deps == NULL || (f = open_memstream(&r, &rlen)) == NULL)
                                        return NULL;
                                for (tok = strtok_r(deps, " \t", &save); tok;
                                     tok = strtok_r(NULL, " \t", &save)) {
                                        name_of(tok, n);
                                        fprintf(f, "%s%s", first ? "" : ",", n);
                                        first = false;
                                }
                                fclose(f);
                                return r;
                        }
                }
                line += llen + (nl ? 1 : 0);
        }
        return NULL;
}

static int add_module(void *ctx, const char *path, const char *name, const struct stat *st)
{
        modset *ms = ctx;
        modinfo *m;

        if (!S_ISREG(st->st_mode) || strstr(name, ".ko") == NULL)
                return 0;
        if (ARRAY_GROW(ms->v, ms->cap, ms->n + 1) < 0)
                return -1;
        m = &ms->v[ms->n];
        m->path = strdup(path);
        if (m->path == NULL)
                return -1;
        name_of(name, m->name);
        m->depends = NULL;
        ms->n++;
        return 0;
}

static modinfo *mod_find(modset *ms, const char *name)
{
        for (size_t i = 0; i < ms->n; i++)
                if (strcmp(ms->v[i].name, name) == 0)
                        return &ms->v[i];
        return NULL;
}

static bool builtin(const modset *ms, const char *name)
{
        char pat[80];
        const char *p = ms->builtin;
        snprintf(pat, sizeof(pat), "/%s.ko", name);
        while (p && (p = strstr(p, pat)) != NULL) {
                char after = p[strlen(pat)];
                if (after == '\n' || after == '\0')
                        return true;
                p++;
        }
        return false;
}

/* Depth-first: dependencies before the module. */
static int add_mod(modset *ms, const char *name, modinfo **order, size_t *n, int depth,
                   forge_error **err)
{
        modinfo *m;
        char *deps, *tok, *save = NULL;

        if (builtin(ms, name))
                return 0;
        for (size_t i = 0; i < *n; i++)
                if (strcmp(order[i]->name, name) == 0)
                        return 0;
        m = mod_find(ms, name);
        if (m == NULL)
                return forge_error_make(err, ENOENT,
                                        "the kernel lacks module '%s' (neither built in "
                                        "nor a module)",
                                        name);
        if (depth > 32 || *n >= MAX_MODULES)
                return forge_error_make(err, ELOOP, "module dependencies of '%s' too deep", name);
        if (m->depends == NULL)
                m->depends = dep_from_modules_dep(ms->dep, name);
        if (m->depends == NULL)
                m->depends = elf_depends(m->path);
        deps = strdup(m->depends ? m->depends : "");
        for (tok = strtok_r(deps, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char dn[64];
                name_of(tok, dn);
                if (dn[0] && add_mod(ms, dn, order, n, depth + 1, err) < 0) {
                        free(deps);
                        return -1;
                }
        }
        free(deps);
        order[(*n)++] = m;
        return 0;
}

static int cpio_add(struct archive *a, const char *name, mode_t mode, const void *data, size_t len,
                    uint64_t mtime, int64_t ino, forge_error **err)
{
        struct archive_entry *ae = archive_entry_new();
        int r = 0;

        archive_entry_copy_pathname(ae, name);
        archive_entry_set_mode(ae, mode);
        archive_entry_set_mtime(ae, (time_t)mtime, 0);
        archive_entry_set_ino64(ae, ino);
        archive_entry_set_nlink(ae, S_ISDIR(mode) ? 2 : 1);
        archive_entry_set_size(ae, S_ISREG(mode) ? (la_int64_t)len : 0);
        if (archive_write_header(a, ae) != ARCHIVE_OK ||
            (S_ISREG(mode) && len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len))
                r = forge_error_make(err, EIO, "initramfs: %s", archive_error_string(a));
        archive_entry_free(ae);
        return r;
}

static int cpio_add_file(struct archive *a, const char *name, const char *path, uint64_t mtime,
                         int64_t ino, forge_error **err)
{
        cleanup_free char *buf = NULL;
        size_t len;

        if (module_read(path, &buf, &len, err) < 0)
                return -1;
        return cpio_add(a, name, S_IFREG | 0755, buf, len, mtime, ino, err);
}

static void modset_release(modset *ms)
{
        for (size_t i = 0; i < ms->n; i++) {
                free(ms->v[i].path);
                free(ms->v[i].depends);
        }
        free(ms->v);
        free(ms->builtin);
        free(ms->dep);
}

/* What the kernel's modules directory offers: modules.builtin, modules.dep
 * (regular files or nothing: a FIFO or a symlink is an error) and the .ko files. */
static int modset_load(modset *ms, const char *modules_dir, forge_error **err)
{
        cleanup_close int mfd = open(modules_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

        if (mfd < 0)
                return forge_error_make(err, errno, "open '%s'", modules_dir);
        if (faccessat(mfd, "modules.builtin", F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
            safe_read_file(mfd, "modules.builtin", 4 << 20, &ms->builtin, NULL, err) < 0)
                return -1;
        if (faccessat(mfd, "modules.dep", F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
            safe_read_file(mfd, "modules.dep", 64 << 20, &ms->dep, NULL, err) < 0)
                return -1;
        vm_tree_walk(modules_dir, 16, add_module, ms);
        return 0;
}

/* The modules to load, in order: the required ones (an error if one is
 * missing), then the optional ones the kernel has; and ext4 must be there. */
static int modules_choose(modset *ms, const vm_kernel *k, modinfo **order, size_t *n,
                          forge_error **err)
{
        for (size_t i = 0; i < ARRAY_SIZE(required_mods); i++) {
                if (k->modules_dir == NULL)
                        return forge_error_make(err, ENOENT,
                                                "the kernel comes without modules: give "
                                                "vm.kernel.modules (needs %s)",
                                                required_mods[i]);
                if (add_mod(ms, required_mods[i], order, n, 0, err) < 0)
                        return forge_error_prefix(err, "kernel %s", k->version ? k->version : "");
        }
        for (size_t i = 0; i < ARRAY_SIZE(optional_mods); i++) {
                forge_error *e = NULL;
                if (mod_find(ms, optional_mods[i]) &&
                    add_mod(ms, optional_mods[i], order, n, 0, &e) < 0)
                        forge_error_release(&e);
        }
        if (!builtin(ms, "ext4") && mod_find(ms, "ext4") == NULL)
                return forge_error_make(err, ENOENT,
                                        "the kernel has no ext4 (neither built in nor a "
                                        "module)");
        return 0;
}

/* init, modules/, modules/NN-NAME.ko and modules/order (the load order), sorted. */
static int initramfs_entries(struct archive *a, const char *init_path, modinfo **order, size_t n,
                             forge_error **err)
{
        cleanup_free char *list = NULL;
        size_t list_len = 0;
        FILE *lf = open_memstream(&list, &list_len);
        int64_t ino = 1;

        if (lf == NULL)
                return forge_error_make(err, ENOMEM, "initramfs");
        if (cpio_add_file(a, "init", init_path, VM_KERNEL_EPOCH, ino++, err) < 0 ||
            cpio_add(a, "modules", S_IFDIR | 0755, NULL, 0, VM_KERNEL_EPOCH, ino++, err) < 0)
                goto fail;
        for (size_t i = 0; i < n; i++) {
                char name[128], file[96];
                snprintf(file, sizeof(file), "%02zu-%s.ko", i, order[i]->name);
                snprintf(name, sizeof(name), "modules/%s", file);
                fprintf(lf, "%s\n", file);
                if (cpio_add_file(a, name, order[i]->path, VM_KERNEL_EPOCH, ino++, err) < 0)
                        goto fail;
        }
        if (fclose(lf) != 0)
                return forge_error_make(err, ENOMEM, "initramfs");
        return cpio_add(a, "modules/order", S_IFREG | 0644, list, list_len, VM_KERNEL_EPOCH, ino++,
                        err);
fail:
        fclose(lf);
        return -1;
}

int vm_initramfs_write(const vmimage_opts *o, const vm_kernel *k, const char *out_path,
                       forge_error **err)
{
        modset ms = {0};
        modinfo *order[MAX_MODULES];
        size_t n = 0;
        struct archive *a = NULL;
        int r = -1;

        if ((k->modules_dir && modset_load(&ms, k->modules_dir, err) < 0) ||
            modules_choose(&ms, k, order, &n, err) < 0)
                goto out;
        a = archive_write_new();
        if (a == NULL) {
                forge_error_make(err, ENOMEM, "initramfs");
                goto out;
        }
        archive_write_set_format_cpio_newc(a);
        if (archive_write_open_filename(a, out_path) != ARCHIVE_OK ||
            initramfs_entries(a, o->init_path, order, n, err) < 0 ||
            archive_write_close(a) != ARCHIVE_OK) {
                forge_error_make(err, EIO, "initramfs: %s", archive_error_string(a));
                goto out;
        }
        r = 0;
out:
        if (a)
                archive_write_free(a);
        modset_release(&ms);
        return r;
}
