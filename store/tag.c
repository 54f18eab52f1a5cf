/* SPDX-License-Identifier: MIT */
#include "store/store-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/image-name.h"

static int check_ref(const char *name, const char *tag, forge_error **err)
{
        if (!image_name_valid(name))
                return forge_error_usage(err,
                                         "image name '%s' is not valid "
                                         "(expected [a-z0-9][a-z0-9._-]{0,127})",
                                         name);
        if (!image_tag_valid(tag))
                return forge_error_usage(err,
                                         "tag '%s' is not valid "
                                         "(expected [A-Za-z0-9_][A-Za-z0-9._-]{0,127})",
                                         tag);
        return 0;
}

/* Writes a small file under root atomically (tmp/, fsync, rename). */
static int put_small(store *s, const char *dest_rel, const char *content, forge_error **err)
{
        cleanup_close int fd = -1;
        cleanup_free char *tmp = NULL;

        if (store_tmpfile(s, &fd, &tmp, err) < 0)
                return -1;
        if (fs_write_all(fd, content, strlen(content)) < 0 || fsync(fd) < 0) {
                int e = errno;
                unlinkat(s->root_fd, tmp, 0);
                return forge_error_make(err, e, "write '%s'", dest_rel);
        }
        if (store_commit_file(s, tmp, dest_rel, err) < 0) {
                unlinkat(s->root_fd, tmp, 0);
                return -1;
        }
        return 0;
}

int store_tag_set(store *s, const char *name, const char *tag, const char *digest,
                  forge_error **err)
{
        char rel[512], line[DIGEST_STR_SIZE + 2];

        if (check_ref(name, tag, err) < 0)
                return -1;
        if (!digest_valid(digest))
                return forge_error_make(err, EINVAL, "tag '%s:%s': '%s' is not a digest", name, tag,
                                        digest);
        snprintf(rel, sizeof(rel), "tags/%s", name);
        if (mkdirat(s->root_fd, rel, 0755) < 0 && errno != EEXIST)
                return forge_error_make(err, errno, "tag '%s:%s'", name, tag);
        snprintf(rel, sizeof(rel), "tags/%s/%s", name, tag);
        snprintf(line, sizeof(line), "%s\n", digest);
        if (put_small(s, rel, line, err) < 0)
                return forge_error_prefix(err, "tag '%s:%s'", name, tag);
        return 0;
}

int store_tag_get(store *s, const char *name, const char *tag, char ret[DIGEST_STR_SIZE],
                  forge_error **err)
{
        char rel[512];
        cleanup_free char *buf = NULL;
        size_t len;

        if (check_ref(name, tag, err) < 0)
                return -1;
        snprintf(rel, sizeof(rel), "tags/%s/%s", name, tag);
        if (fs_read_all(s->root_fd, rel, 256, &buf, &len, err) < 0)
                return -1;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
                buf[--len] = '\0';
        if (!digest_valid(buf))
                return forge_error_make(err, EBADMSG, "tag '%s:%s' is corrupt", name, tag);
        memcpy(ret, buf, DIGEST_STR_SIZE);
        return 0;
}

int store_tag_remove(store *s, const char *name, const char *tag, forge_error **err)
{
        char rel[512];

        if (check_ref(name, tag, err) < 0)
                return -1;
        snprintf(rel, sizeof(rel), "tags/%s/%s", name, tag);
        if (unlinkat(s->root_fd, rel, 0) < 0)
                return forge_error_make(err, errno, "untag '%s:%s'", name, tag);
        snprintf(rel, sizeof(rel), "tags/%s", name);
        unlinkat(s->root_fd, rel, AT_REMOVEDIR); /* fails while other tags remain */
        return 0;
}

static int cmp_tag(const void *a, const void *b)
{
        const store_tag *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        return c ? c : strcmp(x->tag, y->tag);
}

