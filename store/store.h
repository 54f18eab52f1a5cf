/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The content-addressed store.
 *
 * Layout under the root (see docs/store.md):
 *   blobs/sha256/HEX         every object: layer tars (zstd), configs, manifests, kernels
 *   tags/NAME/TAG            a file holding a manifest digest
 *   kv/NS/KEY                small state records (layer cache index, last build records)
 *   layers/HEX               unpacked layers (by diff_id), shared read-only lowerdirs;
 *                            kv/unpacked/HEX records each one's tree digest
 *   tmp/                     writes in progress; anything here is garbage after a crash
 *   lock                     flock: shared for builds/runs, exclusive for gc
 *
 * Every write is atomic (temp file in tmp/, fsync, rename), so a writer killed
 * at any moment leaves the store consistent. Concurrent writers of the same
 * blob are harmless: the content, and so the name, is the same.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"
#include "common/hash.h"

typedef struct store store;

#define STORE_MEDIA_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define STORE_MEDIA_CONFIG "application/vnd.oci.image.config.v1+json"
#define STORE_MEDIA_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define STORE_MEDIA_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define STORE_MEDIA_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"

/* Key in the image config JSON holding forge's own extensions:
 *   "dev.forge": { "container": {...}, "vm": {...}, "blobs": ["sha256:..."] }
 * Blobs listed in "blobs" (e.g. a kernel) are kept alive by gc. */
#define STORE_CONFIG_FORGE_KEY "dev.forge"

/* --store, else $FORGE_STORE, else /var/lib/forge (root) or $XDG_DATA_HOME/forge. malloc'd. */
char *store_default_root(void);

/* Opens (creating if needed) the store at root. */
int store_open(const char *root, store **ret, forge_error **err);
void store_close(store *s);
const char *store_root(const store *s);
/* A directory fd of the store root (owned by the store). */
int store_root_fd(const store *s);

/* Store-wide lock. Builds, runs, imports take it shared; gc takes it exclusive.
 * Blocks until granted. Released by store_unlock() or store_close(). */
int store_lock_shared(store *s, forge_error **err);
int store_lock_exclusive(store *s, forge_error **err);
void store_unlock(store *s);
/* The lock file's fd (-1 before a lock was taken), for a process that must
 * hold a lock of its own past this one (a run's deferred clean-up). */
int store_lock_fd(store *s);

/* Creates a fresh private temp directory under tmp/ (removed by the caller or by gc). */
int store_tmpdir(store *s, char **ret_path, forge_error **err);

/* ---- blobs ---- */

typedef struct store_blob_writer store_blob_writer;

int store_blob_writer_new(store *s, store_blob_writer **ret, forge_error **err);
int store_blob_writer_write(store_blob_writer *w, const void *buf, size_t len, forge_error **err);
/* Finishes the blob: fsync, rename to blobs/sha256/HEX. When expected is not
 * NULL and the content hashes differently, fails with EBADMSG and stores
 * nothing. Frees w in every case. */
int store_blob_writer_commit(store_blob_writer *w, const char *expected,
                             char ret_digest[DIGEST_STR_SIZE], uint64_t *ret_size,
                             forge_error **err);
/* Drops the temp file and frees w. NULL is fine. */
void store_blob_writer_abort(store_blob_writer *w);

int store_blob_put(store *s, const void *buf, size_t len, char ret_digest[DIGEST_STR_SIZE],
                   forge_error **err);
/* Copies fd (from its offset to EOF) into the store. */
int store_blob_put_fd(store *s, int fd, char ret_digest[DIGEST_STR_SIZE], uint64_t *ret_size,
                      forge_error **err);
/* The same, failing with EBADMSG (and storing nothing) unless the content
 * hashes to expected. */
int store_blob_put_fd_expect(store *s, int fd, const char *expected,
                             char ret_digest[DIGEST_STR_SIZE], uint64_t *ret_size,
                             forge_error **err);
bool store_blob_exists(store *s, const char *digest);
int store_blob_size(store *s, const char *digest, uint64_t *ret_size, forge_error **err);
/* O_RDONLY|O_CLOEXEC fd of the blob. */
int store_blob_open(store *s, const char *digest, int *ret_fd, forge_error **err);
/* Absolute path of the blob file (malloc'd); the blob may not exist. */
char *store_blob_path(store *s, const char *digest);
/* Reads a whole blob of at most max bytes (NUL-terminated). */
int store_blob_read(store *s, const char *digest, size_t max, char **ret_buf, size_t *ret_len,
                    forge_error **err);

