/* SPDX-License-Identifier: MIT */
#include "common/fs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/array.h"
#include "common/cleanup.h"

char *fs_path_join(const char *a, const char *b)
{
        size_t la = strlen(a);
        char *r = NULL;

        while (la > 1 && a[la - 1] == '/')
                la--;
        while (*b == '/')
                b++;
        {
                /* hot (every file of a tree walk): no printf machinery */
                size_t lb = strlen(b), sep = (la > 0 && a[la - 1] == '/') ? 0 : 1;
                r = malloc(la + sep + lb + 1);
                if (r == NULL)
                        return NULL;
                memcpy(r, a, la);
                if (sep)
                        r[la] = '/';
                memcpy(r + la + sep, b, lb + 1);
        }
        return r;
}

char *fs_env_path(const char *var, const char *rel)
{
        const char *v = getenv(var);

        if (v == NULL || v[0] != '/')
                return NULL;
        return fs_path_join(v, rel);
}

char *fs_companion_find(const char *name, const char *build_subdir)
{
        static const char *const installed[] = {"/usr/local/libexec/forge", "/usr/libexec/forge"};
        char exe[PATH_MAX], cand[PATH_MAX + 256];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

        if (n > 0) {
                char *slash;
                const char *rel[] = {"", build_subdir, "libexec/forge"};

                exe[n] = '\0';
                slash = strrchr(exe, '/');
                if (slash != NULL)
                        *slash = '\0';
                for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
                        if (i == 0)
                                snprintf(cand, sizeof(cand), "%s/%s", exe, name);
                        else
                                snprintf(cand, sizeof(cand), "%s/../%s/%s", exe, rel[i], name);
                        if (access(cand, X_OK) == 0)
                                return realpath(cand, NULL);
                }
        }
        for (size_t i = 0; i < sizeof(installed) / sizeof(installed[0]); i++) {
                snprintf(cand, sizeof(cand), "%s/%s", installed[i], name);
                if (access(cand, X_OK) == 0)
                        return strdup(cand);
        }
        return NULL;
}

char *fs_companion_lookup(const char *env_var, const char *name, const char *build_subdir)
{
        const char *env = getenv(env_var);

        if (env && access(env, X_OK) == 0)
                return strdup(env);
        return fs_companion_find(name, build_subdir);
}

char *fs_path_clean(const char *p, fs_dotdot dotdot)
{
        char *out = malloc(strlen(p) + 1);
        size_t o = 0;

        if (out == NULL)
                return NULL;
        while (*p) {
                const char *e;
                size_t len;
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                e = strchrnul(p, '/');
                len = (size_t)(e - p);
                if (len == 1 && p[0] == '.') {
                        p = e;
                        continue;
                }
                if (len == 2 && p[0] == '.' && p[1] == '.' && dotdot != FS_DOTDOT_KEEP) {
                        if (dotdot == FS_DOTDOT_REFUSE) {
                                free(out);
                                errno = EINVAL;
                                return NULL;
                        }
                        while (o > 0 && out[o - 1] != '/')
                                o--;
                        if (o > 0)
                                o--;
                        p = e;
                        continue;
                }
                if (o > 0)
                        out[o++] = '/';
                memcpy(out + o, p, len);
                o += len;
                p = e;
        }
        out[o] = '\0';
        return out;
}

bool fs_path_is_contained(const char *rel)
{
        const char *p = rel;

        if (rel == NULL || rel[0] == '/')
                return false;
        while (*p) {
                const char *e = strchrnul(p, '/');
                if (e - p == 2 && p[0] == '.' && p[1] == '.')
                        return false;
                p = *e ? e + 1 : e;
        }
        return true;
}

int fs_mkdir_p(const char *path, mode_t mode, forge_error **err)
{
        cleanup_free char *buf = strdup(path);

        if (buf == NULL)
                return forge_error_make(err, ENOMEM, "mkdir '%s'", path);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, mode) < 0 && errno != EEXIST)
                        return forge_error_make(err, errno, "mkdir '%s'", buf);
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return forge_error_make(err, errno, "mkdir '%s'", buf);
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        if (type == FTW_DP || type == FTW_D) {
                if (rmdir(path) < 0 && errno != ENOENT)
                        return -1;
                return 0;
        }
        if (unlink(path) < 0 && errno != ENOENT)
                return -1;
        return 0;
}

