/* SPDX-License-Identifier: MIT */
/*
 * Safe extraction of untrusted tar streams into a directory.
 *
 * Every name is resolved below the root with openat2(RESOLVE_IN_ROOT), so
 * "../x", "/etc/x", and writes through symlinks (even ones the same archive
 * just created) all land inside the root; the final component is always
 * created with an *at() call on the resolved parent and never followed.
 * Contents are streamed: a declared size is never trusted for allocation.
 */
#include "store/store-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/array.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/safe-open.h"

#define BUF_SIZE (1 << 20)
#define MAX_DEPTH 4096

typedef struct dirtime {
        char *path;
        struct timespec ts[2];
} dirtime;

typedef struct xctx {
        int root;
        int flags;
        dirtime *dirs;
        size_t n_dirs, cap_dirs;
} xctx;

/* Entries are resolved in the root and never leave its file system. */
static int openat2_in_root(int root, const char *path, int flags)
{
        return safe_openat_resolve(root, path, flags, 0, RESOLVE_NO_XDEV);
}

/* Cleans an archive name: no leading '/', no "." or empty components; ".."
 * is kept (openat2 clamps it at the root) but not as the last component. */
static char *clean_name(const char *p)
{
        return fs_path_clean(p, FS_DOTDOT_KEEP);
}

/* Opens the directory rel inside the root, creating missing components as
 * 0755 directories. Each component is created with mkdirat() on the
 * already-resolved previous one, then the prefix is resolved again in root. */
static int open_dir_create(xctx *c, char *rel)
{
        int cur, fd = openat2_in_root(c->root, rel, O_PATH | O_DIRECTORY);
        char *p = rel;

        if (fd >= 0 || errno != ENOENT)
                return fd;
        cur = openat2_in_root(c->root, ".", O_PATH | O_DIRECTORY);
        while (cur >= 0 && *p) {
                char *e = strchrnul(p, '/');
                char save = *e;
                int next;
                *e = '\0';
                next = openat2_in_root(c->root, rel, O_PATH | O_DIRECTORY);
                if (next < 0 && errno == ENOENT && (mkdirat(cur, p, 0755) == 0 || errno == EEXIST))
                        next = openat2_in_root(c->root, rel, O_PATH | O_DIRECTORY);
                *e = save;
                close(cur);
                cur = next;
                p = save ? e + 1 : e;
        }
        return cur;
}

/* Opens the parent of rel inside the root (creating it if needed). *ret_base
 * points into rel. */
static int open_parent(xctx *c, char *rel, const char **ret_base, forge_error **err)
{
        char *slash = strrchr(rel, '/');
        const char *base = slash ? slash + 1 : rel;
        int fd;

        *ret_base = base;
        if (strcmp(base, "..") == 0 || base[0] == '\0')
                return forge_error_make(err, EINVAL, "entry '%s' has no usable name", rel);
        if (slash == NULL)
                return openat2_in_root(c->root, ".", O_PATH | O_DIRECTORY);
        *slash = '\0';
        fd = open_dir_create(c, rel);
        *slash = '/';
        if (fd < 0)
                return forge_error_make(err, errno, "extract '%s'", rel);
        return fd;
}

static int remove_at(int parent, const char *name);