/* ---- images ---- */

typedef struct store_layer {
        char digest[DIGEST_STR_SIZE];  /* the blob as stored (compressed) */
        char diff_id[DIGEST_STR_SIZE]; /* the uncompressed tar */
        uint64_t size;                 /* compressed bytes */
        uint64_t usize;                /* uncompressed bytes */
        char media_type[64];           /* STORE_MEDIA_LAYER_* */
} store_layer;

typedef struct store_image {
        char digest[DIGEST_STR_SIZE];        /* of the manifest */
        char config_digest[DIGEST_STR_SIZE]; /* of the config */
        uint64_t config_size;
        json_t *manifest; /* parsed manifest (owned) */
        json_t *config;   /* parsed OCI image config (owned) */
        size_t n_layers;
        store_layer *layers; /* bottom first */
} store_image;

/* Serialises JSON canonically (sorted keys, compact, UTF-8, no trailing newline). malloc'd. */
char *store_json_canonical(const json_t *j, size_t *ret_len);

static inline void store_json_cleanup(json_t **j)
{
        json_decref(*j);
}
#define cleanup_json __attribute__((cleanup(store_json_cleanup)))

/* Writes the config (canonical JSON; rootfs.diff_ids and "history" are filled
 * in from layers if missing) and an OCI manifest referencing it and the layers.
 * annotations may be NULL. Does not tag. */
int store_image_put(store *s, json_t *config, const store_layer *layers, size_t n_layers,
                    json_t *annotations, char ret_digest[DIGEST_STR_SIZE], forge_error **err);
int store_image_load(store *s, const char *manifest_digest, store_image **ret, forge_error **err);
void store_image_free(store_image *img);

/* Resolves "NAME", "NAME:TAG", "sha256:HEX" (also a unique hex prefix of >= 12
 * digits) to a manifest digest. ENOENT with a helpful message when unknown. */
int store_resolve(store *s, const char *ref, char ret_digest[DIGEST_STR_SIZE], forge_error **err);

/* ---- tags ---- */

typedef struct store_tag {
        char *name;
        char *tag;
        char digest[DIGEST_STR_SIZE];
} store_tag;

int store_tag_set(store *s, const char *name, const char *tag, const char *digest,
                  forge_error **err);
/* The digest a tag points to; ENOENT when the tag does not exist. */
int store_tag_get(store *s, const char *name, const char *tag, char ret[DIGEST_STR_SIZE],
                  forge_error **err);
/* ENOENT when the tag does not exist. */
int store_tag_remove(store *s, const char *name, const char *tag, forge_error **err);
/* Sorted by name then tag. */
int store_tag_list(store *s, store_tag **ret, size_t *ret_n, forge_error **err);
void store_tag_list_free(store_tag *tags, size_t n);

/* ---- small state records (kv/NS/KEY), atomic ---- */

/* Returns 1 and a malloc'd NUL-terminated value when found, 0 when absent. */
int store_kv_get(store *s, const char *ns, const char *key, char **ret_value, forge_error **err);
int store_kv_put(store *s, const char *ns, const char *key, const char *value, forge_error **err);
int store_kv_delete(store *s, const char *ns, const char *key, forge_error **err);

/* ---- gc and verify ---- */

typedef struct store_gc_stats {
        size_t blobs;    /* blobs removed (or that would be) */
        uint64_t bytes;  /* their size */
        size_t unpacked; /* unpacked layer dirs removed */
        uint64_t unpacked_bytes;
        size_t kv; /* stale cache records dropped */
} store_gc_stats;

typedef void (*store_gc_fn)(const char *digest, uint64_t size, void *userdata);

/* Removes every blob no tag reaches (manifest -> config, layers, dev.forge.blobs),
 * unpacked layers of removed blobs, stale kv records and leftovers in tmp/.
 * With dry_run nothing is removed. cb (may be NULL) is called per blob. */
int store_gc(store *s, bool dry_run, store_gc_fn cb, void *userdata, store_gc_stats *ret,
             forge_error **err);

typedef void (*store_verify_fn)(const char *what, const char *problem, void *userdata);

/* Re-hashes every blob, checks every tag and manifest reference. Calls bad()
 * for each problem; *ret_bad is the number found. */
