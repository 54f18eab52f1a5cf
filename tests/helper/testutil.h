/* SPDX-License-Identifier: MIT */
/*
 * Shared set-up for the cmocka unit tests: files written where a test wants
 * them, temporary directories, a temporary store, tar archives built from a
 * table. Every helper fails the test (cmocka) when it cannot do its part, so
 * a test never runs on a half-made fixture.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "store/store.h"

/* main() of a cmocka test program (as systemd's DEFINE_TEST_MAIN): runs the
 * tests given (cmocka_unit_test(...) entries) as one group, with a group
 * set-up and tear-down or NULL. Needs <cmocka.h> before it. */
#define TU_TEST_MAIN(group_setup, group_teardown, ...)                                             \
        int main(void)                                                                             \
        {                                                                                          \
                const struct CMUnitTest tests[] = {__VA_ARGS__};                                   \
                return cmocka_run_group_tests(tests, group_setup, group_teardown);                 \
        }

/* A new directory /tmp/forge-<what>-XXXXXX; malloc'd path. */
char *tu_tmpdir(const char *what);
/* Removes dir and everything below it, then frees it. */
void tu_tmpdir_remove(char *dir);

/* Writes content to path (created or truncated), with exactly mode. */
void tu_write_path(const char *path, const char *content, mode_t mode);
/* Writes content to dir/rel, making rel's missing parents (0755) first. */
void tu_write_file(const char *dir, const char *rel, const char *content, mode_t mode);

/* A fixture for cmocka_unit_test_setup_teardown(): a temporary directory
 * with an empty build context in dir/ctx and an open store in dir/store. */
typedef struct tu_store_fixture {
        char *dir;
        char *ctx;
        char *store_dir;
        store *s;
} tu_store_fixture;

int tu_store_setup(void **state);
int tu_store_teardown(void **state);
/* A test run on a fresh tu_store_fixture (its *state). */
#define tu_store_test(f) cmocka_unit_test_setup_teardown(f, tu_store_setup, tu_store_teardown)

/* One member of a tar written by tu_tar_write(); zero fields are left out
 * (perm 0 is 0644). */
typedef struct tu_tar_entry {
        const char *name;
        mode_t type; /* AE_IF* */
        mode_t perm;
        const char *data;     /* regular file content */
        const char *link;     /* symlink target */
        const char *hardlink; /* hardlink target, written with size 0 */
        dev_t rdev;
        int64_t uid, gid;
        const char *uname, *gname;
        time_t mtime;
        long mtime_nsec;
        time_t atime, ctime;
        const char *xattr; /* "name=value" */
} tu_tar_entry;

/* Writes the n entries in order to path, as an archive in format
 * (ARCHIVE_FORMAT_*) compressed with filter (ARCHIVE_FILTER_*). */
void tu_tar_write(const char *path, const tu_tar_entry *e, size_t n, int format, int filter);

/* pred(s) holds for each string of yes and for none of no (both lists end in
 * NULL); a string that does not fit fails the test, named with what. */
void tu_expect_predicate(bool (*pred)(const char *), const char *what, const char *const *yes,
                         const char *const *no);