/* Removes everything in the directory fd (which it closes). */
static int remove_entries(int fd)
{
        cleanup_closedir DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *de;

        if (d == NULL) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        while ((de = readdir(d)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (remove_at(dirfd(d), de->d_name) < 0)
                        return -1;
        }
        return 0;
}

/* Removes what is at parent/name (a tree too), if anything. */
static int remove_at(int parent, const char *name)
{
        struct stat st;

        if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -1;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(parent, name, 0);
        if (remove_entries(openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) <
            0)
                return -1;
        return unlinkat(parent, name, AT_REMOVEDIR);
}

static int clear_dir(int dir)
{
        return remove_entries(openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

static bool xattr_allowed(const char *name)
{
        return strcmp(name, "security.capability") == 0 || strncmp(name, "user.", 5) == 0;
}

static void apply_xattrs(xctx *c, struct archive_entry *ae, int fd)
{
        const char *name;
        const void *value;
        size_t size;

        archive_entry_xattr_reset(ae);
        while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK)
                if (xattr_allowed(name) && (c->flags & STORE_EXTRACT_OWNERS))
                        fsetxattr(fd, name, value, size, 0);
}

static mode_t entry_mode(xctx *c, struct archive_entry *ae)
{
        mode_t m = archive_entry_perm(ae) & 07777;
        if (!(c->flags & STORE_EXTRACT_SPECIAL_BITS))
                m &= ~(mode_t)(S_ISUID | S_ISGID);
        return m;
}

static bool all_zero(const void *buf, size_t len)
{
        const unsigned char *p = buf;

        return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

static int write_file(xctx *c, struct archive *a, struct archive_entry *ae, int parent,
                      const char *base, const char *name, forge_error **err)
{
        cleanup_close int fd = -1;
        int64_t declared = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : -1;
        const void *buf;
        size_t len;
        la_int64_t off;
        int r;
        struct timespec ts[2];

        if (remove_at(parent, base) < 0)
                return forge_error_make(err, errno, "extract '%s': replace", name);
        fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return forge_error_make(err, errno, "extract '%s'", name);
        while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
                if (off < 0 || (declared >= 0 && (int64_t)len > declared - off))
                        return forge_error_make(err, EINVAL,
                                                "extract '%s': data beyond its "
                                                "declared size",
                                                name);
                /* runs of zeros stay holes: the file is new, and sized below */
                if (len > 0 && !(declared >= 0 && all_zero(buf, len)) &&
                    pwrite(fd, buf, len, off) != (ssize_t)len)
                        return forge_error_make(err, errno, "extract '%s'", name);
        }
        if (r != ARCHIVE_EOF)
                return forge_error_make(err, EIO, "extract '%s': %s (truncated archive?)", name,
                                        archive_error_string(a));
        if (declared > 0 && ftruncate(fd, declared) < 0)
                return forge_error_make(err, errno, "extract '%s'", name);
        if ((c->flags & STORE_EXTRACT_OWNERS) &&
            fchown(fd, (uid_t)archive_entry_uid(ae), (gid_t)archive_entry_gid(ae)) < 0)
                return forge_error_make(err, errno, "extract '%s': chown", name);
        if (fchmod(fd, entry_mode(c, ae)) < 0)
                return forge_error_make(err, errno, "extract '%s': chmod", name);
        apply_xattrs(c, ae, fd);
        ts[0] = ts[1] = (struct timespec){archive_entry_mtime(ae), 0};
        futimens(fd, ts);
        return 0;
}

static int make_dir(xctx *c, struct archive_entry *ae, int parent, const char *base,
                    const char *name, forge_error **err)
{
        cleanup_close int fd = -1;
        struct stat st;
        dirtime *dt;

        if ((c->flags & STORE_EXTRACT_KEEP_DIR_SYMLINKS) &&
            fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
                /* merged /usr: bin -> usr/bin stays a link when it leads to a directory */
                cleanup_free char *rel = strdup(name);
                int d = rel ? openat2_in_root(c->root, rel, O_PATH | O_DIRECTORY) : -1;
                if (d >= 0) {
                        close(d);
                        return 0;
                }
        }
        if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
            remove_at(parent, base) < 0)
                return forge_error_make(err, errno, "extract '%s'", name);
        if (mkdirat(parent, base, 0700) < 0 && errno != EEXIST)
                return forge_error_make(err, errno, "extract '%s'", name);
        fd = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return forge_error_make(err, errno, "extract '%s'", name);
        if ((c->flags & STORE_EXTRACT_OWNERS) &&
            fchown(fd, (uid_t)archive_entry_uid(ae), (gid_t)archive_entry_gid(ae)) < 0)
                return forge_error_make(err, errno, "extract '%s': chown", name);
        if (fchmod(fd, entry_mode(c, ae) | ((c->flags & STORE_EXTRACT_OWNERS) ? 0 : 0700)) < 0)
                return forge_error_make(err, errno, "extract '%s': chmod", name);
        apply_xattrs(c, ae, fd);
        if (ARRAY_GROW(c->dirs, c->cap_dirs, c->n_dirs + 1) < 0)
                return forge_error_make(err, ENOMEM, "extract");
        dt = &c->dirs[c->n_dirs];
        dt->path = strdup(name);
        if (dt->path == NULL)
                return forge_error_make(err, ENOMEM, "extract");
        dt->ts[0] = dt->ts[1] = (struct timespec){archive_entry_mtime(ae), 0};
        c->n_dirs++;
        return 0;
}

static int make_other(xctx *c, struct archive_entry *ae, int parent, const char *base,
                      const char *name, forge_error **err)
{
        mode_t type = archive_entry_filetype(ae);
        struct timespec ts[2];

        if ((type == AE_IFCHR || type == AE_IFBLK) && !(c->flags & STORE_EXTRACT_DEVICES))
                return 0; /* devices only where the caller trusts them */
        if (remove_at(parent, base) < 0)
                return forge_error_make(err, errno, "extract '%s': replace", name);
        if (type == AE_IFLNK) {
                const char *target = archive_entry_symlink(ae);
                if (target == NULL || symlinkat(target, parent, base) < 0)
                        return forge_error_make(err, target ? errno : EINVAL, "extract '%s'", name);
        } else if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO) {
                mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
                if (mknodat(parent, base, kind | entry_mode(c, ae), archive_entry_rdev(ae)) < 0)
                        return forge_error_make(err, errno, "extract '%s'", name);
        } else {
                return 0; /* sockets and unknown types are skipped */
        }
        if ((c->flags & STORE_EXTRACT_OWNERS) &&
            fchownat(parent, base, (uid_t)archive_entry_uid(ae), (gid_t)archive_entry_gid(ae),
                     AT_SYMLINK_NOFOLLOW) < 0)
                return forge_error_make(err, errno, "extract '%s': chown", name);
        ts[0] = ts[1] = (struct timespec){archive_entry_mtime(ae), 0};
        utimensat(parent, base, ts, AT_SYMLINK_NOFOLLOW);
        return 0;
}

