/* SPDX-License-Identifier: MIT */
/*
 * The unpacked-layer cache: layers/HEX(diff_id) holds each layer once, in
 * overlayfs lowerdir form, shared read-only by every container. A layer is
 * unpacked into tmp/ and renamed into place: the rename is the commit, so
 * concurrent unpackers and crashes leave either nothing or a complete tree.
 *
 * The name is earned, not claimed: the layer is extracted through a
 * layer_stream, and the tree is renamed into layers/HEX only when what was
 * extracted hashes to HEX. The tree's digest (store_tree_digest) is then
 * recorded in kv/unpacked/HEX; a directory without that record is not used
 * (it is checked against a fresh unpack), and 'forge store verify' compares
 * every unpacked tree with its record.
 */
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

#define KV_UNPACKED "unpacked"

static bool recorded(store *s, const char *hex)
{
        cleanup_free char *v = NULL;
        forge_error *e = NULL;
        int r = store_kv_get(s, KV_UNPACKED, hex, &v, &e);

        forge_error_release(&e);
        return r > 0 && digest_valid(v);
}

static int tree_digest_at(const char *dir, char ret[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return forge_error_make(err, errno, "open '%s'", dir);
        return store_tree_digest(fd, ret, err);
}

/* Extracts the layer blob into root through a layer_stream; fails unless the
 * blob hashes to its digest and what was extracted to its diff_id. */
static int extract_verified(store *s, const store_layer *layer, const char *root, forge_error **err)
{
        cleanup_close int fd = -1;
        layer_stream *ls = NULL;
        struct archive *tar;
        char digest[DIGEST_STR_SIZE], diff[DIGEST_STR_SIZE];
        int r = -1;

        if (store_blob_open(s, layer->digest, &fd, err) < 0)
                return -1;
        if (layer_stream_open(fd, NULL, &ls, err) < 0)
                return -1;
        tar = layer_stream_tar(ls, err);
        if (tar == NULL ||
            store_extract_archive(tar, root,
                                  STORE_EXTRACT_OWNERS | STORE_EXTRACT_DEVICES |
                                      STORE_EXTRACT_SPECIAL_BITS | STORE_EXTRACT_WHITEOUTS_OVERLAY,
                                  err) < 0 ||
            layer_stream_finish(ls, digest, diff, NULL, NULL, err) < 0)
                goto out;
        if (strcmp(digest, layer->digest) != 0) {
                forge_error_make(err, EBADMSG,
                                 "layer blob %s is corrupt (content hashes to %s): run 'forge "
                                 "store verify'",
                                 layer->digest, digest);
                goto out;
        }
        if (strcmp(diff, layer->diff_id) != 0) {
                forge_error_make(err, EBADMSG,
                                 "layer %s unpacks to %s, not the diff_id %s its image claims",
                                 layer->digest, diff, layer->diff_id);
                goto out;
        }
        r = 0;
out:
        layer_stream_free(ls);
        return r;
}

/* root (complete, verified) becomes dest; an unrecorded dest already there
 * is kept when it is the same tree, else moved aside into tmp (a running
 * container keeps its mount of it) and replaced. */
static int commit(store *s, const char *root, const char *tmp, const char *dest, const char *hex,
                  forge_error **err)
{
        char fresh[DIGEST_STR_SIZE], old[DIGEST_STR_SIZE];
        cleanup_free char *aside = NULL;
        forge_error *e = NULL;

        if (tree_digest_at(root, fresh, err) < 0)
                return -1;
        if (rename(root, dest) == 0)
                return store_kv_put(s, KV_UNPACKED, hex, fresh, err);
        if (errno != EEXIST && errno != ENOTEMPTY)
                return forge_error_make(err, errno, "unpack: rename into '%s'", dest);
        if (recorded(s, hex))
                return 0; /* a concurrent unpacker won */
        if (tree_digest_at(dest, old, &e) == 0 && strcmp(old, fresh) == 0)
                return store_kv_put(s, KV_UNPACKED, hex, fresh, err);
        forge_error_release(&e);
        aside = fs_path_join(tmp, "stale");
        if (aside == NULL)
                return forge_error_make(err, ENOMEM, "unpack");
        if (rename(dest, aside) < 0 || rename(root, dest) < 0)
                return forge_error_make(err, errno, "unpack: replace '%s'", dest);
        return store_kv_put(s, KV_UNPACKED, hex, fresh, err);
}

int store_layer_unpack(store *s, const store_layer *layer, char **ret_dir, forge_error **err)
{
        cleanup_free char *dest = NULL, *tmp = NULL, *root = NULL;
        const char *hex;
        forge_error *e2 = NULL;
        struct stat st;
        int r = -1;

        if (!digest_valid(layer->diff_id) || !digest_valid(layer->digest))
                return forge_error_make(err, EINVAL, "unpack: bad layer digest");
        hex = digest_hex(layer->diff_id);
        if (asprintf(&dest, "%s/layers/%s", s->root, hex) < 0)
                return forge_error_make(err, ENOMEM, "unpack");
        if (lstat(dest, &st) == 0 && S_ISDIR(st.st_mode) && recorded(s, hex)) {
                *ret_dir = take_ptr(dest);
                return 0;
        }
        if (store_tmpdir(s, &tmp, err) < 0)
                return -1;
        root = fs_path_join(tmp, "root");
        if (root == NULL || mkdir(root, 0755) < 0) {
                forge_error_make(err, root ? errno : ENOMEM, "unpack");
                goto out;
        }
        if (extract_verified(s, layer, root, err) < 0) {
                forge_error_prefix(err, "unpack layer %s", layer->digest);
                goto out;
        }
        if (commit(s, root, tmp, dest, hex, err) < 0)
                goto out;
        *ret_dir = take_ptr(dest);
        r = 0;
out:
        fs_rm_rf(tmp, &e2);
        forge_error_release(&e2);
        return r;
}

size_t store_layer_dirs_dedupe(char **dirs, size_t n, bool free_dropped)
{
        size_t o = 0;

        for (size_t i = 0; i < n; i++) {
                bool later = false;
                for (size_t k = i + 1; k < n && !later; k++)
                        later = strcmp(dirs[i], dirs[k]) == 0;
                if (later) {
                        if (free_dropped)
                                free(dirs[i]);
                        continue;
                }
                dirs[o++] = dirs[i];
        }
        if (o < n)
                dirs[o] = NULL;
        return o;
}

int store_unpacked_verify(store *s, const char *hex, char *problem, size_t len)
{
        cleanup_free char *want = NULL, *dir = NULL;
        char got[DIGEST_STR_SIZE];
        forge_error *e = NULL;
        int r;

        r = store_kv_get(s, KV_UNPACKED, hex, &want, &e);
        if (r <= 0 || !digest_valid(want)) {
                snprintf(problem, len,
                         "unpacked layer has no integrity record (forge does not use it; "
                         "'forge store gc' removes it when unused)");
                forge_error_release(&e);
                return -1;
        }
        if (asprintf(&dir, "%s/layers/%s", s->root, hex) < 0 || tree_digest_at(dir, got, &e) < 0) {
                snprintf(problem, len, "unpacked layer unreadable: %s", e ? e->msg : "no memory");
                forge_error_release(&e);
                return -1;
        }
        if (strcmp(got, want) != 0) {
                snprintf(problem, len,
                         "unpacked layer was changed after forge unpacked it (tree %s, recorded "
                         "%s): remove '%s'; forge unpacks it again when needed",
                         got, want, dir);
                return -1;
        }
        return 0;
}
