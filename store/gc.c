/* SPDX-License-Identifier: MIT */
#include "store/store-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/array.h"
#include "common/cleanup.h"
#include "common/fs.h"

/* A set of 64-hex names: an array sorted once before lookups. */
typedef struct hexset {
        char (*v)[DIGEST_HEX_LEN + 1];
        size_t n, cap;
        bool sorted;
} hexset;

static int hexset_add(hexset *h, const char *digest)
{
        if (!digest_valid(digest))
                return 0;
        if (ARRAY_GROW(h->v, h->cap, h->n + 1) < 0)
                return -1;
        memcpy(h->v[h->n++], digest_hex(digest), DIGEST_HEX_LEN + 1);
        h->sorted = false;
        return 0;
}

static int cmp_hex(const void *a, const void *b)
{
        return strcmp(a, b);
}

static bool hexset_has(hexset *h, const char *hex)
{
        if (h->n == 0) /* v is NULL: qsort/bsearch must not see it */
                return false;
        if (!h->sorted) {
                qsort(h->v, h->n, sizeof(*h->v), cmp_hex);
                h->sorted = true;
        }
        return bsearch(hex, h->v, h->n, sizeof(*h->v), cmp_hex) != NULL;
}

/* Marks what one manifest reaches. A manifest that can't be parsed keeps
 * only itself (verify reports it). */
static int mark_image(store *s, const char *digest, hexset *blobs, hexset *diffs)
{
        store_image *img = NULL;
        forge_error *e = NULL;
        json_t *extra;
        size_t i;
        json_t *v;

        if (hexset_add(blobs, digest) < 0)
                return -1;
        if (store_image_load(s, digest, &img, &e) < 0) {
                forge_error_release(&e);
                return 0;
        }
        hexset_add(blobs, img->config_digest);
        for (i = 0; i < img->n_layers; i++) {
                if (hexset_add(blobs, img->layers[i].digest) < 0 ||
                    hexset_add(diffs, img->layers[i].diff_id) < 0) {
                        store_image_free(img);
                        return -1;
                }
        }
        extra = json_object_get(json_object_get(img->config, STORE_CONFIG_FORGE_KEY), "blobs");
        json_array_foreach(extra, i, v)
        {
                if (json_is_string(v) && hexset_add(blobs, json_string_value(v)) < 0) {
                        store_image_free(img);
                        return -1;
                }
        }
        store_image_free(img);
        return 0;
}

static uint64_t tree_size(const char *path)
{
        char cmd[4096];
        FILE *f;
        unsigned long long kb = 0;
        snprintf(cmd, sizeof(cmd), "du -sk -x '%s' 2>/dev/null", path);
        f = popen(cmd, "re");
        if (f == NULL)
                return 0;
        if (fscanf(f, "%llu", &kb) != 1)
                kb = 0;
        pclose(f);
        return kb * 1024;
}

