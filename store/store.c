/* SPDX-License-Identifier: MIT */
#include "store/store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

static const char *const store_dirs[] = {"blobs", "blobs/sha256", "tags", "kv", "layers", "tmp"};

char *store_default_root(void)
{
        const char *env = getenv("FORGE_STORE");
        char *r;

        if (env != NULL && env[0] != '\0')
                return strdup(env);
        if (geteuid() == 0)
                return strdup("/var/lib/forge");
        r = fs_env_path("XDG_DATA_HOME", "forge");
        return r != NULL ? r : fs_env_path("HOME", ".local/share/forge");
}

int store_open(const char *root, store **ret, forge_error **err)
{
        cleanup_free char *abs = NULL;
        cleanup_store store *s = NULL;

        if (fs_mkdir_p(root, 0755, err) < 0)
                return forge_error_prefix(err, "open store '%s'", root);
        abs = realpath(root, NULL);
        if (abs == NULL)
                return forge_error_make(err, errno, "open store '%s'", root);
        s = calloc(1, sizeof(*s));
        if (s == NULL)
                return forge_error_make(err, ENOMEM, "open store");
        s->lock_fd = -1;
        s->root = take_ptr(abs);
        s->root_fd = open(s->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (s->root_fd < 0)
                return forge_error_make(err, errno, "open store '%s'", s->root);
        for (size_t i = 0; i < ARRAY_SIZE(store_dirs); i++)
                if (mkdirat(s->root_fd, store_dirs[i], 0755) < 0 && errno != EEXIST)
                        return forge_error_make(err, errno, "open store '%s': create '%s'", s->root,
                                                store_dirs[i]);
        *ret = take_ptr(s);
        return 0;
}

void store_close(store *s)
{
        if (s == NULL)
                return;
        cleanup_close_fn(&s->lock_fd);
        cleanup_close_fn(&s->root_fd);
        free(s->root);
        free(s);
}

const char *store_root(const store *s)
{
        return s->root;
}

int store_root_fd(const store *s)
{
        return s->root_fd;
}

static int lock(store *s, int mode, forge_error **err)
{
        if (s->lock_mode == mode)
                return 0;
        if (s->lock_fd < 0) {
                s->lock_fd = openat(s->root_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
                if (s->lock_fd < 0)
                        return forge_error_make(err, errno, "lock store '%s'", s->root);
        }
        while (flock(s->lock_fd, mode) < 0) {
                if (errno != EINTR)
                        return forge_error_make(err, errno, "lock store '%s'", s->root);
        }
        s->lock_mode = mode;
        return 0;
}

int store_lock_shared(store *s, forge_error **err)
{
        return lock(s, LOCK_SH, err);
}

int store_lock_exclusive(store *s, forge_error **err)
{
        return lock(s, LOCK_EX, err);
}

void store_unlock(store *s)
{
        if (s->lock_fd >= 0)
                flock(s->lock_fd, LOCK_UN);
        s->lock_mode = 0;
}

int store_lock_fd(store *s)
{
        return s->lock_fd;
}

int store_tmpdir(store *s, char **ret_path, forge_error **err)
{
        cleanup_free char *tmpl = NULL;

        if (asprintf(&tmpl, "%s/tmp/d.XXXXXX", s->root) < 0)
                return forge_error_make(err, ENOMEM, "temp dir");
        if (mkdtemp(tmpl) == NULL)
                return forge_error_make(err, errno, "create temp dir in '%s/tmp'", s->root);
        *ret_path = take_ptr(tmpl);
        return 0;
}

int store_tmpfile(store *s, int *ret_fd, char **ret_rel, forge_error **err)
{
        static unsigned counter;
        for (int tries = 0; tries < 100; tries++) {
                char rel[64];
                int fd;
                /* atomic: export compresses layers on several threads */
                unsigned r = (unsigned)getpid() * 2654435761u ^ (unsigned)rand() ^
                             __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
                snprintf(rel, sizeof(rel), "tmp/f.%d.%08x", (int)getpid(), r);
                fd = openat(s->root_fd, rel, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0) {
                        if (errno == EEXIST)
                                continue;
                        return forge_error_make(err, errno, "create temp file in '%s/tmp'",
                                                s->root);
                }
                *ret_rel = strdup(rel);
                if (*ret_rel == NULL) {
                        close(fd);
                        unlinkat(s->root_fd, rel, 0);
                        return forge_error_make(err, ENOMEM, "temp file");
                }
                *ret_fd = fd;
                return 0;
        }
        return forge_error_make(err, EEXIST, "create temp file in '%s/tmp'", s->root);
}

int store_commit_file(store *s, const char *tmp_rel, const char *dest_rel, forge_error **err)
{
        cleanup_free char *dir = strdup(dest_rel);
        char *slash;
        cleanup_close int dfd = -1;

        if (dir == NULL)
                return forge_error_make(err, ENOMEM, "commit");
        if (renameat(s->root_fd, tmp_rel, s->root_fd, dest_rel) < 0)
                return forge_error_make(err, errno, "rename into '%s/%s'", s->root, dest_rel);
        slash = strrchr(dir, '/');
        if (slash)
                *slash = '\0';
        dfd = openat(s->root_fd, slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                fsync(dfd);
        return 0;
}

char *store_json_canonical(const json_t *j, size_t *ret_len)
{
        char *out = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII);
        if (out != NULL && ret_len != NULL)
                *ret_len = strlen(out);
        return out;
}
