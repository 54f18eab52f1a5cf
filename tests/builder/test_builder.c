/* SPDX-License-Identifier: MIT */
/*
 * Builder units: path sanitisation, entry normalisation (order, parents,
 * duplicates), the deterministic tar writer read back, input archives
 * normalised (names, mtimes, owners), files sources (modes, owners, symlinks)
 * and cache-key sensitivity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "builder/builder-internal.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "store/store.h"
#include "testutil.h"

#define SDE 1600000000LL

typedef tu_store_fixture fixture;

/* A spec with no layers of its own: the sources only read these fields. */
static void fake_spec(spec *sp, const char *ctx)
{
        memset(sp, 0, sizeof(*sp));
        sp->path = (char *)"test.yaml";
        sp->context_dir = (char *)ctx;
        sp->version = 1;
        sp->name = (char *)"t";
        sp->tag = (char *)"latest";
        sp->source_date_epoch = SDE;
}

/* The normalised entries of files layer l, as the builder makes them. */
static void files_entries(const spec *sp, const spec_layer *l, bentries *e)
{
        forge_error *err = NULL;

        bentries_init(e);
        assert_int_equal(bsrc_files(sp, l, e, &err), 0);
        assert_int_equal(bentries_finish(e, SDE, &err), 0);
}

/* ---- paths ---- */

static void assert_clean(const char *in, const char *want)
{
        cleanup_free char *got = bpath_clean(in);
        assert_non_null(got);
        assert_string_equal(got, want);
}

static void test_path_clean(void **state)
{
        assert_clean("/usr/bin/sh", "usr/bin/sh");
        assert_clean("./etc//passwd", "etc/passwd");
        assert_clean("///a/./b/./", "a/b");
        assert_clean("/", "");
        assert_clean(".", "");
        assert_clean("./", "");
        assert_clean("...", "...");
        assert_clean("a/..b/c..", "a/..b/c..");
        const char *bad[] = {"..", "../etc", "a/../../b", "/a/..", "./..", "a/b/../c"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                errno = 0;
                assert_null(bpath_clean(bad[i]));
                assert_int_equal(errno, EINVAL);
        }
}

/* ---- entry normalisation ---- */

static bentry *add(bentries *e, const char *path, mode_t type, mode_t perm)
{
        bentry *en = bentries_add(e, path);
        assert_non_null(en);
        en->type = type;
        en->perm = perm;
        en->mtime = 5;
        return en;
}

static void test_entries_order_and_parents(void **state)
{
        bentries e;
        forge_error *err = NULL;
        const char *want[] = {"a",   "a/.wh..wh..opq", "a/b",   "a/b/c", "a/b/c/f", "a-b",
                              "a.b", "zdir",           "zdir/x"};

        bentries_init(&e);
        add(&e, "a.b", S_IFREG, 0644);
        add(&e, "zdir/x", S_IFREG, 0600);
        add(&e, "a/b/c/f", S_IFREG, 0644);
        add(&e, "a-b", S_IFREG, 0644);
        add(&e, "a/.wh..wh..opq", S_IFREG, 0644);
        bentry *d = add(&e, "zdir", S_IFDIR, 0700);
        d->uid = 7;
        assert_int_equal(bentries_finish(&e, 42, &err), 0);
        assert_int_equal(e.n, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < e.n; i++)
                assert_string_equal(e.v[i].path, want[i]);
        /* implicit parents: 0755 root directories with the given mtime */
        for (size_t i = 0; i < 4; i++) {
                if (i == 1)
                        continue;
                assert_int_equal(e.v[i].type, S_IFDIR);
                assert_int_equal(e.v[i].perm, 0755);
                assert_int_equal(e.v[i].uid, 0);
                assert_int_equal(e.v[i].gid, 0);
                assert_int_equal(e.v[i].mtime, 42);
        }
        /* an explicit directory keeps its own metadata */
        assert_int_equal(e.v[7].perm, 0700);
        assert_int_equal(e.v[7].uid, 7);
        bentries_free(&e);
}

/* A run step's scratch directory (its upper, where the entries' content
 * lives) goes with the entries: bentries_free removes it, contents and all. */
static void test_entries_own_tmp_dir(void **state)
{
        char *dir = tu_tmpdir("entries-tmp");
        bentries e;
        struct stat st;

        tu_write_file(dir, "upper/etc/greeting", "hi\n", 0644);
        bentries_init(&e);
        assert_non_null(bentries_add_dir(&e, "etc", 42));
        e.tmp_dir = strdup(dir);
        assert_non_null(e.tmp_dir);
        bentries_free(&e);
        assert_null(e.tmp_dir);
        assert_int_equal(e.n, 0);
        assert_int_equal(stat(dir, &st), -1);
        assert_int_equal(errno, ENOENT);
        free(dir);
}

/* Entries already in order (as a sorted directory walk yields them) take a
 * one-pass path; the same entries in reverse go through the sort: both end
 * in one order, with bytes below '/' and near-miss opaque markers. */
static void test_entries_order_presorted(void **state)
{
        const char *want[] = {"d",
                              "d/.wh..wh..opq",
                              "d/\x01x",
                              "d/-",
                              "d/.wh..wh..opp",
                              "d/.wh..wh..opqx",
                              "d/z",
                              "d/z/q",
                              "d\x01",
                              "d-",
                              "e",
                              "e/f",
                              "e/g"};
        size_t n = sizeof(want) / sizeof(want[0]);

        for (int reverse = 0; reverse < 2; reverse++) {
                bentries e;
                forge_error *err = NULL;
                bentries_init(&e);
                for (size_t k = 0; k < n; k++) {
                        size_t i = reverse ? n - 1 - k : k;
                        if (strcmp(want[i], "e") == 0)
                                continue; /* a parent bentries_finish adds */
                        bool dir = !strcmp(want[i], "d") || !strcmp(want[i], "d/z");
                        add(&e, want[i], dir ? S_IFDIR : S_IFREG, 0644);
                }
                assert_int_equal(bentries_finish(&e, 42, &err), 0);
                assert_int_equal(e.n, n);
                for (size_t i = 0; i < n; i++)
                        assert_string_equal(e.v[i].path, want[i]);
                assert_int_equal(e.v[10].type, S_IFDIR);
                assert_int_equal(e.v[10].mtime, 42);
                bentries_free(&e);
        }
}

