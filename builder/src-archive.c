/* SPDX-License-Identifier: MIT */
/*
 * `deb:` and `archive:` layers. The input is untrusted: names are cleaned
 * (no absolute paths, no '..'), hardlinks must point inside the layer,
 * contents are streamed to an unlinked spool file (memory stays flat
 * whatever the archive's size) and only what the archive really holds is
 * read. mtimes are clamped to source_date_epoch.
 */
#include "builder/builder-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

#define BUF_SIZE (1 << 20)

typedef struct actx {
        const spec *sp;
        const spec_layer *l;
        bentries *out;
        const char *prefix; /* cleaned dest, "" for / */
        off_t spool_end;
        char *buf;
        bool skip_data; /* forge check: read names and structure, keep no content */
} actx;

static char *dest_path(actx *c, const char *name)
{
        cleanup_free char *clean = bpath_clean(name);
        if (clean == NULL)
                return NULL;
        if (c->prefix[0] == '\0')
                return take_ptr(clean);
        if (clean[0] == '\0')
                return strdup(c->prefix);
        return fs_path_join(c->prefix, clean);
}

/* Content goes to the spool at its offset in the entry: a sparse member's
 * holes stay holes there (a 10 KiB archive can declare a 1 TiB file). */
static int spool(actx *c, struct archive *a, struct archive_entry *ae, bentry *en, const char *name,
                 forge_error **err)
{
        int64_t declared = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : -1;
        uint64_t end = 0;
        const void *buf;
        size_t len;
        la_int64_t off;
        int r;

        en->spool_off = c->spool_end;
        en->size = 0;
        if (c->skip_data) {
                /* still decompressed and read through: corruption shows */
                if (archive_read_data_skip(a) != ARCHIVE_OK)
                        return forge_error_make(err, EIO, "'%s': %s", name,
                                                archive_error_string(a));
                return 0;
        }
        while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
                if (off < 0 || (declared >= 0 && (int64_t)len > declared - off))
                        return forge_error_make(err, EINVAL, "'%s': data beyond its declared size",
                                                name);
                if (len > 0) {
                        ssize_t w = pwrite(c->out->spool_fd, buf, len, c->spool_end + off);
                        if (w != (ssize_t)len)
                                return forge_error_make(err, w < 0 ? errno : ENOSPC, "spool '%s'",
                                                        name);
                }
                if ((uint64_t)off + len > end)
                        end = (uint64_t)off + len;
        }
        if (r != ARCHIVE_EOF)
                return forge_error_make(err, EIO, "'%s': %s", name, archive_error_string(a));
        en->size = declared > (int64_t)end ? (uint64_t)declared : end;
        c->spool_end += (off_t)en->size;
        return 0;
}

/* What no Linux file system can hold: a path of PATH_MAX or more bytes (with
 * the leading '/') or a component longer than NAME_MAX. Such an entry could
 * be built into a layer that nothing can ever extract. */
static bool name_too_long(const char *path)
{
        size_t comp = 0;

        if (strlen(path) + 1 >= PATH_MAX)
                return true;
        for (const char *p = path; *p; p++) {
                comp = *p == '/' ? 0 : comp + 1;
                if (comp > NAME_MAX)
                        return true;
        }
        return false;
}

static int too_long(actx *c, const char *what, const char *kind, const char *name,
                    forge_error **err)
{
        return spec_error(err, c->sp, c->l->src_pos,
                          "%s: %s '%.48s...' (%zu bytes) is longer than Linux allows (%d bytes, "
                          "%d per component): refusing a hostile or broken archive",
                          what, kind, name, strlen(name), PATH_MAX - 1, NAME_MAX);
}

static int add_xattrs(struct archive_entry *ae, bentry *en, forge_error **err)
{
        const char *name;
        const void *value;
        size_t size;

        archive_entry_xattr_reset(ae);
        while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK)
                if (bentry_add_xattr(en, name, value, size) < 0)
                        return forge_error_make(err, ENOMEM, "xattrs");
        return 0;
}

