/* SPDX-License-Identifier: MIT */
/*
 * forge import: an OCI image layout (directory or tar) or a docker-archive
 * tar. A tar is first unpacked (safely, streaming) into the store's tmp/;
 * every blob is verified against its digest while it is copied in, so
 * memory stays flat whatever the size of the archive.
 */
#include "store/store-internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/safe-open.h"
#include "common/image-name.h"

#define MAX_JSON (4 << 20)
/* no layer of any real image comes near this; a sparse file may */
#define MAX_BLOB (64ULL << 30)

static json_t *load_json_at(int dirfd, const char *rel, forge_error **err)
{
        cleanup_free char *buf = NULL;
        size_t len;
        json_error_t je;
        json_t *j;

        if (safe_read_file(dirfd, rel, MAX_JSON, &buf, &len, err) < 0)
                return NULL;
        j = json_loadb(buf, len, 0, &je);
        if (j == NULL)
                forge_error_make(err, EBADMSG, "'%s': invalid JSON: %s (line %d)", rel, je.text,
                                 je.line);
        return j;
}

/* Opens the regular file rel inside the layout without leaving it (no
 * '..', no absolute name, no symlink, FIFO or device). */
static int open_in(int dirfd, const char *rel, uint64_t *ret_size, forge_error **err)
{
        int fd = -1;
        if (!fs_path_is_contained(rel) || rel[0] == '\0')
                return forge_error_make(err, EINVAL, "'%s' points outside the archive", rel);
        if (safe_open_file(dirfd, rel, MAX_BLOB, &fd, ret_size, err) < 0)
                return -1;
        return fd;
}

/* Stores the layer rel of the layout, checking its digest (when given) and
 * its diff_id against the content before anything is named by them. */
static int put_layer(store *s, int dirfd, const char *rel, const char *digest, const char *diff_id,
                     store_layer *ret, forge_error **err)
{
        cleanup_close int fd = open_in(dirfd, rel, NULL, err);

        if (fd < 0)
                return -1;
        if (store_layer_put_fd(s, fd, digest, diff_id, ret, err) < 0) {
                if (*err && (*err)->errnum == EBADMSG && strstr((*err)->msg, "diff_id") == NULL)
                        return forge_error_prefix(err, "'%s' does not match its digest", rel);
                return forge_error_prefix(err, "layer '%s'", rel);
        }
        return 0;
}

static char *blob_rel(const char *digest)
{
        char *r = NULL;
        if (!digest_valid(digest) || asprintf(&r, "blobs/sha256/%s", digest_hex(digest)) < 0)
                return NULL;
        return r;
}

/* Reads a JSON blob of the layout, checking its digest. */
static json_t *layout_json(int dirfd, const char *digest, forge_error **err)
{
        cleanup_free char *rel = blob_rel(digest), *buf = NULL;
        char got[DIGEST_STR_SIZE];
        size_t len;
        json_t *j;

        if (rel == NULL) {
                forge_error_make(err, EINVAL, "bad digest '%s'", digest ? digest : "");
                return NULL;
        }
        if (safe_read_file(dirfd, rel, MAX_JSON, &buf, &len, err) < 0)
                return NULL;
        hash_sha256_buf(buf, len, got);
        if (strcmp(got, digest) != 0) {
                forge_error_make(err, EBADMSG, "'%s' does not match its digest", rel);
                return NULL;
        }
        j = json_loadb(buf, len, 0, NULL);
        if (j == NULL)
                forge_error_make(err, EBADMSG, "'%s': invalid JSON", rel);
        return j;
}

/* The image's name in a descriptor's annotations: containerd's full name
 * (docker and buildkit write it), else the OCI ref name. */
static const char *ref_name(json_t *annotations)
{
        const char *full =
            json_string_value(json_object_get(annotations, "io.containerd.image.name"));
        const char *ref =
            json_string_value(json_object_get(annotations, "org.opencontainers.image.ref.name"));
        return full && full[0] ? full : ref;
}