/* A name given twice: the later one wins, in entries already in sorted
 * order (the one-pass path) as in entries that need the sort. */
static void test_entries_duplicates_last_wins(void **state)
{
        static const struct {
                const char *path;
                mode_t perm;
                uint64_t size;
        } cases[][3] = {
            {{"a", 0644, 1}, {"a", 0600, 2}, {"b", 0644, 0}},
            {{"f", 0644, 1}, {"g", 0644, 0}, {"f", 0600, 2}},
        };

        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
                bentries e;
                forge_error *err = NULL;

                bentries_init(&e);
                for (size_t i = 0; i < 3; i++) {
                        bentry *en = add(&e, cases[c][i].path, S_IFREG, cases[c][i].perm);
                        if (cases[c][i].size)
                                en->size = cases[c][i].size;
                }
                assert_int_equal(bentries_finish(&e, 0, &err), 0);
                assert_int_equal(e.n, 2);
                assert_string_equal(e.v[0].path, cases[c][0].path);
                assert_int_equal(e.v[0].perm, 0600);
                assert_int_equal(e.v[0].size, 2);
                bentries_free(&e);
        }
}

static void test_entries_file_with_children(void **state)
{
        bentries e;
        forge_error *err = NULL;

        bentries_init(&e);
        add(&e, "etc", S_IFREG, 0644);
        add(&e, "etc/passwd", S_IFREG, 0644);
        assert_int_equal(bentries_finish(&e, 0, &err), -1);
        assert_non_null(err);
        assert_int_equal(err->errnum, ENOTDIR);
        forge_error_release(&err);
        bentries_free(&e);
}

/* An archive's hardlinks name their target; host files share an inode. */
static void test_entries_hardlinks(void **state)
{
        bentries e;
        forge_error *err = NULL;
        bentry *en;

        bentries_init(&e);
        en = add(&e, "b/t", S_IFREG, 0750);
        en->uid = 9;
        en->size = 4;
        en->spool_off = 100;
        assert_int_equal(bentry_add_xattr(en, "user.x", "1", 1), 0);
        en = add(&e, "c/l2", S_IFREG, 0600);
        en->hardlink = true;
        en->link = strdup("b/t");
        en = add(&e, "a/l1", S_IFREG, 0600);
        en->hardlink = true;
        en->link = strdup("b/t");
        en = add(&e, "d", S_IFREG, 0600); /* a chain: d -> c/l2 -> b/t */
        en->hardlink = true;
        en->link = strdup("c/l2");
        assert_int_equal(bentries_finish(&e, 0, &err), 0);
        const char *want[] = {"a", "a/l1", "b", "b/t", "c", "c/l2", "d"};
        assert_int_equal(e.n, 7);
        for (size_t i = 0; i < e.n; i++)
                assert_string_equal(e.v[i].path, want[i]);
        /* the first name has the inode: content, metadata, xattrs */
        en = &e.v[1];
        assert_false(en->hardlink);
        assert_null(en->link);
        assert_int_equal(en->perm, 0750);
        assert_int_equal(en->uid, 9);
        assert_int_equal(en->size, 4);
        assert_int_equal(en->spool_off, 100);
        assert_int_equal(en->n_xattrs, 1);
        /* every later name links to it, with the inode's metadata */
        for (size_t i = 3; i < 7; i += 2) {
                en = &e.v[i];
                assert_true(en->hardlink);
                assert_string_equal(en->link, "a/l1");
                assert_int_equal(en->type, S_IFREG);
                assert_int_equal(en->perm, 0750);
                assert_int_equal(en->uid, 9);
                assert_int_equal(en->size, 0);
                assert_int_equal(en->spool_off, -1);
                assert_int_equal(en->n_xattrs, 0);
        }
        assert_true(e.v[6].hardlink);
        assert_string_equal(e.v[6].link, "a/l1");
        bentries_free(&e);

        /* host files: one inode (nlink > 1) with the same metadata is linked;
         * nlink 1 (the same file copied twice) and other modes stay copies */
        bentries_init(&e);
        const struct {
                const char *path;
                ino_t ino;
                nlink_t nlink;
                mode_t perm;
        } host[] = {
            {"y", 7, 3, 0644}, {"x", 7, 3, 0644}, {"w", 7, 3, 0755},
            {"v", 8, 1, 0644}, {"u", 8, 1, 0644}, {"t", 9, 2, 0644},
        };
        for (size_t i = 0; i < sizeof(host) / sizeof(host[0]); i++) {
                en = add(&e, host[i].path, S_IFREG, host[i].perm);
                en->host_path = strdup(host[i].path);
                en->host_dev = 3;
                en->host_ino = host[i].ino;
                en->host_nlink = host[i].nlink;
                en->size = 1;
        }
        assert_int_equal(bentries_finish(&e, 0, &err), 0);
        const char *hwant[] = {"t", "u", "v", "w", "x", "y"};
        assert_int_equal(e.n, 6);
        for (size_t i = 0; i < e.n; i++) {
                assert_string_equal(e.v[i].path, hwant[i]);
                assert_int_equal(e.v[i].hardlink, i == 5);
                assert_int_equal(e.v[i].host_path == NULL, i == 5);
        }
        assert_string_equal(e.v[5].link, "x");
        assert_int_equal(e.v[5].size, 0);
        bentries_free(&e);

        /* a hardlink to nothing, or to a directory, is refused */
        const char *targets[] = {"nope", "dir"};
        for (size_t i = 0; i < 2; i++) {
                bentries_init(&e);
                add(&e, "dir", S_IFDIR, 0755);
                en = add(&e, "hl", S_IFREG, 0644);
                en->hardlink = true;
                en->link = strdup(targets[i]);
                assert_int_equal(bentries_finish(&e, 0, &err), -1);
                assert_non_null(strstr(err->msg, "not a file of this layer"));
                forge_error_release(&err);
                bentries_free(&e);
        }
}

