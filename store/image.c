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
#include "common/image-name.h"

#define MAX_META_BYTES (4 << 20)
#define MAX_LAYERS 4096
#define ANNOT_USIZE "dev.forge.uncompressed-size"

/* A not-found error whose message needs no strerror suffix. */
#define not_found(err, ...) (forge_error_make(err, 0, __VA_ARGS__), (*(err))->errnum = ENOENT, -1)

static json_t *descriptor(const char *media, const char *digest, uint64_t size)
{
        return json_pack("{s:s, s:s, s:I}", "mediaType", media, "digest", digest, "size",
                         (json_int_t)size);
}

static int put_json(store *s, const json_t *j, char ret[DIGEST_STR_SIZE], uint64_t *ret_size,
                    forge_error **err)
{
        size_t len;
        cleanup_free char *txt = store_json_canonical(j, &len);

        if (txt == NULL)
                return forge_error_make(err, ENOMEM, "serialise JSON");
        if (ret_size)
                *ret_size = len;
        return store_blob_put(s, txt, len, ret, err);
}

int store_image_put(store *s, json_t *config, const store_layer *layers, size_t n_layers,
                    json_t *annotations, char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_json json_t *manifest = NULL, *ldescs = json_array();
        json_t *rootfs = json_object_get(config, "rootfs");
        char cfg_digest[DIGEST_STR_SIZE];
        uint64_t cfg_size = 0;

        if (ldescs == NULL)
                return forge_error_make(err, ENOMEM, "image");
        if (rootfs == NULL) {
                json_t *ids = json_array();
                for (size_t i = 0; i < n_layers; i++)
                        json_array_append_new(ids, json_string(layers[i].diff_id));
                json_object_set_new(config, "rootfs",
                                    json_pack("{s:s, s:o}", "type", "layers", "diff_ids", ids));
        }
        if (put_json(s, config, cfg_digest, &cfg_size, err) < 0)
                return forge_error_prefix(err, "store image config");
        for (size_t i = 0; i < n_layers; i++) {
                json_t *d = descriptor(layers[i].media_type[0] ? layers[i].media_type
                                                               : STORE_MEDIA_LAYER_ZSTD,
                                       layers[i].digest, layers[i].size);
                if (layers[i].usize > 0) {
                        char buf[32];
                        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)layers[i].usize);
                        json_object_set_new(d, "annotations", json_pack("{s:s}", ANNOT_USIZE, buf));
                }
                json_array_append_new(ldescs, d);
        }
        manifest = json_pack(
            "{s:i, s:s, s:o, s:O}", "schemaVersion", 2, "mediaType", STORE_MEDIA_MANIFEST, "config",
            descriptor(STORE_MEDIA_CONFIG, cfg_digest, cfg_size), "layers", ldescs);
        if (manifest == NULL)
                return forge_error_make(err, ENOMEM, "image manifest");
        if (annotations != NULL && json_object_size(annotations) > 0)
                json_object_set(manifest, "annotations", annotations);
        if (put_json(s, manifest, ret_digest, NULL, err) < 0)
                return forge_error_prefix(err, "store image manifest");
        return 0;
}

static int load_json(store *s, const char *digest, json_t **ret, forge_error **err)
{
        cleanup_free char *buf = NULL;
        size_t len;
        json_error_t je;
        char actual[DIGEST_STR_SIZE];

        if (store_blob_read(s, digest, MAX_META_BYTES, &buf, &len, err) < 0)
                return -1;
        hash_sha256_buf(buf, len, actual);
        if (strcmp(actual, digest) != 0)
                return forge_error_make(err, EBADMSG,
                                        "blob %s is corrupt (content hashes to %s; "
                                        "run 'forge store verify')",
                                        digest, actual);
        *ret = json_loadb(buf, len, 0, &je);
        if (*ret == NULL)
                return forge_error_make(err, EBADMSG, "blob %s: invalid JSON: %s", digest, je.text);
        return 0;
}

