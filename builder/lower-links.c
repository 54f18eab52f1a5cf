/* SPDX-License-Identifier: MIT */
/*
 * Where a new layer's entries go in the image so far. A container sees the
 * layers stacked by overlayfs, where a directory of an upper layer replaces a
 * symlink of a lower one: a `deb:` shipping ./bin/bash or a `files:` dest of
 * /bin/x over a merged-/usr base (/bin -> usr/bin) would hide all of /bin.
 * As dpkg does when it unpacks onto such a system (and as a run: step's
 * writes go), an entry's parent directories are followed through the
 * symlinks the layers below have, inside the root, and a directory entry
 * that a lower symlink stands for is dropped: ./bin/bash becomes usr/bin/bash.
 *
 * The symlinks of the layers below are a sorted map path -> target, folded
 * layer by layer: a symlink sets its path (and hides what was below
 * it), any other entry clears its path, whiteouts and opaque markers clear
 * what they hide.
 */
#include "builder/builder-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"

#define MAX_HOPS 40

void blinks_init(blinks *l)
{
        memset(l, 0, sizeof(*l));
}

void blinks_release(blinks *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->path[i]);
                free(l->target[i]);
        }
        free(l->path);
        free(l->target);
        blinks_init(l);
}

/* The first index whose path is >= key. */
static size_t lower_bound(const blinks *l, const char *key)
{
        size_t lo = 0, hi = l->n;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (strcmp(l->path[mid], key) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static const char *get(const blinks *l, const char *key)
{
        size_t i = lower_bound(l, key);

        return i < l->n && strcmp(l->path[i], key) == 0 ? l->target[i] : NULL;
}

static void del_range(blinks *l, size_t lo, size_t hi)
{
        if (lo >= hi)
                return;
        for (size_t i = lo; i < hi; i++) {
                free(l->path[i]);
                free(l->target[i]);
        }
        memmove(l->path + lo, l->path + hi, (l->n - hi) * sizeof(char *));
        memmove(l->target + lo, l->target + hi, (l->n - hi) * sizeof(char *));
        l->n -= hi - lo;
}

static void del(blinks *l, const char *key)
{
        size_t i = lower_bound(l, key);

        if (i < l->n && strcmp(l->path[i], key) == 0)
                del_range(l, i, i + 1);
}

/* Drops everything below path (names starting "path/": from "path/" up to,
 * not including, "path0", '0' following '/'). */
static int del_below(blinks *l, const char *path)
{
        cleanup_free char *from = NULL, *to = NULL;

        if (path[0] == '\0') {
                del_range(l, 0, l->n);
                return 0;
        }
        if (asprintf(&from, "%s/", path) < 0 || asprintf(&to, "%s0", path) < 0)
                return -1;
        del_range(l, lower_bound(l, from), lower_bound(l, to));
        return 0;
}

static int set(blinks *l, const char *key, const char *target)
{
        size_t i = lower_bound(l, key);
        char *t = strdup(target), *k;

        if (t == NULL)
                return -1;
        if (i < l->n && strcmp(l->path[i], key) == 0) {
                free(l->target[i]);
                l->target[i] = t;
                return 0;
        }
        if (l->n == l->cap) {
                size_t ncap = l->cap ? l->cap * 2 : 64;
                char **np = realloc(l->path, ncap * sizeof(char *));
                char **nt = np ? realloc(l->target, ncap * sizeof(char *)) : NULL;
                if (np)
                        l->path = np;
                if (nt == NULL) {
                        free(t);
                        return -1;
                }
                l->target = nt;
                l->cap = ncap;
        }
        k = strdup(key);
        if (k == NULL) {
                free(t);
                return -1;
        }
        memmove(l->path + i + 1, l->path + i, (l->n - i) * sizeof(char *));
        memmove(l->target + i + 1, l->target + i, (l->n - i) * sizeof(char *));
        l->path[i] = k;
        l->target[i] = t;
        l->n++;
        return 0;
}

/* One entry, name cleaned (relative, no "."), in layer order. */
static int fold_one(blinks *l, const char *path, mode_t type, const char *symlink)
{
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        size_t dlen = slash ? (size_t)(slash - path) : 0;

        if (strncmp(base, ".wh.", 4) == 0) {
                cleanup_free char *dir = strndup(path, dlen);
                cleanup_free char *victim = NULL;
                if (dir == NULL)
                        return -1;
                if (strcmp(base, ".wh..wh..opq") == 0)
                        return del_below(l, dir);
                if (asprintf(&victim, "%s%s%s", dir, dlen ? "/" : "", base + 4) < 0)
                        return -1;
                del(l, victim);
                return del_below(l, victim);
        }
        del(l, path); /* whatever this entry is, it replaces a symlink there */
        if (type == S_IFDIR)
                return 0; /* and a directory merges with the one below */
        if (del_below(l, path) < 0)
                return -1;
        return type == S_IFLNK && symlink != NULL ? set(l, path, symlink) : 0;
}

int blinks_fold_entries(blinks *l, const bentries *e)
{
        for (size_t i = 0; i < e->n; i++) {
                const bentry *en = &e->v[i];
                if (fold_one(l, en->path, en->hardlink ? S_IFREG : en->type,
                             en->hardlink ? NULL : en->link) < 0)
                        return -1;
        }
        return 0;
}

int blinks_fold_layer(store *s, const store_layer *l, blinks *map, forge_error **err)
{
        cleanup_close int fd = -1;
        cleanup_archive struct archive *a = NULL;
        struct archive_entry *ae;
        int r;

        if (store_blob_open(s, l->digest, &fd, err) < 0)
                return -1;
        a = store_archive_reader();
        if (a == NULL)
                return forge_error_make(err, ENOMEM, "read layer %s", l->digest);
        if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK)
                return forge_error_make(err, EIO, "read layer %s: %s", l->digest,
                                        archive_error_string(a));
        while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
                const char *name = archive_entry_pathname(ae);
                cleanup_free char *path = name ? bpath_clean(name) : NULL;
                mode_t type = archive_entry_hardlink(ae) ? AE_IFREG : archive_entry_filetype(ae);

                if (path == NULL || path[0] == '\0')
                        continue; /* '..' or the root: nothing the layer can place */
                if (fold_one(map, path,
                             type == AE_IFLNK   ? S_IFLNK
                             : type == AE_IFDIR ? S_IFDIR
                                                : S_IFREG,
                             archive_entry_symlink(ae)) < 0)
                        return forge_error_make(err, ENOMEM, "layer symlinks");
        }
        if (r != ARCHIVE_EOF)
                return forge_error_make(err, EIO, "read layer %s: %s", l->digest,
                                        archive_error_string(a));
        return 0;
}

