/* SPDX-License-Identifier: MIT */
#include "common/safe-open.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

int safe_openat_resolve(int rootfd, const char *rel, int flags, mode_t mode, uint64_t resolve)
{
        struct open_how how = {
            .flags = (uint64_t)(flags | O_CLOEXEC),
            .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve,
        };
        long fd;

        if (rel == NULL || rel[0] == '\0')
                rel = ".";
        do
                fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
        while (fd < 0 && errno == EAGAIN); /* a rename raced the lookup */
        return (int)fd;
}

int safe_openat(int rootfd, const char *rel, int flags, mode_t mode)
{
        return safe_openat_resolve(rootfd, rel, flags | O_NOFOLLOW, mode, 0);
}

int safe_opendir_nofollow(int rootfd, const char *rel, forge_error **err)
{
        struct open_how how = {
            .flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd;

        do
                fd = syscall(SYS_openat2, rootfd, rel && rel[0] ? rel : ".", &how, sizeof(how));
        while (fd < 0 && errno == EAGAIN);
        if (fd < 0)
                return forge_error_make(err, errno, "open directory '%s'", rel);
        return (int)fd;
}

/* An error whose message needs no strerror suffix but keeps errnum. */
#define fail(err, en, ...)                                                                         \
        ({                                                                                         \
                forge_error_make(err, 0, __VA_ARGS__);                                             \
                if ((err) && *(err))                                                               \
                        (*(err))->errnum = (en);                                                   \
                -1;                                                                                \
        })

static const char *kind(mode_t m)
{
        if (S_ISLNK(m))
                return "a symlink";
        if (S_ISFIFO(m))
                return "a FIFO";
        if (S_ISCHR(m) || S_ISBLK(m))
                return "a device";
        if (S_ISDIR(m))
                return "a directory";
        if (S_ISSOCK(m))
                return "a socket";
        return "something else";
}

int safe_open_file(int rootfd, const char *rel, uint64_t max, int *ret_fd, uint64_t *ret_size,
                   forge_error **err)
{
        cleanup_close int pfd = -1, fd = -1;
        struct stat pst, st;
        int fl;

        /* O_PATH first: a device or FIFO is never opened for real */
        pfd = safe_openat(rootfd, rel, O_PATH, 0);
        if (pfd < 0)
                return forge_error_make(err, errno, "open '%s'", rel);
        if (fstat(pfd, &pst) < 0)
                return forge_error_make(err, errno, "stat '%s'", rel);
        if (!S_ISREG(pst.st_mode))
                return fail(err, S_ISLNK(pst.st_mode) ? ELOOP : EINVAL,
                            "'%s' is %s, not a regular file", rel, kind(pst.st_mode));
        if ((uint64_t)pst.st_size > max)
                return fail(err, EFBIG,
                            "'%s' is larger than forge accepts (%llu bytes, at most %llu)", rel,
                            (unsigned long long)pst.st_size, (unsigned long long)max);
        fd = safe_openat(rootfd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
        if (fd < 0)
                return forge_error_make(err, errno, "open '%s'", rel);
        if (fstat(fd, &st) < 0)
                return forge_error_make(err, errno, "stat '%s'", rel);
        if (st.st_dev != pst.st_dev || st.st_ino != pst.st_ino || !S_ISREG(st.st_mode))
                return fail(err, EAGAIN, "'%s' changed while it was opened", rel);
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                return forge_error_make(err, errno, "open '%s'", rel);
        if (ret_size)
                *ret_size = (uint64_t)st.st_size;
        *ret_fd = take_fd(fd);
        return 0;
}

int safe_read_file(int rootfd, const char *rel, size_t max, char **ret_buf, size_t *ret_len,
                   forge_error **err)
{
        cleanup_close int fd = -1;
        uint64_t size;

        if (safe_open_file(rootfd, rel, max, &fd, &size, err) < 0)
                return -1;
        /* room for one byte more than the size: a file that grows is caught */
        if (fs_read_fd(fd, (size_t)size, (size_t)size + 1, ret_buf, ret_len) < 0) {
                if (errno == EFBIG)
                        return fail(err, EAGAIN, "'%s' changed while it was read", rel);
                return forge_error_make(err, errno, "read '%s'", rel);
        }
        return 0;
}

/* Opens the parent of rel in the root; *ret_base points into the copy
 * *ret_copy (malloc'd). */
static int open_parent(int rootfd, const char *rel, char **ret_copy, const char **ret_base,
                       forge_error **err)
{
        cleanup_free char *copy = strdup(rel ? rel : "");
        char *slash, *base;
        size_t n;
        int fd;

        if (copy == NULL)
                return forge_error_make(err, ENOMEM, "open '%s'", rel);
        n = strlen(copy);
        while (n > 0 && copy[n - 1] == '/')
                copy[--n] = '\0';
        slash = strrchr(copy, '/');
        base = slash ? slash + 1 : copy;
        if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
                return fail(err, EINVAL, "'%s' names no file", rel);
        if (slash != NULL)
                *slash = '\0';
        /* the parent may be a symlink: it is followed, inside the root */
        fd = safe_openat_resolve(rootfd, slash ? (copy[0] ? copy : "/") : ".", O_PATH | O_DIRECTORY,
                                 0, 0);
        if (fd < 0)
                return forge_error_make(err, errno, "open the directory of '%s'", rel);
        *ret_base = base;
        *ret_copy = take_ptr(copy);
        return fd;
}

int safe_create_file(int rootfd, const char *rel, mode_t mode, int *ret_fd, forge_error **err)
{
        cleanup_free char *copy = NULL;
        cleanup_close int parent = -1;
        const char *base;
        int fd;

        parent = open_parent(rootfd, rel, &copy, &base, err);
        if (parent < 0)
                return -1;
        if (unlinkat(parent, base, 0) < 0 && errno != ENOENT)
                return forge_error_make(err, errno, "replace '%s'", rel);
        fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return forge_error_make(err, errno, "create '%s'", rel);
        *ret_fd = fd;
        return 0;
}

int safe_mkdir(int rootfd, const char *rel, mode_t mode, int *ret_fd, forge_error **err)
{
        cleanup_free char *copy = NULL;
        cleanup_close int parent = -1;
        const char *base;
        struct stat st;
        int fd;

        parent = open_parent(rootfd, rel, &copy, &base, err);
        if (parent < 0)
                return -1;
        if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
            unlinkat(parent, base, 0) < 0)
                return forge_error_make(err, errno, "replace '%s'", rel);
        if (mkdirat(parent, base, mode) < 0 && errno != EEXIST)
                return forge_error_make(err, errno, "create '%s'", rel);
        fd = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return forge_error_make(err, errno, "open '%s'", rel);
        *ret_fd = fd;
        return 0;
}
