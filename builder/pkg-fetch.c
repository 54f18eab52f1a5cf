/* SPDX-License-Identifier: MIT */
/*
 * .deb downloads: a few at a time into unlinked files in the store's tmp/
 * (a killed download leaves nothing), each checked against the size and
 * sha256 the lock pins as it arrives, then stored as a blob by that digest
 * (atomic rename). A package already in the store is not downloaded.
 */
#include "builder/pkg-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/http.h"

#define PARALLEL 4

typedef struct want {
        const pkg_locked *p;
        char *url;
        int fd;
        char hex[DIGEST_HEX_LEN + 1];
} want;

typedef struct prog {
        pkg_progress_fn fn;
        void *ud;
        size_t total;
} prog;

static void on_progress(void *ud, size_t done, uint64_t now, uint64_t total)
{
        prog *p = ud;
        if (p->fn)
                p->fn(p->ud, done, p->total, now, total);
}

static const pkg_source *source_of(const pkg_sources *srcs, const pkg_lock_repo *r)
{
        for (size_t i = 0; i < srcs->n; i++)
                if (srcs->v[i].entry == r->entry && srcs->v[i].source == r->source &&
                    strcmp(srcs->v[i].suite, r->suite) == 0)
                        return &srcs->v[i];
        return NULL;
}

static int store_one(store *s, const spec *sp, want *w, http_fetch *it, forge_error **err)
{
        char d[DIGEST_STR_SIZE];

        if (it->err != NULL) {
                *err = take_ptr(it->err);
                if (it->status == 404 || it->status == 410)
                        return forge_error_prefix(err,
                                                  "package '%s' %s is no longer served by its "
                                                  "repository: run 'forge lock %s' to resolve "
                                                  "again",
                                                  w->p->name, w->p->version, sp->path);
                return forge_error_prefix(err, "package '%s' %s ('%s')", w->p->name, w->p->version,
                                          w->p->filename);
        }
        if (lseek(w->fd, 0, SEEK_SET) < 0)
                return forge_error_make(err, errno, "package '%s'", w->p->name);
        if (store_blob_put_fd_expect(s, w->fd, w->p->sha256, d, NULL, err) < 0)
                return forge_error_prefix(err, "package '%s' ('%s')", w->p->name, w->p->filename);
        return 0;
}

int pkg_fetch_debs(store *s, const spec *sp, const pkg_lock *pl, const pkg_set *set,
                   pkg_progress_fn progress, void *userdata, forge_error **err)
{
        pkg_sources srcs = {0};
        want *ws = NULL;
        http_fetch *items = NULL;
        http_client *http = NULL;
        http_options o;
        cleanup_free char *tmp = fs_path_join(store_root(s), "tmp");
        prog pg = {progress, userdata, 0};
        size_t n = 0, cap;
        int r = -1;

        for (size_t i = 0; i < set->n; i++)
                if (!store_blob_exists(s, set->v[i].sha256))
                        n++;
        if (n == 0)
                return 0;
        if (tmp == NULL)
                return forge_error_make(err, ENOMEM, "download");
        if (pkg_sources_from_spec(sp, pl->arch, &srcs, err) < 0)
                return -1;
        cap = n;
        ws = calloc(n, sizeof(*ws));
        items = calloc(n, sizeof(*items));
        if (ws == NULL || items == NULL) {
                forge_error_make(err, ENOMEM, "download");
                goto out;
        }
        for (size_t i = 0; i < cap; i++)
                ws[i].fd = -1;
        n = 0;
        for (size_t i = 0; i < set->n; i++) {
                const pkg_locked *p = &set->v[i];
                const pkg_source *src;
                want *w;
                if (store_blob_exists(s, p->sha256))
                        continue;
                src = source_of(&srcs, &pl->repos[p->repo]);
                if (src == NULL) {
                        forge_error_usage(err,
                                          "package '%s': its repository (entry %zu, source %zu, "
                                          "suite %s) is no longer configured: run 'forge lock "
                                          "%s'",
                                          p->name, pl->repos[p->repo].entry,
                                          pl->repos[p->repo].source, pl->repos[p->repo].suite,
                                          sp->path);
                        goto out;
                }
                w = &ws[n];
                w->p = p;
                if (asprintf(&w->url, "%s/%s", src->uri, p->filename) < 0) {
                        w->url = NULL;
                        forge_error_make(err, ENOMEM, "download");
                        goto out;
                }
                w->fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
                if (w->fd < 0) {
                        forge_error_make(err, errno, "temp file in '%s'", tmp);
                        goto out;
                }
                memcpy(w->hex, digest_hex(p->sha256), sizeof(w->hex));
                items[n].url = w->url;
                items[n].out_fd = w->fd;
                items[n].expect_size = p->size;
                items[n].expect_sha256 = w->hex;
                items[n].max_body = PKG_MAX_DEB;
                n++;
        }
        pg.total = n;
        http_options_init(&o);
        o.retries = 3;
        if (http_client_new(&o, &http, err) < 0 ||
            http_fetch_many(http, items, n, PARALLEL, on_progress, &pg, err) < 0)
                goto out;
        for (size_t i = 0; i < n; i++)
                if (store_one(s, sp, &ws[i], &items[i], err) < 0)
                        goto out;
        r = 0;
out:
        for (size_t i = 0; ws && items && i < cap; i++) {
                free(ws[i].url);
                if (ws[i].fd >= 0)
                        close(ws[i].fd);
                forge_error_release(&items[i].err);
        }
        free(ws);
        free(items);
        http_client_free(http);
        pkg_sources_free(&srcs);
        return r;
}