/* ---- the tar writer, read back ---- */

typedef struct rentry {
        char path[512];
        mode_t mode;
        int64_t uid, gid, mtime, size;
        char link[256];
        bool hardlink;
        char content[64];
        bool uname, atime, ctime, mtime_ns;
        char xattrs[128]; /* "name=value;" of each distinct name, in order */
} rentry;

/* Reads a layer blob back: its entries and the sha256 of the tar stream. */
static size_t read_layer(store *s, const char *digest, rentry *out, size_t max,
                         char diff_id[DIGEST_STR_SIZE])
{
        forge_error *e = NULL;
        int fd;
        struct archive *a = archive_read_new();
        struct archive_entry *ae;
        size_t n = 0;
        char buf[8192];
        la_ssize_t got;

        /* the uncompressed stream */
        assert_int_equal(store_blob_open(s, digest, &fd, &e), 0);
        archive_read_support_filter_zstd(a);
        archive_read_support_format_raw(a);
        assert_int_equal(archive_read_open_fd(a, fd, 65536), ARCHIVE_OK);
        assert_int_equal(archive_read_next_header(a, &ae), ARCHIVE_OK);
        hash_sha256 *h = hash_sha256_new();
        while ((got = archive_read_data(a, buf, sizeof(buf))) > 0)
                hash_sha256_update(h, buf, (size_t)got);
        assert_int_equal(got, 0);
        hash_sha256_final(h, diff_id);
        hash_sha256_free(h);
        archive_read_free(a);
        close(fd);

        a = archive_read_new();
        assert_int_equal(store_blob_open(s, digest, &fd, &e), 0);
        archive_read_support_filter_zstd(a);
        archive_read_support_format_tar(a);
        assert_int_equal(archive_read_open_fd(a, fd, 65536), ARCHIVE_OK);
        while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
                rentry *r = &out[n++];
                assert_true(n <= max);
                memset(r, 0, sizeof(*r));
                snprintf(r->path, sizeof(r->path), "%s", archive_entry_pathname(ae));
                r->mode = archive_entry_mode(ae);
                r->uid = archive_entry_uid(ae);
                r->gid = archive_entry_gid(ae);
                r->mtime = archive_entry_mtime(ae);
                r->size = archive_entry_size(ae);
                r->mtime_ns = archive_entry_mtime_nsec(ae) != 0;
                r->atime = archive_entry_atime_is_set(ae);
                r->ctime = archive_entry_ctime_is_set(ae);
                r->uname = (archive_entry_uname(ae) && *archive_entry_uname(ae)) ||
                           (archive_entry_gname(ae) && *archive_entry_gname(ae));
                /* libarchive's pax writer records each xattr twice (SCHILY and
                 * LIBARCHIVE keys): list distinct names */
                archive_entry_xattr_reset(ae);
                const char *xn;
                const void *xv;
                size_t xs;
                while (archive_entry_xattr_next(ae, &xn, &xv, &xs) == ARCHIVE_OK) {
                        char one[64];
                        snprintf(one, sizeof(one), "%s=%.*s;", xn, (int)xs, (const char *)xv);
                        if (strstr(r->xattrs, one) == NULL)
                                strncat(r->xattrs, one, sizeof(r->xattrs) - strlen(r->xattrs) - 1);
                }
                if (archive_entry_hardlink(ae)) {
                        r->hardlink = true;
                        snprintf(r->link, sizeof(r->link), "%s", archive_entry_hardlink(ae));
                } else if (archive_entry_symlink(ae)) {
                        snprintf(r->link, sizeof(r->link), "%s", archive_entry_symlink(ae));
                }
                got = archive_read_data(a, r->content, sizeof(r->content) - 1);
                assert_true(got >= 0);
        }
        archive_read_free(a);
        close(fd);
        return n;
}

static void test_tar_writer(void **state)
{
        fixture *f = *state;
        bentries e;
        forge_error *err = NULL;
        store_layer l1, l2;
        rentry r[16];
        char diff[DIGEST_STR_SIZE];
        cleanup_free char *host = fs_path_join(f->ctx, "data");
        cleanup_free char *longname = malloc(300);

        tu_write_file(f->ctx, "data", "hello", 0644);
        memset(longname, 'n', 299);
        longname[299] = '\0';
        memcpy(longname, "d/", 2);

        bentries_init(&e);
        bentry *en = add(&e, "d/file", S_IFREG, 0640);
        en->size = 5;
        en->host_path = strdup(host);
        en->uid = 123456789; /* too big for ustar's octal field: pax */
        en->gid = 3;
        en->mtime = SDE;
        assert_int_equal(bentry_add_xattr(en, "user.b", "2", 1), 0);
        assert_int_equal(bentry_add_xattr(en, "security.capability", "1", 1), 0);
        assert_string_equal(en->xattr_names[0], "security.capability");
        en = add(&e, "d/link", S_IFLNK, 0777);
        en->link = strdup("file");
        en = add(&e, longname, S_IFREG, 0644);
        en = add(&e, "dev/null", S_IFCHR, 0666);
        en->rdev = makedev(1, 3);
        assert_int_equal(bentries_finish(&e, 9, &err), 0);

        assert_int_equal(btar_write(f->s, &e, &l1, &err), 0);
        assert_int_equal(btar_write(f->s, &e, &l2, &err), 0);
        /* same entries, same bytes */
        assert_string_equal(l1.digest, l2.digest);
        assert_string_equal(l1.diff_id, l2.diff_id);
        assert_string_equal(l1.media_type, STORE_MEDIA_LAYER_ZSTD);
        assert_true(store_blob_exists(f->s, l1.digest));

        size_t n = read_layer(f->s, l1.digest, r, 16, diff);
        assert_string_equal(diff, l1.diff_id);
        /* a long name (pax) comes back whole */
        const char *want[] = {"d/", "d/file", "d/link", longname, "dev/", "dev/null"};
        assert_int_equal(n, 6);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(r[i].path, want[i]);
                assert_false(r[i].uname);
                assert_false(r[i].atime);
                assert_false(r[i].ctime);
                assert_false(r[i].mtime_ns);
        }
        assert_int_equal(r[0].mode, S_IFDIR | 0755);
        assert_int_equal(r[0].mtime, 9);
        assert_int_equal(r[1].mode, S_IFREG | 0640);
        assert_int_equal(r[1].uid, 123456789);
        assert_int_equal(r[1].gid, 3);
        assert_int_equal(r[1].mtime, SDE);
        assert_int_equal(r[1].size, 5);
        assert_string_equal(r[1].content, "hello");
        assert_string_equal(r[1].xattrs, "security.capability=1;user.b=2;");
        assert_string_equal(r[2].link, "file");
        assert_true(S_ISLNK(r[2].mode));
        assert_true(S_ISCHR(r[5].mode));
        bentries_free(&e);
}