int store_verify(store *s, store_verify_fn bad, void *userdata, size_t *ret_bad, forge_error **err);

/* ---- unpacked layers, export, import (store/unpack.c, export.c, import.c) ---- */

/* Unpacks the layer once into layers/HEX(diff_id) as an overlayfs lowerdir
 * (OCI whiteouts become overlay whiteouts: char 0/0 and trusted.overlay.opaque).
 * The tree is named HEX only when the blob hashes to its digest and what was
 * extracted to its diff_id (EBADMSG otherwise); its tree digest is recorded.
 * Safe against concurrent callers and hostile tars. Returns the malloc'd path. */
int store_layer_unpack(store *s, const store_layer *layer, char **ret_dir, forge_error **err);
/* An image may list the same layer twice; overlayfs refuses a lowerdir given
 * twice (ELOOP). dirs (bottom first) keeps only the topmost occurrence of
 * each path, which stacks to the same tree; compacted in place, NULL after
 * the last kept one. Dropped strings are freed when free_dropped. Returns
 * the new count. */
size_t store_layer_dirs_dedupe(char **dirs, size_t n, bool free_dropped);

/* Stores the layer read from fd (any compression libarchive reads) as a
 * blob, in one pass, after checking that the content hashes to digest (when
 * not NULL) and that its decompressed stream hashes to diff_id: on a
 * mismatch (EBADMSG) nothing is stored. Fills ret's digest, diff_id, size
 * and usize. */
int store_layer_put_fd(store *s, int fd, const char *digest, const char *diff_id, store_layer *ret,
                       forge_error **err);

/* Extracts a (possibly compressed) tar stream into dir: nothing is ever written
 * outside dir (../, absolute names, symlinks and hardlinks pointing out are all
 * contained); device nodes are skipped unless STORE_EXTRACT_DEVICES; setuid/setgid
 * bits are kept only with STORE_EXTRACT_SPECIAL_BITS. With STORE_EXTRACT_WHITEOUTS
 * OCI whiteouts are applied (deleting from dir) instead of being written. */
enum {
        STORE_EXTRACT_DEVICES = 1 << 0,
        STORE_EXTRACT_SPECIAL_BITS = 1 << 1,
        STORE_EXTRACT_WHITEOUTS_APPLY = 1 << 2,   /* flatten: apply .wh. entries */
        STORE_EXTRACT_WHITEOUTS_OVERLAY = 1 << 3, /* lowerdir: convert to overlay form */
        STORE_EXTRACT_OWNERS = 1 << 4,            /* chown to the tar's numeric ids */
        /* a directory entry over a symlink to a directory (inside dir) keeps the
         * link, as tar --keep-directory-symlink (merged /usr: bin -> usr/bin) */
        STORE_EXTRACT_KEEP_DIR_SYMLINKS = 1 << 5,
};
int store_extract_fd(int fd, const char *dir, int flags, forge_error **err);

/*
 * Reading archives and Debian packages forge did not write (an archive:
 * layer, a .deb, a kernel package): hostile input, read with libarchive's
 * built-in decompressors only and with every read capped.
 */
struct archive;
/* The decompressors forge applies to data an image, archive or package
 * brings: libarchive's built-in ones (gzip, bzip2, xz, lzma, lzip, zstd, lz4,
 * compress), never an external program (lrzip, lzop, grzip) fed hostile bytes. */
void store_archive_filters(struct archive *a);
/* A reader of tar, GNU tar and cpio with store_archive_filters(); NULL on ENOMEM. */
struct archive *store_archive_reader(void);
/* A reader of one stream (format "raw": a compressed file, a layer blob as
 * bytes) with store_archive_filters(); NULL on ENOMEM. */
struct archive *store_archive_raw_reader(void);
/* Extracts an already opened reader into dir, as store_extract_fd does. */
int store_extract_archive(struct archive *a, const char *dir, int flags, forge_error **err);
/* The rest of the current entry's data, NUL-terminated and malloc'd in ret;
 * EFBIG when it holds more than max bytes. */
int store_archive_entry_read(struct archive *a, size_t max, char **ret, size_t *ret_len,
                             forge_error **err);

