/* SPDX-License-Identifier: MIT */
/*
 * Hostile archives: nothing is ever written outside the target directory.
 * Each case builds a malicious archive with libarchive's writer, extracts it
 * into T/root and checks the expected outcome inside; the teardown checks
 * that the sentinel directory T/outside stayed empty, and cases aiming at
 * a file outside the root (T/victim) check it is unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
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
#include "testutil.h"

static char top[64], root[128], outside[128], tarpath[128], victim[128];
/* flags added to every extraction (a second run can force another resolver) */
static int mode_flags;

typedef tu_tar_entry ent;

static void write_archive(const ent *e, size_t n, int format, int filter)
{
        tu_tar_write(tarpath, e, n, format, filter);
}

static void make_tar(const ent *e, size_t n)
{
        write_archive(e, n, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_NONE);
}

/* A ustar header claiming size bytes (base-256 encoded, as GNU tar does for
 * sizes >= 8 GiB) followed by only one block of data. */
static void make_lying_tar(uint64_t size)
{
        unsigned char hdr[512] = {0};
        unsigned sum = 0;
        int fd = open(tarpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        strcpy((char *)hdr, "huge");
        strcpy((char *)hdr + 100, "0000644");
        strcpy((char *)hdr + 108, "0000000");
        strcpy((char *)hdr + 116, "0000000");
        hdr[124] = 0x80;
        for (int i = 0; i < 8; i++)
                hdr[135 - i] = (unsigned char)(size >> (8 * i));
        strcpy((char *)hdr + 136, "00000000000");
        hdr[156] = '0';
        memcpy(hdr + 257,
               "ustar\0"
               "00",
               8);
        memset(hdr + 148, ' ', 8);
        for (int i = 0; i < 512; i++)
                sum += hdr[i];
        snprintf((char *)hdr + 148, 8, "%06o", sum);
        assert_int_equal(write(fd, hdr, 512), 512);
        memset(hdr, 'A', sizeof(hdr));
        assert_int_equal(write(fd, hdr, 512), 512);
        close(fd);
}

static int extract_err(int flags, forge_error **e)
{
        int fd = open(tarpath, O_RDONLY | O_CLOEXEC), r;
        assert_true(fd >= 0);
        r = store_extract_fd(fd, root, flags | mode_flags, e);
        close(fd);
        /* a failure always says why */
        if (r < 0)
                assert_true(*e != NULL && (*e)->msg != NULL && (*e)->msg[0] != '\0');
        else
                assert_null(*e);
        return r;
}

static int extract(int flags)
{
        forge_error *e = NULL;
        int r = extract_err(flags, &e);
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
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

static void write_file(const char *path, const char *content)
{
        tu_write_path(path, content, 0644);
}

static int setup(void **state)
{
        (void)state;
        snprintf(top, sizeof(top), "/tmp/forge-extract-XXXXXX");
        assert_non_null(mkdtemp(top));
        snprintf(root, sizeof(root), "%s/root", top);
        snprintf(outside, sizeof(outside), "%s/outside", top);
        snprintf(tarpath, sizeof(tarpath), "%s/t.tar", top);
        snprintf(victim, sizeof(victim), "%s/victim", top);
        assert_int_equal(mkdir(root, 0755), 0);
        assert_int_equal(mkdir(outside, 0755), 0);
        write_file(victim, "original");
        return 0;
}

static int teardown(void **state)
{
        forge_error *e = NULL;
        struct stat st;
        char buf[64] = "";
        int fd;

        (void)state;
        /* sentinels: nothing appeared in outside/, the victim is untouched */
        assert_int_equal(count(outside), 0);
        assert_int_equal(lstat(victim, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_nlink, 1);
        fd = open(victim, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, buf, sizeof(buf) - 1), 8);
        close(fd);
        assert_string_equal(buf, "original");
        assert_int_equal(count(top), 4); /* root, outside, t.tar, victim */
        fs_rm_rf(top, &e);
        forge_error_release(&e);
        return 0;
}

static char *in_root(const char *rel)
{
        static char p[8192];
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        return p;
}

static bool exists_in_root(const char *rel)
{
        struct stat st;
        return lstat(in_root(rel), &st) == 0;
}

static void assert_content(const char *rel, const char *want)
{
        char buf[256] = "";
        int fd = open(in_root(rel), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        ssize_t n;
        assert_true(fd >= 0);
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        assert_true(n >= 0);
        assert_string_equal(buf, want);
}

static struct stat lstat_root(const char *rel)
{
        struct stat st;
        assert_int_equal(lstat(in_root(rel), &st), 0);
        return st;
}

/* ---- escapes ---- */

static void test_dotdot(void **state)
{
        (void)state;
        ent e[] = {{.name = "../outside/evil", .type = AE_IFREG, .data = "1"},
                   {.name = "a/../../../outside/evil2", .type = AE_IFREG, .data = "2"},
                   {.name = "../../../../../../../../tmp/forge-dotdot-evil",
                    .type = AE_IFREG,
                    .data = "3"}};
        make_tar(e, 3);
        assert_int_equal(extract(0), 0);
        /* ".." is clamped at the root */
        assert_content("outside/evil", "1");
        assert_content("outside/evil2", "2");
        assert_content("tmp/forge-dotdot-evil", "3");
        assert_int_equal(access("/tmp/forge-dotdot-evil", F_OK), -1);
}

static void test_absolute(void **state)
{
        char name[256];
        (void)state;
        snprintf(name, sizeof(name), "%s/evil", outside);
        ent e[] = {{.name = name, .type = AE_IFREG, .data = "x"},
                   {.name = "/etc/forge-absolute-evil", .type = AE_IFREG, .data = "y"}};
        make_tar(e, 2);
        assert_int_equal(extract(0), 0);
        assert_content(name + 1, "x"); /* landed under the root */
        assert_content("etc/forge-absolute-evil", "y");
        assert_int_equal(access("/etc/forge-absolute-evil", F_OK), -1);
}

static void test_symlink_dir_then_write(void **state)
{
        char landed[256];
        (void)state;
        /* a directory symlink to the real outside/ (and to /), then files
         * through them; outside/'s path also exists inside the root */
        ent e[] = {{.name = outside, .type = AE_IFDIR, .perm = 0755},
                   {.name = "link", .type = AE_IFLNK, .perm = 0777, .link = outside},
                   {.name = "link/evil", .type = AE_IFREG, .data = "pwned"},
                   {.name = "slash", .type = AE_IFLNK, .perm = 0777, .link = "/"},
                   {.name = "slash/etc/forge-slash-evil", .type = AE_IFREG, .data = "pwned"}};
        ent dangling[] = {{.name = "nowhere", .type = AE_IFLNK, .perm = 0777, .link = "/no/such"},
                          {.name = "nowhere/evil", .type = AE_IFREG, .data = "x"}};
        make_tar(e, 5);
        assert_int_equal(extract(0), 0);
        /* the symlinks are kept as they are ... */
        assert_true(S_ISLNK(lstat_root("link").st_mode));
        /* ... but resolve as if the root were "/" */
        snprintf(landed, sizeof(landed), "%s/evil", outside + 1);
        assert_content(landed, "pwned");
        assert_content("etc/forge-slash-evil", "pwned");
        assert_int_equal(access("/etc/forge-slash-evil", F_OK), -1);
        /* through a symlink dangling inside the root: refused */
        make_tar(dangling, 2);
        assert_true(extract(0) < 0);
        assert_false(exists_in_root("no"));
}

static void test_symlink_relative_escape(void **state)
{
        char name[64];
        (void)state;
        snprintf(name, sizeof(name), "up/tmp/forge-pwned-%d", (int)getpid());
        ent e[] = {{.name = "up", .type = AE_IFLNK, .perm = 0777, .link = "../../../../../../.."},
                   {.name = name, .type = AE_IFREG, .data = "x"},
                   {.name = "outside", .type = AE_IFDIR, .perm = 0755},
                   {.name = "deep/a", .type = AE_IFLNK, .perm = 0777, .link = "../../outside"},
                   {.name = "deep/a/evil", .type = AE_IFREG, .data = "y"}};
        make_tar(e, 5);
        assert_int_equal(extract(0), 0);
        assert_int_equal(access(name + 2, F_OK), -1); /* /tmp/forge-pwned-PID */
        assert_content(name + 3, "x");                /* tmp/forge-pwned-PID in the root */
        assert_content("outside/evil", "y");          /* ../../outside from deep/ is root/outside */
}

static void test_symlink_file_overwrite(void **state)
{
        (void)state;
        /* a file symlink to a file outside (think /etc/passwd), then a regular
         * file entry with the same name, then one through a symlinked parent */
        ent e[] = {{.name = "etc/passwd", .type = AE_IFLNK, .perm = 0777, .link = victim},
                   {.name = "etc/passwd", .type = AE_IFREG, .data = "replaced"},
                   {.name = top, .type = AE_IFDIR, .perm = 0755},
                   {.name = "etc2", .type = AE_IFLNK, .perm = 0777, .link = top},
                   {.name = "etc2/victim", .type = AE_IFREG, .data = "through"}};
        make_tar(e, 5);
        assert_int_equal(extract(0), 0);
        /* the symlink was replaced by a file; nothing was written through it */
        assert_true(S_ISREG(lstat_root("etc/passwd").st_mode));
        assert_content("etc/passwd", "replaced");
        char landed[256];
        snprintf(landed, sizeof(landed), "%s", victim + 1);
        assert_content(landed, "through"); /* top/victim seen from inside the root */
}

static void test_dir_over_symlink(void **state)
{
        (void)state;
        ent e[] = {{.name = "s", .type = AE_IFLNK, .perm = 0777, .link = outside},
                   {.name = "s", .type = AE_IFDIR, .perm = 0755},
                   {.name = "s/f", .type = AE_IFREG, .data = "in"}};
        make_tar(e, 3);
        assert_int_equal(extract(0), 0);
        assert_true(S_ISDIR(lstat_root("s").st_mode));
        assert_content("s/f", "in");
}

static void test_hardlink_outside(void **state)
{
        (void)state;
        ent e1[] = {{.name = "hl", .type = AE_IFREG, .hardlink = "/etc/passwd", .data = ""}};
        ent e2[] = {{.name = "hl2", .type = AE_IFREG, .hardlink = "../victim", .data = ""}};
        ent e3[] = {{.name = "l", .type = AE_IFLNK, .perm = 0777, .link = top},
                    {.name = "hl3", .type = AE_IFREG, .hardlink = "l/victim", .data = ""}};
        make_tar(e1, 1);
        assert_true(extract(0) < 0); /* the targets don't exist inside the root */
        make_tar(e2, 1);
        assert_true(extract(0) < 0);
        make_tar(e3, 2);
        assert_true(extract(0) < 0); /* l/victim resolves to root/<top>/victim */
        assert_false(exists_in_root("hl"));
        assert_false(exists_in_root("hl2"));
        assert_false(exists_in_root("hl3"));
        struct stat st;
        assert_int_equal(stat("/etc/passwd", &st), 0);
}

static void test_hardlink_through_symlink(void **state)
{
        (void)state;
        ent e[] = {{.name = "l", .type = AE_IFLNK, .perm = 0777, .link = "/etc/passwd"},
                   {.name = "hl", .type = AE_IFREG, .hardlink = "l", .data = ""}};
        make_tar(e, 2);
        assert_true(extract(0) < 0); /* a hardlink to a symlink is refused */
        assert_false(exists_in_root("hl"));
}

static void test_hardlink_inside(void **state)
{
        (void)state;
        ent e[] = {{.name = "d/a", .type = AE_IFREG, .data = "shared"},
                   {.name = "b", .type = AE_IFREG, .hardlink = "d/a", .data = ""},
                   {.name = "c", .type = AE_IFREG, .hardlink = "./d/../d/a", .data = ""}};
        make_tar(e, 3);
        assert_int_equal(extract(0), 0);
        assert_content("b", "shared");
        assert_int_equal(lstat_root("d/a").st_ino, lstat_root("b").st_ino);
        assert_int_equal(lstat_root("d/a").st_ino, lstat_root("c").st_ino);
        assert_int_equal(lstat_root("d/a").st_nlink, 3);
}

/* ---- privileges ---- */

static void test_devices(void **state)
{
        (void)state;
        ent e[] = {{.name = "kmem", .type = AE_IFCHR, .perm = 0666, .rdev = makedev(1, 2)},
                   {.name = "sda", .type = AE_IFBLK, .perm = 0666, .rdev = makedev(8, 0)},
                   {.name = "fifo", .type = AE_IFIFO, .perm = 0640}};
        make_tar(e, 3);
        assert_int_equal(extract(0), 0);
        assert_false(exists_in_root("kmem"));
        assert_false(exists_in_root("sda"));
        assert_true(S_ISFIFO(lstat_root("fifo").st_mode)); /* harmless: kept */
        /* trusted callers (the unpacked-layer cache) get them */
        assert_int_equal(extract(STORE_EXTRACT_DEVICES), 0);
        assert_true(S_ISCHR(lstat_root("kmem").st_mode));
        assert_int_equal(lstat_root("kmem").st_rdev, makedev(1, 2));
        assert_true(S_ISBLK(lstat_root("sda").st_mode));
        assert_int_equal(lstat_root("sda").st_rdev, makedev(8, 0));
}

static void test_setuid(void **state)
{
        (void)state;
        ent e[] = {{.name = "suid", .type = AE_IFREG, .perm = 04755, .data = "x"},
                   {.name = "sgid", .type = AE_IFREG, .perm = 02755, .data = "x"},
                   {.name = "sgdir", .type = AE_IFDIR, .perm = 02775}};
        make_tar(e, 3);
        assert_int_equal(extract(0), 0);
        assert_int_equal(lstat_root("suid").st_mode & 07777, 0755);
        assert_int_equal(lstat_root("sgid").st_mode & 07777, 0755);
        assert_int_equal(lstat_root("sgdir").st_mode & 06000, 0);
        assert_int_equal(extract(STORE_EXTRACT_SPECIAL_BITS), 0);
        assert_int_equal(lstat_root("suid").st_mode & 07777, 04755);
        assert_int_equal(lstat_root("sgid").st_mode & 07777, 02755);
}

/* Modes and mtimes are kept always, owners only when asked for (the link's
 * with lchown, not its target's). */
static void test_owners_modes_mtimes(void **state)
{
        ent e[] = {{.name = "d", .type = AE_IFDIR, .perm = 0750},
                   {.name = "d/f", .type = AE_IFREG, .perm = 0604, .data = "x"},
                   {.name = "l", .type = AE_IFLNK, .perm = 0777, .link = "d/f"}};
        static const struct {
                int64_t uid, gid;
                time_t mtime;
        } meta[] = {{1234, 5678, 1000000000}, {4321, 8765, 1500000000}, {77, 88, 1200000000}};

        (void)state;
        for (size_t i = 0; i < 3; i++) {
                e[i].uid = meta[i].uid;
                e[i].gid = meta[i].gid;
                e[i].mtime = meta[i].mtime;
        }
        make_tar(e, 3);
        for (int owners = 0; owners < 2; owners++) {
                assert_int_equal(extract(owners ? STORE_EXTRACT_OWNERS : 0), 0);
                for (size_t i = 0; i < 3; i++) {
                        struct stat st = lstat_root(e[i].name);

                        assert_int_equal(st.st_uid, owners ? meta[i].uid : 0);
                        assert_int_equal(st.st_gid, owners ? meta[i].gid : 0);
                        assert_int_equal(st.st_mtime, meta[i].mtime);
                        if (e[i].type != AE_IFLNK)
                                assert_int_equal(st.st_mode & 07777, e[i].perm);
                }
        }
}

static void test_xattrs(void **state)
{
        char v[16] = "";
        (void)state;
        /* skip where the file system has no user xattrs */
        write_file(in_root("probe"), "");
        if (setxattr(in_root("probe"), "user.probe", "1", 1, 0) < 0 && errno == ENOTSUP) {
                unlink(in_root("probe"));
                skip();
        }
        unlink(in_root("probe"));
        ent e[] = {
            {.name = "f", .type = AE_IFREG, .data = "x", .xattr = "user.forge=yes"},
            {.name = "o", .type = AE_IFREG, .data = "x", .xattr = "trusted.overlay.opaque=y"}};
        make_tar(e, 2);
        assert_int_equal(extract(STORE_EXTRACT_OWNERS), 0);
        assert_int_equal(getxattr(in_root("f"), "user.forge", v, sizeof(v)), 3);
        assert_memory_equal(v, "yes", 3);
        /* overlayfs' own xattrs never come from an archive */
        assert_int_equal(getxattr(in_root("o"), "trusted.overlay.opaque", v, sizeof(v)), -1);
}

/* ---- sizes and names ---- */

static void test_gigantic_size(void **state)
{
        (void)state;
        make_lying_tar(1ULL << 40); /* 1 TiB claimed, 512 bytes held */
        assert_true(extract(0) < 0);
        if (exists_in_root("huge")) /* never allocated, never sized */
                assert_true(lstat_root("huge").st_size <= 512);
        make_lying_tar(8000000000ULL);
        assert_true(extract(0) < 0);
        if (exists_in_root("huge"))
                assert_true(lstat_root("huge").st_size <= 512);
}

static void test_long_names(void **state)
{
        char name[3000], huge[9000];
        (void)state;
        memset(name, 'a', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        for (int i = 200; i < 2900; i += 200)
                name[i] = '/';
        ent e[] = {{.name = name, .type = AE_IFREG, .data = "deep"}};
        make_tar(e, 1);
        assert_int_equal(extract(0), 0);
        assert_content(name, "deep");
        /* longer than PATH_MAX, with a component longer than NAME_MAX: a
         * clean error, nothing elsewhere */
        memset(huge, 'b', sizeof(huge) - 1);
        huge[sizeof(huge) - 1] = '\0';
        for (int i = 250; i < 8900; i += 250)
                huge[i] = '/';
        huge[8950] = '/';
        ent h[] = {{.name = huge, .type = AE_IFREG, .data = "x"}};
        make_tar(h, 1);
        assert_true(extract(0) < 0);
}

/* ---- replacing ---- */

static void test_replace_and_merge(void **state)
{
        (void)state;
        ent e[] = {{.name = "f", .type = AE_IFREG, .data = "first"},
                   {.name = "f", .type = AE_IFREG, .data = "second"},
                   {.name = "d", .type = AE_IFDIR, .perm = 0755},
                   {.name = "d/a", .type = AE_IFREG, .data = "a"},
                   {.name = "d", .type = AE_IFDIR, .perm = 0711},
                   {.name = "d/b", .type = AE_IFREG, .data = "b"},
                   {.name = "x", .type = AE_IFDIR, .perm = 0755},
                   {.name = "x/in", .type = AE_IFREG, .data = "gone"},
                   {.name = "x", .type = AE_IFREG, .data = "file now"}};
        make_tar(e, 9);
        assert_int_equal(extract(0), 0);
        assert_content("f", "second");
        assert_content("d/a", "a"); /* a directory over a directory merges */
        assert_content("d/b", "b");
        assert_int_equal(lstat_root("d").st_mode & 0777, 0711);
        assert_content("x", "file now");
        /* a second archive over the first: file over file, dir merges */
        ent e2[] = {{.name = "f", .type = AE_IFREG, .data = "third"},
                    {.name = "d/c", .type = AE_IFREG, .data = "c"}};
        make_tar(e2, 2);
        assert_int_equal(extract(0), 0);
        assert_content("f", "third");
        assert_content("d/a", "a");
        assert_content("d/c", "c");
}

/* ---- formats ---- */

static void test_cpio_gzip(void **state)
{
        (void)state;
        ent e[] = {{.name = "c/file", .type = AE_IFREG, .data = "from cpio"},
                   {.name = "../c/evil", .type = AE_IFREG, .data = "clamped"}};
        write_archive(e, 2, ARCHIVE_FORMAT_CPIO_SVR4_NOCRC, ARCHIVE_FILTER_GZIP);
        assert_int_equal(extract(0), 0);
        assert_content("c/file", "from cpio");
        assert_content("c/evil", "clamped");
        write_archive(e, 1, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_ZSTD);
        assert_int_equal(extract(0), 0);
}

static void test_truncated(void **state)
{
        struct stat st;
        (void)state;
        ent e[] = {{.name = "a", .type = AE_IFREG, .data = "0123456789"}};
        make_tar(e, 1);
        assert_int_equal(stat(tarpath, &st), 0);
        assert_int_equal(truncate(tarpath, 512 + 5), 0);
        forge_error *err = NULL;
        assert_true(extract_err(0, &err) < 0);
        assert_non_null(strstr(err->msg, "'a'"));
        forge_error_release(&err);
        write_file(tarpath, "this is not an archive at all, not even close..........");
        assert_true(extract(0) < 0);
}

/* ---- whiteouts ---- */

/* A layer's whiteout of the top-level victim of the layers below
 * (".wh.VICTIM", empty), and the opaque marker of directory dir
 * ("DIR/.wh..wh..opq": hides all that was below it). */
#define WHITEOUT(victim) ((ent){.name = ".wh." victim, .type = AE_IFREG, .data = ""})
#define OPAQUE(dir) ((ent){.name = dir "/.wh..wh..opq", .type = AE_IFREG, .data = ""})

static void test_whiteouts(void **state)
{
        (void)state;
        ent lower[] = {{.name = "d", .type = AE_IFDIR, .perm = 0755},
                       {.name = "d/old", .type = AE_IFREG, .data = "1"},
                       {.name = "d/sub/deep", .type = AE_IFREG, .data = "1"},
                       {.name = "gone", .type = AE_IFREG, .data = "1"},
                       {.name = "gonedir/x", .type = AE_IFREG, .data = "1"},
                       {.name = "keep", .type = AE_IFREG, .data = "1"}};
        ent upper[] = {{.name = "d", .type = AE_IFDIR, .perm = 0755},
                       OPAQUE("d"),
                       {.name = "d/new", .type = AE_IFREG, .data = "2"},
                       WHITEOUT("gone"),
                       WHITEOUT("gonedir"),
                       WHITEOUT("never-existed")};
        ent bad[] = {WHITEOUT("..")};
        make_tar(lower, 6);
        assert_int_equal(extract(STORE_EXTRACT_WHITEOUTS_APPLY), 0);
        make_tar(upper, 6);
        assert_int_equal(extract(STORE_EXTRACT_WHITEOUTS_APPLY), 0);
        assert_false(exists_in_root("d/old"));
        assert_false(exists_in_root("d/sub"));
        assert_content("d/new", "2");
        assert_false(exists_in_root("gone"));
        assert_false(exists_in_root("gonedir"));
        assert_content("keep", "1");
        assert_false(exists_in_root(".wh.gone"));
        assert_false(exists_in_root("d/.wh..wh..opq"));
        /* ".wh..." (victim "..") is refused */
        make_tar(bad, 1);
        assert_true(extract(STORE_EXTRACT_WHITEOUTS_APPLY) < 0);
        assert_content("keep", "1");
        /* without a whiteout mode they are ordinary files */
        make_tar(upper, 6);
        assert_int_equal(extract(0), 0);
        assert_true(exists_in_root(".wh.gone"));
}

static void test_whiteouts_overlay_form(void **state)
{
        char v[4];
        (void)state;
        ent upper[] = {
            OPAQUE("d"), {.name = "d/kept", .type = AE_IFREG, .data = "k"}, WHITEOUT("gone")};
        make_tar(upper, 3);
        assert_int_equal(extract(STORE_EXTRACT_WHITEOUTS_OVERLAY), 0);
        assert_true(S_ISCHR(lstat_root("gone").st_mode));
        assert_int_equal(lstat_root("gone").st_rdev, makedev(0, 0));
        assert_int_equal(getxattr(in_root("d"), "trusted.overlay.opaque", v, sizeof(v)), 1);
        assert_int_equal(v[0], 'y');
        assert_content("d/kept", "k");
        assert_false(exists_in_root(".wh.gone"));
        assert_false(exists_in_root("d/.wh..wh..opq"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

static const struct CMUnitTest tests[] = {
    T(test_dotdot),
    T(test_absolute),
    T(test_symlink_dir_then_write),
    T(test_symlink_relative_escape),
    T(test_symlink_file_overwrite),
    T(test_dir_over_symlink),
    T(test_hardlink_outside),
    T(test_hardlink_through_symlink),
    T(test_hardlink_inside),
    T(test_devices),
    T(test_setuid),
    T(test_owners_modes_mtimes),
    T(test_xattrs),
    T(test_gigantic_size),
    T(test_long_names),
    T(test_replace_and_merge),
    T(test_cpio_gzip),
    T(test_truncated),
    T(test_whiteouts),
    T(test_whiteouts_overlay_form),
};

int main(void)
{
        if (geteuid() != 0) {
                fprintf(stderr, "SKIP: device nodes, owners and trusted xattrs need root\n");
                return 77;
        }
        return cmocka_run_group_tests_name("extract (openat2)", tests, NULL, NULL);
}
