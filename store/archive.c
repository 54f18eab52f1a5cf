/* SPDX-License-Identifier: MIT */
/*
 * Reading archives and Debian packages forge did not write. A .deb is an ar
 * archive whose members (control.tar*, data.tar*) are read in place: the
 * member's bytes feed a second libarchive reader, nothing is copied out.
 */
#include "store/store-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fs.h"

#define DEB_BUF (1 << 20)

struct store_deb {
        struct archive *ar;  /* the package */
        struct archive *tar; /* the current member's contents, or NULL */
        char *buf;           /* DEB_BUF bytes of the current member */
};

/* A hostile package's fault: EBADMSG, with libarchive's words (or none) and no strerror. */
static int bad(forge_error **err, const char *what, struct archive *a)
{
        forge_error_make(err, 0, "%s (%s)", what,
                         a ? archive_error_string(a) : "no data.tar member");
        if (err && *err)
                (*err)->errnum = EBADMSG;
        return -1;
}

void store_archive_cleanup(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
}

int store_archive_write_header(struct archive *a, struct archive_entry *ae)
{
        int r = archive_write_header(a, ae);
        const char *msg = archive_error_string(a);

        if (r == ARCHIVE_WARN && msg != NULL && strncmp(msg, "Can't translate ", 16) == 0)
                return ARCHIVE_OK;
        return r;
}

static struct archive *reader(unsigned formats)
{
        struct archive *a = archive_read_new();

        if (a == NULL)
                return NULL;
        if (formats & STORE_AR_FILTERS)
                store_archive_filters(a);
        if (formats & STORE_AR_RAW)
                archive_read_support_format_raw(a);
        if (formats & STORE_AR_TAR) {
                archive_read_support_format_tar(a);
                archive_read_support_format_gnutar(a);
        }
        if (formats & STORE_AR_CPIO)
                archive_read_support_format_cpio(a);
        return a;
}

struct archive *store_archive_reader(void)
{
        return reader(STORE_AR_FILTERS | STORE_AR_TAR | STORE_AR_CPIO);
}

struct archive *store_archive_raw_reader(void)
{
        return reader(STORE_AR_FILTERS | STORE_AR_RAW);
}

struct archive *store_archive_open_read(unsigned formats, void *ud, archive_read_callback *read,
                                        const char *what, forge_error **err)
{
        cleanup_archive struct archive *a = reader(formats);

        if (a == NULL) {
                forge_error_make(err, ENOMEM, "%s", what);
                return NULL;
        }
        if (archive_read_open(a, ud, NULL, read, NULL) != ARCHIVE_OK) {
                bad(err, what, a);
                return NULL;
        }
        return take_ptr(a);
}

static ssize_t entry_read(void *ctx, void *buf, size_t len)
{
        la_ssize_t n = archive_read_data(ctx, buf, len);

        if (n < 0) {
                errno = EBADMSG;
                return -1;
        }
        return n;
}

int store_archive_entry_read(struct archive *a, size_t max, char **ret, size_t *ret_len,
                             forge_error **err)
{
        if (fs_read_capped(entry_read, a, max, 0, ret, ret_len) == 0)
                return 0;
        if (errno == EFBIG)
                return forge_error_make(err, EFBIG, "more than %zu bytes", max);
        if (errno == ENOMEM)
                return forge_error_make(err, ENOMEM, "read archive entry");
        return bad(err, "read archive entry", a);
}

/* Ends the reading of the current member, if any. */
static void member_close(store_deb *d)
{
        store_archive_cleanup(&d->tar);
        d->tar = NULL;
}

int store_deb_open(const char *path, store_deb **ret, forge_error **err)
{
        cleanup_store_deb store_deb *d = calloc(1, sizeof(*d));

        if (d == NULL || (d->buf = malloc(DEB_BUF)) == NULL || (d->ar = archive_read_new()) == NULL)
                return forge_error_make(err, ENOMEM, "open package");
        archive_read_support_format_ar(d->ar);
        if (archive_read_open_filename(d->ar, path, DEB_BUF) != ARCHIVE_OK)
                return bad(err, "not a Debian package", d->ar);
        *ret = take_ptr(d);
        return 0;
}

void store_deb_free(store_deb *d)
{
        if (d == NULL)
                return;
        member_close(d);
        store_archive_cleanup(&d->ar);
        free(d->buf);
        free(d);
}

int store_deb_next(store_deb *d, const char *prefix, const char **ret_name, forge_error **err)
{
        struct archive_entry *ae;
        int r;

        member_close(d);
        while ((r = archive_read_next_header(d->ar, &ae)) == ARCHIVE_OK) {
                const char *name = archive_entry_pathname(ae);
                if (name != NULL && strncmp(name, prefix, strlen(prefix)) == 0) {
                        *ret_name = name;
                        return 1;
                }
        }
        if (r != ARCHIVE_EOF)
                return bad(err, "not a Debian package", d->ar);
        return 0;
}

static la_ssize_t member_read(struct archive *a, void *ud, const void **out)
{
        store_deb *d = ud;
        la_ssize_t r = archive_read_data(d->ar, d->buf, DEB_BUF);

        if (r < 0)
                archive_set_error(a, EIO, "%s", archive_error_string(d->ar));
        *out = d->buf;
        return r;
}

struct archive *store_deb_tar(store_deb *d, forge_error **err)
{
        member_close(d);
        d->tar = store_archive_open_read(STORE_AR_FILTERS | STORE_AR_TAR, d, member_read,
                                         "read package member", err);
        return d->tar;
}

int store_deb_data_extract(const char *deb, const char *dir, int flags, forge_error **err)
{
        cleanup_store_deb store_deb *d = NULL;
        const char *name;
        struct archive *tar;
        int r;

        if (store_deb_open(deb, &d, err) < 0)
                return -1;
        r = store_deb_next(d, "data.tar", &name, err);
        if (r < 0)
                return -1;
        if (r == 0)
                return bad(err, "not a Debian package", NULL);
        tar = store_deb_tar(d, err);
        if (tar == NULL)
                return -1;
        return store_extract_archive(tar, dir, flags, err);
}
