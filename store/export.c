/* SPDX-License-Identifier: MIT */
/*
 * forge export: the flattened rootfs as a directory or a deterministic tar,
 * or an OCI image layout (a directory, or a tar of one). Outputs are built
 * next to their destination and renamed into place.
 */
#include "store/store-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/pool.h"

#define BUF_SIZE (1 << 20)

/* ---- flatten ---- */

int store_flatten(store *s, const store_image *img, const char *dir, forge_error **err)
{
        int flags = STORE_EXTRACT_WHITEOUTS_APPLY | STORE_EXTRACT_SPECIAL_BITS;

        if (geteuid() == 0)
                flags |= STORE_EXTRACT_OWNERS | STORE_EXTRACT_DEVICES;
        for (size_t i = 0; i < img->n_layers; i++) {
                cleanup_close int fd = -1;
                if (store_blob_open(s, img->layers[i].digest, &fd, err) < 0 ||
                    store_extract_fd(fd, dir, flags, err) < 0)
                        return forge_error_prefix(err, "layer %zu", i + 1);
        }
        return 0;
}

/* ---- a deterministic tar of a directory tree ---- */

typedef struct linkrec {
        dev_t dev;
        ino_t ino;
        char *path;
} linkrec;

typedef struct dtar {
        struct archive *a;
        struct archive_entry *ae;
        char *buf;
        linkrec *links;
        size_t n_links;
        bool zero_owners;
} dtar;

static int dtar_entry(dtar *t, int dirfd, const char *name, const char *rel, forge_error **err);

static int dtar_dir(dtar *t, int fd, const char *rel, forge_error **err)
{
        cleanup_strv char **names = NULL;
        int r = 0;

        if (fs_dir_list_sorted(fd, ".", &names, err) < 0)
                return forge_error_prefix(err, "'%s'", rel[0] ? rel : ".");
        for (size_t i = 0; names[i] != NULL && r == 0; i++) {
                cleanup_free char *child = rel[0] ? fs_path_join(rel, names[i]) : strdup(names[i]);
                r = child ? dtar_entry(t, fd, names[i], child, err)
                          : forge_error_make(err, ENOMEM, "tar");
        }
        return r;
}

static int dtar_data(dtar *t, int fd, const char *rel, forge_error **err)
{
        for (;;) {
                ssize_t n = read(fd, t->buf, BUF_SIZE);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return forge_error_make(err, errno, "read '%s'", rel);
                if (n == 0)
                        return 0;
                if (archive_write_data(t->a, t->buf, (size_t)n) != n)
                        return forge_error_make(err, EIO, "write tar: %s",
                                                archive_error_string(t->a));
        }
}

static int dtar_entry(dtar *t, int dirfd, const char *name, const char *rel, forge_error **err)
{
        struct stat st;
        cleanup_close int fd = -1;
        cleanup_free char *dname = NULL;
        struct archive_entry *ae = t->ae;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return forge_error_make(err, errno, "stat '%s'", rel);
        archive_entry_clear(ae);
        if (S_ISDIR(st.st_mode)) {
                if (asprintf(&dname, "%s/", rel) < 0)
                        return forge_error_make(err, ENOMEM, "tar");
                archive_entry_copy_pathname(ae, dname);
        } else {
                archive_entry_copy_pathname(ae, rel);
        }
        archive_entry_set_mode(ae, st.st_mode & (S_IFMT | 07777));
        archive_entry_set_uid(ae, t->zero_owners ? 0 : st.st_uid);
        archive_entry_set_gid(ae, t->zero_owners ? 0 : st.st_gid);
        /* an OCI layout's files have no meaningful times: 0, so the tar is reproducible */
        archive_entry_set_mtime(ae, t->zero_owners ? 0 : st.st_mtime, 0);
        if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
                for (size_t i = 0; i < t->n_links; i++)
                        if (t->links[i].dev == st.st_dev && t->links[i].ino == st.st_ino) {
                                archive_entry_copy_hardlink(ae, t->links[i].path);
                                archive_entry_set_size(ae, 0);
                                if (store_archive_write_header(t->a, ae) != ARCHIVE_OK)
                                        return forge_error_make(err, EIO, "write tar: %s",
                                                                archive_error_string(t->a));
                                return 0;
                        }
                linkrec *nl = realloc(t->links, (t->n_links + 1) * sizeof(*nl));
                if (nl == NULL)
                        return forge_error_make(err, ENOMEM, "tar");
                t->links = nl;
                nl[t->n_links] = (linkrec){st.st_dev, st.st_ino, strdup(rel)};
                t->n_links++;
        }
        if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
                if (n < 0)
                        return forge_error_make(err, errno, "readlink '%s'", rel);
                target[n] = '\0';
                archive_entry_copy_symlink(ae, target);
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
                archive_entry_set_rdev(ae, st.st_rdev);
        } else if (S_ISREG(st.st_mode)) {
                char cap[256];
                ssize_t n;
                archive_entry_set_size(ae, st.st_size);
                fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return forge_error_make(err, errno, "open '%s'", rel);
                n = fgetxattr(fd, "security.capability", cap, sizeof(cap));
                if (n > 0)
                        archive_entry_xattr_add_entry(ae, "security.capability", cap, (size_t)n);
        } else if (S_ISDIR(st.st_mode)) {
                fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return forge_error_make(err, errno, "open '%s'", rel);
        } else if (!S_ISFIFO(st.st_mode)) {
                return 0; /* sockets */
        }
        if (store_archive_write_header(t->a, ae) != ARCHIVE_OK)
                return forge_error_make(err, EIO, "write tar: %s", archive_error_string(t->a));
        if (S_ISREG(st.st_mode) && dtar_data(t, fd, rel, err) < 0)
                return -1;
        if (S_ISDIR(st.st_mode))
                return dtar_dir(t, fd, rel, err);
        return 0;
}

