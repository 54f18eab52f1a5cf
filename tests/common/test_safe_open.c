/* SPDX-License-Identifier: MIT */
/* common/safe-open: every way a hostile tree tries to reach the host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/safe-open.h"
#include "testutil.h"

typedef struct fx {
        char top[64];     /* holds root/ and host/ */
        char root[96];    /* the hostile tree */
        char host[96];    /* stands for the host */
        char secret[128]; /* host/secret, "HOST" */
        int rootfd;
} fx;

static void put(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static char *slurp(const char *path)
{
        char *buf = NULL;
        forge_error *e = NULL;
        assert_int_equal(fs_read_all(AT_FDCWD, path, 1 << 20, &buf, NULL, &e), 0);
        return buf;
}

static int setup(void **state)
{
        fx *f = calloc(1, sizeof(*f));
        char p[256];

        snprintf(f->top, sizeof(f->top), "/tmp/forge-safeopen-XXXXXX");
        assert_non_null(mkdtemp(f->top));
        snprintf(f->root, sizeof(f->root), "%s/root", f->top);
        snprintf(f->host, sizeof(f->host), "%s/host", f->top);
        snprintf(f->secret, sizeof(f->secret), "%s/secret", f->host);
        assert_int_equal(mkdir(f->root, 0755), 0);
        assert_int_equal(mkdir(f->host, 0755), 0);
        put(f->secret, "HOST");
        snprintf(p, sizeof(p), "%s/etc", f->root);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/etc/passwd", f->root);
        put(p, "root:x:0:0::/root:/bin/sh\n");
        f->rootfd = open(f->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->rootfd >= 0);
        alarm(20); /* a FIFO that blocks fails the test instead of hanging it */
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fx *f = *state;
        forge_error *e = NULL;
        alarm(0);
        close(f->rootfd);
        fs_rm_rf(f->top, &e);
        forge_error_release(&e);
        free(f);
        return 0;
}

static void in_root(fx *f, const char *rel, char *out, size_t len)
{
        snprintf(out, len, "%s/%s", f->root, rel);
}

static void reads_regular_file(void **state)
{
        fx *f = *state;
        cleanup_free char *buf = NULL;
        size_t len = 0;
        forge_error *e = NULL;

        assert_int_equal(safe_read_file(f->rootfd, "etc/passwd", 4096, &buf, &len, &e), 0);
        assert_string_equal(buf, "root:x:0:0::/root:/bin/sh\n");
        assert_int_equal(len, 26);
        free(buf);
        buf = NULL;
        /* a leading '/' means the root, not the host */
        assert_int_equal(safe_read_file(f->rootfd, "/etc/passwd", 4096, &buf, &len, &e), 0);
        assert_int_equal(len, 26);
}

static void expect_fail(fx *f, const char *rel, int errnum)
{
        cleanup_free char *buf = NULL;
        forge_error *e = NULL;

        assert_int_equal(safe_read_file(f->rootfd, rel, 1 << 20, &buf, NULL, &e), -1);
        assert_null(buf);
        assert_non_null(e);
        if (errnum)
                assert_int_equal(e->errnum, errnum);
        forge_error_release(&e);
}

static void symlink_last_component_is_refused(void **state)
{
        fx *f = *state;
        char p[256];

        in_root(f, "etc/shadow", p, sizeof(p));
        assert_int_equal(symlink(f->secret, p), 0); /* absolute, to the host */
        expect_fail(f, "etc/shadow", ELOOP);
        in_root(f, "etc/rel", p, sizeof(p));
        assert_int_equal(symlink("../../host/secret", p), 0);
        expect_fail(f, "etc/rel", ELOOP);
}

static void symlinked_dirs_stay_in_root(void **state)
{
        fx *f = *state;
        char p[256], rel[256];

        /* d -> the host directory by absolute path: resolves to root/<that path> */
        in_root(f, "d", p, sizeof(p));
        assert_int_equal(symlink(f->host, p), 0);
        expect_fail(f, "d/secret", ENOENT);
        /* up -> ../.. climbs at most to the root */
        in_root(f, "up", p, sizeof(p));
        assert_int_equal(symlink("../../../../..", p), 0);
        snprintf(rel, sizeof(rel), "up%s", f->secret);
        expect_fail(f, rel, ENOENT);
        snprintf(rel, sizeof(rel), "../host/secret");
        expect_fail(f, rel, ENOENT);
        /* a symlinked dir that stays inside is fine */
        in_root(f, "e", p, sizeof(p));
        assert_int_equal(symlink("/etc", p), 0);
        {
                cleanup_free char *buf = NULL;
                forge_error *e = NULL;
                assert_int_equal(safe_read_file(f->rootfd, "e/passwd", 4096, &buf, NULL, &e), 0);
                assert_non_null(strstr(buf, "root:"));
        }
}

static void magic_links_are_refused(void **state)
{
        fx *f = *state;
        int slash = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        cleanup_free char *buf = NULL;
        forge_error *e = NULL;
        char rel[256];

        (void)f;
        assert_true(slash >= 0);
        /* with / as the root (a container after pivot_root), /proc is real */
        if (access("/proc/self/root", F_OK) != 0) {
                close(slash);
                skip();
        }
        snprintf(rel, sizeof(rel), "proc/self/root%s", f->secret);
        assert_int_equal(safe_read_file(slash, rel, 4096, &buf, NULL, &e), -1);
        assert_int_equal(e->errnum, ELOOP);
        forge_error_release(&e);
        snprintf(rel, sizeof(rel), "/proc/self/fd/%d/etc/passwd", f->rootfd);
        assert_int_equal(safe_read_file(slash, rel, 4096, &buf, NULL, &e), -1);
        assert_int_equal(e->errnum, ELOOP);
        forge_error_release(&e);
        close(slash);
}

static void fifo_fails_without_blocking(void **state)
{
        fx *f = *state;
        char p[256];
        forge_error *e = NULL;
        int fd = -1;

        in_root(f, "etc/group", p, sizeof(p));
        assert_int_equal(mkfifo(p, 0644), 0);
        expect_fail(f, "etc/group", EINVAL);
        assert_int_equal(safe_open_file(f->rootfd, "etc/group", 100, &fd, NULL, &e), -1);
        assert_non_null(strstr(e->msg, "FIFO"));
        forge_error_release(&e);
}

static void devices_are_refused(void **state)
{
        fx *f = *state;
        int slash = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        char p[256];
        cleanup_free char *buf = NULL;
        forge_error *e = NULL;

        assert_int_equal(safe_read_file(slash, "/dev/zero", 1 << 20, &buf, NULL, &e), -1);
        assert_int_equal(e->errnum, EINVAL);
        assert_non_null(strstr(e->msg, "device"));
        forge_error_release(&e);
        close(slash);
        /* symlinked to /dev/zero, or through a directory symlinked to /dev */
        in_root(f, "zero", p, sizeof(p));
        assert_int_equal(symlink("/dev/zero", p), 0);
        expect_fail(f, "zero", ELOOP);
        in_root(f, "dev", p, sizeof(p));
        assert_int_equal(symlink("/dev", p), 0);
        expect_fail(f, "dev/zero", 0); /* root/dev -> itself: ELOOP */
        if (getuid() == 0) {
                in_root(f, "etc/hostname", p, sizeof(p));
                assert_int_equal(mknod(p, S_IFCHR | 0644, makedev(1, 5)), 0);
                expect_fail(f, "etc/hostname", EINVAL);
        }
}

static void oversize_is_refused(void **state)
{
        fx *f = *state;
        cleanup_free char *buf = NULL;
        forge_error *e = NULL;
        int fd = -1;

        assert_int_equal(safe_read_file(f->rootfd, "etc/passwd", 25, &buf, NULL, &e), -1);
        assert_int_equal(e->errnum, EFBIG);
        forge_error_release(&e);
        assert_int_equal(safe_open_file(f->rootfd, "etc/passwd", 10, &fd, NULL, &e), -1);
        assert_int_equal(e->errnum, EFBIG);
        forge_error_release(&e);
        assert_int_equal(safe_read_file(f->rootfd, "etc/passwd", 26, &buf, NULL, &e), 0);
        expect_fail(f, "etc", EINVAL); /* a directory */
}

static void create_replaces_symlinks(void **state)
{
        fx *f = *state;
        char p[256];
        forge_error *e = NULL;
        int fd = -1, dfd = -1;
        struct stat st;
        cleanup_free char *host = NULL;

        /* /.forge -> the host directory, /.forge/run -> a host file */
        in_root(f, ".forge", p, sizeof(p));
        assert_int_equal(symlink(f->host, p), 0);
        assert_int_equal(safe_mkdir(f->rootfd, "/.forge", 0755, &dfd, &e), 0);
        close(dfd);
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        in_root(f, ".forge/run", p, sizeof(p));
        assert_int_equal(symlink(f->secret, p), 0);
        assert_int_equal(safe_create_file(f->rootfd, "/.forge/run", 0644, &fd, &e), 0);
        assert_int_equal(write(fd, "RUN", 3), 3);
        close(fd);
        host = slurp(f->secret);
        assert_string_equal(host, "HOST");
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_size, 3);
}

