/* SPDX-License-Identifier: MIT */
/*
 * A source's indexes: InRelease (verified with gpgv, Valid-Until checked),
 * then each component's Packages.xz / .gz / plain, checked against the
 * InRelease SHA256 entry before it is decompressed. Everything is fetched
 * with common/http into unlinked files in the store's tmp/.
 */
#include "builder/pkg-internal.h"

#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/http.h"

struct pkg_fetcher {
        store *s;
        http_client *http;
        char *tmp; /* the store's tmp/ */
};

void pkg_fetcher_free(pkg_fetcher *f)
{
        if (f == NULL)
                return;
        http_client_free(f->http);
        free(f->tmp);
        free(f);
}

int pkg_fetcher_new(store *s, pkg_fetcher **ret, forge_error **err)
{
        cleanup_pkg_fetcher pkg_fetcher *f = calloc(1, sizeof(*f));
        http_options o;

        if (f == NULL || (f->tmp = fs_path_join(store_root(s), "tmp")) == NULL)
                return forge_error_make(err, ENOMEM, "fetch");
        f->s = s;
        http_options_init(&o);
        o.retries = 3;
        if (http_client_new(&o, &f->http, err) < 0)
                return -1;
        *ret = take_ptr(f);
        return 0;
}

void pkg_index_release(pkg_index *ix)
{
        for (size_t i = 0; i < ix->n_packages; i++)
                if (ix->packages[i])
                        fclose(ix->packages[i]);
        free(ix->packages);
        free(ix->date);
        memset(ix, 0, sizeof(*ix));
}

static char *url_of(const pkg_source *src, const char *rel)
{
        char *u = NULL;
        if (asprintf(&u, "%s/dists/%s/%s", src->uri, src->suite, rel) < 0)
                return NULL;
        return u;
}

static int fetch_inrelease(pkg_fetcher *f, const char *url, char **ret, size_t *ret_len,
                           forge_error **err)
{
        cleanup_http_response http_response resp = {0};
        http_request rq;

        http_request_init(&rq, url);
        rq.max_body = PKG_MAX_INRELEASE;
        rq.max_redirects = 5;
        if (http_request_do(f->http, &rq, &resp, err) < 0)
                return -1;
        if (resp.status != 200)
                return forge_error_make(err, 0, "'%s': HTTP status %ld", url, resp.status);
        *ret = take_ptr(resp.body);
        *ret_len = resp.body_len;
        return 0;
}

static int check_valid_until(const pkg_source *src, const pkg_release *rel, const char *what,
                             forge_error **err)
{
        time_t until;

        if (!src->check_valid_until || rel->valid_until == NULL)
                return 0;
        if (pkg_date_parse(rel->valid_until, &until) < 0)
                return forge_error_make(err, EBADMSG, "'%s': Valid-Until '%s' is not a date", what,
                                        rel->valid_until);
        if (until < time(NULL))
                return forge_error_make(err, 0,
                                        "'%s' expired on %s (Valid-Until): the mirror is stale "
                                        "(for a snapshot archive set 'check_valid_until: false')",
                                        what, rel->valid_until);
        return 0;
}

/* Decompresses (xz, gz or none) fd into an unlinked file, capped. */
static int decompress(const char *tmp, int fd, const char *what, FILE **ret, forge_error **err)
{
        struct archive *a = store_archive_raw_reader();
        struct archive_entry *ae;
        cleanup_close int out = -1;
        cleanup_free char *buf = malloc(1 << 16);
        uint64_t total = 0;
        int r = -1;

        if (a == NULL || buf == NULL) {
                forge_error_make(err, ENOMEM, "decompress");
                goto done;
        }
        out = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (out < 0) {
                forge_error_make(err, errno, "temp file in '%s'", tmp);
                goto done;
        }
        if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK ||
            archive_read_next_header(a, &ae) != ARCHIVE_OK) {
                forge_error_make(err, EBADMSG, "'%s': %s", what, archive_error_string(a));
                goto done;
        }
        for (;;) {
                la_ssize_t n = archive_read_data(a, buf, 1 << 16);
                if (n < 0) {
                        forge_error_make(err, EBADMSG, "'%s': %s", what, archive_error_string(a));
                        goto done;
                }
                if (n == 0)
                        break;
                total += (uint64_t)n;
                if (total > PKG_MAX_PACKAGES) {
                        forge_error_make(err, EFBIG, "'%s': larger than %llu MiB decompressed",
                                         what, PKG_MAX_PACKAGES >> 20);
                        goto done;
                }
                if (fs_write_all(out, buf, (size_t)n) < 0) {
                        forge_error_make(err, errno, "decompress '%s'", what);
                        goto done;
                }
        }
        if (lseek(out, 0, SEEK_SET) < 0 || (*ret = fdopen(out, "r")) == NULL) {
                forge_error_make(err, errno, "decompress '%s'", what);
                goto done;
        }
        out = -1;
        r = 0;
