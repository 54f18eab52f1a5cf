/* SPDX-License-Identifier: MIT */
#pragma once

#include <archive.h>

#include "store/store.h"

struct store {
        char *root;    /* absolute */
        int root_fd;   /* O_PATH|O_DIRECTORY */
        int lock_fd;   /* the store's lock file, -1 until locked */
        int lock_mode; /* 0, LOCK_SH or LOCK_EX */
};

/* "blobs/sha256/HEX" for a valid digest, in buf (at least 96 bytes). */
void store_blob_relpath(const char *digest, char *buf, size_t len);
/* Creates a temp file in tmp/ (O_RDWR|O_CLOEXEC); its relative path in ret_rel (malloc'd). */
int store_tmpfile(store *s, int *ret_fd, char **ret_rel, forge_error **err);
/* Renames tmp (relative to root) to dest (relative to root) and fsyncs the dest dir. */
int store_commit_file(store *s, const char *tmp_rel, const char *dest_rel, forge_error **err);

/* What a reader of store_archive_open_read() reads. */
enum {
        STORE_AR_FILTERS = 1 << 0, /* store_archive_filters() */
        STORE_AR_TAR = 1 << 1,     /* tar and GNU tar */
        STORE_AR_CPIO = 1 << 2,
        STORE_AR_RAW = 1 << 3, /* the (decompressed) bytes as one entry */
};
/* A reader of formats (STORE_AR_*) over read(ud), opened; NULL with ENOMEM
 * or EBADMSG (libarchive's words) after what when it cannot be. */
struct archive *store_archive_open_read(unsigned formats, void *ud, archive_read_callback *read,
                                        const char *what, forge_error **err);

/* A layer blob read from fd once (store/layer-stream.c): hashed as stored
 * and as decompressed (by libarchive's filters, as unpack reads it); every
 * raw byte also goes to w when w is not NULL. */
typedef struct layer_stream layer_stream;
int layer_stream_open(int fd, store_blob_writer *w, layer_stream **ret, forge_error **err);
/* A tar/cpio reader over the decompressed stream (owned by the stream). */
struct archive *layer_stream_tar(layer_stream *ls, forge_error **err);
/* Reads what is left of both streams and returns their digests and sizes. */
int layer_stream_finish(layer_stream *ls, char ret_digest[DIGEST_STR_SIZE],
                        char ret_diff[DIGEST_STR_SIZE], uint64_t *ret_size, uint64_t *ret_usize,
                        forge_error **err);
void layer_stream_free(layer_stream *ls);

/* Recompresses the layer blob l (any compression libarchive's filters read)
 * as comp (gzip: deterministic, no name, mtime 0) into a new blob; ret is l
 * with the new digest, size and media type (store/recompress.c). */
int store_layer_recompress(store *s, const store_layer *l, store_compression comp, store_layer *ret,
                           forge_error **err);

/* The digest of an unpacked tree (store/tree-digest.c): every entry's path,
 * type, mode, owner, size and content hash, symlink target, device number
 * and the xattrs forge sets, in sorted order; mtimes are not included. */
int store_tree_digest(int dirfd, char ret[DIGEST_STR_SIZE], forge_error **err);

/* Recomputes layers/HEX's tree digest against its kv record; < 0 with a
 * message in problem when they differ or there is no record. */
int store_unpacked_verify(store *s, const char *hex, char *problem, size_t len);