/* ---- input archives ---- */

static void make_tar(const char *path, int64_t mtime, bool evil)
{
        tu_tar_entry ents[] = {
            {.name = "./usr/bin/", .type = AE_IFDIR, .perm = 0775},
            {.name = "/usr/bin/zz", .type = AE_IFREG, .perm = 0755, .data = "zz!"},
            {.name = "usr//bin/./aa", .type = AE_IFREG, .perm = 0755, .hardlink = "usr/bin/zz"},
            {.name = "./etc/conf", .type = AE_IFREG, .perm = 0600, .data = "c"},
            {.name = evil ? "a/../../escape" : "etc/ok",
             .type = AE_IFREG,
             .perm = 0644,
             .data = "x"},
        };

        for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
                ents[i].uid = ents[i].gid = 1000;
                ents[i].uname = "someone";
                ents[i].gname = "group";
                ents[i].mtime = mtime;
                ents[i].mtime_nsec = 123;
                ents[i].atime = mtime + 5;
                ents[i].ctime = mtime + 6;
        }
        tu_tar_write(path, ents, sizeof(ents) / sizeof(ents[0]), ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE,
                     ARCHIVE_FILTER_NONE);
}

static void test_archive_normalised(void **state)
{
        fixture *f = *state;
        cleanup_free char *tar = fs_path_join(f->ctx, "in.tar");
        cleanup_free char *spool = fs_path_join(f->dir, "store/tmp");
        spec sp;
        spec_layer l = {0};
        bentries e;
        forge_error *err = NULL;
        store_layer out;
        rentry r[16];
        char diff[DIGEST_STR_SIZE];

        make_tar(tar, SDE + 1000000, false); /* mtimes in the future of SDE */
        fake_spec(&sp, f->ctx);
        l.kind = SPEC_LAYER_ARCHIVE;
        l.src = (char *)"in.tar";
        l.src_path = tar;
        l.dest = (char *)"/opt/x/";
        bentries_init(&e);
        assert_int_equal(bsrc_archive(&sp, &l, spool, &e, &err), 0);
        assert_int_equal(bentries_finish(&e, SDE, &err), 0);
        assert_int_equal(btar_write(f->s, &e, &out, &err), 0);
        bentries_free(&e);

        size_t n = read_layer(f->s, out.digest, r, 16, diff);
        const char *want[] = {"opt/",           "opt/x/",           "opt/x/etc/",
                              "opt/x/etc/conf", "opt/x/etc/ok",     "opt/x/usr/",
                              "opt/x/usr/bin/", "opt/x/usr/bin/aa", "opt/x/usr/bin/zz"};
        assert_int_equal(n, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(r[i].path, want[i]);
                assert_int_equal(r[i].mtime, SDE); /* clamped, no nanoseconds */
                assert_false(r[i].mtime_ns);
                assert_false(r[i].uname);
                assert_false(r[i].atime);
                assert_false(r[i].ctime);
        }
        /* owners and modes are the archive's: it is content */
        assert_int_equal(r[3].uid, 1000);
        assert_int_equal(r[3].mode, S_IFREG | 0600);
        assert_int_equal(r[6].mode, S_IFDIR | 0775);
        /* implicit parents are root's */
        assert_int_equal(r[0].uid, 0);
        assert_int_equal(r[0].mode, S_IFDIR | 0755);
        /* aa sorts before its target zz: aa carries the content (and the
         * inode's metadata) and zz links to it, so the tar extracts */
        assert_false(r[7].hardlink);
        assert_string_equal(r[7].content, "zz!");
        assert_int_equal(r[7].mode, S_IFREG | 0755);
        assert_int_equal(r[7].size, 3);
        assert_true(r[8].hardlink);
        assert_string_equal(r[8].link, "opt/x/usr/bin/aa");
        assert_int_equal(r[8].size, 0);

        /* older mtimes are kept */
        make_tar(tar, 1000, false);
        bentries_init(&e);
        assert_int_equal(bsrc_archive(&sp, &l, spool, &e, &err), 0);
        assert_int_equal(bentries_finish(&e, SDE, &err), 0);
        for (size_t i = 0; i < e.n; i++)
                if (e.v[i].type == S_IFREG)
                        assert_int_equal(e.v[i].mtime, 1000);
        bentries_free(&e);

        /* '..' leaving the layer is refused as a spec error */
        make_tar(tar, 1000, true);
        bentries_init(&e);
        assert_int_equal(bsrc_archive(&sp, &l, spool, &e, &err), -1);
        assert_int_equal(err->status, FORGE_EXIT_USAGE);
        assert_non_null(strstr(err->msg, "leaves the layer"));
        forge_error_release(&err);
        bentries_free(&e);
}