static const char *jstr(json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static int parse_layers(store_image *img, forge_error **err)
{
        json_t *layers = json_object_get(img->manifest, "layers");
        json_t *ids = json_object_get(json_object_get(img->config, "rootfs"), "diff_ids");
        size_t n;

        if (!json_is_array(layers) || !json_is_array(ids))
                return forge_error_make(err, EBADMSG, "image %s: manifest without layers",
                                        img->digest);
        n = json_array_size(layers);
        if (n != json_array_size(ids) || n > MAX_LAYERS)
                return forge_error_make(err, EBADMSG, "image %s: %zu layers but %zu diff_ids",
                                        img->digest, n, json_array_size(ids));
        img->layers = calloc(n ? n : 1, sizeof(*img->layers));
        if (img->layers == NULL)
                return forge_error_make(err, ENOMEM, "image");
        for (size_t i = 0; i < n; i++) {
                json_t *d = json_array_get(layers, i);
                store_layer *l = &img->layers[i];
                const char *digest = jstr(d, "digest"), *media = jstr(d, "mediaType");
                const char *diff = json_string_value(json_array_get(ids, i));
                const char *us = jstr(json_object_get(d, "annotations"), ANNOT_USIZE);
                json_t *size = json_object_get(d, "size");

                if (!digest_valid(digest) || !digest_valid(diff) || !json_is_integer(size) ||
                    json_integer_value(size) < 0 || media == NULL ||
                    strlen(media) >= sizeof(l->media_type))
                        return forge_error_make(err, EBADMSG, "image %s: layer %zu is malformed",
                                                img->digest, i + 1);
                memcpy(l->digest, digest, DIGEST_STR_SIZE);
                memcpy(l->diff_id, diff, DIGEST_STR_SIZE);
                l->size = (uint64_t)json_integer_value(size);
                l->usize = us ? strtoull(us, NULL, 10) : 0;
                snprintf(l->media_type, sizeof(l->media_type), "%s", media);
        }
        img->n_layers = n;
        return 0;
}

int store_image_load(store *s, const char *manifest_digest, store_image **ret, forge_error **err)
{
        store_image *img = calloc(1, sizeof(*img));
        const char *cd;
        json_t *csize;

        if (img == NULL)
                return forge_error_make(err, ENOMEM, "image");
        if (!digest_valid(manifest_digest)) {
                forge_error_make(err, EINVAL, "'%s' is not a digest", manifest_digest);
                goto fail;
        }
        memcpy(img->digest, manifest_digest, DIGEST_STR_SIZE);
        if (load_json(s, manifest_digest, &img->manifest, err) < 0)
                goto fail;
        cd = jstr(json_object_get(img->manifest, "config"), "digest");
        csize = json_object_get(json_object_get(img->manifest, "config"), "size");
        if (!digest_valid(cd) || !json_is_integer(csize)) {
                forge_error_make(err, EBADMSG, "image %s: manifest has no valid config",
                                 manifest_digest);
                goto fail;
        }
        memcpy(img->config_digest, cd, DIGEST_STR_SIZE);
        img->config_size = (uint64_t)json_integer_value(csize);
        if (load_json(s, cd, &img->config, err) < 0 || parse_layers(img, err) < 0)
                goto fail;
        *ret = img;
        return 0;
fail:
        store_image_free(img);
        return -1;
}

void store_image_free(store_image *img)
{
        if (img == NULL)
                return;
        json_decref(img->manifest);
        json_decref(img->config);
        free(img->layers);
        free(img);
}

/* ENOENT: no image ref (quoted or not) in the store. */
static int no_image(forge_error **err, const char *ref, bool quoted)
{
        char shown[160];

        snprintf(shown, sizeof(shown), quoted ? "'%s'" : "%s", ref);
        return not_found(err, "no image %s in the store (run 'forge images' to list them)", shown);
}

/* Unique blob whose hex starts with prefix; only manifests count. */
static int resolve_prefix(store *s, const char *prefix, char ret[DIGEST_STR_SIZE],
                          forge_error **err)
{
        store_tag *tags = NULL;
        size_t n = 0, found = 0;
        char match[DIGEST_STR_SIZE] = "";

        if (store_tag_list(s, &tags, &n, err) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                if (strncmp(digest_hex(tags[i].digest), prefix, strlen(prefix)) != 0)
                        continue;
                if (found == 0 || strcmp(match, tags[i].digest) != 0) {
                        if (found > 0) {
                                store_tag_list_free(tags, n);
                                return forge_error_make(err, EINVAL,
                                                        "'%s' matches several images: give more "
                                                        "digits",
                                                        prefix);
                        }
                        memcpy(match, tags[i].digest, DIGEST_STR_SIZE);
                        found++;
                }
        }
        store_tag_list_free(tags, n);
        if (found == 0)
                return no_image(err, prefix, true);
        memcpy(ret, match, DIGEST_STR_SIZE);
        return 0;
}

int store_resolve(store *s, const char *ref, char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_free char *name = NULL;
        const char *tag = "latest";
        char *colon;
        size_t len = strlen(ref);
        forge_error *e = NULL;

        if (strncmp(ref, "sha256:", 7) == 0) {
                if (digest_valid(ref)) {
                        if (!store_blob_exists(s, ref))
                                return no_image(err, ref, false);
                        memcpy(ret_digest, ref, DIGEST_STR_SIZE);
                        return 0;
                }
                ref += 7;
                len -= 7;
        }
        if (len >= 12 && len < 64 && strspn(ref, "0123456789abcdef") == len)
                if (resolve_prefix(s, ref, ret_digest, &e) == 0 || e->errnum != ENOENT) {
                        if (e)
                                *err = e;
                        return e ? -1 : 0;
                }
        forge_error_release(&e);
        name = strdup(ref);
        if (name == NULL)
                return forge_error_make(err, ENOMEM, "resolve");
        colon = strchr(name, ':');
        if (colon) {
                *colon = '\0';
                tag = colon + 1;
        }
        if (!image_name_valid(name) || !image_tag_valid(tag))
                return forge_error_usage(err,
                                         "'%s' is not an image reference (expected NAME[:TAG] "
                                         "or sha256:HEX)",
                                         ref);
        if (store_tag_get(s, name, tag, ret_digest, &e) < 0) {
                if (e->errnum == ENOENT) {
                        forge_error_release(&e);
                        return not_found(err,
                                         "no image '%s:%s' in the store (run 'forge "
                                         "images' to list them, or 'forge build' it)",
                                         name, tag);
                }
                *err = e;
                return -1;
        }
        return 0;
}
