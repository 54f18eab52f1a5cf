/* SPDX-License-Identifier: MIT */
/*
 * What forge itself makes in a container's root: the mount points it
 * creates (/proc, /sys, /dev when the image has none, and whatever else
 * calls made_note) and the directories above them, which creating a child
 * copies up into the overlay's upper directory. When the caller keeps the
 * upper directory (a build step's layer), those are removed from it after
 * the run, so that it holds only what the workload changed. A path is
 * removed only when the workload left it exactly as forge did (type, mode,
 * owner, size, mtime to the nanosecond): a file a step really wrote stays.
 *
 * The child notes the paths and, once the root is built, writes records
 * "MODE UID GID SIZE SEC NSEC PATH\0" (PATH relative to the root) to an fd
 * forge reads after the run.
 */
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
#include "runtime/container/container-internal.h"

#define MADE_MAX 256
#define MADE_READ_MAX (1 << 20)

/* ---- in the child ---- */

typedef struct made_rec {
        char *path; /* absolute, as the child sees it */
        struct stat st;
        bool final; /* st taken (a mount point, before the mount hid it) */
} made_rec;

static made_rec recs[MADE_MAX];
static size_t n_recs;
static bool broken; /* a note was lost: report nothing rather than too little */

static bool noted(const char *path)
{
        for (size_t i = 0; i < n_recs; i++)
                if (strcmp(recs[i].path, path) == 0)
                        return true;
        return false;
}

static void add(const char *path, bool stat_now)
{
        made_rec *r;

        if (noted(path))
                return;
        if (n_recs == MADE_MAX) {
                broken = true;
                return;
        }
        r = &recs[n_recs];
        r->path = strdup(path);
        if (r->path == NULL || (stat_now && lstat(path, &r->st) < 0)) {
                free(r->path);
                broken = true;
                return;
        }
        r->final = stat_now;
        n_recs++;
}

void made_note(const char *path)
{
        char buf[4096];

        if (path[0] != '/' || strlen(path) >= sizeof(buf)) {
                broken = true;
                return;
        }
        /* the directories above it: each was made or copied up for it */
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                add(buf, false);
                *p = '/';
        }
        add(path, true);
}

int made_write(int fd)
{
        if (fd < 0)
                return 0;
        for (size_t i = 0; i < n_recs && !broken; i++)
                if (!recs[i].final && lstat(recs[i].path, &recs[i].st) < 0)
                        broken = true;
        if (broken)
                return 0;
        for (size_t i = 0; i < n_recs; i++) {
                const struct stat *st = &recs[i].st;
                if (dprintf(fd, "%o %u %u %lld %lld %ld %s%c", (unsigned)st->st_mode,
                            (unsigned)st->st_uid, (unsigned)st->st_gid, (long long)st->st_size,
                            (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec,
                            recs[i].path + 1, '\0') < 0)
                        return -errno;
        }
        return 0;
}

/* ---- in forge, after the run ---- */

typedef struct made_entry {
        const char *path; /* into the buffer read */
        unsigned mode, uid, gid;
        long long size, sec;
        long nsec;
        bool same;
} made_entry;

static int parse(char *rec, made_entry *e)
{
        int off = 0;

        if (sscanf(rec, "%o %u %u %lld %lld %ld %n", &e->mode, &e->uid, &e->gid, &e->size, &e->sec,
                   &e->nsec, &off) != 6 ||
            off == 0 || rec[off] == '\0')
                return -1;
        e->path = rec + off;
        return 0;
}

static int open_parent_in(int root, const char *path, const char **ret_base)
{
        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS |
                                          RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
        cleanup_free char *dir = strdup(path);
        char *slash;

        if (dir == NULL)
                return -1;
        slash = strrchr(dir, '/');
        *ret_base = slash ? path + (slash - dir) + 1 : path;
        if (slash)
                *slash = '\0';
        return (int)syscall(SYS_openat2, root, slash ? dir : ".", &how, sizeof(how));
}

static bool unchanged(int root, const made_entry *e)
{
        const char *base;
        cleanup_close int p = open_parent_in(root, e->path, &base);
        struct stat st;

        if (p < 0 || fstatat(p, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return false;
        return st.st_mode == e->mode && st.st_uid == e->uid && st.st_gid == e->gid &&
               (S_ISDIR(st.st_mode) || st.st_size == e->size) && st.st_mtim.tv_sec == e->sec &&
               st.st_mtim.tv_nsec == e->nsec;
}

static int drop(int root, const made_entry *e, forge_error **err)
{
        const char *base;
        cleanup_close int p = open_parent_in(root, e->path, &base);
        bool dir = S_ISDIR(e->mode);

        if (p < 0)
                return forge_error_make(err, errno, "'%s'", e->path);
        /* a directory that still holds something stays */
        if (unlinkat(p, base, dir ? AT_REMOVEDIR : 0) < 0 && !(dir && errno == ENOTEMPTY) &&
            errno != EEXIST)
                return forge_error_make(err, errno, "remove '%s'", e->path);
        return 0;
}

int made_clean_upper(const char *upper, int fd, forge_error **err)
{
        cleanup_free char *buf = malloc(MADE_READ_MAX + 1);
        cleanup_free made_entry *v = calloc(MADE_MAX, sizeof(*v));
        cleanup_close int root = -1;
        size_t len = 0, n = 0;

        if (buf == NULL || v == NULL)
                return forge_error_make(err, ENOMEM, "clean the upper directory");
        for (;;) {
                ssize_t r = pread(fd, buf + len, MADE_READ_MAX - len, (off_t)len);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return forge_error_make(err, errno, "read what forge made");
                if (r == 0 || (len += (size_t)r) == MADE_READ_MAX)
                        break;
        }
        buf[len] = '\0';
        for (size_t at = 0; at < len && n < MADE_MAX; at += strlen(buf + at) + 1)
                if (parse(buf + at, &v[n]) == 0)
                        n++;
        if (n == 0)
                return 0;
        root = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return forge_error_make(err, errno, "open '%s'", upper);
        /* decide on everything first: removing a child changes its parent */
        for (size_t i = 0; i < n; i++)
                v[i].same = unchanged(root, &v[i]);
        for (size_t i = n; i-- > 0;)
                if (v[i].same && drop(root, &v[i], err) < 0)
                        return forge_error_prefix(err, "clean the upper directory '%s'", upper);
        return 0;
}