/* ---- files sources ---- */

static void files_layer(spec_layer *l, spec_file *fs, size_t n)
{
        memset(l, 0, sizeof(*l));
        l->kind = SPEC_LAYER_FILES;
        l->files = fs;
        l->n_files = n;
}

static void test_files_source(void **state)
{
        fixture *f = *state;
        cleanup_free char *app = fs_path_join(f->ctx, "app");
        cleanup_free char *one = fs_path_join(f->ctx, "app/one");
        cleanup_free char *lnk = fs_path_join(f->ctx, "app/sub/link");
        spec sp;
        spec_layer l;
        bentries e;

        tu_write_file(f->ctx, "app/one", "1", 0600);
        tu_write_file(f->ctx, "app/sub/tool", "t", 0700);
        tu_write_file(f->ctx, "app/sub/other", "o", 0751);
        assert_int_equal(chmod(app, 0700), 0);
        assert_int_equal(symlink("../../../etc/passwd", lnk), 0);
        fake_spec(&sp, f->ctx);
        spec_file fs[] = {
            {"app/", app, (char *)"/srv/app/", -1, 0, 0, {1, 1}},
            {"app/one", one, (char *)"/etc/", 0640, 1000, 100, {2, 1}},
            {"app/one", one, (char *)"/bin/renamed", -1, 0, 0, {3, 1}},
        };
        files_layer(&l, fs, 3);
        files_entries(&sp, &l, &e);
        struct {
                const char *path;
                mode_t type, perm;
                uid_t uid;
        } want[] = {
            {"bin", S_IFDIR, 0755, 0},
            {"bin/renamed", S_IFREG, 0644, 0},
            {"etc", S_IFDIR, 0755, 0},
            {"etc/one", S_IFREG, 0640, 1000},
            {"srv", S_IFDIR, 0755, 0},
            {"srv/app", S_IFDIR, 0755, 0},
            {"srv/app/one", S_IFREG, 0644, 0},
            {"srv/app/sub", S_IFDIR, 0755, 0},
            {"srv/app/sub/link", S_IFLNK, 0777, 0},
            {"srv/app/sub/other", S_IFREG, 0755, 0},
            {"srv/app/sub/tool", S_IFREG, 0755, 0},
        };
        assert_int_equal(e.n, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < e.n; i++) {
                assert_string_equal(e.v[i].path, want[i].path);
                assert_int_equal(e.v[i].type, want[i].type);
                assert_int_equal(e.v[i].perm, want[i].perm);
                assert_int_equal(e.v[i].uid, want[i].uid);
                assert_int_equal(e.v[i].mtime, SDE);
        }
        assert_int_equal(e.v[3].gid, 100);
        /* the symlink is kept as it is, not followed */
        assert_string_equal(e.v[8].link, "../../../etc/passwd");
        assert_null(e.v[8].host_path);
        bentries_free(&e);
}

/* app/z with two more names (app/a, app/sub/m), app/solo, and app/o linked
 * to a file outside the source. a_first: app/a is made first, else app/z. */
static void make_linked_tree(fixture *f, bool a_first)
{
        cleanup_free char *z = fs_path_join(f->ctx, "app/z");
        cleanup_free char *a = fs_path_join(f->ctx, "app/a");
        cleanup_free char *m = fs_path_join(f->ctx, "app/sub/m");
        cleanup_free char *out = fs_path_join(f->ctx, "outside");
        cleanup_free char *o = fs_path_join(f->ctx, "app/o");
        cleanup_free char *sub = fs_path_join(f->ctx, "app/sub");

        tu_write_file(f->ctx, a_first ? "app/a" : "app/z", "zzz", 0755);
        assert_int_equal(link(a_first ? a : z, a_first ? z : a), 0);
        assert_int_equal(mkdir(sub, 0755), 0);
        assert_int_equal(link(z, m), 0);
        tu_write_file(f->ctx, "app/solo", "s", 0644);
        tu_write_file(f->ctx, "outside", "out", 0644);
        assert_int_equal(link(out, o), 0);
}

static void check_linked_entries(const bentries *e, const char *prefix)
{
        char p[128];
        const struct {
                const char *path;
                bool hardlink;
        } want[] = {{"a", false},   {"o", false},    {"solo", false},
                    {"sub", false}, {"sub/m", true}, {"z", true}};
        size_t at = 0;

        snprintf(p, sizeof(p), "%s/", prefix);
        while (at < e->n && strncmp(e->v[at].path, p, strlen(p)) != 0)
                at++;
        assert_true(at + 6 <= e->n);
        for (size_t i = 0; i < 6; i++) {
                const bentry *en = &e->v[at + i];
                snprintf(p, sizeof(p), "%s/%s", prefix, want[i].path);
                assert_string_equal(en->path, p);
                assert_int_equal(en->hardlink, want[i].hardlink);
                if (want[i].hardlink) {
                        snprintf(p, sizeof(p), "%s/a", prefix);
                        assert_string_equal(en->link, p);
                        assert_null(en->host_path);
                        assert_int_equal(en->size, 0);
                } else if (en->type == S_IFREG) {
                        assert_non_null(en->host_path);
                }
        }
        assert_int_equal(e->v[at].size, 3);
}

/* Hardlinked files of a files: source stay hardlinked, whatever the order
 * the names were made in. */
