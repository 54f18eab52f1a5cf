/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one way forge touches a path under a root it does not trust: an image
 * root file system, an unpacked layer or archive, an OCI layout, a run
 * step's upper directory, the tree an export is built in.
 *
 * Names are resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS):
 * "..", absolute names and symlinks all stay below the root, /proc magic
 * links (/proc/self/root, /proc/PID/fd/N) fail. The last component is never
 * followed. Readers get regular files only (a FIFO, a device, a socket or a
 * symlink is an error, and nothing blocks), at most a given size. Writers
 * replace whatever is at the name (a symlink, a hardlink shared with another
 * file) with a new file instead of writing through it.
 *
 * rel may start with '/' (it means the root). rootfd is a directory fd
 * (O_PATH is fine).
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* openat2(rootfd, rel, flags | O_CLOEXEC | O_NOFOLLOW) resolved in the root.
 * Returns the fd, or -1 with errno (ELOOP: the last component is a symlink,
 * or a magic link was crossed; EXDEV: never, mounts are crossed). */
int safe_openat(int rootfd, const char *rel, int flags, mode_t mode);
/* The same with the last component followed unless flags has O_NOFOLLOW, and
 * more RESOLVE_* flags (RESOLVE_NO_XDEV: stay on the root's file system). NULL
 * or "" is the root; retried when a rename races the lookup (EAGAIN). */
int safe_openat_resolve(int rootfd, const char *rel, int flags, mode_t mode, uint64_t resolve);

/* An O_DIRECTORY fd of rel under rootfd where no component is a symlink (or
 * "..": RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): for trees whose layout forge
 * relies on (a kernel package's boot/, lib/modules/VERSION). */
int safe_opendir_nofollow(int rootfd, const char *rel, forge_error **err);

/* Opens the regular file rel under rootfd for reading (O_RDONLY, blocking
 * mode) after checking, without opening it first, that it is a regular file
 * of at most max bytes. The file's size in *ret_size (may be NULL). */
int safe_open_file(int rootfd, const char *rel, uint64_t max, int *ret_fd, uint64_t *ret_size,
                   forge_error **err);

/* Reads the whole regular file rel under rootfd, at most max bytes (else
 * EFBIG); the buffer is NUL-terminated. */
int safe_read_file(int rootfd, const char *rel, size_t max, char **ret_buf, size_t *ret_len,
                   forge_error **err);

/* Creates rel under rootfd as a new regular file (O_WRONLY) with mode: the
 * parent is resolved in the root and must exist; whatever non-directory was
 * at rel is removed first. */
int safe_create_file(int rootfd, const char *rel, mode_t mode, int *ret_fd, forge_error **err);

/* Makes rel under rootfd a directory: the parent is resolved in the root; a
 * non-directory at rel (a symlink) is replaced. Returns an O_DIRECTORY fd of it. */
int safe_mkdir(int rootfd, const char *rel, mode_t mode, int *ret_fd, forge_error **err);
