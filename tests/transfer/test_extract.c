/* SPDX-License-Identifier: MIT */
/*
 * Hostile archives: nothing is ever written outside the target directory.
 * Each case builds a malicious tar with libarchive, extracts it into
 * T/root and checks the sentinel directory T/outside stays untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "store/store.h"

static char top[64], root[128], outside[128], tarpath[128];

typedef struct ent {
        const char *name;
        mode_t type; /* AE_IF* */
        mode_t perm;
        const char *data;     /* regular file content */
        const char *link;     /* symlink target */
        const char *hardlink; /* hardlink target */
        int64_t fake_size;    /* > 0: header claims this size */
        dev_t rdev;
} ent;

static void make_tar(const ent *e, size_t n)
{
        struct archive *a = archive_write_new();
        struct archive_entry *ae = archive_entry_new();

        archive_write_set_format_pax_restricted(a);
        assert_int_equal(archive_write_open_filename(a, tarpath), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                archive_entry_clear(ae);
                archive_entry_copy_pathname(ae, e[i].name);
                archive_entry_set_mode(ae, e[i].type | (e[i].perm ? e[i].perm : 0644));
                if (e[i].link)
                        archive_entry_copy_symlink(ae, e[i].link);
                if (e[i].hardlink)
                        archive_entry_copy_hardlink(ae, e[i].hardlink);
                if (e[i].rdev)
                        archive_entry_set_rdev(ae, e[i].rdev);
                if (e[i].data && !e[i].hardlink)
                        archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data));
                archive_write_header(a, ae);
                if (e[i].data && !e[i].hardlink)
                        archive_write_data(a, e[i].data, strlen(e[i].data));
        }
        archive_write_close(a);
        archive_write_free(a);
        archive_entry_free(ae);
}

