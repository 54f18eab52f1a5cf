/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <dirent.h>
#include <sys/types.h>

#include "common/error.h"

/* malloc'd "a/b", with exactly one '/' between; NULL on ENOMEM. */
char *fs_path_join(const char *a, const char *b);
/* fs_path_join($var, rel) when the environment variable var holds an absolute
 * path; NULL when it does not (or on ENOMEM). */
char *fs_env_path(const char *var, const char *rel);
/* A program installed with forge (forge-init, forge-vminit, forge-vmm): next
 * to the running executable, at ../BUILD_SUBDIR/NAME from it (the build
 * tree), at ../libexec/forge/NAME, else in /usr/local/libexec/forge or
 * /usr/libexec/forge. malloc'd path of the first executable one, or NULL. */
char *fs_companion_find(const char *name, const char *build_subdir);
/* The same, unless the environment variable env_var names an executable. */
char *fs_companion_lookup(const char *env_var, const char *name, const char *build_subdir);
/* What fs_path_clean does with a ".." component. */
typedef enum fs_dotdot {
        FS_DOTDOT_REFUSE, /* NULL with errno EINVAL */
        FS_DOTDOT_KEEP,   /* kept as it is (a later openat2 clamps it at the root) */
        FS_DOTDOT_APPLY,  /* removes the component before it, textually; never above the top */
} fs_dotdot;
/* p without a leading '/', empty or "." components, components joined by
 * one '/' ("" for the top); ".." as dotdot says. malloc'd, or NULL with errno. */
char *fs_path_clean(const char *p, fs_dotdot dotdot);
/* True when the relative path has no ".." component and is not absolute. */
bool fs_path_is_contained(const char *rel);

int fs_mkdir_p(const char *path, mode_t mode, forge_error **err);
/* Removes path and everything below it; missing is not an error. Does not
 * follow symlinks and stays on the file system of path. */
int fs_rm_rf(const char *path, forge_error **err);

/* Writes buf to dirfd/name atomically: temp file in the same directory,
 * fsync, rename, fsync of the directory. */
int fs_write_atomic(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
                    forge_error **err);
/* read(2), retried on EINTR. */
ssize_t fs_read_some(int fd, void *buf, size_t len);
/* All len bytes at off: 0, or -1 with errno (EIO when the file ends first). */
int fs_pread_all(int fd, void *buf, size_t len, uint64_t off);
/* A read(2)-like source: bytes read, 0 at the end, -1 with errno. */
typedef ssize_t (*fs_read_fn)(void *ctx, void *buf, size_t len);
/* Reads fn to its end into a malloc'd, NUL-terminated buffer of at most max
 * bytes (max < SIZE_MAX / 2); hint is the length expected (0: not known).
 * Returns 0, or -1 with errno: EFBIG past max, ENOMEM, or fn's. */
int fs_read_capped(fs_read_fn fn, void *ctx, size_t max, size_t hint, char **ret_buf,
                   size_t *ret_len);
/* fs_read_capped() of an fd (read(2), retried on EINTR). */
int fs_read_fd(int fd, size_t max, size_t hint, char **ret_buf, size_t *ret_len);
/* Reads a whole file (at most max bytes, else EFBIG); the buffer is NUL-terminated. */
int fs_read_all(int dirfd, const char *path, size_t max, char **ret_buf, size_t *ret_len,
                forge_error **err);
/* write(2) all of buf, retrying on EINTR and short writes. */
int fs_write_all(int fd, const void *buf, size_t len);
/* Copies in to out until EOF (copy_file_range/sendfile where possible). */
int fs_copy_fd(int in, int out, forge_error **err);

/* Parses "512M", "1G", "1024", "1.5G" (binary units K/M/G/T, optional B/iB suffix).
 * Returns -1 on malformed input or overflow. */
int fs_parse_size(const char *s, unsigned long long *ret);

/* Opens dirfd/rel as a directory stream (O_CLOEXEC); NULL with errno on failure. */
DIR *opendir_at(int dirfd, const char *rel);
/* The names in dirfd/rel ("." for dirfd itself) except "." and "..", sorted
 * bytewise, as a NULL-terminated malloc'd vector (free with cleanup_strv). */
int fs_dir_list_sorted(int dirfd, const char *rel, char ***ret_names, forge_error **err);
