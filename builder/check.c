/* SPDX-License-Identifier: MIT */
/*
 * forge build --check: build (cache allowed), rebuild without any cache,
 * untagged, and compare. Differing layers are opened and compared entry by
 * entry so the message names the files.
 */
#include "builder/builder-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

#define MAX_NAMED 20

typedef struct tentry {
        char *path;
        char sig[256]; /* header fields + content hash */
} tentry;

typedef struct tlist {
        tentry *v;
        size_t n;
} tlist;

static void tlist_free(tlist *t)
{
        for (size_t i = 0; i < t->n; i++)
                free(t->v[i].path);
        free(t->v);
}

static int cmp_tentry(const void *a, const void *b)
{
        return strcmp(((const tentry *)a)->path, ((const tentry *)b)->path);
}

static int read_tar(store *s, const char *digest, tlist *out, forge_error **err)
{
        cleanup_close int fd = -1;
        cleanup_archive struct archive *a = store_archive_reader();
        struct archive_entry *ae;
        cleanup_free char *buf = malloc(1 << 16);
        int r;

        if (a == NULL || buf == NULL)
                return forge_error_make(err, ENOMEM, "check");
        if (store_blob_open(s, digest, &fd, err) < 0 ||
            archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
                if (!*err)
                        forge_error_make(err, EIO, "read layer %s: %s", digest,
                                         archive_error_string(a));
                return -1;
        }
        while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
                hash_sha256 *h = hash_sha256_new();
                char hd[DIGEST_STR_SIZE];
                la_ssize_t n;
                tentry *nv = realloc(out->v, (out->n + 1) * sizeof(*nv));
                if (nv == NULL || h == NULL) {
                        hash_sha256_free(h);
                        return forge_error_make(err, ENOMEM, "check");
                }
                out->v = nv;
                while ((n = archive_read_data(a, buf, 1 << 16)) > 0)
                        hash_sha256_update(h, buf, (size_t)n);
                hash_sha256_final(h, hd);
                hash_sha256_free(h);
                nv[out->n].path = strdup(archive_entry_pathname(ae));
                snprintf(nv[out->n].sig, sizeof(nv[out->n].sig),
                         "mode %o uid %lld gid %lld mtime %lld size %lld link %.40s content %.20s",
                         (unsigned)archive_entry_mode(ae), (long long)archive_entry_uid(ae),
                         (long long)archive_entry_gid(ae), (long long)archive_entry_mtime(ae),
                         (long long)archive_entry_size(ae),
                         archive_entry_symlink(ae) ? archive_entry_symlink(ae) : "",
                         digest_hex(hd));
                out->n++;
        }
        if (r != ARCHIVE_EOF)
                return forge_error_make(err, EIO, "read layer %s", digest);
        qsort(out->v, out->n, sizeof(*out->v), cmp_tentry);
        return 0;
}

/* Appends "  /path: what" lines for the differences. */
static void diff_tars(tlist *a, tlist *b, FILE *msg, size_t *named)
{
        size_t i = 0, j = 0;
        while ((i < a->n || j < b->n) && *named < MAX_NAMED) {
                int c = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->v[i].path, b->v[j].path);
                if (c < 0) {
                        fprintf(msg, "\n  /%s: only in the first build", a->v[i++].path);
                        (*named)++;
                } else if (c > 0) {
                        fprintf(msg, "\n  /%s: only in the rebuild", b->v[j++].path);
                        (*named)++;
                } else {
                        if (strcmp(a->v[i].sig, b->v[j].sig) != 0) {
                                fprintf(msg, "\n  /%s: %s vs %s", a->v[i].path, a->v[i].sig,
                                        b->v[j].sig);
                                (*named)++;
                        }
                        i++;
                        j++;
                }
        }
}

int builder_check(store *s, const char *spec_path, const builder_opts *opts,
                  char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        char first[DIGEST_STR_SIZE], second[DIGEST_STR_SIZE];
        cleanup_store_image store_image *a = NULL, *b = NULL;
        cleanup_free char *text = NULL;
        size_t len = 0, named = 0;
        FILE *msg;

        if (builder_build(s, spec_path, opts, first, err) < 0 ||
            builder_rebuild_untagged(s, spec_path, opts, second, err) < 0)
                return -1;
        memcpy(ret_digest, first, DIGEST_STR_SIZE);
        if (strcmp(first, second) == 0)
                return 0;
        if (store_image_load(s, first, &a, err) < 0 || store_image_load(s, second, &b, err) < 0)
                return -1;
        msg = open_memstream(&text, &len);
        if (msg == NULL)
                return forge_error_make(err, ENOMEM, "check");
        fprintf(msg, "not reproducible: the rebuild without cache gave %s, the build %s", second,
                first);
        if (a->n_layers != b->n_layers)
                fprintf(msg, "\n  %zu layers vs %zu", a->n_layers, b->n_layers);
        for (size_t i = 0; i < a->n_layers && i < b->n_layers; i++) {
                tlist ta = {0}, tb = {0};
                forge_error *e = NULL;
                if (strcmp(a->layers[i].digest, b->layers[i].digest) == 0)
                        continue;
                fprintf(msg, "\nlayer %zu differs (%s vs %s):", i + 1, a->layers[i].digest,
                        b->layers[i].digest);
                if (read_tar(s, a->layers[i].digest, &ta, &e) < 0 ||
                    read_tar(s, b->layers[i].digest, &tb, &e) < 0) {
                        fprintf(msg, "\n  (cannot compare: %s)", e->msg);
                        forge_error_release(&e);
                } else {
                        size_t before = named;
                        diff_tars(&ta, &tb, msg, &named);
                        if (named == before)
                                fprintf(msg, "\n  (same files; the tar encoding differs)");
                }
                tlist_free(&ta);
                tlist_free(&tb);
        }
        if (strcmp(a->config_digest, b->config_digest) != 0)
                fprintf(msg, "\nthe image config differs (%s vs %s)", a->config_digest,
                        b->config_digest);
        fclose(msg);
        return forge_error_make(err, 0, "%s", text ? text : "not reproducible");
}
