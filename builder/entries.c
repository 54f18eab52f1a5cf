/* SPDX-License-Identifier: MIT */
#include "builder/builder-internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/array.h"
#include "common/cleanup.h"
#include "common/fs.h"

#define OPAQUE ".wh..wh..opq"

void bentries_init(bentries *e)
{
        memset(e, 0, sizeof(*e));
        e->spool_fd = -1;
}

static void bentry_drop_xattrs(bentry *en)
{
        for (size_t i = 0; i < en->n_xattrs; i++) {
                free(en->xattr_names[i]);
                free(en->xattr_values[i]);
        }
        free(en->xattr_names);
        free(en->xattr_values);
        free(en->xattr_sizes);
        en->xattr_names = NULL;
        en->xattr_values = NULL;
        en->xattr_sizes = NULL;
        en->n_xattrs = 0;
}

void bentry_free(bentry *en)
{
        free(en->path);
        free(en->link);
        free(en->host_path);
        bentry_drop_xattrs(en);
}

void bentries_free(bentries *e)
{
        for (size_t i = 0; i < e->n; i++)
                bentry_free(&e->v[i]);
        free(e->v);
        if (e->spool_fd >= 0)
                close(e->spool_fd);
        if (e->tmp_dir != NULL) {
                forge_error *e2 = NULL;
                fs_rm_rf(e->tmp_dir, &e2);
                forge_error_release(&e2);
                free(e->tmp_dir);
        }
        bentries_init(e);
}

bentry *bentries_add(bentries *e, const char *path)
{
        bentry *en;

        if (ARRAY_GROW(e->v, e->cap, e->n + 1) < 0)
                return NULL;
        en = &e->v[e->n];
        memset(en, 0, sizeof(*en));
        en->spool_off = -1;
        en->path = strdup(path);
        if (en->path == NULL)
                return NULL;
        e->n++;
        return en;
}

bentry *bentries_add_dir(bentries *e, const char *path, int64_t mtime)
{
        bentry *d = bentries_add(e, path);

        if (d == NULL)
                return NULL;
        d->type = S_IFDIR;
        d->perm = 0755;
        d->mtime = mtime;
        return d;
}

int bentry_add_xattr(bentry *en, const char *name, const void *value, size_t size)
{
        size_t n = en->n_xattrs + 1, at;
        char **names = realloc(en->xattr_names, n * sizeof(char *));
        void **values;
        size_t *sizes;

        if (names == NULL)
                return -1;
        en->xattr_names = names;
        values = realloc(en->xattr_values, n * sizeof(void *));
        if (values == NULL)
                return -1;
        en->xattr_values = values;
        sizes = realloc(en->xattr_sizes, n * sizeof(size_t));
        if (sizes == NULL)
                return -1;
        en->xattr_sizes = sizes;
        for (at = 0; at < en->n_xattrs && strcmp(en->xattr_names[at], name) < 0; at++)
                ;
        memmove(&names[at + 1], &names[at], (en->n_xattrs - at) * sizeof(char *));
        memmove(&values[at + 1], &values[at], (en->n_xattrs - at) * sizeof(void *));
        memmove(&sizes[at + 1], &sizes[at], (en->n_xattrs - at) * sizeof(size_t));
        names[at] = strdup(name);
        values[at] = malloc(size ? size : 1);
        if (names[at] == NULL || values[at] == NULL)
                return -1;
        memcpy(values[at], value, size);
        sizes[at] = size;
        en->n_xattrs = n;
        return 0;
}

char *bpath_clean(const char *p)
{
        return fs_path_clean(p, FS_DOTDOT_REFUSE);
}

/* Path order: component by component, bytewise, with the opaque-directory
 * marker first among its siblings. Parents sort before their children and a
 * directory's contents are contiguous. That is a bytewise order in which '/'
 * sorts below every other byte: one pass to the first difference, then a
 * look at the component it is in for the marker. */
static int path_rank(unsigned char c)
{
        if (c == '/')
                return 1;
        return c != '\0' && c < '/' ? c + 1 : c;
}

static bool is_opaque(const char *component)
{
        size_t n = sizeof(OPAQUE) - 1;

        return component[0] == '.' && strncmp(component, OPAQUE, n) == 0 &&
               (component[n] == '\0' || component[n] == '/');
}

static int cmp_path(const char *a, const char *b)
{
        size_t i = 0, comp = 0;
        bool oa, ob;

        for (; a[i] == b[i]; i++) {
                if (a[i] == '\0')
                        return 0;
                if (a[i] == '/')
                        comp = i + 1;
        }
        oa = is_opaque(a + comp);
        ob = is_opaque(b + comp);
        if (oa != ob)
                return oa ? -1 : 1;
        return path_rank((unsigned char)a[i]) - path_rank((unsigned char)b[i]);
}

typedef struct sortrec {
        bentry *en;
        size_t seq;
} sortrec;