static void test_files_hardlinks(void **state)
{
        fixture *f = *state;
        cleanup_free char *app = fs_path_join(f->ctx, "app");
        cleanup_free char *outside = fs_path_join(f->ctx, "outside");
        spec sp;
        spec_layer l;
        bentries e;
        forge_error *err = NULL;
        store_layer out1, out2;
        rentry r[16];
        char diff[DIGEST_STR_SIZE];
        spec_file fs = {"app/", app, (char *)"/srv/app/", -1, 0, 0, {1, 1}};

        fake_spec(&sp, f->ctx);
        files_layer(&l, &fs, 1);
        for (int round = 0; round < 2; round++) {
                make_linked_tree(f, round == 1);
                files_entries(&sp, &l, &e);
                check_linked_entries(&e, "srv/app");
                assert_int_equal(btar_write(f->s, &e, round ? &out2 : &out1, &err), 0);
                bentries_free(&e);
                assert_int_equal(fs_rm_rf(app, &err), 0);
                assert_int_equal(unlink(outside), 0);
        }
        assert_string_equal(out1.digest, out2.digest);
        size_t n = read_layer(f->s, out1.digest, r, 16, diff);
        const char *want[] = {"srv/",         "srv/app/",     "srv/app/a",     "srv/app/o",
                              "srv/app/solo", "srv/app/sub/", "srv/app/sub/m", "srv/app/z"};
        assert_int_equal(n, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < n; i++)
                assert_string_equal(r[i].path, want[i]);
        assert_false(r[2].hardlink);
        assert_string_equal(r[2].content, "zzz");
        assert_int_equal(r[2].mode, S_IFREG | 0755);
        for (size_t i = 6; i < 8; i++) {
                assert_true(r[i].hardlink);
                assert_string_equal(r[i].link, "srv/app/a");
                assert_int_equal(r[i].mode & 07777, 0755);
        }
        assert_false(r[3].hardlink); /* its other name is not in the layer */
        assert_string_equal(r[3].content, "out");
}

/* A run step's upper directory: the same rule, from readdir order. */
static void test_upper_hardlinks(void **state)
{
        fixture *f = *state;
        spec sp;
        bentries e;
        forge_error *err = NULL;

        make_linked_tree(f, false);
        fake_spec(&sp, f->ctx);
        bentries_init(&e);
        assert_int_equal(bsrc_upper(&sp, f->ctx, &e, &err), 0);
        assert_int_equal(bentries_finish(&e, SDE, &err), 0);
        check_linked_entries(&e, "app");
        bentries_free(&e);
}

/* ---- cache keys ---- */

static void run_layer(spec_layer *l, const char *cmd, spec_kv *env, size_t n_env, bool host)
{
        memset(l, 0, sizeof(*l));
        l->kind = SPEC_LAYER_RUN;
        l->run = (char *)cmd;
        l->env.items = env;
        l->env.n = n_env;
        l->network_host = host;
}

static void key_of(const spec *sp, const spec_layer *l, const char *parent, const bentries *e,
                   char out[DIGEST_STR_SIZE])
{
        bkey_input in = {sp, l, parent, e, NULL, NULL};
        bkey k = {0};
        forge_error *err = NULL;

        assert_int_equal(bkey_compute(&in, &k, &err), 0);
        memcpy(out, k.key, DIGEST_STR_SIZE);
        bkey_release(&k);
}

static void test_key_run(void **state)
{
        fixture *f = *state;
        spec sp;
        spec_layer l;
        spec_kv env[] = {{(char *)"A", (char *)"1"}, {(char *)"B", (char *)"2"}};
        spec_kv env_v[] = {{(char *)"A", (char *)"1"}, {(char *)"B", (char *)"3"}};
        spec_kv env_k[] = {{(char *)"A", (char *)"1"}, {(char *)"C", (char *)"2"}};
        const char *p1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        const char *p2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
        char base[DIGEST_STR_SIZE], k[DIGEST_STR_SIZE];

        fake_spec(&sp, f->ctx);
        run_layer(&l, "make install", env, 2, false);
        key_of(&sp, &l, p1, NULL, base);
        assert_true(digest_valid(base));
        key_of(&sp, &l, p1, NULL, k);
        assert_string_equal(k, base); /* stable */

        l.name = (char *)"a label"; /* the label is not part of the key */
        key_of(&sp, &l, p1, NULL, k);
        assert_string_equal(k, base);

#define CHANGES(stmt, parent)                                                                      \
        do {                                                                                       \
                run_layer(&l, "make install", env, 2, false);                                      \
                fake_spec(&sp, f->ctx);                                                            \
                stmt;                                                                              \
                key_of(&sp, &l, parent, NULL, k);                                                  \
                assert_string_not_equal(k, base);                                                  \
        } while (0)
        CHANGES(l.run = (char *)"make install ", p1);
        CHANGES(l.env.items = env_v, p1);
        CHANGES(l.env.items = env_k, p1);
        CHANGES(l.env.n = 1, p1);
        CHANGES(l.network_host = true, p1);
        CHANGES((void)0, p2);
        CHANGES((void)0, NULL);
        CHANGES(sp.source_date_epoch++, p1);
#undef CHANGES
        /* a newline in the command can't forge another field */
        spec_kv none[] = {{NULL, NULL}};
        run_layer(&l, "x\nnetwork host", none, 0, false);
        key_of(&sp, &l, p1, NULL, base);
        run_layer(&l, "x", none, 0, true);
        key_of(&sp, &l, p1, NULL, k);
        assert_string_not_equal(k, base);
}