int fs_rm_rf(const char *path, forge_error **err)
{
        struct stat st;

        if (lstat(path, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                return forge_error_make(err, errno, "remove '%s'", path);
        }
        if (!S_ISDIR(st.st_mode)) {
                if (unlink(path) < 0 && errno != ENOENT)
                        return forge_error_make(err, errno, "remove '%s'", path);
                return 0;
        }
        if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
                return forge_error_make(err, errno, "remove '%s'", path);
        return 0;
}

int fs_write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int fs_write_atomic(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
                    forge_error **err)
{
        char tmp[PATH_MAX];
        cleanup_close int fd = -1;
        const char *base = strrchr(name, '/');
        cleanup_free char *dir = NULL;
        int n;

        n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d", name, (int)getpid());
        if (n < 0 || (size_t)n >= sizeof(tmp))
                return forge_error_make(err, ENAMETOOLONG, "write '%s'", name);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return forge_error_make(err, errno, "create '%s'", tmp);
        if (fs_write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
                int e = errno;
                unlinkat(dirfd, tmp, 0);
                return forge_error_make(err, e, "write '%s'", tmp);
        }
        if (fchmod(fd, mode) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
                int e = errno;
                unlinkat(dirfd, tmp, 0);
                return forge_error_make(err, e, "rename '%s'", name);
        }
        dir = base ? strndup(name, (size_t)(base - name)) : strdup(".");
        if (dir != NULL) {
                cleanup_close int dfd =
                    openat(dirfd, dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0)
                        fsync(dfd);
        }
        return 0;
}

int fs_read_capped(fs_read_fn fn, void *ctx, size_t max, size_t hint, char **ret_buf,
                   size_t *ret_len)
{
        cleanup_free char *buf = NULL;
        size_t len = 0, cap = 0;

        for (;;) {
                ssize_t n;
                if (len == cap) {
                        /* never room for more than max + 1: one byte past max is the EFBIG */
                        size_t ncap = cap ? cap * 2 : hint ? hint : 8192;
                        char *nb;
                        if (ncap > max + 1)
                                ncap = max + 1;
                        nb = realloc(buf, ncap + 1);
                        if (nb == NULL) {
                                errno = ENOMEM;
                                return -1;
                        }
                        buf = nb;
                        cap = ncap;
                }
                n = fn(ctx, buf + len, cap - len);
                if (n < 0)
                        return -1;
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max) {
                        errno = EFBIG;
                        return -1;
                }
        }
        if (buf == NULL && (buf = malloc(1)) == NULL) {
                errno = ENOMEM;
                return -1;
        }
        buf[len] = '\0';
        *ret_buf = take_ptr(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

ssize_t fs_read_some(int fd, void *buf, size_t len)
{
        ssize_t n;

        do
                n = read(fd, buf, len);
        while (n < 0 && errno == EINTR);
        return n;
}

int fs_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
        char *p = buf;

        while (len > 0) {
                ssize_t n = pread(fd, p, len, (off_t)off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n == 0)
                                errno = EIO;
                        return -1;
                }
                p += n;
                off += (uint64_t)n;
                len -= (size_t)n;
        }
        return 0;
}

static ssize_t fd_read(void *ctx, void *buf, size_t len)
{
        return fs_read_some(*(int *)ctx, buf, len);
}

int fs_read_fd(int fd, size_t max, size_t hint, char **ret_buf, size_t *ret_len)
{
        return fs_read_capped(fd_read, &fd, max, hint, ret_buf, ret_len);
}

int fs_read_all(int dirfd, const char *path, size_t max, char **ret_buf, size_t *ret_len,
                forge_error **err)
{
        cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return forge_error_make(err, errno, "open '%s'", path);
        if (fs_read_fd(fd, max, 0, ret_buf, ret_len) < 0)
                return forge_error_make(err, errno, "read '%s'", path);
        return 0;
}

int fs_copy_fd(int in, int out, forge_error **err)
{
        static __thread char buf[1 << 16];

        for (;;) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
                if (n == 0)
                        return 0;
                if (n < 0)
                        break; /* fall back to read/write */
        }
        for (;;) {
                ssize_t n = fs_read_some(in, buf, sizeof(buf));
                if (n < 0)
                        return forge_error_make(err, errno, "read");
                if (n == 0)
                        return 0;
                if (fs_write_all(out, buf, (size_t)n) < 0)
                        return forge_error_make(err, errno, "write");
        }
}

int fs_parse_size(const char *s, unsigned long long *ret)
{
        unsigned long long whole = 0, frac = 0, fracdiv = 1, mult = 1;
        const char *p = s;

        if (s == NULL || *p < '0' || *p > '9')
                return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (whole > (ULLONG_MAX - 9) / 10)
                        return -1;
                whole = whole * 10 + (unsigned)(*p - '0');
        }
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -1;
                for (; *p >= '0' && *p <= '9'; p++) {
                        if (fracdiv >= 1000000000ULL)
                                continue;
                        frac = frac * 10 + (unsigned)(*p - '0');
                        fracdiv *= 10;
                }
        }
        {
                static const char units[] = "kmgt";
                const char *u = *p ? strchr(units, tolower((unsigned char)*p)) : NULL;
                if (u != NULL) {
                        mult = 1ULL << (10 * (u - units + 1));
                        p++;
                }
        }
        if (mult > 1 && *p == 'i')
                p++;
        if (*p == 'B' || *p == 'b')
                p++;
        if (*p != '\0')
                return -1;
        if (whole > ULLONG_MAX / mult)
                return -1;
        *ret = whole * mult + (frac * mult) / fracdiv;
        return 0;
}

DIR *opendir_at(int dirfd, const char *rel)
{
        int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;

        if (fd < 0)
                return NULL;
        d = fdopendir(fd);
        if (d == NULL) {
                int e = errno;
                close(fd);
                errno = e;
        }
        return d;
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int fs_dir_list_sorted(int dirfd, const char *rel, char ***ret_names, forge_error **err)
{
        cleanup_closedir DIR *d = opendir_at(dirfd, rel);
        cleanup_strv char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;

        if (d == NULL)
                return forge_error_make(err, errno, "read directory '%s'", rel);
        while ((de = readdir(d)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (ARRAY_GROW(names, cap, n + 2) < 0)
                        return forge_error_make(err, ENOMEM, "read directory '%s'", rel);
                names[n] = strdup(de->d_name);
                if (names[n] == NULL)
                        return forge_error_make(err, ENOMEM, "read directory '%s'", rel);
                names[++n] = NULL;
        }
        if (names == NULL && (names = calloc(1, sizeof(char *))) == NULL)
                return forge_error_make(err, ENOMEM, "read directory '%s'", rel);
        qsort(names, n, sizeof(char *), cmp_names);
        *ret_names = take_ptr(names);
        return 0;
}
