/* SPDX-License-Identifier: MIT */
#include "store/store-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

static void report(store_verify_fn bad, void *ud, size_t *count, const char *what,
                   const char *problem)
{
        (*count)++;
        if (bad)
                bad(what, problem, ud);
}

static int verify_blobs(store *s, store_verify_fn bad, void *ud, size_t *count, forge_error **err)
{
        int dfd = openat(s->root_fd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        cleanup_closedir DIR *d = NULL;
        struct dirent *de;

        if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
                if (dfd >= 0)
                        close(dfd);
                return forge_error_make(err, errno, "verify: open '%s/blobs/sha256'", s->root);
        }
        while ((de = readdir(d)) != NULL) {
                char digest[DIGEST_STR_SIZE], actual[DIGEST_STR_SIZE];
                cleanup_close int fd = -1;
                forge_error *e = NULL;
                char msg[160];
                if (de->d_name[0] == '.')
                        continue;
                snprintf(digest, sizeof(digest), "sha256:%.64s", de->d_name);
                if (!digest_valid(digest) || strlen(de->d_name) != DIGEST_HEX_LEN) {
                        report(bad, ud, count, de->d_name, "stray file in blobs/sha256");
                        continue;
                }
                fd = openat(dfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0) {
                        report(bad, ud, count, digest, strerror(errno));
                        continue;
                }
                if (hash_sha256_fd(fd, actual, &e) < 0) {
                        report(bad, ud, count, digest, e->msg);
                        forge_error_release(&e);
                        continue;
                }
                if (strcmp(actual, digest) != 0) {
                        snprintf(msg, sizeof(msg), "corrupt: content hashes to %s", actual);
                        report(bad, ud, count, digest, msg);
                }
        }
        return 0;
}

static int verify_tags(store *s, store_verify_fn bad, void *ud, size_t *count, forge_error **err)
{
        store_tag *tags = NULL;
        size_t n = 0;

        if (store_tag_list(s, &tags, &n, err) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                store_image *img = NULL;
                forge_error *e = NULL;
                cleanup_free char *what = NULL;
                if (asprintf(&what, "%s:%s", tags[i].name, tags[i].tag) < 0)
                        what = NULL;
                if (store_image_load(s, tags[i].digest, &img, &e) < 0) {
                        report(bad, ud, count, what ? what : tags[i].name, e->msg);
                        forge_error_release(&e);
                        continue;
                }
                for (size_t l = 0; l < img->n_layers; l++)
                        if (!store_blob_exists(s, img->layers[l].digest)) {
                                char msg[160];
                                snprintf(msg, sizeof(msg), "layer %zu blob %s is missing", l + 1,
                                         img->layers[l].digest);
                                report(bad, ud, count, what ? what : tags[i].name, msg);
                        }
                store_image_free(img);
        }
        store_tag_list_free(tags, n);
        return 0;
}

/* Every unpacked layer against the tree digest recorded when it was unpacked. */
static int verify_unpacked(store *s, store_verify_fn bad, void *ud, size_t *count)
{
        cleanup_strv char **names = NULL;
        forge_error *e = NULL;

        if (fs_dir_list_sorted(s->root_fd, "layers", &names, &e) < 0) {
                forge_error_release(&e);
                return 0; /* no layers/ yet */
        }
        for (size_t i = 0; names[i] != NULL; i++) {
                char what[96], problem[512];
                snprintf(what, sizeof(what), "layers/%.64s", names[i]);
                if (strlen(names[i]) != DIGEST_HEX_LEN ||
                    strspn(names[i], "0123456789abcdef") != DIGEST_HEX_LEN) {
                        report(bad, ud, count, what, "stray entry in layers/");
                        continue;
                }
                if (store_unpacked_verify(s, names[i], problem, sizeof(problem)) < 0)
                        report(bad, ud, count, what, problem);
        }
        return 0;
}

int store_verify(store *s, store_verify_fn bad, void *userdata, size_t *ret_bad, forge_error **err)
{
        size_t count = 0;

        if (store_lock_shared(s, err) < 0)
                return -1;
        if (verify_blobs(s, bad, userdata, &count, err) < 0 ||
            verify_tags(s, bad, userdata, &count, err) < 0 ||
            verify_unpacked(s, bad, userdata, &count) < 0) {
                store_unlock(s);
                return -1;
        }
        store_unlock(s);
        *ret_bad = count;
        return 0;
}
