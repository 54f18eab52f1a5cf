/* SPDX-License-Identifier: MIT */
/*
 * The digest of an unpacked layer tree, recorded when forge unpacks it and
 * recomputed by 'forge store verify': a file changed, added or removed in
 * layers/HEX afterwards is found. The walk uses *at() calls on directory
 * fds (dirfd: O_RDONLY, not O_PATH) and never follows a symlink or opens anything but regular
 * files.
 */
#include "store/store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

#define MAX_DEPTH 4096

static const char *const kept_xattrs[] = {"trusted.overlay.opaque", "security.capability"};

/* The xattrs forge sets (on directories and regular files only). */
static void put_xattrs(hash_sha256 *h, int fd)
{
        char val[512];

        for (size_t i = 0; i < ARRAY_SIZE(kept_xattrs); i++) {
                ssize_t n = fgetxattr(fd, kept_xattrs[i], val, sizeof(val));
                if (n < 0)
                        continue;
                hash_sha256_update(h, kept_xattrs[i], strlen(kept_xattrs[i]) + 1);
                hash_sha256_update(h, val, (size_t)n);
                hash_sha256_update(h, "\n", 1);
        }
}

static int walk(hash_sha256 *h, int dirfd, const char *rel, int depth, forge_error **err);

static int entry(hash_sha256 *h, int dirfd, const char *name, const char *rel, int depth,
                 forge_error **err)
{
        struct stat st;
        char head[256], extra[4200];
        cleanup_close int fd = -1;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return forge_error_make(err, errno, "stat '%s'", rel);
        extra[0] = '\0';
        if (S_ISREG(st.st_mode)) {
                char d[DIGEST_STR_SIZE];
                fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0 || hash_sha256_fd(fd, d, err) < 0)
                        return fd < 0 ? forge_error_make(err, errno, "open '%s'", rel)
                                      : forge_error_prefix(err, "'%s'", rel);
                snprintf(extra, sizeof(extra), "%" PRIu64 " %s", (uint64_t)st.st_size, d);
        } else if (S_ISLNK(st.st_mode)) {
                ssize_t n = readlinkat(dirfd, name, extra, sizeof(extra) - 1);
                if (n < 0)
                        return forge_error_make(err, errno, "readlink '%s'", rel);
                extra[n] = '\0';
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
                snprintf(extra, sizeof(extra), "%" PRIu64, (uint64_t)st.st_rdev);
        }
        snprintf(head, sizeof(head), "%o %u %u ", (unsigned)st.st_mode, (unsigned)st.st_uid,
                 (unsigned)st.st_gid);
        hash_sha256_update(h, rel, strlen(rel) + 1);
        hash_sha256_update(h, head, strlen(head));
        hash_sha256_update(h, extra, strlen(extra) + 1);
        if (S_ISDIR(st.st_mode)) {
                fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return forge_error_make(err, errno, "open '%s'", rel);
        }
        if (fd >= 0)
                put_xattrs(h, fd);
        if (S_ISDIR(st.st_mode))
                return walk(h, fd, rel, depth + 1, err);
        return 0;
}

static int walk(hash_sha256 *h, int dirfd, const char *rel, int depth, forge_error **err)
{
        cleanup_strv char **names = NULL;

        if (depth > MAX_DEPTH)
                return forge_error_make(err, ELOOP, "'%s' is nested too deeply", rel);
        if (fs_dir_list_sorted(dirfd, ".", &names, err) < 0)
                return forge_error_prefix(err, "'%s'", rel[0] ? rel : ".");
        for (size_t i = 0; names[i] != NULL; i++) {
                cleanup_free char *child = rel[0] ? fs_path_join(rel, names[i]) : strdup(names[i]);
                if (child == NULL)
                        return forge_error_make(err, ENOMEM, "tree digest");
                if (entry(h, dirfd, names[i], child, depth, err) < 0)
                        return -1;
        }
        return 0;
}

int store_tree_digest(int dirfd, char ret[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_hash hash_sha256 *h = hash_sha256_new();
        struct stat st;

        if (h == NULL)
                return forge_error_make(err, ENOMEM, "tree digest");
        if (fstat(dirfd, &st) < 0)
                return forge_error_make(err, errno, "tree digest");
        /* the root's own mode and owner are part of the layer too */
        {
                char head[64];
                snprintf(head, sizeof(head), "/ %o %u %u", (unsigned)st.st_mode,
                         (unsigned)st.st_uid, (unsigned)st.st_gid);
                hash_sha256_update(h, head, strlen(head) + 1);
        }
        put_xattrs(h, dirfd);
        if (walk(h, dirfd, "", 0, err) < 0)
                return -1;
        hash_sha256_final(h, ret);
        return 0;
}
