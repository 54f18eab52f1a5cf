/* SPDX-License-Identifier: MIT */
#include "store/store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

#define WBUF_SIZE (1 << 20)

struct store_blob_writer {
        store *s;
        int fd;
        char *tmp_rel;
        hash_sha256 *h;
        uint64_t size;
        char *buf; /* write buffer: fewer syscalls for small writes */
        size_t used;
};

void store_blob_relpath(const char *digest, char *buf, size_t len)
{
        snprintf(buf, len, "blobs/sha256/%s", digest_hex(digest));
}

int store_blob_writer_new(store *s, store_blob_writer **ret, forge_error **err)
{
        store_blob_writer *w = calloc(1, sizeof(*w));

        if (w == NULL)
                return forge_error_make(err, ENOMEM, "blob writer");
        w->s = s;
        w->fd = -1;
        w->h = hash_sha256_new();
        w->buf = malloc(WBUF_SIZE);
        if (w->h == NULL || w->buf == NULL) {
                store_blob_writer_abort(w);
                return forge_error_make(err, ENOMEM, "blob writer");
        }
        if (store_tmpfile(s, &w->fd, &w->tmp_rel, err) < 0) {
                store_blob_writer_abort(w);
                return -1;
        }
        *ret = w;
        return 0;
}

static bool all_zero(const char *p, size_t len)
{
        return len > 0 && p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

/* Writes len bytes at the writer's position; whole 4 KiB blocks of zeros
 * become holes (disk images are mostly zeros), the size is set at commit. */
static int write_sparse(store_blob_writer *w, const char *p, size_t len, forge_error **err)
{
        while (len > 0) {
                size_t n = len < 4096 ? len : 4096;
                size_t run = 0;
                if (n == 4096 && all_zero(p, 4096)) {
                        while (run + 4096 <= len && all_zero(p + run, 4096))
                                run += 4096;
                        if (lseek(w->fd, (off_t)run, SEEK_CUR) < 0)
                                return forge_error_make(err, errno, "write blob");
                } else {
                        while (run < len) {
                                size_t m = len - run < 4096 ? len - run : 4096;
                                if (m == 4096 && all_zero(p + run, 4096))
                                        break;
                                run += m;
                        }
                        if (fs_write_all(w->fd, p, run) < 0)
                                return forge_error_make(err, errno, "write blob '%s/%s'",
                                                        w->s->root, w->tmp_rel);
                }
                p += run;
                len -= run;
        }
        return 0;
}

static int flush_buf(store_blob_writer *w, forge_error **err)
{
        if (w->used == 0)
                return 0;
        if (write_sparse(w, w->buf, w->used, err) < 0)
                return -1;
        w->used = 0;
        return 0;
}

int store_blob_writer_write(store_blob_writer *w, const void *buf, size_t len, forge_error **err)
{
        hash_sha256_update(w->h, buf, len);
        w->size += len;
        if (len >= WBUF_SIZE) {
                if (flush_buf(w, err) < 0)
                        return -1;
                return write_sparse(w, buf, len, err);
        }
        if (w->used + len > WBUF_SIZE && flush_buf(w, err) < 0)
                return -1;
        memcpy(w->buf + w->used, buf, len);
        w->used += len;
        return 0;
}

int store_blob_writer_commit(store_blob_writer *w, const char *expected,
                             char ret_digest[DIGEST_STR_SIZE], uint64_t *ret_size,
                             forge_error **err)
{
        char digest[DIGEST_STR_SIZE], rel[128];
        int r = -1;

        if (flush_buf(w, err) < 0)
                goto out;
        hash_sha256_final(w->h, digest);
        if (expected != NULL && strcmp(expected, digest) != 0) {
                forge_error_make(err, EBADMSG, "content is %s, expected %s", digest, expected);
                goto out;
        }
        store_blob_relpath(digest, rel, sizeof(rel));
        if (faccessat(w->s->root_fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
                r = 0; /* already there: same name, same content */
                goto out;
        }
        if (ftruncate(w->fd, (off_t)w->size) < 0 || fchmod(w->fd, 0444) < 0 || fsync(w->fd) < 0) {
                forge_error_make(err, errno, "write blob '%s/%s'", w->s->root, w->tmp_rel);
                goto out;
        }
        if (store_commit_file(w->s, w->tmp_rel, rel, err) < 0)
                goto out;
        free(w->tmp_rel);
        w->tmp_rel = NULL;
        r = 0;
out:
        if (r == 0) {
                memcpy(ret_digest, digest, DIGEST_STR_SIZE);
                if (ret_size)
                        *ret_size = w->size;
        }
        store_blob_writer_abort(w);
        return r;
}

void store_blob_writer_abort(store_blob_writer *w)
{
        if (w == NULL)
                return;
        if (w->fd >= 0)
                close(w->fd);
        if (w->tmp_rel != NULL)
                unlinkat(w->s->root_fd, w->tmp_rel, 0);
        free(w->tmp_rel);
        hash_sha256_free(w->h);
        free(w->buf);
        free(w);
}

int store_blob_put(store *s, const void *buf, size_t len, char ret_digest[DIGEST_STR_SIZE],
                   forge_error **err)
{
        store_blob_writer *w = NULL;

        if (store_blob_writer_new(s, &w, err) < 0)
                return -1;
        if (store_blob_writer_write(w, buf, len, err) < 0) {
                store_blob_writer_abort(w);
                return -1;
        }
        return store_blob_writer_commit(w, NULL, ret_digest, NULL, err);
}

int store_blob_put_fd(store *s, int fd, char ret_digest[DIGEST_STR_SIZE], uint64_t *ret_size,
                      forge_error **err)
{
        return store_blob_put_fd_expect(s, fd, NULL, ret_digest, ret_size, err);
}

int store_blob_put_fd_expect(store *s, int fd, const char *expected,
                             char ret_digest[DIGEST_STR_SIZE], uint64_t *ret_size,
                             forge_error **err)
{
        store_blob_writer *w = NULL;
        cleanup_free char *buf = malloc(1 << 20);

        if (buf == NULL)
                return forge_error_make(err, ENOMEM, "store blob");
        if (store_blob_writer_new(s, &w, err) < 0)
                return -1;
        for (;;) {
                ssize_t n = read(fd, buf, 1 << 20);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        store_blob_writer_abort(w);
                        return forge_error_make(err, errno, "read");
                }
                if (n == 0)
                        break;
                if (store_blob_writer_write(w, buf, (size_t)n, err) < 0) {
                        store_blob_writer_abort(w);
                        return -1;
                }
        }
        return store_blob_writer_commit(w, expected, ret_digest, ret_size, err);
}

bool store_blob_exists(store *s, const char *digest)
{
        char rel[128];

        if (!digest_valid(digest))
                return false;
        store_blob_relpath(digest, rel, sizeof(rel));
        return faccessat(s->root_fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int store_blob_size(store *s, const char *digest, uint64_t *ret_size, forge_error **err)
{
        char rel[128];
        struct stat st;

        if (!digest_valid(digest))
                return forge_error_make(err, EINVAL, "'%s' is not a sha256 digest", digest);
        store_blob_relpath(digest, rel, sizeof(rel));
        if (fstatat(s->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return forge_error_make(err, errno, "blob %s", digest);
        *ret_size = (uint64_t)st.st_size;
        return 0;
}

int store_blob_open(store *s, const char *digest, int *ret_fd, forge_error **err)
{
        char rel[128];
        int fd;

        if (!digest_valid(digest))
                return forge_error_make(err, EINVAL, "'%s' is not a sha256 digest", digest);
        store_blob_relpath(digest, rel, sizeof(rel));
        fd = openat(s->root_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return forge_error_make(err, errno, "open blob %s", digest);
        *ret_fd = fd;
        return 0;
}

char *store_blob_path(store *s, const char *digest)
{
        char *r = NULL;
        if (!digest_valid(digest))
                return NULL;
        if (asprintf(&r, "%s/blobs/sha256/%s", s->root, digest_hex(digest)) < 0)
                return NULL;
        return r;
}

int store_blob_read(store *s, const char *digest, size_t max, char **ret_buf, size_t *ret_len,
                    forge_error **err)
{
        char rel[128];

        if (!digest_valid(digest))
                return forge_error_make(err, EINVAL, "'%s' is not a sha256 digest", digest);
        store_blob_relpath(digest, rel, sizeof(rel));
        if (fs_read_all(s->root_fd, rel, max, ret_buf, ret_len, err) < 0)
                return forge_error_prefix(err, "blob %s", digest);
        return 0;
}