int store_tag_list(store *s, store_tag **ret, size_t *ret_n, forge_error **err)
{
        cleanup_closedir DIR *names = opendir_at(s->root_fd, "tags");
        store_tag *v = NULL;
        size_t n = 0;
        struct dirent *de;

        if (names == NULL)
                return forge_error_make(err, errno, "list tags in '%s'", s->root);
        while ((de = readdir(names)) != NULL) {
                char rel[512];
                cleanup_closedir DIR *tags = NULL;
                struct dirent *te;
                if (de->d_name[0] == '.' || !image_name_valid(de->d_name))
                        continue;
                snprintf(rel, sizeof(rel), "tags/%s", de->d_name);
                tags = opendir_at(s->root_fd, rel);
                if (tags == NULL)
                        continue;
                while ((te = readdir(tags)) != NULL) {
                        store_tag *nv;
                        forge_error *e = NULL;
                        char digest[DIGEST_STR_SIZE];
                        if (te->d_name[0] == '.' || !image_tag_valid(te->d_name))
                                continue;
                        if (store_tag_get(s, de->d_name, te->d_name, digest, &e) < 0) {
                                forge_error_release(&e);
                                continue;
                        }
                        nv = realloc(v, (n + 1) * sizeof(*v));
                        if (nv == NULL) {
                                store_tag_list_free(v, n);
                                return forge_error_make(err, ENOMEM, "list tags");
                        }
                        v = nv;
                        v[n].name = strdup(de->d_name);
                        v[n].tag = strdup(te->d_name);
                        memcpy(v[n].digest, digest, DIGEST_STR_SIZE);
                        n++;
                }
        }
        if (n > 0)
                qsort(v, n, sizeof(*v), cmp_tag);
        *ret = v;
        *ret_n = n;
        return 0;
}

void store_tag_list_free(store_tag *tags, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(tags[i].name);
                free(tags[i].tag);
        }
        free(tags);
}

/* ---- kv ---- */

/* Maps a key onto a safe file name: [A-Za-z0-9._-] kept, others %XX. */
static int kv_rel(const char *ns, const char *key, char *buf, size_t len, forge_error **err)
{
        size_t o;
        int n;

        if (!image_name_valid(ns))
                return forge_error_make(err, EINVAL, "kv namespace '%s'", ns);
        n = snprintf(buf, len, "kv/%s/", ns);
        o = (size_t)n;
        if (key[0] == '\0' || key[0] == '.')
                return forge_error_make(err, EINVAL, "kv key '%s'", key);
        for (const char *c = key; *c; c++) {
                unsigned char ch = (unsigned char)*c;
                if (o + 4 >= len)
                        return forge_error_make(err, ENAMETOOLONG, "kv key '%s'", key);
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-')
                        buf[o++] = (char)ch;
                else
                        o += (size_t)snprintf(buf + o, len - o, "%%%02X", ch);
        }
        buf[o] = '\0';
        return 0;
}

int store_kv_get(store *s, const char *ns, const char *key, char **ret_value, forge_error **err)
{
        char rel[512];
        forge_error *e = NULL;

        if (kv_rel(ns, key, rel, sizeof(rel), err) < 0)
                return -1;
        if (fs_read_all(s->root_fd, rel, 16 << 20, ret_value, NULL, &e) < 0) {
                if (e->errnum == ENOENT) {
                        forge_error_release(&e);
                        return 0;
                }
                *err = e;
                return -1;
        }
        return 1;
}

int store_kv_put(store *s, const char *ns, const char *key, const char *value, forge_error **err)
{
        char rel[512], dir[256];

        if (kv_rel(ns, key, rel, sizeof(rel), err) < 0)
                return -1;
        snprintf(dir, sizeof(dir), "kv/%s", ns);
        if (mkdirat(s->root_fd, dir, 0755) < 0 && errno != EEXIST)
                return forge_error_make(err, errno, "kv '%s'", dir);
        return put_small(s, rel, value, err);
}

int store_kv_delete(store *s, const char *ns, const char *key, forge_error **err)
{
        char rel[512];

        if (kv_rel(ns, key, rel, sizeof(rel), err) < 0)
                return -1;
        if (unlinkat(s->root_fd, rel, 0) < 0 && errno != ENOENT)
                return forge_error_make(err, errno, "kv delete '%s'", rel);
        return 0;
}