/* Appends component c (len n) to the resolved prefix done, handling ".." (which
 * stops at the root) and ".". */
static void push_comp(char *done, const char *c, size_t n)
{
        size_t dl = strlen(done);

        if (n == 0 || (n == 1 && c[0] == '.'))
                return;
        if (n == 2 && c[0] == '.' && c[1] == '.') {
                char *slash = strrchr(done, '/');
                if (slash)
                        *slash = '\0';
                else
                        done[0] = '\0';
                return;
        }
        if (dl > 0)
                done[dl++] = '/';
        memcpy(done + dl, c, n);
        done[dl + n] = '\0';
}

/* path with its parent directories followed through the map's symlinks, its
 * last component kept; malloc'd, NULL on ENOMEM, or path unchanged (strdup)
 * when the links go round more than MAX_HOPS times or grow past PATH_MAX. */
static char *place(const blinks *map, const char *path)
{
        cleanup_free char *done = calloc(1, PATH_MAX + 1);
        cleanup_free char *rest = strdup(path);
        int hops = 0;

        if (done == NULL || rest == NULL)
                return NULL;
        for (;;) {
                char *p = rest;
                size_t n;
                const char *target;

                while (*p == '/')
                        p++;
                n = strcspn(p, "/");
                if (p[n] == '\0' || p[n + strspn(p + n, "/")] == '\0') {
                        /* the last component: kept as it is */
                        if (strlen(done) + n + 2 > PATH_MAX)
                                return strdup(path);
                        push_comp(done, p, n);
                        return strdup(done);
                }
                if (strlen(done) + n + 2 > PATH_MAX)
                        return strdup(path);
                {
                        size_t before = strlen(done);
                        push_comp(done, p, n);
                        target = strlen(done) > before ? get(map, done) : NULL;
                        if (target != NULL) {
                                cleanup_free char *nrest = NULL;
                                if (++hops > MAX_HOPS)
                                        return strdup(path);
                                done[before] = '\0'; /* the link's directory */
                                if (target[0] == '/')
                                        done[0] = '\0';
                                if (asprintf(&nrest, "%s/%s", target, p + n) < 0)
                                        return NULL;
                                free(rest);
                                rest = take_ptr(nrest);
                                continue;
                        }
                }
                memmove(rest, p + n, strlen(p + n) + 1);
        }
}

int blinks_place(const blinks *map, bentries *e, int64_t sde, forge_error **err)
{
        size_t o = 0;
        bool changed = false;

        if (map->n == 0)
                return 0;
        for (size_t i = 0; i < e->n; i++) {
                bentry *en = &e->v[i];
                cleanup_free char *np = place(map, en->path);
                if (np == NULL)
                        return forge_error_make(err, ENOMEM, "place the layer's entries");
                /* a directory a lower symlink stands for: the symlink stays */
                if (en->type == S_IFDIR && !en->hardlink && get(map, np) != NULL) {
                        bentry_free(en);
                        changed = true;
                        continue;
                }
                if (strcmp(np, en->path) != 0) {
                        free(en->path);
                        en->path = take_ptr(np);
                        changed = true;
                }
                if (en->hardlink && en->link != NULL) {
                        cleanup_free char *nl = place(map, en->link);
                        if (nl == NULL)
                                return forge_error_make(err, ENOMEM, "place the layer's entries");
                        if (strcmp(nl, en->link) != 0) {
                                free(en->link);
                                en->link = take_ptr(nl);
                                changed = true;
                        }
                }
                e->v[o++] = *en;
        }
        e->n = o;
        return changed ? bentries_finish(e, sde, err) : 0;
}