/* Stores the layout's blob digest as it is (its bytes were verified). */
static int put_raw(store *s, int dirfd, const char *digest, forge_error **err)
{
        cleanup_free char *rel = blob_rel(digest), *buf = NULL;
        store_blob_writer *w = NULL;
        char got[DIGEST_STR_SIZE];
        size_t len;

        if (rel == NULL)
                return forge_error_make(err, EINVAL, "bad digest '%s'", digest ? digest : "");
        if (safe_read_file(dirfd, rel, MAX_JSON, &buf, &len, err) < 0 ||
            store_blob_writer_new(s, &w, err) < 0)
                return -1;
        if (store_blob_writer_write(w, buf, len, err) < 0) {
                store_blob_writer_abort(w);
                return -1;
        }
        if (store_blob_writer_commit(w, digest, got, NULL, err) < 0)
                return forge_error_prefix(err, "'%s' does not match its digest", rel);
        return 0;
}

/* Picks the image manifest: the one named ref (if given), else the first;
 * an image index inside is followed to its linux/amd64 entry. */
static json_t *pick_manifest(int dirfd, json_t *index, char ret_mdigest[DIGEST_STR_SIZE],
                             char *ret_ref, size_t ref_len, forge_error **err)
{
        json_t *ms = json_object_get(index, "manifests");
        json_t *d = json_array_get(ms, 0), *owned = NULL;
        const char *mt, *digest;
        json_t *m;

        if (d == NULL) {
                forge_error_make(err, EINVAL, "index.json lists no manifests");
                return NULL;
        }
        for (int depth = 0; depth < 4; depth++) {
                const char *ref = ref_name(json_object_get(d, "annotations"));
                if (ref && ret_ref[0] == '\0')
                        snprintf(ret_ref, ref_len, "%s", ref);
                char mtbuf[128], dbuf[DIGEST_STR_SIZE];
                mt = json_string_value(json_object_get(d, "mediaType"));
                snprintf(mtbuf, sizeof(mtbuf), "%s", mt ? mt : "");
                mt = mt ? mtbuf : NULL;
                digest = json_string_value(json_object_get(d, "digest"));
                snprintf(dbuf, sizeof(dbuf), "%s", digest ? digest : "");
                digest = dbuf;
                m = layout_json(dirfd, digest, err);
                json_decref(owned);
                owned = NULL;
                if (m == NULL)
                        return NULL;
                if (mt == NULL)
                        mt = json_string_value(json_object_get(m, "mediaType"));
                if (mt == NULL || strstr(mt, "index") == NULL) {
                        memcpy(ret_mdigest, dbuf, DIGEST_STR_SIZE);
                        return m;
                }
                /* nested index: take linux/amd64 */
                size_t i;
                json_t *e;
                d = NULL;
                json_array_foreach(json_object_get(m, "manifests"), i, e)
                {
                        json_t *p = json_object_get(e, "platform");
                        const char *os = json_string_value(json_object_get(p, "os"));
                        const char *arch = json_string_value(json_object_get(p, "architecture"));
                        if (p == NULL ||
                            (os && arch && !strcmp(os, "linux") && !strcmp(arch, "amd64"))) {
                                d = owned = json_incref(e);
                                break;
                        }
                }
                json_decref(m);
                if (d == NULL) {
                        forge_error_make(err, EINVAL, "the image index has no linux/amd64 image");
                        return NULL;
                }
        }
        json_decref(owned);
        forge_error_make(err, EINVAL, "image indexes nest too deeply");
        return NULL;
}

/* The store_layer array of an image of n layers; NULL (ENOMEM) in err. */
static store_layer *layers_alloc(size_t n, forge_error **err)
{
        store_layer *ls = calloc(n ? n : 1, sizeof(*ls));

        if (ls == NULL)
                forge_error_make(err, ENOMEM, "import");
        return ls;
}

