/* SPDX-License-Identifier: MIT */
/* common/fs.h's capped reader (fs_read_capped, fs_read_fd, fs_read_all),
 * safe_read_file on top of it, and common/array.h's array_grow. */
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
#include <unistd.h>

#include "common/array.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/safe-open.h"

/* A source handing out len bytes of 'x' at most step at a time, or failing
 * with fail_errno after the first chunk. */
typedef struct src {
        size_t len, off, step, calls;
        int fail_errno;
} src;

static ssize_t src_read(void *ctx, void *buf, size_t len)
{
        src *s = ctx;
        size_t n = s->len - s->off;

        s->calls++;
        if (s->fail_errno != 0 && s->off > 0) {
                errno = s->fail_errno;
                return -1;
        }
        if (n > len)
                n = len;
        if (n > s->step)
                n = s->step;
        memset(buf, 'x', n);
        s->off += n;
        return (ssize_t)n;
}

/* A source of len bytes handed out step at a time, read under a cap of max:
 * all of it, as a string of len 'x'. */
static void expect_read_whole(size_t len, size_t step, size_t max)
{
        src s = {.len = len, .step = step};
        cleanup_free char *buf = NULL;
        size_t got = 99;

        assert_int_equal(fs_read_capped(src_read, &s, max, 0, &buf, &got), 0);
        assert_non_null(buf);
        assert_int_equal(got, len);
        assert_int_equal(buf[got], '\0');
        assert_int_equal(strspn(buf, "x"), len);
}

static void reads_all_in_chunks(void **state)
{
        (void)state;
        expect_read_whole(100000, 777, 100000);
}

static void exactly_max_is_fine_one_more_is_efbig(void **state)
{
        src ok = {.len = 4096, .step = 4096}, over = {.len = 4097, .step = 1 << 20};
        cleanup_free char *buf = NULL, *buf2 = NULL;
        size_t len = 0;

        (void)state;
        assert_int_equal(fs_read_capped(src_read, &ok, 4096, 0, &buf, &len), 0);
        assert_int_equal(len, 4096);
        errno = 0;
        assert_int_equal(fs_read_capped(src_read, &over, 4096, 0, &buf2, &len), -1);
        assert_int_equal(errno, EFBIG);
        assert_null(buf2);
        /* never more than max + 1 bytes asked for: the source stopped there */
        assert_int_equal(over.off, 4097);
}

static void endless_source_stops_at_the_cap(void **state)
{
        src s = {.len = SIZE_MAX / 4, .step = 65536};
        cleanup_free char *buf = NULL;

        (void)state;
        assert_int_equal(fs_read_capped(src_read, &s, 1 << 20, 0, &buf, NULL), -1);
        assert_int_equal(errno, EFBIG);
        assert_true(s.off <= (1 << 20) + 1);
}

static void source_error_is_passed_on(void **state)
{
        src s = {.len = 10000, .step = 100, .fail_errno = EBADMSG};
        cleanup_free char *buf = NULL;

        (void)state;
        assert_int_equal(fs_read_capped(src_read, &s, 1 << 20, 0, &buf, NULL), -1);
        assert_int_equal(errno, EBADMSG);
        assert_null(buf);
}

static void empty_source_gives_empty_string(void **state)
{
        (void)state;
        expect_read_whole(0, 1, 0);
}

typedef struct fx {
        char dir[64];
        int rootfd;
} fx;

static int setup(void **state)
{
        fx *f = calloc(1, sizeof(*f));

        strcpy(f->dir, "/tmp/forge-test-read-XXXXXX");
        if (mkdtemp(f->dir) == NULL)
                return -1;
        f->rootfd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        *state = f;
        return f->rootfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
        fx *f = *state;

        close(f->rootfd);
        fs_rm_rf(f->dir, NULL);
        free(f);
        return 0;
}