done:
        if (a)
                archive_read_free(a);
        return r;
}

static int fetch_packages(pkg_fetcher *f, const pkg_source *src, const pkg_release *rel,
                          const char *comp, const char *arch, const char *inrelease_url, FILE **ret,
                          forge_error **err)
{
        static const char *exts[] = {".xz", ".gz", ""};
        const pkg_release_file *rf = NULL;
        cleanup_free char *rel_path = NULL, *url = NULL;
        cleanup_close int fd = -1;
        char hex[DIGEST_HEX_LEN + 1];
        http_fetch item = {0};

        for (size_t i = 0; i < ARRAY_SIZE(exts) && rf == NULL; i++) {
                free(rel_path);
                if (asprintf(&rel_path, "%s/binary-%s/Packages%s", comp, arch, exts[i]) < 0)
                        return forge_error_make(err, ENOMEM, "fetch");
                rf = pkg_release_find(rel, rel_path);
        }
        if (rf == NULL)
                return forge_error_make(err, 0,
                                        "'%s' lists no Packages index for component '%s' and "
                                        "architecture %s",
                                        inrelease_url, comp, arch);
        if (rf->size > PKG_MAX_PACKAGES_COMPRESSED)
                return forge_error_make(err, EFBIG, "'%s': index too large", rel_path);
        url = url_of(src, rf->path);
        fd = open(f->tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (url == NULL)
                return forge_error_make(err, ENOMEM, "fetch");
        if (fd < 0)
                return forge_error_make(err, errno, "temp file in '%s'", f->tmp);
        memcpy(hex, digest_hex(rf->sha256), sizeof(hex));
        item.url = url;
        item.out_fd = fd;
        item.expect_size = rf->size;
        item.expect_sha256 = hex;
        item.max_body = PKG_MAX_PACKAGES_COMPRESSED;
        if (http_fetch_many(f->http, &item, 1, 1, NULL, NULL, err) < 0)
                return -1;
        if (item.err != NULL) {
                *err = item.err;
                return forge_error_prefix(err, "index '%s' (does not match InRelease?)", url);
        }
        /* http_fetch_many checked size and digest as the bytes arrived */
        return decompress(f->tmp, fd, url, ret, err);
}

int pkg_index_fetch(pkg_fetcher *f, const pkg_source *src, const char *arch, pkg_index *ret,
                    forge_error **err)
{
        cleanup_free char *url = url_of(src, "InRelease"), *body = NULL, *text = NULL;
        cleanup_free char *tmpdir = NULL;
        size_t len = 0, tlen = 0, nc = 0;
        pkg_release rel = {0};
        pkg_index ix = {0};
        int r = -1;

        if (url == NULL)
                return forge_error_make(err, ENOMEM, "fetch");
        if (fetch_inrelease(f, url, &body, &len, err) < 0)
                return forge_error_prefix(err, "%s", src->origin);
        if (store_tmpdir(f->s, &tmpdir, err) < 0)
                return -1;
        if (pkg_inrelease_verify(src, url, body, len, tmpdir, &text, &tlen, err) < 0 ||
            pkg_release_parse(text, tlen, &rel, err) < 0 ||
            check_valid_until(src, &rel, url, err) < 0) {
                forge_error_prefix(err, "%s", src->origin);
                goto out;
        }
        hash_sha256_buf(body, len, ix.inrelease_sha256);
        ix.src = src;
        ix.date = strdup(rel.date);
        while (src->components[nc])
                nc++;
        ix.packages = calloc(nc ? nc : 1, sizeof(FILE *));
        if (ix.date == NULL || ix.packages == NULL) {
                forge_error_make(err, ENOMEM, "fetch");
                goto out;
        }
        ix.n_packages = nc;
        for (size_t i = 0; i < nc; i++)
                if (fetch_packages(f, src, &rel, src->components[i], arch, url, &ix.packages[i],
                                   err) < 0) {
                        forge_error_prefix(err, "%s", src->origin);
                        goto out;
                }
        *ret = ix;
        memset(&ix, 0, sizeof(ix));
        r = 0;
out:
        pkg_index_release(&ix);
        pkg_release_free(&rel);
        {
                forge_error *e = NULL;
                fs_rm_rf(tmpdir, &e);
                forge_error_release(&e);
        }
        return r;
}