static void test_key_archive(void **state)
{
        fixture *f = *state;
        cleanup_free char *in = fs_path_join(f->ctx, "in.tar");
        spec sp;
        spec_layer l = {0};
        char base[DIGEST_STR_SIZE], k[DIGEST_STR_SIZE];

        tu_write_file(f->ctx, "in.tar", "version 1", 0644);
        fake_spec(&sp, f->ctx);
        l.kind = SPEC_LAYER_ARCHIVE;
        l.src = (char *)"in.tar";
        l.src_path = in;
        l.dest = (char *)"/";
        key_of(&sp, &l, NULL, NULL, base);

        l.name = (char *)"label";
        key_of(&sp, &l, NULL, NULL, k);
        assert_string_equal(k, base);

        l.dest = (char *)"/opt";
        key_of(&sp, &l, NULL, NULL, k);
        assert_string_not_equal(k, base);
        l.dest = (char *)"/";

        l.kind = SPEC_LAYER_DEB; /* the same file as a deb is another layer */
        key_of(&sp, &l, NULL, NULL, k);
        assert_string_not_equal(k, base);
        l.kind = SPEC_LAYER_ARCHIVE;

        /* mtime alone: same key; content: another key */
        struct timespec ts[2] = {{1, 0}, {1, 0}};
        assert_int_equal(utimensat(AT_FDCWD, in, ts, 0), 0);
        key_of(&sp, &l, NULL, NULL, k);
        assert_string_equal(k, base);
        tu_write_file(f->ctx, "in.tar", "version 2", 0644);
        key_of(&sp, &l, NULL, NULL, k);
        assert_string_not_equal(k, base);
}

static void files_key(fixture *f, spec_file *fs, size_t n, char out[DIGEST_STR_SIZE])
{
        spec sp;
        spec_layer l;
        bentries e;

        fake_spec(&sp, f->ctx);
        files_layer(&l, fs, n);
        files_entries(&sp, &l, &e);
        key_of(&sp, &l, NULL, &e, out);
        bentries_free(&e);
}

static void test_key_files(void **state)
{
        fixture *f = *state;
        cleanup_free char *app = fs_path_join(f->ctx, "app");
        cleanup_free char *a = fs_path_join(f->ctx, "app/a");
        cleanup_free char *lnk = fs_path_join(f->ctx, "app/l");
        cleanup_free char *b = fs_path_join(f->ctx, "app/b");
        char base[DIGEST_STR_SIZE], k[DIGEST_STR_SIZE];
        spec_file fs = {"app/", app, (char *)"/app/", -1, 0, 0, {1, 1}};

        tu_write_file(f->ctx, "app/a", "aaa", 0644);
        assert_int_equal(symlink("a", lnk), 0);
        files_key(f, &fs, 1, base);

        /* mtimes are not content */
        struct timespec ts[2] = {{1, 0}, {1, 0}};
        assert_int_equal(utimensat(AT_FDCWD, a, ts, 0), 0);
        files_key(f, &fs, 1, k);
        assert_string_equal(k, base);

#define CHANGES(stmt, undo)                                                                        \
        do {                                                                                       \
                stmt;                                                                              \
                files_key(f, &fs, 1, k);                                                           \
                assert_string_not_equal(k, base);                                                  \
                undo;                                                                              \
                files_key(f, &fs, 1, k);                                                           \
                assert_string_equal(k, base);                                                      \
        } while (0)
        CHANGES(tu_write_file(f->ctx, "app/a", "aab", 0644),
                tu_write_file(f->ctx, "app/a", "aaa", 0644));
        CHANGES(assert_int_equal(chmod(a, 0755), 0), assert_int_equal(chmod(a, 0644), 0));
        CHANGES((unlink(lnk), assert_int_equal(symlink("b", lnk), 0)),
                (unlink(lnk), assert_int_equal(symlink("a", lnk), 0)));
        CHANGES(tu_write_file(f->ctx, "app/b", "", 0644), unlink(b));
        CHANGES(fs.dest = (char *)"/other/", fs.dest = (char *)"/app/");
        CHANGES(fs.mode = 0600, fs.mode = -1);
        CHANGES(fs.uid = 1, fs.uid = 0);
        CHANGES(fs.gid = 1, fs.gid = 0);
#undef CHANGES
        /* a hardlink is not a copy with the same content */
        tu_write_file(f->ctx, "app/b", "aaa", 0644);
        files_key(f, &fs, 1, base);
        assert_int_equal(unlink(b), 0);
        assert_int_equal(link(a, b), 0);
        files_key(f, &fs, 1, k);
        assert_string_not_equal(k, base);
}

/* ---- checks before a build ---- */

/* Every file under dir with its content hash, one line each, sorted. */
static char *tree_listing(const char *dir)
{
        cleanup_free char *cmd = NULL;
        char *out = NULL;
        size_t len = 0;
        FILE *p, *m = open_memstream(&out, &len);
        char line[1024];

        assert_true(asprintf(&cmd,
                             "cd '%s' && find . -type f ! -name lock -exec sha256sum {} + | sort",
                             dir) > 0);
        p = popen(cmd, "r");
        assert_non_null(p);
        while (fgets(line, sizeof(line), p) != NULL)
                fputs(line, m);
        assert_int_equal(pclose(p), 0);
        fclose(m);
        return out;
}

/* The racy rule (cache.c): stat data taken within BMEMO_RACY_NS of a file's
 * last change can't vouch for its content, since a change in the same clock
 * tick keeps ctime: no fingerprint and no memoised hash then. Files made
 * just now are racy for a memo started now and trusted by one whose build
 * starts an hour later. */