static int cmp_rec(const void *x, const void *y)
{
        const sortrec *a = x, *b = y;
        int c = cmp_path(a->en->path, b->en->path);
        if (c != 0)
                return c;
        return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The index of path among the first n (sorted) entries, or SIZE_MAX. */
static size_t find_path_in(const bentries *e, size_t n, const char *path)
{
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = cmp_path(e->v[mid].path, path);
                if (c == 0)
                        return mid;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return SIZE_MAX;
}

/* A directory walk that lists each directory sorted yields this order
 * already (and no name twice): one pass instead of a sort. */
static bool strictly_sorted(const bentries *e)
{
        for (size_t i = 1; i < e->n; i++)
                if (cmp_path(e->v[i - 1].path, e->v[i].path) >= 0)
                        return false;
        return true;
}

static int sort_dedupe(bentries *e, forge_error **err)
{
        cleanup_free sortrec *r = NULL;
        cleanup_free bentry *nv = NULL;
        size_t o = 0;

        if (strictly_sorted(e))
                return 0;
        r = calloc(e->n ? e->n : 1, sizeof(*r));
        if (r == NULL)
                return forge_error_make(err, ENOMEM, "sort layer");
        for (size_t i = 0; i < e->n; i++)
                r[i] = (sortrec){&e->v[i], i};
        qsort(r, e->n, sizeof(*r), cmp_rec);
        nv = calloc(e->cap ? e->cap : 1, sizeof(*nv));
        if (nv == NULL)
                return forge_error_make(err, ENOMEM, "sort layer");
        for (size_t i = 0; i < e->n; i++) {
                if (i + 1 < e->n && strcmp(r[i].en->path, r[i + 1].en->path) == 0) {
                        bentry_free(r[i].en); /* a later entry replaces it */
                        continue;
                }
                nv[o++] = *r[i].en;
        }
        free(e->v);
        e->v = take_ptr(nv);
        e->n = o;
        return 0;
}

static size_t find_path(const bentries *e, const char *path)
{
        return find_path_in(e, e->n, path);
}

/* Swaps everything but the names: a takes over b's inode and content. */
static void swap_content(bentry *a, bentry *b)
{
        char *pa = a->path, *pb = b->path;
        bentry t = *a;

        *a = *b;
        *b = t;
        a->path = pa;
        b->path = pb;
}

/* en becomes a hardlink to holder, with the inode's metadata. */
static int make_hardlink(bentry *en, const bentry *holder)
{
        char *link = strdup(holder->path);

        if (link == NULL)
                return -1;
        free(en->link);
        free(en->host_path);
        bentry_drop_xattrs(en);
        en->link = link;
        en->hardlink = true;
        en->host_path = NULL;
        en->type = S_IFREG;
        en->perm = holder->perm;
        en->uid = holder->uid;
        en->gid = holder->gid;
        en->mtime = holder->mtime;
        en->size = 0;
        en->spool_off = -1;
        return 0;
}

/* Archive hardlinks: the regular file each one names, following chains. */
static int archive_roots(bentries *e, size_t *root, forge_error **err)
{
        for (size_t i = 0; i < e->n; i++) {
                size_t t = i, hops = 0;

                if (!e->v[i].hardlink)
                        continue;
                while (t != SIZE_MAX && e->v[t].hardlink && hops++ <= e->n)
                        t = find_path(e, e->v[t].link);
                if (t == SIZE_MAX || e->v[t].hardlink || e->v[t].type != S_IFREG)
                        return forge_error_make(err, EINVAL,
                                                "hardlink '/%s' points to '/%s', which is not a "
                                                "file of this layer",
                                                e->v[i].path, e->v[i].link);
                root[i] = t;
                root[t] = t;
        }
        return 0;
}

/* An inode and the metadata its names get in the layer: names that would
 * differ in mode, owner or mtime stay separate files. */
typedef struct inode_rec {
        uint64_t k[6];
        size_t idx;
} inode_rec;

static int cmp_inode_key(const inode_rec *a, const inode_rec *b)
{
        for (int i = 0; i < 6; i++)
                if (a->k[i] != b->k[i])
                        return a->k[i] < b->k[i] ? -1 : 1;
        return 0;
}

static int cmp_inode(const void *x, const void *y)
{
        const inode_rec *a = x, *b = y;
        int c = cmp_inode_key(a, b);

        if (c != 0)
                return c;
        return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Host files: the names of one inode, grouped under the first. */
static int host_roots(bentries *e, size_t *root, forge_error **err)
{
        cleanup_free inode_rec *c = calloc(e->n ? e->n : 1, sizeof(*c));
        size_t n = 0;

        if (c == NULL)
                return forge_error_make(err, ENOMEM, "layer hardlinks");
        for (size_t i = 0; i < e->n; i++) {
                const bentry *en = &e->v[i];
                if (en->type != S_IFREG || en->hardlink || en->host_path == NULL ||
                    en->host_nlink < 2 || root[i] != SIZE_MAX)
                        continue;
                c[n++] = (inode_rec){{(uint64_t)en->host_dev, (uint64_t)en->host_ino, en->perm,
                                      en->uid, en->gid, (uint64_t)en->mtime},
                                     i};
        }
        qsort(c, n, sizeof(*c), cmp_inode);
        for (size_t i = 0, j; i < n; i = j) {
                for (j = i + 1; j < n && cmp_inode_key(&c[i], &c[j]) == 0; j++)
                        ;
                if (j - i > 1)
                        for (size_t m = i; m < j; m++)
                                root[c[m].idx] = c[i].idx;
        }
        return 0;
}

/* Tar can only link to a name written before: the first name of each inode in
 * sorted order carries the content, the later ones link to it. */
static int order_hardlinks(bentries *e, forge_error **err)
{
        cleanup_free size_t *root = malloc((e->n ? e->n : 1) * sizeof(*root));
        cleanup_free size_t *first = malloc((e->n ? e->n : 1) * sizeof(*first));

        if (root == NULL || first == NULL)
                return forge_error_make(err, ENOMEM, "layer hardlinks");
        for (size_t i = 0; i < e->n; i++)
                root[i] = first[i] = SIZE_MAX;
        if (archive_roots(e, root, err) < 0 || host_roots(e, root, err) < 0)
                return -1;
        for (size_t i = 0; i < e->n; i++) {
                size_t r = root[i];
                if (r == SIZE_MAX)
                        continue;
                if (first[r] == SIZE_MAX) {
                        first[r] = i;
                        if (i != r)
                                swap_content(&e->v[i], &e->v[r]);
                } else if (make_hardlink(&e->v[i], &e->v[first[r]]) < 0) {
                        return forge_error_make(err, ENOMEM, "layer hardlinks");
                }
        }
        return 0;
}

/* Whether entry i's parent directories are known to be there: entry i-1 is
 * its parent or a sibling, whose parents were seen to (or made). */
static bool parents_done(const bentries *e, size_t i)
{
        const char *p = e->v[i].path, *slash = strrchr(p, '/'), *q;
        size_t dl;

        if (slash == NULL)
                return true;
        if (i == 0)
                return false;
        dl = (size_t)(slash - p);
        q = e->v[i - 1].path;
        if (strncmp(q, p, dl) != 0)
                return false;
        return q[dl] == '\0' || (q[dl] == '/' && strchr(q + dl + 1, '/') == NULL);
}

static int add_parents(bentries *e, size_t i, size_t n0, int64_t parent_mtime, forge_error **err)
{
        cleanup_free char *p = strdup(e->v[i].path);
        char *slash;

        if (p == NULL)
                return forge_error_make(err, ENOMEM, "layer parents");
        while ((slash = strrchr(p, '/')) != NULL) {
                bool seen = false;
                *slash = '\0';
                if (find_path_in(e, n0, p) != SIZE_MAX)
                        break;
                /* Check the entries added in this pass too. */
                for (size_t j = n0; j < e->n && !seen; j++)
                        seen = strcmp(e->v[j].path, p) == 0;
                if (seen)
                        break;
                if (bentries_add_dir(e, p, parent_mtime) == NULL)
                        return forge_error_make(err, ENOMEM, "layer parents");
        }
        return 0;
}

int bentries_finish(bentries *e, int64_t parent_mtime, forge_error **err)
{
        size_t n0;

        if (sort_dedupe(e, err) < 0)
                return -1;
        /* Missing parents: collect, then sort again. */
        n0 = e->n;
        for (size_t i = 0; i < n0; i++)
                if (!parents_done(e, i) && add_parents(e, i, n0, parent_mtime, err) < 0)
                        return -1;
        if (e->n != n0 && sort_dedupe(e, err) < 0)
                return -1;
        /* A non-directory can't have children. */
        for (size_t i = 0; i + 1 < e->n; i++) {
                size_t l = strlen(e->v[i].path);
                if (e->v[i].type != S_IFDIR && strncmp(e->v[i + 1].path, e->v[i].path, l) == 0 &&
                    e->v[i + 1].path[l] == '/')
                        return forge_error_make(err, ENOTDIR,
                                                "'/%s' is not a directory but "
                                                "'/%s' is below it",
                                                e->v[i].path, e->v[i + 1].path);
        }
        return order_hardlinks(e, err);
}

int bentry_host_file(bentry *en, const char *host, const struct stat *st, forge_error **err)
{
        en->type = S_IFREG;
        en->size = (uint64_t)st->st_size;
        en->host_path = strdup(host);
        if (en->host_path == NULL)
                return forge_error_make(err, ENOMEM, "'%s'", host);
        en->host_dev = st->st_dev;
        en->host_ino = st->st_ino;
        en->host_nlink = st->st_nlink;
        en->host_mtim = st->st_mtim;
        en->host_ctim = st->st_ctim;
        return 0;
}

int bentry_host_symlink(bentry *en, const char *host, forge_error **err)
{
        char target[4096];
        ssize_t n = readlink(host, target, sizeof(target) - 1);

        if (n < 0)
                return forge_error_make(err, errno, "readlink '%s'", host);
        target[n] = '\0';
        en->type = S_IFLNK;
        en->link = strdup(target);
        return en->link ? 0 : forge_error_make(err, ENOMEM, "'%s'", host);
}