/* Writes the tree at dir as a tar to out_path (sorted, numeric owners,
 * mtimes as on disk). */
int store_tar_dir(const char *dir, const char *out_path, bool zero_owners, forge_error **err)
{
        dtar t = {0};
        cleanup_close int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), out = -1;
        locale_t cloc = (locale_t)0, old_loc = (locale_t)0;
        int r = -1;

        t.zero_owners = zero_owners;
        if (root < 0)
                return forge_error_make(err, errno, "open '%s'", dir);
        cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        if (cloc == (locale_t)0)
                return forge_error_make(err, errno, "tar: the C locale");
        old_loc = uselocale(cloc); /* see store_archive_write_header */
        t.a = archive_write_new();
        t.ae = archive_entry_new();
        t.buf = malloc(BUF_SIZE);
        if (t.a == NULL || t.ae == NULL || t.buf == NULL) {
                forge_error_make(err, ENOMEM, "tar");
                goto out;
        }
        /* a new file: never through a symlink or into a file someone put there */
        out = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (out < 0) {
                forge_error_make(err, errno, "create '%s'", out_path);
                goto out;
        }
        if (archive_write_set_format_pax_restricted(t.a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(t.a, 1) != ARCHIVE_OK ||
            archive_write_open_fd(t.a, out) != ARCHIVE_OK) {
                forge_error_make(err, EIO, "write '%s': %s", out_path, archive_error_string(t.a));
                goto out;
        }
        if (dtar_dir(&t, root, "", err) < 0)
                goto out;
        if (archive_write_close(t.a) != ARCHIVE_OK) {
                forge_error_make(err, EIO, "write '%s': %s", out_path, archive_error_string(t.a));
                goto out;
        }
        r = 0;
out:
        if (t.a)
                archive_write_free(t.a);
        archive_entry_free(t.ae);
        free(t.buf);
        for (size_t i = 0; i < t.n_links; i++)
                free(t.links[i].path);
        free(t.links);
        uselocale(old_loc);
        freelocale(cloc);
        return r;
}

/* ---- OCI layout ---- */

/* Layers to recompress to gzip: the output of each does not depend on which
 * thread made it. */
typedef struct gzjobs {
        store *s;
        const store_layer *in;
        store_layer *out;
        size_t *todo; /* indexes into in and out */
} gzjobs;

static int gz_one(void *ctx, size_t index, forge_error **err)
{
        gzjobs *j = ctx;
        size_t i = j->todo[index];

        return store_layer_recompress(j->s, &j->in[i], STORE_COMPRESSION_GZIP, &j->out[i], err);
}

static unsigned cpus_available(void)
{
        cpu_set_t set;

        if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned)CPU_COUNT(&set);
        return 1;
}

