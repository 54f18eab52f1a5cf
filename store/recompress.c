/* SPDX-License-Identifier: MIT */
/*
 * A layer blob recompressed into a new store blob: an export's OCI layout
 * (gzip) and a push with --compression (gzip or zstd). Whatever the layer
 * was compressed with, libarchive's filters (store_archive_filters) undo it;
 * gzip is deterministic (no name, mtime 0, level 6).
 */
#include "store/store-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "common/cleanup.h"

#define BUF_SIZE (1 << 20)

typedef struct zsink {
        store_compression comp;
        z_stream z;
        ZSTD_CCtx *zc;
        store_blob_writer *w;
        unsigned char *out;
} zsink;

static int zsink_write(zsink *k, const void *buf, size_t len, bool last, forge_error **err)
{
        if (k->comp == STORE_COMPRESSION_GZIP) {
                k->z.next_in = (unsigned char *)(uintptr_t)buf;
                k->z.avail_in = (uInt)len;
                do {
                        k->z.next_out = k->out;
                        k->z.avail_out = BUF_SIZE;
                        if (deflate(&k->z, last ? Z_FINISH : Z_NO_FLUSH) == Z_STREAM_ERROR)
                                return forge_error_make(err, EIO, "gzip");
                        if (store_blob_writer_write(k->w, k->out, BUF_SIZE - k->z.avail_out, err) <
                            0)
                                return -1;
                } while (k->z.avail_out == 0);
                return 0;
        }
        ZSTD_inBuffer in = {buf, len, 0};
        for (;;) {
                ZSTD_outBuffer out = {k->out, BUF_SIZE, 0};
                size_t rem =
                    ZSTD_compressStream2(k->zc, &out, &in, last ? ZSTD_e_end : ZSTD_e_continue);
                if (ZSTD_isError(rem))
                        return forge_error_make(err, EIO, "zstd: %s", ZSTD_getErrorName(rem));
                if (store_blob_writer_write(k->w, k->out, out.pos, err) < 0)
                        return -1;
                if (last ? rem == 0 : in.pos == in.size)
                        return 0;
        }
}

int store_layer_recompress(store *st, const store_layer *l, store_compression comp,
                           store_layer *ret, forge_error **err)
{
        cleanup_close int fd = -1;
        cleanup_archive struct archive *a = store_archive_raw_reader();
        zsink k = {.comp = comp};
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = -1, ar;

        k.out = malloc(BUF_SIZE);
        if (a == NULL || k.out == NULL) {
                forge_error_make(err, ENOMEM, "recompress");
                goto out;
        }
        if (comp == STORE_COMPRESSION_GZIP) {
                if (deflateInit2(&k.z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
                        forge_error_make(err, ENOMEM, "gzip");
                        goto out;
                }
        } else if ((k.zc = ZSTD_createCCtx()) == NULL) {
                forge_error_make(err, ENOMEM, "zstd");
                goto out;
        }
        if (store_blob_open(st, l->digest, &fd, err) < 0 ||
            store_blob_writer_new(st, &k.w, err) < 0)
                goto out;
        if (archive_read_open_fd(a, fd, BUF_SIZE) != ARCHIVE_OK ||
            archive_read_next_header(a, &(struct archive_entry *){NULL}) != ARCHIVE_OK) {
                forge_error_make(err, EIO, "read layer %s: %s", l->digest, archive_error_string(a));
                goto out;
        }
        for (;;) {
                ar = archive_read_data_block(a, &buf, &len, &off);
                if (ar != ARCHIVE_OK && ar != ARCHIVE_EOF) {
                        forge_error_make(err, EIO, "read layer %s: %s", l->digest,
                                         archive_error_string(a));
                        goto out;
                }
                if (zsink_write(&k, ar == ARCHIVE_EOF ? NULL : buf, ar == ARCHIVE_EOF ? 0 : len,
                                ar == ARCHIVE_EOF, err) < 0)
                        goto out;
                if (ar == ARCHIVE_EOF)
                        break;
        }
        *ret = *l;
        snprintf(ret->media_type, sizeof(ret->media_type), "%s",
                 comp == STORE_COMPRESSION_GZIP ? STORE_MEDIA_LAYER_GZIP : STORE_MEDIA_LAYER_ZSTD);
        r = store_blob_writer_commit(k.w, NULL, ret->digest, &ret->size, err);
        k.w = NULL;
out:
        store_blob_writer_abort(k.w);
        if (comp == STORE_COMPRESSION_GZIP)
                deflateEnd(&k.z);
        ZSTD_freeCCtx(k.zc);
        free(k.out);
        return r;
}
