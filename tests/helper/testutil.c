/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "testutil.h"

char *tu_tmpdir(const char *what)
{
        char *dir = NULL;

        assert_true(asprintf(&dir, "/tmp/forge-%s-XXXXXX", what) > 0);
        assert_non_null(mkdtemp(dir));
        return dir;
}

void tu_tmpdir_remove(char *dir)
{
        forge_error *e = NULL;

        if (dir != NULL && fs_rm_rf(dir, &e) < 0)
                forge_error_release(&e);
        free(dir);
}

void tu_write_path(const char *path, const char *content, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        if (fd < 0)
                fail_msg("cannot create '%s'", path);
        assert_int_equal(fs_write_all(fd, content, strlen(content)), 0);
        assert_int_equal(fchmod(fd, mode), 0); /* whatever the umask */
        assert_int_equal(close(fd), 0);
}

void tu_write_file(const char *dir, const char *rel, const char *content, mode_t mode)
{
        cleanup_free char *p = fs_path_join(dir, rel);
        cleanup_free char *parent = NULL;
        forge_error *e = NULL;

        assert_non_null(p);
        parent = strdup(p);
        assert_non_null(parent);
        *strrchr(parent, '/') = '\0';
        assert_int_equal(fs_mkdir_p(parent, 0755, &e), 0);
        tu_write_path(p, content, mode);
}

int tu_store_setup(void **state)
{
        tu_store_fixture *f = calloc(1, sizeof(*f));
        forge_error *e = NULL;

        assert_non_null(f);
        f->dir = tu_tmpdir("test");
        f->ctx = fs_path_join(f->dir, "ctx");
        f->store_dir = fs_path_join(f->dir, "store");
        assert_non_null(f->ctx);
        assert_non_null(f->store_dir);
        assert_int_equal(mkdir(f->ctx, 0755), 0);
        assert_int_equal(store_open(f->store_dir, &f->s, &e), 0);
        *state = f;
        return 0;
}

int tu_store_teardown(void **state)
{
        tu_store_fixture *f = *state;

        store_close(f->s);
        tu_tmpdir_remove(f->dir);
        free(f->ctx);
        free(f->store_dir);
        free(f);
        return 0;
}

static void add_xattr(struct archive_entry *ae, const char *nv)
{
        const char *eq = strchr(nv, '=');
        char name[128];

        assert_non_null(eq);
        snprintf(name, sizeof(name), "%.*s", (int)(eq - nv), nv);
        archive_entry_xattr_add_entry(ae, name, eq + 1, strlen(eq + 1));
}

static void fill_entry(struct archive_entry *ae, const tu_tar_entry *e)
{
        archive_entry_copy_pathname(ae, e->name);
        archive_entry_set_mode(ae, e->type | (e->perm ? e->perm : 0644));
        archive_entry_set_uid(ae, e->uid);
        archive_entry_set_gid(ae, e->gid);
        if (e->uname)
                archive_entry_copy_uname(ae, e->uname);
        if (e->gname)
                archive_entry_copy_gname(ae, e->gname);
        archive_entry_set_mtime(ae, e->mtime, e->mtime_nsec);
        if (e->atime)
                archive_entry_set_atime(ae, e->atime, 0);
        if (e->ctime)
                archive_entry_set_ctime(ae, e->ctime, 0);
        if (e->link)
                archive_entry_copy_symlink(ae, e->link);
        if (e->hardlink)
                archive_entry_copy_hardlink(ae, e->hardlink);
        if (e->rdev)
                archive_entry_set_rdev(ae, e->rdev);
        if (e->xattr)
                add_xattr(ae, e->xattr);
        archive_entry_set_size(ae, e->data && !e->hardlink ? (la_int64_t)strlen(e->data) : 0);
}

void tu_tar_write(const char *path, const tu_tar_entry *e, size_t n, int format, int filter)
{
        struct archive *a = archive_write_new();
        struct archive_entry *ae = archive_entry_new();

        assert_non_null(a);
        assert_non_null(ae);
        assert_int_equal(archive_write_set_format(a, format), ARCHIVE_OK);
        if (filter != ARCHIVE_FILTER_NONE)
                assert_int_equal(archive_write_add_filter(a, filter), ARCHIVE_OK);
        assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                archive_entry_clear(ae);
                fill_entry(ae, &e[i]);
                assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
                if (e[i].data && !e[i].hardlink)
                        assert_int_equal(archive_write_data(a, e[i].data, strlen(e[i].data)),
                                         (la_ssize_t)strlen(e[i].data));
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        archive_entry_free(ae);
}

void tu_expect_predicate(bool (*pred)(const char *), const char *what, const char *const *yes,
                         const char *const *no)
{
        for (; *yes != NULL; yes++)
                if (!pred(*yes))
                        fail_msg("%s('%s') is false, want true", what, *yes);
        for (; *no != NULL; no++)
                if (pred(*no))
                        fail_msg("%s('%s') is true, want false", what, *no);
}