static int make_hardlink(xctx *c, struct archive_entry *ae, int parent, const char *base,
                         const char *name, forge_error **err)
{
        cleanup_free char *target = clean_name(archive_entry_hardlink(ae));
        cleanup_close int tparent = -1;
        const char *tbase;
        struct stat st;

        if (target == NULL)
                return forge_error_make(err, ENOMEM, "extract");
        tparent = open_parent(c, target, &tbase, err);
        if (tparent < 0)
                return forge_error_prefix(err, "hardlink '%s'", name);
        if (fstatat(tparent, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return forge_error_make(err, EINVAL,
                                        "extract '%s': hardlink target '%s' is not "
                                        "a file inside the tree",
                                        name, archive_entry_hardlink(ae));
        if (remove_at(parent, base) < 0 || linkat(tparent, tbase, parent, base, 0) < 0)
                return forge_error_make(err, errno, "extract '%s': link", name);
        return 0;
}

static int whiteout(xctx *c, int parent, const char *base, const char *name, forge_error **err)
{
        const char *victim = base + 4;

        if (strcmp(base, ".wh..wh..opq") == 0) {
                if (c->flags & STORE_EXTRACT_WHITEOUTS_APPLY) {
                        if (clear_dir(parent) < 0)
                                return forge_error_make(err, errno, "apply '%s'", name);
                } else {
                        cleanup_close int fd =
                            openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (fd < 0 || fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) < 0)
                                return forge_error_make(err, errno, "extract '%s'", name);
                }
                return 0;
        }
        if (victim[0] == '\0' || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
                return forge_error_make(err, EINVAL, "bad whiteout '%s'", name);
        if (remove_at(parent, victim) < 0)
                return forge_error_make(err, errno, "apply '%s'", name);
        if ((c->flags & STORE_EXTRACT_WHITEOUTS_OVERLAY) &&
            mknodat(parent, victim, S_IFCHR | 0, makedev(0, 0)) < 0)
                return forge_error_make(err, errno, "extract '%s'", name);
        return 0;
}

static int extract_entry(xctx *c, struct archive *a, struct archive_entry *ae, forge_error **err)
{
        const char *raw = archive_entry_pathname(ae);
        cleanup_free char *name = NULL;
        cleanup_close int parent = -1;
        const char *base;

        if (raw == NULL)
                return forge_error_make(err, EINVAL, "entry without a name");
        name = clean_name(raw);
        if (name == NULL)
                return forge_error_make(err, ENOMEM, "extract");
        if (name[0] == '\0' || strcmp(name, "..") == 0)
                return 0; /* the root itself */
        parent = open_parent(c, name, &base, err);
        if (parent < 0)
                return -1;
        if (strncmp(base, ".wh.", 4) == 0 &&
            (c->flags & (STORE_EXTRACT_WHITEOUTS_APPLY | STORE_EXTRACT_WHITEOUTS_OVERLAY)))
                return whiteout(c, parent, base, name, err);
        if (archive_entry_hardlink(ae) != NULL)
                return make_hardlink(c, ae, parent, base, name, err);
        switch (archive_entry_filetype(ae)) {
        case AE_IFREG:
                return write_file(c, a, ae, parent, base, name, err);
        case AE_IFDIR:
                return make_dir(c, ae, parent, base, name, err);
        default:
                return make_other(c, ae, parent, base, name, err);
        }
}

static void fix_dir_times(xctx *c)
{
        /* Deepest first, so setting a parent's time comes after its children changed. */
        for (size_t i = c->n_dirs; i-- > 0;) {
                int fd = openat2_in_root(c->root, c->dirs[i].path, O_RDONLY | O_DIRECTORY);
                if (fd >= 0) {
                        futimens(fd, c->dirs[i].ts);
                        close(fd);
                }
                free(c->dirs[i].path);
        }
        free(c->dirs);
}

int store_extract_archive(struct archive *a, const char *dir, int flags, forge_error **err)
{
        xctx c = {.root = -1, .flags = flags};
        struct archive_entry *ae;
        int r, ret = 0;

        c.root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (c.root < 0)
                return forge_error_make(err, errno, "extract into '%s'", dir);
        while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
                if (extract_entry(&c, a, ae, err) < 0) {
                        ret = -1;
                        break;
                }
        }
        if (ret == 0 && r != ARCHIVE_EOF)
                ret = forge_error_make(err, EIO, "read archive: %s", archive_error_string(a));
        fix_dir_times(&c);
        close(c.root);
        return ret;
}

void store_archive_filters(struct archive *a)
{
        archive_read_support_filter_gzip(a);
        archive_read_support_filter_bzip2(a);
        archive_read_support_filter_xz(a);
        archive_read_support_filter_lzma(a);
        archive_read_support_filter_lzip(a);
        archive_read_support_filter_zstd(a);
        archive_read_support_filter_lz4(a);
        archive_read_support_filter_compress(a);
}

int store_extract_fd(int fd, const char *dir, int flags, forge_error **err)
{
        cleanup_archive struct archive *a = store_archive_reader();

        if (a == NULL)
                return forge_error_make(err, ENOMEM, "extract");
        if (archive_read_open_fd(a, fd, BUF_SIZE) != ARCHIVE_OK)
                return forge_error_make(err, EIO, "open archive: %s", archive_error_string(a));
        return store_extract_archive(a, dir, flags, err);
}