static int import_oci(store *s, int dirfd, char ret_digest[DIGEST_STR_SIZE], char *ret_ref,
                      size_t ref_len, forge_error **err)
{
        char mdigest[DIGEST_STR_SIZE] = "";
        cleanup_store_image store_image *img = NULL;
        cleanup_json json_t *index = load_json_at(dirfd, "index.json", err), *manifest = NULL,
                            *config = NULL;
        json_t *layers, *ids;
        cleanup_free store_layer *ls = NULL;
        size_t n;
        const char *cdigest;

        if (index == NULL)
                return -1;
        manifest = pick_manifest(dirfd, index, mdigest, ret_ref, ref_len, err);
        if (manifest == NULL)
                return -1;
        cdigest = json_string_value(json_object_get(json_object_get(manifest, "config"), "digest"));
        config = layout_json(dirfd, cdigest, err);
        if (config == NULL)
                return -1;
        layers = json_object_get(manifest, "layers");
        ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
        n = json_array_size(layers);
        if (!json_is_array(layers) || n != json_array_size(ids) || n > 4096)
                return forge_error_make(err, EBADMSG, "manifest and config disagree on the layers");
        ls = layers_alloc(n, err);
        if (ls == NULL)
                return -1;
        for (size_t i = 0; i < n; i++) {
                json_t *d = json_array_get(layers, i);
                const char *digest = json_string_value(json_object_get(d, "digest"));
                const char *mt = json_string_value(json_object_get(d, "mediaType"));
                const char *diff = json_string_value(json_array_get(ids, i));
                cleanup_free char *rel = blob_rel(digest);
                if (rel == NULL || !digest_valid(diff) || mt == NULL ||
                    strlen(mt) >= sizeof(ls[i].media_type))
                        return forge_error_make(err, EBADMSG, "layer %zu is malformed", i + 1);
                if (put_layer(s, dirfd, rel, digest, diff, &ls[i], err) < 0)
                        return -1;
                if (json_integer_value(json_object_get(d, "size")) != (json_int_t)ls[i].size)
                        return forge_error_make(
                            err, EBADMSG,
                            "layer %zu: the manifest says %lld bytes, "
                            "the blob has %llu",
                            i + 1, (long long)json_integer_value(json_object_get(d, "size")),
                            (unsigned long long)ls[i].size);
        }
        /* the config and the manifest are kept byte for byte: the image keeps
         * its digest through export and import */
        if (put_raw(s, dirfd, cdigest, err) < 0 || put_raw(s, dirfd, mdigest, err) < 0)
                return -1;
        if (store_image_load(s, mdigest, &img, err) < 0)
                return forge_error_prefix(err, "the image's manifest");
        memcpy(ret_digest, mdigest, DIGEST_STR_SIZE);
        return 0;
}

