/* SPDX-License-Identifier: MIT */
/* store/archive.c: the public .deb reader on the example package, its caps,
 * and what it says about a file that is no package. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "store/store.h"
#include "testutil.h"

static char deb[4096];

static int setup(void **state)
{
        const char *data = getenv("FORGE_TEST_DATA");
        (void)state;
        snprintf(deb, sizeof(deb),
                 "%s/../../specs/examples/debs/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb",
                 data ? data : ".");
        return access(deb, R_OK);
}

/* The control member's "control" file, read with cap max. */
static int read_control(size_t max, char **ret, size_t *ret_len, forge_error **err)
{
        cleanup_store_deb store_deb *d = NULL;
        struct archive_entry *ae;
        struct archive *tar;
        const char *name;

        assert_int_equal(store_deb_open(deb, &d, err), 0);
        assert_int_equal(store_deb_next(d, "control.tar", &name, err), 1);
        assert_memory_equal(name, "control.tar", 11);
        tar = store_deb_tar(d, err);
        assert_non_null(tar);
        while (archive_read_next_header(tar, &ae) == ARCHIVE_OK)
                if (strcmp(archive_entry_pathname(ae), "./control") == 0)
                        return store_archive_entry_read(tar, max, ret, ret_len, err);
        fail_msg("no ./control in the control member");
        return -1;
}

static void reads_control(void **state)
{
        cleanup_free char *text = NULL;
        forge_error *err = NULL;
        size_t len;

        (void)state;
        assert_int_equal(read_control(1 << 20, &text, &len, &err), 0);
        assert_int_equal(strlen(text), len);
        assert_non_null(strstr(text, "Package: busybox-static\n"));
}

static void control_over_cap_is_refused(void **state)
{
        char *text = NULL;
        forge_error *err = NULL;
        size_t len;

        (void)state;
        assert_int_equal(read_control(16, &text, &len, &err), -1);
        assert_null(text);
        assert_non_null(err);
        assert_int_equal(err->errnum, EFBIG);
        forge_error_release(&err);
}

static void members_in_order_then_none(void **state)
{
        cleanup_store_deb store_deb *d = NULL;
        forge_error *err = NULL;
        const char *name;

        (void)state;
        assert_int_equal(store_deb_open(deb, &d, &err), 0);
        assert_int_equal(store_deb_next(d, "data.tar", &name, &err), 1);
        assert_memory_equal(name, "data.tar", 8);
        /* the control member came before data.tar: it is not found again */
        assert_int_equal(store_deb_next(d, "control.tar", &name, &err), 0);
        assert_null(err);
}

static void extracts_data(void **state)
{
        char dir[] = "/tmp/forge-test-deb.XXXXXX";
        cleanup_free char *bb = NULL;
        forge_error *err = NULL;
        struct stat st;

        (void)state;
        assert_non_null(mkdtemp(dir));
        assert_int_equal(store_deb_data_extract(deb, dir, 0, &err), 0);
        bb = fs_path_join(dir, "bin/busybox");
        assert_int_equal(stat(bb, &st), 0);
        assert_true(S_ISREG(st.st_mode) && st.st_size > 100000);
        assert_int_equal(fs_rm_rf(dir, &err), 0);
}

static void not_a_package(void **state)
{
        char path[] = "/tmp/forge-test-notdeb.XXXXXX";
        store_deb *d = NULL;
        forge_error *err = NULL;
        int fd = mkstemp(path);

        (void)state;
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "not a package\n", 14), 14);
        close(fd);
        assert_int_equal(store_deb_open(path, &d, &err), -1);
        assert_null(d);
        assert_int_equal(err->errnum, EBADMSG);
        assert_non_null(strstr(err->msg, "not a Debian package"));
        forge_error_release(&err);
        assert_int_equal(store_deb_data_extract(path, "/nonexistent", 0, &err), -1);
        assert_int_equal(err->errnum, EBADMSG);
        forge_error_release(&err);
        unlink(path);
}

TU_TEST_MAIN(setup, NULL, cmocka_unit_test(reads_control),
             cmocka_unit_test(control_over_cap_is_refused),
             cmocka_unit_test(members_in_order_then_none), cmocka_unit_test(extracts_data),
             cmocka_unit_test(not_a_package))
