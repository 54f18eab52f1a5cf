/* SPDX-License-Identifier: MIT */
/*
 * The unpacked-layer cache: layers/HEX(diff_id) holds each layer once, in
 * overlayfs lowerdir form, shared read-only by every container. A layer is
 * unpacked into tmp/ and renamed into place: the rename is the commit, so
 * concurrent unpackers and crashes leave either nothing or a complete tree.
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

int store_layer_unpack(store *s, const store_layer *layer, char **ret_dir, forge_error **err)
{
        cleanup_free char *dest = NULL, *tmp = NULL, *root = NULL;
        cleanup_close int fd = -1;
        char actual[DIGEST_STR_SIZE];
        forge_error *e2 = NULL;
        struct stat st;

        if (!digest_valid(layer->diff_id) || !digest_valid(layer->digest))
                return forge_error_make(err, EINVAL, "unpack: bad layer digest");
        if (asprintf(&dest, "%s/layers/%s", s->root, digest_hex(layer->diff_id)) < 0)
                return forge_error_make(err, ENOMEM, "unpack");
        if (lstat(dest, &st) == 0 && S_ISDIR(st.st_mode)) {
                *ret_dir = take_ptr(dest);
                return 0;
        }
        if (store_blob_open(s, layer->digest, &fd, err) < 0)
                return forge_error_prefix(err, "unpack layer %s", layer->digest);
        /* The blob is content-addressed: check it before trusting its devices
         * and setuid bits. */
        if (hash_sha256_fd(fd, actual, err) < 0)
                return -1;
        if (strcmp(actual, layer->digest) != 0)
                return forge_error_make(err, EBADMSG, "layer blob %s is corrupt (content hashes "
                                                      "to %s): run 'forge store verify'",
                                        layer->digest, actual);
        if (lseek(fd, 0, SEEK_SET) < 0)
                return forge_error_make(err, errno, "unpack");
        if (store_tmpdir(s, &tmp, err) < 0)
                return -1;
        root = path_join(tmp, "root");
        if (root == NULL || mkdir(root, 0755) < 0) {
                forge_error_make(err, root ? errno : ENOMEM, "unpack");
                goto fail;
        }
        if (store_extract_fd(fd, root,
                             STORE_EXTRACT_OWNERS | STORE_EXTRACT_DEVICES |
                                     STORE_EXTRACT_SPECIAL_BITS | STORE_EXTRACT_WHITEOUTS_OVERLAY,
                             err) < 0) {
                forge_error_prefix(err, "unpack layer %s", layer->digest);
                goto fail;
        }
        if (rename(root, dest) < 0 && errno != EEXIST && errno != ENOTEMPTY) {
                forge_error_make(err, errno, "unpack: rename into '%s'", dest);
                goto fail;
        }
        rm_rf(tmp, &e2);
        forge_error_release(&e2);
        *ret_dir = take_ptr(dest);
        return 0;
fail:
        rm_rf(tmp, &e2);
        forge_error_release(&e2);
        return -1;
}