static int import_docker(store *s, int dirfd, char ret_digest[DIGEST_STR_SIZE], char *ret_ref,
                         size_t ref_len, forge_error **err)
{
        cleanup_json json_t *man = load_json_at(dirfd, "manifest.json", err), *config = NULL;
        json_t *entry, *layers, *ids;
        cleanup_free char *cbuf = NULL;
        cleanup_free store_layer *ls = NULL;
        size_t n, clen;
        const char *cfg_rel;

        if (man == NULL)
                return -1;
        entry = json_array_get(man, 0);
        cfg_rel = json_string_value(json_object_get(entry, "Config"));
        layers = json_object_get(entry, "Layers");
        if (cfg_rel == NULL || !json_is_array(layers))
                return forge_error_make(err, EBADMSG, "manifest.json: no Config or Layers");
        {
                /* every RepoTag, one a line */
                size_t i, o = 0;
                json_t *v;
                json_array_foreach(json_object_get(entry, "RepoTags"), i, v)
                {
                        const char *t = json_string_value(v);
                        int w;
                        if (t == NULL || t[0] == '\0' || strchr(t, '\n') != NULL)
                                continue;
                        w = snprintf(ret_ref + o, ref_len - o, "%s%s", o ? "\n" : "", t);
                        if (w < 0 || (size_t)w >= ref_len - o) {
                                ret_ref[o] = '\0';
                                break;
                        }
                        o += (size_t)w;
                }
        }
        if (!fs_path_is_contained(cfg_rel) ||
            safe_read_file(dirfd, cfg_rel, MAX_JSON, &cbuf, &clen, err) < 0) {
                if (!*err)
                        forge_error_make(err, EINVAL, "'%s' points outside the archive", cfg_rel);
                return -1;
        }
        config = json_loadb(cbuf, clen, 0, NULL);
        ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
        n = json_array_size(layers);
        if (config == NULL || n != json_array_size(ids) || n > 4096)
                return forge_error_make(err, EBADMSG,
                                        "'%s' and manifest.json disagree on the layers", cfg_rel);
        ls = layers_alloc(n, err);
        if (ls == NULL)
                return -1;
        for (size_t i = 0; i < n; i++) {
                const char *rel = json_string_value(json_array_get(layers, i));
                const char *diff = json_string_value(json_array_get(ids, i));
                if (rel == NULL || !digest_valid(diff))
                        return forge_error_make(err, EBADMSG, "layer %zu is malformed", i + 1);
                /* docker-archive layers are plain tars: digest = diff_id. */
                if (put_layer(s, dirfd, rel, NULL, diff, &ls[i], err) < 0)
                        return -1;
                if (strcmp(ls[i].digest, ls[i].diff_id) != 0)
                        return forge_error_make(
                            err, EBADMSG,
                            "layer '%s' is compressed: a docker-archive holds plain "
                            "tars",
                            rel);
                snprintf(ls[i].media_type, sizeof(ls[i].media_type), "%s", STORE_MEDIA_LAYER_TAR);
        }
        return store_image_put(s, config, ls, n, NULL, ret_digest, err);
}