static int read_entries(actx *c, struct archive *a, const char *what, forge_error **err)
{
        struct archive_entry *ae;
        int r;
        int64_t sde = (int64_t)c->sp->source_date_epoch;

        while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
                const char *name = archive_entry_pathname(ae);
                cleanup_free char *path = NULL;
                mode_t type = archive_entry_filetype(ae);
                const char *hl = archive_entry_hardlink(ae);
                bentry *en;

                if (name == NULL)
                        return forge_error_make(err, EINVAL, "%s: entry without a name", what);
                path = dest_path(c, name);
                if (path == NULL)
                        return spec_error(err, c->sp, c->l->src_pos,
                                          "%s: entry '%s' leaves the layer ('..' in its path): "
                                          "refusing a hostile or broken archive",
                                          what, name);
                if (path[0] == '\0')
                        continue; /* the root itself */
                if (name_too_long(path))
                        return too_long(c, what, "entry", name, err);
                en = bentries_add(c->out, path);
                if (en == NULL)
                        return forge_error_make(err, ENOMEM, "archive");
                en->perm = archive_entry_perm(ae) & 07777;
                en->uid = (uid_t)archive_entry_uid(ae);
                en->gid = (gid_t)archive_entry_gid(ae);
                en->mtime = archive_entry_mtime(ae);
                if (en->mtime > sde)
                        en->mtime = sde;
                if (en->mtime < 0)
                        en->mtime = 0;
                if (add_xattrs(ae, en, err) < 0)
                        return -1;
                if (hl != NULL) {
                        en->type = S_IFREG;
                        en->hardlink = true;
                        en->link = dest_path(c, hl);
                        if (en->link == NULL || en->link[0] == '\0')
                                return spec_error(err, c->sp, c->l->src_pos,
                                                  "%s: hardlink '%s' -> '%s' leaves the layer",
                                                  what, name, hl);
                        if (name_too_long(en->link))
                                return too_long(c, what, "hardlink target", hl, err);
                        continue;
                }
                switch (type) {
                case AE_IFREG:
                        en->type = S_IFREG;
                        if (spool(c, a, ae, en, name, err) < 0)
                                return -1;
                        break;
                case AE_IFDIR:
                        en->type = S_IFDIR;
                        break;
                case AE_IFLNK:
                        en->type = S_IFLNK;
                        en->link =
                            strdup(archive_entry_symlink(ae) ? archive_entry_symlink(ae) : "");
                        if (en->link == NULL)
                                return forge_error_make(err, ENOMEM, "archive");
                        if (strlen(en->link) >= PATH_MAX)
                                return too_long(c, what, "symlink target", en->link, err);
                        break;
                case AE_IFCHR:
                case AE_IFBLK:
                        en->type = type == AE_IFCHR ? S_IFCHR : S_IFBLK;
                        en->rdev = archive_entry_rdev(ae);
                        break;
                case AE_IFIFO:
                        en->type = S_IFIFO;
                        break;
                default:
                        return forge_error_make(err, EINVAL, "%s: '%s' has an unsupported type",
                                                what, name);
                }
        }
        if (r != ARCHIVE_EOF)
                return spec_error(err, c->sp, c->l->src_pos,
                                  "%s: %s (is it a truncated or "
                                  "corrupt archive?)",
                                  what, archive_error_string(a));
        return 0;
}

/* Hardlinks must name an earlier regular file of the same layer. */
static int check_hardlinks(actx *c, const char *what, forge_error **err)
{
        bentries *e = c->out;
        for (size_t i = 0; i < e->n; i++) {
                bool ok = false;
                if (!e->v[i].hardlink)
                        continue;
                for (size_t j = 0; j < e->n && !ok; j++)
                        ok = !e->v[j].hardlink && e->v[j].type == S_IFREG &&
                             strcmp(e->v[j].path, e->v[i].link) == 0;
                if (!ok)
                        return spec_error(err, c->sp, c->l->src_pos,
                                          "%s: hardlink '/%s' points to '/%s', which is not a "
                                          "file of this layer",
                                          what, e->v[i].path, e->v[i].link);
        }
        return 0;
}