/* A tar whose header claims size bytes but holds only a little data. */
static void make_lying_tar(int64_t size)
{
        char hdr[512] = {0};
        unsigned sum = 0;
        int fd = open(tarpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        strcpy(hdr, "huge");
        strcpy(hdr + 100, "0000644");
        strcpy(hdr + 108, "0000000");
        strcpy(hdr + 116, "0000000");
        snprintf(hdr + 124, 12, "%011llo", (unsigned long long)size);
        strcpy(hdr + 136, "00000000000");
        hdr[156] = '0';
        memcpy(hdr + 257, "ustar\0" "00", 8);
        memset(hdr + 148, ' ', 8);
        for (int i = 0; i < 512; i++)
                sum += (unsigned char)hdr[i];
        snprintf(hdr + 148, 8, "%06o", sum);
        assert_int_equal(write(fd, hdr, 512), 512);
        memset(hdr, 'A', sizeof(hdr));
        assert_int_equal(write(fd, hdr, 512), 512);
        close(fd);
}

static int extract(int flags)
{
        forge_error *e = NULL;
        int fd = open(tarpath, O_RDONLY), r;
        assert_true(fd >= 0);
        r = store_extract_fd(fd, root, flags, &e);
        close(fd);
        forge_error_release(&e);
        return r;
}

static size_t count(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;
        if (d == NULL)
                return 0;
        while ((de = readdir(d)) != NULL)
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static int setup(void **state)
{
        snprintf(top, sizeof(top), "/tmp/forge-extract-XXXXXX");
        assert_non_null(mkdtemp(top));
        snprintf(root, sizeof(root), "%s/root", top);
        snprintf(outside, sizeof(outside), "%s/outside", top);
        snprintf(tarpath, sizeof(tarpath), "%s/t.tar", top);
        mkdir(root, 0755);
        mkdir(outside, 0755);
        return 0;
}

static int teardown(void **state)
{
        forge_error *e = NULL;
        /* sentinel: nothing may have appeared outside root */
        assert_int_equal(count(outside), 0);
        rm_rf(top, &e);
        forge_error_release(&e);
        return 0;
}

static bool exists_in_root(const char *rel)
{
        char p[4096];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        return lstat(p, &st) == 0;
}

static void test_dotdot(void **state)
{
        ent e[] = {{.name = "../outside/evil", .type = AE_IFREG, .data = "x"},
                   {.name = "a/../../../outside/evil2", .type = AE_IFREG, .data = "x"}};
        make_tar(e, 2);
        extract(0);
        /* clamped at the root, like RESOLVE_IN_ROOT */
        assert_true(exists_in_root("outside/evil") || count(root) == 0);
}

static void test_absolute(void **state)
{
        char name[256];
        ent e[1] = {{.type = AE_IFREG, .data = "x"}};
        snprintf(name, sizeof(name), "%s/evil", outside);
        e[0].name = name;
        make_tar(e, 1);
        assert_int_equal(extract(0), 0);
        assert_true(exists_in_root(name + 1)); /* landed under root */
}

static void test_symlink_dir_then_write(void **state)
{
        ent e[] = {{.name = "link", .type = AE_IFLNK, .perm = 0777, .link = outside},
                   {.name = "link/evil", .type = AE_IFREG, .data = "pwned"}};
        make_tar(e, 2);
        extract(0);
        assert_true(exists_in_root("link"));
}

static void test_symlink_relative_escape(void **state)
{
        ent e[] = {{.name = "up", .type = AE_IFLNK, .perm = 0777, .link = "../../../../../../.."},
                   {.name = "up/tmp/forge-pwned", .type = AE_IFREG, .data = "x"}};
        make_tar(e, 2);
        extract(0);
        assert_int_equal(access("/tmp/forge-pwned", F_OK), -1);
}

static void test_symlink_file_overwrite(void **state)
{
        char target[256];
        snprintf(target, sizeof(target), "%s/victim", outside);
        ent e[] = {{.name = "passwd", .type = AE_IFLNK, .perm = 0777, .link = target},
                   {.name = "passwd", .type = AE_IFREG, .data = "replaced"}};
        make_tar(e, 2);
        assert_int_equal(extract(0), 0);
        /* the symlink was replaced by a file; nothing was written through it */
        struct stat st;
        char p[256];
        snprintf(p, sizeof(p), "%s/passwd", root);
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
}

static void test_hardlink_outside(void **state)
{
        char victim[256];
        int fd;
        snprintf(victim, sizeof(victim), "%s/../victim-file", root); /* = top/victim-file */
        fd = open(victim, O_WRONLY | O_CREAT, 0644);
        close(fd);
        ent e[] = {{.name = "hl", .type = AE_IFREG, .hardlink = "/etc/passwd", .data = ""},
                   {.name = "hl2", .type = AE_IFREG, .hardlink = "../victim-file", .data = ""}};
        make_tar(e, 2);
        assert_true(extract(0) < 0); /* targets don't exist inside the root */
        struct stat st;
        assert_int_equal(stat(victim, &st), 0);
        assert_int_equal(st.st_nlink, 1);
        unlink(victim);
}

static void test_hardlink_through_symlink(void **state)
{
        ent e[] = {{.name = "l", .type = AE_IFLNK, .perm = 0777, .link = "/etc/passwd"},
                   {.name = "hl", .type = AE_IFREG, .hardlink = "l", .data = ""}};
        make_tar(e, 2);
        assert_true(extract(0) < 0); /* a hardlink to a symlink is refused */
        assert_false(exists_in_root("hl"));
}

static void test_devices_and_setuid(void **state)
{
        ent e[] = {{.name = "kmem", .type = AE_IFCHR, .perm = 0666, .rdev = makedev(1, 2)},
                   {.name = "sda", .type = AE_IFBLK, .perm = 0666, .rdev = makedev(8, 0)},
                   {.name = "suid", .type = AE_IFREG, .perm = 04755, .data = "x"}};
        struct stat st;
        char p[256];
        make_tar(e, 3);
        assert_int_equal(extract(0), 0);
        assert_false(exists_in_root("kmem"));
        assert_false(exists_in_root("sda"));
        snprintf(p, sizeof(p), "%s/suid", root);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        /* trusted callers (the unpacked-layer cache) get them */
        assert_int_equal(extract(STORE_EXTRACT_DEVICES | STORE_EXTRACT_SPECIAL_BITS), 0);
        assert_true(exists_in_root("kmem"));
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 04755);
}

static void test_gigantic_size(void **state)
{
        struct stat st;
        char p[256];
        make_lying_tar(8000000000LL); /* 8 GB claimed, 512 bytes held */
        assert_true(extract(0) < 0);
        snprintf(p, sizeof(p), "%s/huge", root);
        if (stat(p, &st) == 0)
                assert_true(st.st_blocks * 512 < (1 << 20)); /* never allocated */
}

static void test_long_names(void **state)
{
        char name[3000];
        memset(name, 'a', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        for (int i = 200; i < 2900; i += 200)
                name[i] = '/';
        ent e[] = {{.name = name, .type = AE_IFREG, .data = "deep"}};
        make_tar(e, 1);
        assert_int_equal(extract(0), 0);
        assert_true(exists_in_root(name));
}

static void test_whiteouts(void **state)
{
        ent lower[] = {{.name = "d", .type = AE_IFDIR, .perm = 0755},
                       {.name = "d/old", .type = AE_IFREG, .data = "1"},
                       {.name = "gone", .type = AE_IFREG, .data = "1"},
                       {.name = "keep", .type = AE_IFREG, .data = "1"}};
        ent upper[] = {{.name = "d/.wh..wh..opq", .type = AE_IFREG, .data = ""},
                       {.name = "d/new", .type = AE_IFREG, .data = "2"},
                       {.name = ".wh.gone", .type = AE_IFREG, .data = ""},
                       {.name = ".wh...", .type = AE_IFREG, .data = ""}};
        make_tar(lower, 4);
        assert_int_equal(extract(STORE_EXTRACT_WHITEOUTS_APPLY), 0);
        make_tar(upper, 3);
        assert_int_equal(extract(STORE_EXTRACT_WHITEOUTS_APPLY), 0);
        assert_false(exists_in_root("d/old"));
        assert_true(exists_in_root("d/new"));
        assert_false(exists_in_root("gone"));
        assert_true(exists_in_root("keep"));
        assert_false(exists_in_root(".wh.gone"));
        /* ".wh..." (victim "..") is refused */
        make_tar(&upper[3], 1);
        assert_true(extract(STORE_EXTRACT_WHITEOUTS_APPLY) < 0);
        assert_true(exists_in_root("keep"));
}

static void test_whiteouts_overlay_form(void **state)
{
        ent upper[] = {{.name = "d/.wh..wh..opq", .type = AE_IFREG, .data = ""},
                       {.name = ".wh.gone", .type = AE_IFREG, .data = ""}};
        struct stat st;
        char p[256], v[4];
        make_tar(upper, 2);
        assert_int_equal(extract(STORE_EXTRACT_WHITEOUTS_OVERLAY), 0);
        snprintf(p, sizeof(p), "%s/gone", root);
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(st.st_rdev, makedev(0, 0));
        snprintf(p, sizeof(p), "%s/d", root);
        assert_int_equal(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
        assert_int_equal(v[0], 'y');
}

int main(void)
{
        if (geteuid() != 0) {
                fprintf(stderr, "SKIP: device nodes, owners and trusted xattrs need root\n");
                return 77;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_dotdot, setup, teardown),
                cmocka_unit_test_setup_teardown(test_absolute, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_dir_then_write, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_relative_escape, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_file_overwrite, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hardlink_outside, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hardlink_through_symlink, setup, teardown),
                cmocka_unit_test_setup_teardown(test_devices_and_setuid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_gigantic_size, setup, teardown),
                cmocka_unit_test_setup_teardown(test_long_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_whiteouts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_whiteouts_overlay_form, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
