/* SPDX-License-Identifier: MIT */
/*
 * `files:` layers: copy files and trees from the build context. Host
 * metadata that isn't content is dropped: mtimes become source_date_epoch,
 * owners come from the spec, modes are normalised (0755 if any execute bit,
 * else 0644; directories 0755) unless the spec gives one. Symlinks are kept
 * as symlinks, never followed. Hardlinked files stay hardlinked (see
 * bentries_finish).
 */
#include "builder/builder-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

typedef struct fctx {
        const spec *sp;
        const spec_layer *l;
        const spec_file *f;
        bentries *out;
        size_t depth;
        bool caps; /* read security.capability now (else bentries_load_caps later) */
} fctx;

static mode_t norm_mode(const fctx *c, const struct stat *st)
{
        if (S_ISDIR(st->st_mode))
                return 0755;
        if (S_ISLNK(st->st_mode))
                return 0777;
        if (c->f->mode >= 0)
                return (mode_t)c->f->mode;
        return (st->st_mode & 0111) ? 0755 : 0644;
}

/* A file's capabilities are its only xattr a layer keeps. */
static int load_caps(bentry *en, forge_error **err)
{
        char cap[256];
        ssize_t n = lgetxattr(en->host_path, "security.capability", cap, sizeof(cap));

        if (n > 0 && bentry_add_xattr(en, "security.capability", cap, (size_t)n) < 0)
                return forge_error_make(err, ENOMEM, "files");
        return 0;
}

int bentries_load_caps(bentries *e, forge_error **err)
{
        for (size_t i = 0; i < e->n; i++) {
                bentry *en = &e->v[i];
                if (en->type == S_IFREG && en->host_path != NULL && en->n_xattrs == 0 &&
                    load_caps(en, err) < 0)
                        return -1;
        }
        return 0;
}

static int add_one(fctx *c, const char *host, const char *dest, const struct stat *st,
                   forge_error **err)
{
        bentry *en = bentries_add(c->out, dest);

        if (en == NULL)
                return forge_error_make(err, ENOMEM, "files");
        en->perm = norm_mode(c, st);
        en->uid = c->f->uid;
        en->gid = c->f->gid;
        en->mtime = (int64_t)c->sp->source_date_epoch;
        if (S_ISREG(st->st_mode)) {
                if (bentry_host_file(en, host, st, err) < 0 || (c->caps && load_caps(en, err) < 0))
                        return -1;
        } else if (S_ISDIR(st->st_mode)) {
                en->type = S_IFDIR;
        } else if (S_ISLNK(st->st_mode)) {
                if (bentry_host_symlink(en, host, err) < 0)
                        return -1;
        } else {
                return spec_error(err, c->sp, c->f->pos,
                                  "'%s' is a special file (device, socket or fifo): only "
                                  "files, directories and symlinks can be copied",
                                  host);
        }
        return 0;
}

static int walk(fctx *c, const char *host, const char *dest, forge_error **err)
{
        cleanup_strv char **names = NULL;
        int r = 0;

        if (++c->depth > 256)
                return forge_error_make(err, ELOOP, "'%s' is nested too deeply", host);
        if (dir_list_sorted(AT_FDCWD, host, &names, err) < 0)
                return -1;
        for (size_t i = 0; names[i] != NULL && r == 0; i++) {
                cleanup_free char *h = path_join(host, names[i]);
                cleanup_free char *dd = dest[0] ? path_join(dest, names[i]) : strdup(names[i]);
                struct stat st;
                if (h == NULL || dd == NULL) {
                        r = forge_error_make(err, ENOMEM, "files");
                        break;
                }
                if (lstat(h, &st) < 0) {
                        r = forge_error_make(err, errno, "stat '%s'", h);
                        break;
                }
                r = add_one(c, h, dd, &st, err);
                if (r == 0 && S_ISDIR(st.st_mode))
                        r = walk(c, h, dd, err);
        }
        c->depth--;
        return r;
}

static int add_file_spec(fctx *c, forge_error **err)
{
        const spec_file *f = c->f;
        struct stat st;
        cleanup_free char *dest = NULL;
        bool into = f->dest[strlen(f->dest) - 1] == '/';

        if (lstat(f->src_path, &st) < 0)
                return spec_error(err, c->sp, f->pos, "cannot read '%s': %s", f->src,
                                  strerror(errno));
        dest = bpath_clean(f->dest);
        if (dest == NULL)
                return spec_error(err, c->sp, f->pos, "bad dest '%s'", f->dest);
        if (S_ISDIR(st.st_mode)) {
                if (dest[0] != '\0') {
                        if (add_one(c, f->src_path, dest, &st, err) < 0)
                                return -1;
                }
                return walk(c, f->src_path, dest, err);
        }
        if (into || dest[0] == '\0') {
                cleanup_free char *src = strdup(f->src);
                char *base;
                size_t sl = src ? strlen(src) : 0;
                if (src == NULL)
                        return forge_error_make(err, ENOMEM, "files");
                while (sl > 1 && src[sl - 1] == '/')
                        src[--sl] = '\0';
                base = strrchr(src, '/');
                base = base ? base + 1 : src;
                char *full = dest[0] ? path_join(dest, base) : strdup(base);
                if (full == NULL)
                        return forge_error_make(err, ENOMEM, "files");
                free(dest);
                dest = full;
        }
        return add_one(c, f->src_path, dest, &st, err);
}

static int files(const spec *sp, const spec_layer *l, bool caps, bentries *out, forge_error **err)
{
        fctx c = {sp, l, NULL, out, 0, caps};

        for (size_t i = 0; i < l->n_files; i++) {
                c.f = &l->files[i];
                if (add_file_spec(&c, err) < 0)
                        return -1;
        }
        return 0;
}

int bsrc_files(const spec *sp, const spec_layer *l, bentries *out, forge_error **err)
{
        return files(sp, l, true, out, err);
}

int bsrc_files_nocaps(const spec *sp, const spec_layer *l, bentries *out, forge_error **err)
{
        return files(sp, l, false, out, err);
}