static void test_stamp_racy(void **state)
{
        fixture *f = *state;
        cleanup_free char *app = fs_path_join(f->ctx, "app");
        cleanup_free char *a = fs_path_join(f->ctx, "app/a");
        cleanup_free char *deb = fs_path_join(f->ctx, "in.deb");
        spec_file fs = {"app/", app, (char *)"/app/", -1, 0, 0, {1, 1}};
        char st[DIGEST_STR_SIZE], st2[DIGEST_STR_SIZE], h[DIGEST_STR_SIZE];
        forge_error *err = NULL;
        spec sp;
        spec_layer l, dl = {0};
        bentries e;
        bmemo m;

        tu_write_file(f->ctx, "app/a", "aaaa", 0644);
        tu_write_file(f->ctx, "in.deb", "deb!", 0644);
        fake_spec(&sp, f->ctx);
        files_layer(&l, &fs, 1);
        dl.kind = SPEC_LAYER_DEB;
        dl.src = (char *)"in.deb";
        dl.src_path = deb;
        files_entries(&sp, &l, &e);

        bmemo_init(f->s, &sp, &m);
        assert_false(bstamp_files(&m, &e, NULL, SDE, st));
        assert_string_equal(st, "");
        assert_false(bstamp_input(&m, &dl, NULL, SDE, st));
        assert_int_equal(bhash_file(&m, a, h, &err), 0);
        assert_null(json_object_get(m.map, a)); /* hashed, not memoised */
        bmemo_release(&m);

        bmemo_init(f->s, &sp, &m);
        m.trusted_before += 3600 * 1000000000LL;
        assert_true(bstamp_files(&m, &e, NULL, SDE, st));
        assert_true(digest_valid(st));
        assert_true(bstamp_input(&m, &dl, NULL, SDE, st2));
        assert_true(digest_valid(st2));
        assert_int_equal(bhash_file(&m, a, h, &err), 0);
        assert_non_null(json_object_get(m.map, a));
        bmemo_release(&m);
        bentries_free(&e);
}

/* Writes content to ctx/app/a with the mtime of ts, then stamps the files
 * layer l (into st) and hashes the file through the memo (into h). */
static void write_and_stamp(fixture *f, bmemo *m, spec *sp, spec_layer *l, const char *content,
                            const struct timespec ts[2], char *st, char *h)
{
        cleanup_free char *a = fs_path_join(f->ctx, "app/a");
        forge_error *err = NULL;
        bentries e;

        tu_write_file(f->ctx, "app/a", content, 0644);
        assert_int_equal(utimensat(AT_FDCWD, a, ts, 0), 0);
        files_entries(sp, l, &e);
        assert_true(bstamp_files(m, &e, NULL, SDE, st));
        assert_int_equal(bhash_file(m, a, h, &err), 0);
        bentries_free(&e);
}

/* Content changed, size kept, mtime put back: ctime moved, so the
 * fingerprint differs and the memo does not answer for the old content. */
static void test_stamp_same_size_old_mtime(void **state)
{
        fixture *f = *state;
        cleanup_free char *app = fs_path_join(f->ctx, "app");
        spec_file fs = {"app/", app, (char *)"/app/", -1, 0, 0, {1, 1}};
        char st1[DIGEST_STR_SIZE], st2[DIGEST_STR_SIZE], h1[DIGEST_STR_SIZE], h2[DIGEST_STR_SIZE];
        struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
        struct timespec pause = {0, 20 * 1000000};
        spec sp;
        spec_layer l;
        bmemo m;

        fake_spec(&sp, f->ctx);
        files_layer(&l, &fs, 1);
        bmemo_init(f->s, &sp, &m);
        m.trusted_before += 3600 * 1000000000LL;
        write_and_stamp(f, &m, &sp, &l, "aaaa", ts, st1, h1);
        nanosleep(&pause, NULL); /* past the coarse clock's tick */
        write_and_stamp(f, &m, &sp, &l, "bbbb", ts, st2, h2);
        assert_string_not_equal(st1, st2);
        assert_string_not_equal(h1, h2);
        bmemo_release(&m);
}

static void test_spec_check(void **state)
{
        fixture *f = *state;
        cleanup_free char *specp = fs_path_join(f->ctx, "spec.yaml");
        cleanup_free char *in = fs_path_join(f->ctx, "in.tar");
        cleanup_free char *before = NULL, *after = NULL, *spec_text = NULL;
        char h[DIGEST_STR_SIZE];
        forge_error *err = NULL;
        int fd;

        tu_write_file(f->ctx, "a", "a", 0644);
        make_tar(in, 1000, false);
        fd = open(in, O_RDONLY | O_CLOEXEC);
        assert_int_equal(hash_sha256_fd(fd, h, &err), 0);
        close(fd);
        before = tree_listing(f->store_dir);
        const char *pins[] = {digest_hex(h),
                              "0000000000000000000000000000000000000000000000000000000000000000"};
        for (int i = 0; i < 2; i++) {
                free(spec_text);
                assert_true(asprintf(&spec_text,
                                     "forge: 1\nname: t\nlayers:\n  - files: [{src: a, dest: /a}]\n"
                                     "  - archive: in.tar\n    sha256: %s\n",
                                     pins[i]) > 0);
                tu_write_file(f->ctx, "spec.yaml", spec_text, 0644);
                if (i == 0) {
                        assert_int_equal(builder_spec_check(f->s, specp, &err), 0);
                        continue;
                }
                assert_int_equal(builder_spec_check(f->s, specp, &err), -1);
                assert_int_equal(err->status, FORGE_EXIT_USAGE);
                assert_non_null(strstr(err->msg, "spec.yaml:6:13: 'in.tar' has sha256"));
                forge_error_release(&err);
        }
        after = tree_listing(f->store_dir);
        assert_string_equal(before, after); /* a check writes nothing */
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_path_clean),
             cmocka_unit_test(test_entries_order_and_parents),
             cmocka_unit_test(test_entries_duplicates_last_wins),
             cmocka_unit_test(test_entries_order_presorted),
             cmocka_unit_test(test_entries_own_tmp_dir),
             cmocka_unit_test(test_entries_file_with_children),
             cmocka_unit_test(test_entries_hardlinks), tu_store_test(test_tar_writer),
             tu_store_test(test_archive_normalised), tu_store_test(test_files_source),
             tu_store_test(test_files_hardlinks), tu_store_test(test_upper_hardlinks),
             tu_store_test(test_key_run), tu_store_test(test_key_archive),
             tu_store_test(test_key_files), tu_store_test(test_spec_check),
             tu_store_test(test_stamp_racy), tu_store_test(test_stamp_same_size_old_mtime))