static void put(fx *f, const char *name, size_t len)
{
        cleanup_close int fd =
            openat(f->rootfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cleanup_free char *b = malloc(len + 1);

        assert_true(fd >= 0);
        memset(b, 'a', len);
        assert_int_equal(fs_write_all(fd, b, len), 0);
}

static void read_all_caps_a_file(void **state)
{
        fx *f = *state;
        cleanup_free char *buf = NULL, *buf2 = NULL;
        forge_error *e = NULL;
        size_t len = 0;

        put(f, "small", 5000);
        put(f, "big", 5001);
        assert_int_equal(fs_read_all(f->rootfd, "small", 5000, &buf, &len, &e), 0);
        assert_int_equal(len, 5000);
        assert_int_equal(fs_read_all(f->rootfd, "big", 5000, &buf2, &len, &e), -1);
        assert_int_equal(e->errnum, EFBIG);
        assert_non_null(strstr(e->msg, "read 'big'"));
        forge_error_release(&e);
}

static void safe_read_refuses_oversize_fifo_and_escape(void **state)
{
        fx *f = *state;
        cleanup_free char *buf = NULL;
        forge_error *e = NULL;
        size_t len = 0;
        char fifo[128];

        put(f, "file", 300);
        assert_int_equal(safe_read_file(f->rootfd, "file", 300, &buf, &len, &e), 0);
        assert_int_equal(len, 300);
        free(take_ptr(buf));
        assert_int_equal(safe_read_file(f->rootfd, "file", 299, &buf, &len, &e), -1);
        assert_int_equal(e->errnum, EFBIG);
        forge_error_release(&e);

        snprintf(fifo, sizeof(fifo), "%s/fifo", f->dir);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        assert_int_equal(safe_read_file(f->rootfd, "fifo", 1 << 20, &buf, &len, &e), -1);
        assert_null(buf);
        forge_error_release(&e);

        /* a symlink out of the root: the last component is never followed,
         * and a directory link resolves inside the root */
        assert_int_equal(symlinkat("/etc/passwd", f->rootfd, "passwd"), 0);
        assert_int_equal(safe_read_file(f->rootfd, "passwd", 1 << 20, &buf, &len, &e), -1);
        assert_null(buf);
        forge_error_release(&e);
        assert_int_equal(symlinkat("/etc", f->rootfd, "etc"), 0);
        assert_int_equal(safe_read_file(f->rootfd, "etc/passwd", 1 << 20, &buf, &len, &e), -1);
        assert_null(buf);
        forge_error_release(&e);
}

static void array_grow_doubles_and_keeps(void **state)
{
        cleanup_free int *v = NULL;
        size_t cap = 0, reallocs = 0, last = 0;

        (void)state;
        for (int i = 0; i < 10000; i++) {
                assert_int_equal(ARRAY_GROW(v, cap, (size_t)i + 1), 0);
                assert_true(cap >= (size_t)i + 1);
                if (cap != last)
                        reallocs++;
                last = cap;
                v[i] = i;
        }
        for (int i = 0; i < 10000; i++)
                assert_int_equal(v[i], i);
        assert_true(reallocs < 20);
        /* already big enough: nothing changes */
        assert_int_equal(ARRAY_GROW(v, cap, 5), 0);
        assert_int_equal(cap, last);
}

static void array_grow_refuses_overflow(void **state)
{
        cleanup_free uint64_t *v = NULL;
        size_t cap = 0;

        (void)state;
        assert_int_equal(ARRAY_GROW(v, cap, 4), 0);
        v[0] = 42;
        errno = 0;
        assert_int_equal(ARRAY_GROW(v, cap, SIZE_MAX / 4), -1);
        assert_int_equal(errno, ENOMEM);
        assert_int_equal(cap, 8);
        assert_int_equal(v[0], 42);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(reads_all_in_chunks),
            cmocka_unit_test(exactly_max_is_fine_one_more_is_efbig),
            cmocka_unit_test(endless_source_stops_at_the_cap),
            cmocka_unit_test(source_error_is_passed_on),
            cmocka_unit_test(empty_source_gives_empty_string),
            cmocka_unit_test_setup_teardown(read_all_caps_a_file, setup, teardown),
            cmocka_unit_test_setup_teardown(safe_read_refuses_oversize_fifo_and_escape, setup,
                                            teardown),
            cmocka_unit_test(array_grow_doubles_and_keeps),
            cmocka_unit_test(array_grow_refuses_overflow),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