static int sweep_blobs(store *s, hexset *live, bool dry_run, store_gc_fn cb, void *ud,
                       store_gc_stats *st, forge_error **err)
{
        cleanup_closedir DIR *d = opendir_at(s->root_fd, "blobs/sha256");
        struct dirent *de;

        if (d == NULL)
                return forge_error_make(err, errno, "gc: open '%s/blobs/sha256'", s->root);
        while ((de = readdir(d)) != NULL) {
                char rel[512], digest[DIGEST_STR_SIZE];
                struct stat sb;
                if (de->d_name[0] == '.' || strlen(de->d_name) != DIGEST_HEX_LEN)
                        continue;
                snprintf(digest, sizeof(digest), "sha256:%.64s", de->d_name);
                if (digest_valid(digest) && hexset_has(live, de->d_name))
                        continue;
                snprintf(rel, sizeof(rel), "blobs/sha256/%s", de->d_name);
                if (fstatat(s->root_fd, rel, &sb, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (cb)
                        cb(digest, (uint64_t)sb.st_size, ud);
                st->blobs++;
                st->bytes += (uint64_t)sb.st_size;
                if (!dry_run && unlinkat(s->root_fd, rel, 0) < 0)
                        return forge_error_make(err, errno, "gc: remove '%s'", rel);
        }
        return 0;
}

typedef int (*entry_fn)(store *s, const char *path, const char *name, void *ud, forge_error **err);

/* fn for every entry but "." and ".." of the store's directory dir, with its
 * absolute path; a directory that cannot be opened has none. */
static int each_entry(store *s, const char *dir, entry_fn fn, void *ud, forge_error **err)
{
        cleanup_closedir DIR *d = opendir_at(s->root_fd, dir);
        struct dirent *de;

        if (d == NULL)
                return 0;
        while ((de = readdir(d)) != NULL) {
                cleanup_free char *path = NULL;
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (asprintf(&path, "%s/%s/%s", s->root, dir, de->d_name) < 0)
                        return forge_error_make(err, ENOMEM, "gc");
                if (fn(s, path, de->d_name, ud, err) < 0)
                        return -1;
        }
        return 0;
}

/* An entry_fn: removes path and everything below it. */
static int remove_entry(store *s, const char *path, const char *name, void *ud, forge_error **err)
{
        (void)s, (void)name, (void)ud;
        if (fs_rm_rf(path, err) < 0)
                return forge_error_prefix(err, "gc");
        return 0;
}

typedef struct unpacked_sweep {
        hexset *diffs;
        bool dry_run;
        store_gc_stats *st;
} unpacked_sweep;

static int sweep_unpacked_one(store *s, const char *path, const char *name, void *ud,
                              forge_error **err)
{
        unpacked_sweep *w = ud;

        if (name[0] == '.' || hexset_has(w->diffs, name))
                return 0;
        w->st->unpacked++;
        /* tree_size runs du through a shell: only forge's own hex names */
        if (strlen(name) == DIGEST_HEX_LEN && strspn(name, "0123456789abcdef") == DIGEST_HEX_LEN)
                w->st->unpacked_bytes += tree_size(path);
        if (w->dry_run)
                return 0;
        if (remove_entry(s, path, name, NULL, err) < 0)
                return -1;
        if (strlen(name) == DIGEST_HEX_LEN) {
                forge_error *e = NULL;
                if (store_kv_delete(s, "unpacked", name, &e) < 0)
                        forge_error_release(&e);
        }
        return 0;
}

static int sweep_unpacked(store *s, hexset *diffs, bool dry_run, store_gc_stats *st,
                          forge_error **err)
{
        unpacked_sweep w = {diffs, dry_run, st};

        return each_entry(s, "layers", sweep_unpacked_one, &w, err);
}

/* Drops cache records whose blob is gone (or about to be). */
static int sweep_cache(store *s, hexset *live, bool dry_run, store_gc_stats *st)
{
        cleanup_closedir DIR *d = opendir_at(s->root_fd, "kv/cache");
        struct dirent *de;

        if (d == NULL)
                return 0;
        while ((de = readdir(d)) != NULL) {
                char rel[512];
                cleanup_free char *buf = NULL;
                cleanup_json json_t *j = NULL;
                const char *digest;
                bool keep;
                forge_error *e = NULL;
                if (de->d_name[0] == '.')
                        continue;
                snprintf(rel, sizeof(rel), "kv/cache/%s", de->d_name);
                if (fs_read_all(s->root_fd, rel, 1 << 20, &buf, NULL, &e) < 0) {
                        forge_error_release(&e);
                        continue;
                }
                j = json_loads(buf, 0, NULL);
                digest = json_string_value(json_object_get(j, "digest"));
                keep = digest_valid(digest) && hexset_has(live, digest_hex(digest));
                if (keep)
                        continue;
                st->kv++;
                if (!dry_run)
                        unlinkat(s->root_fd, rel, 0);
        }
        return 0;
}

static int clear_tmp(store *s, forge_error **err)
{
        return each_entry(s, "tmp", remove_entry, NULL, err);
}

int store_gc(store *s, bool dry_run, store_gc_fn cb, void *userdata, store_gc_stats *ret,
             forge_error **err)
{
        hexset blobs = {0}, diffs = {0};
        store_tag *tags = NULL;
        size_t n = 0;
        store_gc_stats st = {0};
        int r = -1;

        if (store_lock_exclusive(s, err) < 0)
                return -1;
        if (store_tag_list(s, &tags, &n, err) < 0)
                goto out;
        for (size_t i = 0; i < n; i++)
                if (mark_image(s, tags[i].digest, &blobs, &diffs) < 0) {
                        forge_error_make(err, ENOMEM, "gc");
                        goto out;
                }
        if (sweep_blobs(s, &blobs, dry_run, cb, userdata, &st, err) < 0 ||
            sweep_unpacked(s, &diffs, dry_run, &st, err) < 0 ||
            sweep_cache(s, &blobs, dry_run, &st) < 0)
                goto out;
        if (!dry_run && clear_tmp(s, err) < 0)
                goto out;
        if (ret)
                *ret = st;
        r = 0;
out:
        store_tag_list_free(tags, n);
        free(blobs.v);
        free(diffs.v);
        store_unlock(s);
        return r;
}
