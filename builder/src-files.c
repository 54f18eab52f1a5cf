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

typedef struct pbuf pbuf;
static int walk_into(fctx *c, int dfd, const char *name, pbuf *host, pbuf *dest, forge_error **err);

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

/* host: the name as the entry keeps it; dfd and name: where it is, for readlinkat. */
static int add_one(fctx *c, const char *host, int dfd, const char *name, const char *dest,
                   const struct stat *st, forge_error **err)
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

/* A path grown and shrunk in place as the walk goes down and up. */
typedef struct pbuf {
        char *s;
        size_t len, cap;
} pbuf;

static void pbuf_release(pbuf *b)
{
        free(b->s);
}

/* Appends "/name" ("name" to an empty path); the length before, or -1. */
static ssize_t pbuf_push(pbuf *b, const char *name)
{
        size_t old = b->len, n = strlen(name);
        bool sep = old > 0 && b->s[old - 1] != '/';

        if (old + sep + n + 1 > b->cap) {
                size_t ncap = (old + sep + n + 1) * 2;
                char *ns = realloc(b->s, ncap);
                if (ns == NULL)
                        return -1;
                b->s = ns;
                b->cap = ncap;
        }
        if (sep)
                b->s[b->len++] = '/';
        memcpy(b->s + b->len, name, n + 1);
        b->len += n;
        return (ssize_t)old;
}

static void pbuf_pop(pbuf *b, ssize_t len)
{
        b->len = (size_t)len;
        b->s[len] = '\0';
}

/* One directory's names, sorted bytewise, in one buffer. */
typedef struct dnames {
        char *buf;
        size_t len, cap;
        char **v;
        size_t n;
} dnames;

static void dnames_release(dnames *d)
{
        free(d->buf);
        free(d->v);
}

static int dnames_add(dnames *d, const char *name)
{
        size_t n = strlen(name) + 1;

        if (d->len + n > d->cap) {
                size_t ncap = (d->len + n) * 2 + 4096;
                char *nb = realloc(d->buf, ncap);
                if (nb == NULL)
                        return -1;
                d->buf = nb;
                d->cap = ncap;
        }
        memcpy(d->buf + d->len, name, n);
        d->len += n;
        d->n++;
        return 0;
}

static int cmp_name(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dnames_read(int dfd, dnames *d)
{
        cleanup_closedir DIR *dir = opendir_at(dfd, ".");
        struct dirent *de;
        char *p;

        if (dir == NULL)
                return -1;
        for (;;) {
                const char *nm;
                errno = 0;
                de = readdir(dir);
                if (de == NULL)
                        break;
                nm = de->d_name;
                if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0')))
                        continue;
                if (dnames_add(d, nm) < 0)
                        return -1;
        }
        if (errno != 0)
                return -1;
        d->v = malloc((d->n ? d->n : 1) * sizeof(char *));
        if (d->v == NULL)
                return -1;
        p = d->buf;
        for (size_t i = 0; i < d->n; i++, p += strlen(p) + 1)
                d->v[i] = p;
        qsort(d->v, d->n, sizeof(char *), cmp_name);
        return 0;
}

/* Each name is looked up in its directory's fd (one path component for the
 * kernel to resolve, and no symlink followed on the way down); names come
 * sorted, so the walk yields the entries in bentries_finish's order. host
 * and dest name the directory on the way in and are as they were on the way
 * out. */
static int walk(fctx *c, int dfd, pbuf *host, pbuf *dest, forge_error **err)
{
        dnames d = {0};
        int r = 0;

        if (++c->depth > 256) {
                c->depth--;
                return forge_error_make(err, ELOOP, "'%s' is nested too deeply", host->s);
        }
        if (dnames_read(dfd, &d) < 0)
                r = forge_error_make(err, errno, "read directory '%s'", host->s);
        for (size_t i = 0; i < d.n && r == 0; i++) {
                ssize_t hl = pbuf_push(host, d.v[i]), dl = hl < 0 ? -1 : pbuf_push(dest, d.v[i]);
                struct stat st;
                if (hl < 0 || dl < 0) {
                        r = forge_error_make(err, ENOMEM, "files");
                        break;
                }
                if (fstatat(dfd, d.v[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
                        r = forge_error_make(err, errno, "stat '%s'", host->s);
                if (r == 0)
                        r = add_one(c, host->s, dfd, d.v[i], dest->s, &st, err);
                if (r == 0 && S_ISDIR(st.st_mode))
                        r = walk_into(c, dfd, d.v[i], host, dest, err);
                pbuf_pop(host, hl);
                pbuf_pop(dest, dl);
        }
        dnames_release(&d);
        c->depth--;
        return r;
}

static int walk_into(fctx *c, int dfd, const char *name, pbuf *host, pbuf *dest, forge_error **err)
{
        cleanup_close int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (sub < 0)
                return forge_error_make(err, errno, "open directory '%s'", host->s);
        return walk(c, sub, host, dest, err);
}

/* A source directory's tree, below dest. */
static int walk_tree(fctx *c, const char *src, const char *dest, forge_error **err)
{
        pbuf h = {0}, d = {0};
        size_t sl = strlen(src);
        int r;

        while (sl > 1 && src[sl - 1] == '/')
                sl--;
        h.s = strndup(src, sl);
        d.s = strdup(dest);
        if (h.s == NULL || d.s == NULL) {
                pbuf_release(&h);
                pbuf_release(&d);
                return forge_error_make(err, ENOMEM, "files");
        }
        h.len = h.cap = sl;
        d.len = d.cap = strlen(dest);
        r = walk_into(c, AT_FDCWD, src, &h, &d, err);
        pbuf_release(&h);
        pbuf_release(&d);
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
                        if (add_one(c, f->src_path, AT_FDCWD, f->src_path, dest, &st, err) < 0)
                                return -1;
                }
                return walk_tree(c, f->src_path, dest, err);
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
                char *full = dest[0] ? fs_path_join(dest, base) : strdup(base);
                if (full == NULL)
                        return forge_error_make(err, ENOMEM, "files");
                free(dest);
                dest = full;
        }
        return add_one(c, f->src_path, AT_FDCWD, f->src_path, dest, &st, err);
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