static int read_deb(actx *c, forge_error **err)
{
        cleanup_store_deb store_deb *d = NULL;
        cleanup_error forge_error *e = NULL;
        cleanup_free char *what = NULL;
        const char *name;
        struct archive *tar;
        int r;

        if (store_deb_open(c->l->src_path, &d, &e) < 0)
                return spec_error(err, c->sp, c->l->src_pos, "'%s' is %s", c->l->src, e->msg);
        r = store_deb_next(d, "data.tar", &name, &e);
        if (r <= 0)
                return spec_error(err, c->sp, c->l->src_pos,
                                  "'%s' is not a Debian package (no data.tar member%s%s)",
                                  c->l->src, r == 0 ? "" : ": ", r == 0 ? "" : e->msg);
        if (asprintf(&what, "deb '%s' (%s)", c->l->src, name) < 0)
                return forge_error_make(err, ENOMEM, "deb");
        tar = store_deb_tar(d, &e);
        if (tar == NULL)
                return spec_error(err, c->sp, c->l->src_pos, "%s: %s", what, e->msg);
        if (read_entries(c, tar, what, err) < 0)
                return -1;
        return check_hardlinks(c, what, err);
}

static int read_archive(actx *c, forge_error **err)
{
        cleanup_archive struct archive *a = store_archive_reader();
        cleanup_free char *what = NULL;

        if (a == NULL || asprintf(&what, "archive '%s'", c->l->src) < 0)
                return forge_error_make(err, ENOMEM, "archive");
        if (archive_read_open_filename(a, c->l->src_path, BUF_SIZE) != ARCHIVE_OK)
                return spec_error(err, c->sp, c->l->src_pos, "%s: %s", what,
                                  archive_error_string(a));
        if (read_entries(c, a, what, err) < 0)
                return -1;
        return check_hardlinks(c, what, err);
}

int bsrc_archive(const spec *sp, const spec_layer *l, const char *spool_dir, bentries *out,
                 forge_error **err)
{
        cleanup_free char *prefix = bpath_clean(l->dest ? l->dest : "/");
        cleanup_free char *buf = malloc(BUF_SIZE);
        actx c = {sp, l, out, NULL, 0, NULL, false};

        if (prefix == NULL || buf == NULL)
                return forge_error_make(err, ENOMEM, "archive");
        c.prefix = prefix;
        c.buf = buf;
        if (out->spool_fd < 0) {
                out->spool_fd = open(spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
                if (out->spool_fd < 0)
                        return forge_error_make(err, errno, "spool file in '%s'", spool_dir);
        }
        /* several archives may share one layer's spool (packages: layers) */
        c.spool_end = lseek(out->spool_fd, 0, SEEK_END);
        if (c.spool_end < 0)
                return forge_error_make(err, errno, "spool file");
        if ((l->kind == SPEC_LAYER_DEB ? read_deb(&c, err) : read_archive(&c, err)) < 0)
                return -1;
        /* a last file ending in a hole left the spool shorter than its end: the
         * next archive of the layer starts after it all the same */
        if (lseek(out->spool_fd, 0, SEEK_END) < c.spool_end &&
            ftruncate(out->spool_fd, c.spool_end) < 0)
                return forge_error_make(err, errno, "spool file");
        return 0;
}

int bsrc_archive_check(const spec *sp, const spec_layer *l, forge_error **err)
{
        cleanup_free char *prefix = bpath_clean(l->dest ? l->dest : "/");
        cleanup_free char *buf = malloc(BUF_SIZE);
        bentries e;
        actx c = {sp, l, &e, NULL, 0, NULL, true};
        int r;

        if (prefix == NULL || buf == NULL)
                return forge_error_make(err, ENOMEM, "archive");
        c.prefix = prefix;
        c.buf = buf;
        bentries_init(&e);
        r = l->kind == SPEC_LAYER_DEB ? read_deb(&c, err) : read_archive(&c, err);
        if (r == 0)
                r = bentries_finish(&e, (int64_t)sp->source_date_epoch, err);
        bentries_free(&e);
        return r;
}