/* Writes an entry's header, for the tars forge writes (layers, exports).
 * Names are bytes: in the C locale libarchive cannot translate a non-ASCII
 * name to the UTF-8 that pax wants, so it writes the bytes as they are with
 * hdrcharset=BINARY in that entry's pax header (POSIX: not to be converted)
 * and warns: exactly right for a layer, so that warning is ARCHIVE_OK here.
 * Writers run under the C locale whatever the process's is, so the bytes
 * never depend on it; ASCII names stay plain ustar or pax. */
struct archive_entry;
int store_archive_write_header(struct archive *a, struct archive_entry *ae);
/* Frees a reader (NULL is fine). */
void store_archive_cleanup(struct archive **a);
#define cleanup_archive __attribute__((cleanup(store_archive_cleanup)))

/* A Debian package (an ar archive) read member by member. */
typedef struct store_deb store_deb;
int store_deb_open(const char *path, store_deb **ret, forge_error **err);
/* Moves to the next member whose name starts with prefix ("data.tar",
 * "control.tar"), its name in ret_name: 1 when there is one, 0 when the
 * package has no more, < 0 when the package cannot be read. */
int store_deb_next(store_deb *d, const char *prefix, const char **ret_name, forge_error **err);
/* The current member as a tar reader (compressed or not), owned by d until the
 * next store_deb_next() or store_deb_free(). */
struct archive *store_deb_tar(store_deb *d, forge_error **err);
void store_deb_free(store_deb *d);
static inline void store_deb_cleanup(store_deb **d)
{
        store_deb_free(*d);
}
#define cleanup_store_deb __attribute__((cleanup(store_deb_cleanup)))
/* Extracts the package's data.tar into dir (flags as store_extract_fd). */
int store_deb_data_extract(const char *deb, const char *dir, int flags, forge_error **err);

typedef enum store_export_format {
        STORE_EXPORT_DIR,
        STORE_EXPORT_TAR,
        STORE_EXPORT_OCI,
} store_export_format;

typedef enum store_compression {
        STORE_COMPRESSION_DEFAULT = 0, /* gzip for oci */
        STORE_COMPRESSION_GZIP,
        STORE_COMPRESSION_ZSTD,
} store_compression;

/* dir/tar: the flattened rootfs with whiteouts applied. tar output is
 * deterministic. oci: an OCI image layout directory, or a tar of one when
 * path ends in ".tar". */
int store_export(store *s, const char *manifest_digest, store_export_format fmt,
                 store_compression comp, const char *path, forge_error **err);

/* Imports an OCI image layout (dir or tar) or a docker-archive tar. Tags the
 * image as tag ("NAME:TAG"), else by the layout's ref name annotation / the
 * archive's RepoTags. Returns the manifest digest. */
int store_import(store *s, const char *path, const char *tag, char ret_digest[DIGEST_STR_SIZE],
                 forge_error **err);

#define STORE_IMPORT_MAX_TAGS 16
typedef struct store_import_tag {
        char name[512], tag[512];
        char previous[DIGEST_STR_SIZE]; /* what the tag pointed to before; "" when new */
} store_import_tag;
typedef struct store_import_result {
        char digest[DIGEST_STR_SIZE]; /* the manifest */
        size_t n_tags;                /* --tag, else every RepoTag (at most 16), or the ref name */
        store_import_tag tags[STORE_IMPORT_MAX_TAGS];
} store_import_result;
/* store_import, saying which tags it set and whether each was new or moved. */
int store_import_tagged(store *s, const char *path, const char *tag, store_import_result *ret,
                        forge_error **err);

static inline void cleanup_store_fn(store **s)
{
        store_close(*s);
}
#define cleanup_store __attribute__((cleanup(cleanup_store_fn)))
static inline void cleanup_store_image_fn(store_image **i)
{
        store_image_free(*i);
}
#define cleanup_store_image __attribute__((cleanup(cleanup_store_image_fn)))

/* store_export with the OCI ref name (index.json annotation) given. */
int store_export_ref(store *s, const char *manifest_digest, const char *ref,
                     store_export_format fmt, store_compression comp, const char *path,
                     forge_error **err);
/* Applies the image's layers, in order, into dir (whiteouts applied). */
int store_flatten(store *s, const store_image *img, const char *dir, forge_error **err);
/* Writes the tree at dir as a deterministic tar (sorted, numeric owners and
 * mtimes as on disk, or, with zero_owners, all 0:0 and mtime 0: an OCI
 * layout's tar). */
int store_tar_dir(const char *dir, const char *out_path, bool zero_owners, forge_error **err);