/* Recompresses the layers marked todo to gzip, on up to one thread per CPU. */
static int gzip_layers(store *s, const store_layer *in, store_layer *out, const bool *todo,
                       size_t n, forge_error **err)
{
        cleanup_free size_t *idx = calloc(n ? n : 1, sizeof(*idx));
        gzjobs j = {.s = s, .in = in, .out = out, .todo = idx};
        size_t want = 0;

        if (idx == NULL)
                return forge_error_make(err, ENOMEM, "gzip");
        for (size_t i = 0; i < n; i++)
                if (todo[i])
                        idx[want++] = i;
        return pool_run(want, cpus_available(), gz_one, &j, err);
}

static int copy_blob(store *s, const char *digest, int blobs_dir, forge_error **err)
{
        cleanup_close int in = -1, out = -1;

        if (store_blob_open(s, digest, &in, err) < 0)
                return -1;
        out = openat(blobs_dir, digest_hex(digest),
                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (out < 0 && errno == EEXIST)
                return 0; /* the same blob twice (a layer used twice) */
        if (out < 0)
                return forge_error_make(err, errno, "write blob %s", digest);
        return fs_copy_fd(in, out, err);
}

static int write_json_file(int dirfd, const char *name, json_t *j, forge_error **err)
{
        cleanup_free char *txt = store_json_canonical(j, NULL);
        if (txt == NULL)
                return forge_error_make(err, ENOMEM, "json");
        return fs_write_atomic(dirfd, name, txt, strlen(txt), 0644, err);
}

static int export_oci_dir(store *s, const store_image *img, const char *ref, store_compression comp,
                          const char *dir, forge_error **err)
{
        cleanup_close int dfd = -1, bfd = -1;
        cleanup_json json_t *manifest = NULL, *index = NULL, *layout = NULL;
        json_t *layers;
        char mdigest[DIGEST_STR_SIZE];
        cleanup_free store_layer *outs = NULL;
        cleanup_free bool *todo = NULL;
        bool changed = false;

        /* dir is new (a sibling temp name): made here, not found */
        {
                cleanup_free char *parent = strdup(dir);
                char *slash = parent ? strrchr(parent, '/') : NULL;
                if (parent == NULL)
                        return forge_error_make(err, ENOMEM, "export");
                if (slash != NULL && slash != parent) {
                        *slash = '\0';
                        if (fs_mkdir_p(parent, 0755, err) < 0)
                                return -1;
                }
        }
        if (mkdir(dir, 0755) < 0)
                return forge_error_make(err, errno, "create '%s'", dir);
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || (mkdirat(dfd, "blobs", 0755) < 0 && errno != EEXIST) ||
            (mkdirat(dfd, "blobs/sha256", 0755) < 0 && errno != EEXIST))
                return forge_error_make(err, errno, "create '%s'", dir);
        bfd = openat(dfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (bfd < 0)
                return forge_error_make(err, errno, "create '%s/blobs/sha256'", dir);
        manifest = json_deep_copy(img->manifest);
        layers = json_object_get(manifest, "layers");
        outs = calloc(img->n_layers ? img->n_layers : 1, sizeof(*outs));
        todo = calloc(img->n_layers ? img->n_layers : 1, sizeof(*todo));
        if (manifest == NULL || outs == NULL || todo == NULL)
                return forge_error_make(err, ENOMEM, "export");
        for (size_t i = 0; i < img->n_layers; i++) {
                outs[i] = img->layers[i];
                todo[i] = comp != STORE_COMPRESSION_ZSTD &&
                          strcmp(img->layers[i].media_type, STORE_MEDIA_LAYER_GZIP) != 0;
                changed |= todo[i];
        }
        if (changed && gzip_layers(s, img->layers, outs, todo, img->n_layers, err) < 0)
                return -1;
        for (size_t i = 0; i < img->n_layers; i++) {
                store_layer out = outs[i];
                json_t *d = json_array_get(layers, i);
                if (copy_blob(s, out.digest, bfd, err) < 0)
                        return -1;
                json_object_set_new(d, "mediaType", json_string(out.media_type));
                json_object_set_new(d, "digest", json_string(out.digest));
                json_object_set_new(d, "size", json_integer((json_int_t)out.size));
        }
        if (copy_blob(s, img->config_digest, bfd, err) < 0)
                return -1;
        {
                size_t len;
                cleanup_free char *txt = NULL;
                uint64_t msize = 0;
                if (!changed) {
                        /* the layers are the image's own: its manifest, byte for
                         * byte, so the image keeps its digest */
                        memcpy(mdigest, img->digest, DIGEST_STR_SIZE);
                        if (store_blob_size(s, mdigest, &msize, err) < 0 ||
                            copy_blob(s, mdigest, bfd, err) < 0)
                                return -1;
                        len = (size_t)msize;
                } else {
                        txt = store_json_canonical(manifest, &len);
                        if (txt == NULL)
                                return forge_error_make(err, ENOMEM, "manifest");
                        hash_sha256_buf(txt, len, mdigest);
                        if (fs_write_atomic(bfd, digest_hex(mdigest), txt, len, 0644, err) < 0)
                                return -1;
                }
                index = json_pack("{s:i, s:s, s:[{s:s, s:s, s:I, s:{s:s}}]}", "schemaVersion", 2,
                                  "mediaType", "application/vnd.oci.image.index.v1+json",
                                  "manifests", "mediaType", STORE_MEDIA_MANIFEST, "digest", mdigest,
                                  "size", (json_int_t)len, "annotations",
                                  "org.opencontainers.image.ref.name", ref);
        }
        layout = json_pack("{s:s}", "imageLayoutVersion", "1.0.0");
        if (index == NULL || layout == NULL)
                return forge_error_make(err, ENOMEM, "oci layout");
        if (write_json_file(dfd, "oci-layout", layout, err) < 0 ||
            write_json_file(dfd, "index.json", index, err) < 0)
                return -1;
        return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A sibling temp path of path, so the final rename stays on one file system. */
static char *sibling_tmp(const char *path)
{
        char *r = NULL;
        if (asprintf(&r, "%s.forge-tmp.%d", path, (int)getpid()) < 0)
                return NULL;
        return r;
}

/* The image's own mode for / must not reopen the tree to others. */
static int dir_private(const char *path, forge_error **err)
{
        cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0 || fchmod(fd, 0700) < 0)
                return forge_error_make(err, errno, "make '%s' private (0700)", path);
        return 0;
}

int store_export_ref(store *s, const char *manifest_digest, const char *ref,
                     store_export_format fmt, store_compression comp, const char *path,
                     forge_error **err)
{
        cleanup_store_image store_image *img = NULL;
        cleanup_free char *tmp = sibling_tmp(path), *work = NULL, *inner = NULL;
        forge_error *e2 = NULL;
        struct stat st;
        int r = -1;

        if (tmp == NULL)
                return forge_error_make(err, ENOMEM, "export");
        if (lstat(path, &st) == 0)
                return forge_error_usage(err,
                                         "'%s' already exists: remove it or choose another "
                                         "output path",
                                         path);
        if (store_lock_shared(s, err) < 0 || store_image_load(s, manifest_digest, &img, err) < 0)
                return -1;
        switch (fmt) {
        case STORE_EXPORT_DIR:
                /* 0700 as umoci's rootfs: the tree holds the image's device
                 * nodes and setuid-root files, which no other local user may
                 * reach (docs/export-import.md) */
                if (mkdir(tmp, 0700) < 0) {
                        forge_error_make(err, errno, "create '%s'", tmp);
                        break;
                }
                if (store_flatten(s, img, tmp, err) == 0 && dir_private(tmp, err) == 0)
                        r = 0;
                break;
        case STORE_EXPORT_TAR:
                if (store_tmpdir(s, &work, err) < 0)
                        break;
                if (store_flatten(s, img, work, err) == 0 &&
                    store_tar_dir(work, tmp, false, err) == 0)
                        r = 0;
                break;
        case STORE_EXPORT_OCI:
                if (!ends_with(path, ".tar")) {
                        r = export_oci_dir(s, img, ref, comp, tmp, err);
                        break;
                }
                if (store_tmpdir(s, &work, err) < 0)
                        break;
                inner = fs_path_join(work, "oci");
                if (inner && export_oci_dir(s, img, ref, comp, inner, err) == 0 &&
                    store_tar_dir(inner, tmp, true, err) == 0)
                        r = 0;
                break;
        }
        if (work) {
                fs_rm_rf(work, &e2);
                forge_error_release(&e2);
        }
        if (r == 0 && rename(tmp, path) < 0)
                r = forge_error_make(err, errno, "rename '%s' to '%s'", tmp, path);
        if (r < 0) {
                fs_rm_rf(tmp, &e2);
                forge_error_release(&e2);
                return forge_error_prefix(err, "export to '%s'", path);
        }
        return 0;
}

int store_export(store *s, const char *manifest_digest, store_export_format fmt,
                 store_compression comp, const char *path, forge_error **err)
{
        return store_export_ref(s, manifest_digest, "latest", fmt, comp, path, err);
}