/* "registry.example/library/busybox:1.36" -> name "busybox", tag "1.36"; "v1" -> tag only. */
static int split_ref(const char *ref, char *name, size_t nlen, char *tag, size_t tlen)
{
        const char *slash = strrchr(ref, '/');
        const char *base = slash ? slash + 1 : ref;
        const char *colon = strchr(base, ':');
        size_t blen = strcspn(base, "@"); /* NAME:TAG@sha256:...: the digest goes */

        if (colon && (size_t)(colon - base) < blen) {
                snprintf(name, nlen, "%.*s", (int)(colon - base), base);
                snprintf(tag, tlen, "%.*s", (int)(blen - (size_t)(colon - base) - 1), colon + 1);
        } else if (base[blen] == '@') {
                snprintf(name, nlen, "%.*s", (int)blen, base);
                tag[0] = '\0';
        } else if (colon) {
                snprintf(name, nlen, "%.*s", (int)(colon - base), base);
                snprintf(tag, tlen, "%s", colon + 1);
        } else {
                snprintf(name, nlen, "%s", base);
                tag[0] = '\0';
        }
        for (char *c = name; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        return 0;
}

int store_import(store *s, const char *path, const char *tag, char ret_digest[DIGEST_STR_SIZE],
                 forge_error **err)
{
        store_import_result res;

        if (store_import_tagged(s, path, tag, &res, err) < 0)
                return -1;
        memcpy(ret_digest, res.digest, DIGEST_STR_SIZE);
        return 0;
}

/* NAME and TAG for one ref of the image (or --tag); a bare tag such as
 * "latest" gets the file's name as image name. */
static int name_for(const char *path, const char *ref, bool from_user, char *name, size_t nlen,
                    char *t, size_t tlen, forge_error **err)
{
        split_ref(ref, name, nlen, t, tlen);
        if (!from_user && strchr(ref, ':') == NULL && ref[0] != '\0' && image_tag_valid(ref)) {
                const char *b = strrchr(path, '/');
                cleanup_free char *base = strdup(b ? b + 1 : path);
                if (base) {
                        char *dot = strchr(base, '.');
                        if (dot)
                                *dot = '\0';
                }
                snprintf(name, nlen, "%s", base && base[0] ? base : "imported");
                for (char *c = name; *c; c++)
                        *c = (char)tolower((unsigned char)*c);
                snprintf(t, tlen, "%s", ref);
        }
        if (t[0] == '\0')
                snprintf(t, tlen, "latest");
        if (!image_name_valid(name) || !image_tag_valid(t))
                return forge_error_usage(err,
                                         "import '%s': no usable image name (found '%s'): "
                                         "give --tag NAME:TAG",
                                         path, ref);
        return 0;
}

int store_import_tagged(store *s, const char *path, const char *tag, store_import_result *ret,
                        forge_error **err)
{
        char ret_digest[DIGEST_STR_SIZE];
        cleanup_free char *work = NULL;
        cleanup_close int dirfd = -1;
        char ref[4096] = "", name[512], t[512];
        store_import_result res = {0};
        struct stat st;
        forge_error *e2 = NULL;
        int r = -1;

        if (stat(path, &st) < 0)
                return forge_error_make(err, errno, "import '%s'", path);
        if (store_lock_shared(s, err) < 0)
                return -1;
        if (S_ISDIR(st.st_mode)) {
                dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } else {
                cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return forge_error_make(err, errno, "import '%s'", path);
                if (store_tmpdir(s, &work, err) < 0)
                        return -1;
                if (store_extract_fd(fd, work, 0, err) < 0) {
                        forge_error_prefix(err, "import '%s': unpack", path);
                        goto out;
                }
                dirfd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (dirfd < 0) {
                forge_error_make(err, errno, "import '%s'", path);
                goto out;
        }
        if (faccessat(dirfd, "index.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                r = import_oci(s, dirfd, ret_digest, ref, sizeof(ref), err);
        else if (faccessat(dirfd, "manifest.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                r = import_docker(s, dirfd, ret_digest, ref, sizeof(ref), err);
        else
                r = forge_error_usage(err,
                                      "'%s' is neither an OCI image layout (no index.json) "
                                      "nor a docker-archive (no manifest.json)",
                                      path);
        if (r < 0) {
                forge_error_prefix(err, "import '%s'", path);
                goto out;
        }
        r = -1;
        if (tag != NULL)
                snprintf(ref, sizeof(ref), "%s", tag);
        memcpy(res.digest, ret_digest, DIGEST_STR_SIZE);
        /* check every name before setting any tag */
        for (int pass = 0; pass < 2; pass++) {
                char *line = ref;
                res.n_tags = 0;
                do {
                        char *nl = strchr(line, '\n');
                        store_import_tag *it = &res.tags[res.n_tags];
                        forge_error *e = NULL;
                        if (nl)
                                *nl = '\0';
                        if (name_for(path, line, tag != NULL, name, sizeof(name), t, sizeof(t),
                                     err) < 0)
                                goto out;
                        if (nl)
                                *nl = '\n';
                        line = nl ? nl + 1 : NULL;
                        if (pass == 0)
                                continue;
                        snprintf(it->name, sizeof(it->name), "%s", name);
                        snprintf(it->tag, sizeof(it->tag), "%s", t);
                        if (store_tag_get(s, name, t, it->previous, &e) < 0) {
                                it->previous[0] = '\0';
                                forge_error_release(&e);
                        }
                        if (store_tag_set(s, name, t, ret_digest, err) < 0)
                                goto out;
                        res.n_tags++;
                } while (line != NULL && res.n_tags < STORE_IMPORT_MAX_TAGS);
        }
        *ret = res;
        r = 0;
out:
        if (work) {
                fs_rm_rf(work, &e2);
                forge_error_release(&e2);
        }
        return r;
}
