/* SPDX-License-Identifier: MIT */
/*
 * A `run:` step's overlay upper directory -> layer entries. Overlay
 * whiteouts (char device 0/0) become OCI ".wh.NAME" files; opaque
 * directories (trusted.overlay.opaque=y) get a ".wh..wh..opq" entry.
 * mtimes are clamped to source_date_epoch. Hardlinks made by the step stay
 * hardlinks (see bentries_finish).
 */
#include "builder/builder-internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

typedef struct uctx {
        int64_t sde;
        bentries *out;
        size_t depth;
} uctx;

static int add(uctx *c, const char *host, const char *rel, const struct stat *st,
               forge_error **err);

static int walk(uctx *c, const char *host, const char *rel, forge_error **err)
{
        cleanup_closedir DIR *d = opendir(host);
        struct dirent *de;

        if (d == NULL)
                return forge_error_make(err, errno, "read '%s'", host);
        if (++c->depth > 512)
                return forge_error_make(err, ELOOP, "'%s' is nested too deeply", host);
        while ((de = readdir(d)) != NULL) {
                cleanup_free char *h = NULL, *r = NULL;
                struct stat st;
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                h = fs_path_join(host, de->d_name);
                r = rel[0] ? fs_path_join(rel, de->d_name) : strdup(de->d_name);
                if (h == NULL || r == NULL)
                        return forge_error_make(err, ENOMEM, "run layer");
                if (lstat(h, &st) < 0)
                        return forge_error_make(err, errno, "stat '%s'", h);
                if (add(c, h, r, &st, err) < 0)
                        return -1;
        }
        c->depth--;
        return 0;
}

static bentry *new_entry(uctx *c, const char *rel, const struct stat *st)
{
        bentry *en = bentries_add(c->out, rel);
        if (en == NULL)
                return NULL;
        en->perm = st->st_mode & 07777;
        en->uid = st->st_uid;
        en->gid = st->st_gid;
        en->mtime = st->st_mtime < c->sde ? (int64_t)st->st_mtime : c->sde;
        if (en->mtime < 0)
                en->mtime = 0;
        return en;
}

static int add(uctx *c, const char *host, const char *rel, const struct stat *st, forge_error **err)
{
        bentry *en;

        if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0)) {
                cleanup_free char *wh = NULL;
                const char *slash = strrchr(rel, '/');
                if (asprintf(&wh, "%.*s%s.wh.%s", slash ? (int)(slash - rel) : 0, rel,
                             slash ? "/" : "", slash ? slash + 1 : rel) < 0)
                        return forge_error_make(err, ENOMEM, "run layer");
                en = bentries_add(c->out, wh);
                if (en == NULL)
                        return forge_error_make(err, ENOMEM, "run layer");
                en->type = S_IFREG;
                en->perm = 0644;
                en->mtime = c->sde;
                return 0;
        }
        en = new_entry(c, rel, st);
        if (en == NULL)
                return forge_error_make(err, ENOMEM, "run layer");
        if (S_ISREG(st->st_mode)) {
                char cap[256];
                ssize_t n;
                if (bentry_host_file(en, host, st, err) < 0)
                        return -1;
                n = lgetxattr(host, "security.capability", cap, sizeof(cap));
                if (n > 0 && bentry_add_xattr(en, "security.capability", cap, (size_t)n) < 0)
                        return forge_error_make(err, ENOMEM, "run layer");
                return 0;
        }
        if (S_ISLNK(st->st_mode))
                return bentry_host_symlink(en, host, err);
        if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
                en->type = st->st_mode & S_IFMT;
                en->rdev = st->st_rdev;
                return 0;
        }
        if (S_ISFIFO(st->st_mode)) {
                en->type = S_IFIFO;
                return 0;
        }
        if (S_ISSOCK(st->st_mode)) {
                /* Sockets can't be stored in a tar; a left-over socket is dropped. */
                free(en->path);
                c->out->n--;
                return 0;
        }
        if (S_ISDIR(st->st_mode)) {
                char v[8];
                ssize_t n = lgetxattr(host, "trusted.overlay.opaque", v, sizeof(v));
                en->type = S_IFDIR;
                if (n == 1 && v[0] == 'y') {
                        cleanup_free char *opq = fs_path_join(rel, ".wh..wh..opq");
                        bentry *o = opq ? bentries_add(c->out, opq) : NULL;
                        if (o == NULL)
                                return forge_error_make(err, ENOMEM, "run layer");
                        o->type = S_IFREG;
                        o->perm = 0644;
                        o->mtime = c->sde;
                }
                return walk(c, host, rel, err);
        }
        return forge_error_make(err, EINVAL, "'%s': unsupported file type", host);
}

int bsrc_upper(const spec *sp, const char *upper, bentries *out, forge_error **err)
{
        uctx c = {(int64_t)sp->source_date_epoch, out, 0};
        return walk(&c, upper, "", err);
}