static void create_does_not_write_through_hardlinks(void **state)
{
        fx *f = *state;
        char a[256], b[256];
        forge_error *e = NULL;
        int fd = -1;
        cleanup_free char *txt = NULL;

        in_root(f, "etc/passwd", a, sizeof(a));
        in_root(f, "etc/passwd-", b, sizeof(b));
        assert_int_equal(link(a, b), 0);
        assert_int_equal(safe_create_file(f->rootfd, "etc/passwd-", 0600, &fd, &e), 0);
        assert_int_equal(write(fd, "x", 1), 1);
        close(fd);
        txt = slurp(a);
        assert_string_equal(txt, "root:x:0:0::/root:/bin/sh\n");
}

static void create_under_escaping_parent_stays_inside(void **state)
{
        fx *f = *state;
        char p[256], rel[256];
        forge_error *e = NULL;
        int fd = -1;

        in_root(f, "out", p, sizeof(p));
        assert_int_equal(symlink(f->host, p), 0);
        assert_int_equal(safe_create_file(f->rootfd, "out/new", 0644, &fd, &e), -1);
        assert_int_equal(e->errnum, ENOENT);
        forge_error_release(&e);
        snprintf(rel, sizeof(rel), "%s/new", f->host);
        assert_int_not_equal(access(rel, F_OK), 0);
        assert_int_equal(safe_create_file(f->rootfd, "../../new", 0644, &fd, &e), 0);
        close(fd);
        snprintf(rel, sizeof(rel), "%s/new", f->top);
        assert_int_not_equal(access(rel, F_OK), 0);
        in_root(f, "new", p, sizeof(p));
        assert_int_equal(access(p, F_OK), 0);
        assert_int_equal(safe_create_file(f->rootfd, "..", 0644, &fd, &e), -1);
        forge_error_release(&e);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test_setup_teardown(reads_regular_file, setup, teardown),
             cmocka_unit_test_setup_teardown(symlink_last_component_is_refused, setup, teardown),
             cmocka_unit_test_setup_teardown(symlinked_dirs_stay_in_root, setup, teardown),
             cmocka_unit_test_setup_teardown(magic_links_are_refused, setup, teardown),
             cmocka_unit_test_setup_teardown(fifo_fails_without_blocking, setup, teardown),
             cmocka_unit_test_setup_teardown(devices_are_refused, setup, teardown),
             cmocka_unit_test_setup_teardown(oversize_is_refused, setup, teardown),
             cmocka_unit_test_setup_teardown(create_replaces_symlinks, setup, teardown),
             cmocka_unit_test_setup_teardown(create_does_not_write_through_hardlinks, setup,
                                             teardown),
             cmocka_unit_test_setup_teardown(create_under_escaping_parent_stays_inside, setup,
                                             teardown))
