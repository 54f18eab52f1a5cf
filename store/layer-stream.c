/* SPDX-License-Identifier: MIT */
/*
 * A layer blob read once, hashed twice: the bytes as stored (its digest)
 * and the stream libarchive decompresses them to (its diff_id). Import
 * checks a claimed diff_id with it before anything is named by it; unpack
 * extracts through it, so an unpacked layer's name is the hash of exactly
 * what was extracted.
 */
#include "store/store-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"

#define BUF_SIZE (1 << 20)

struct layer_stream {
        int fd;
        store_blob_writer *w; /* not owned; may be NULL */
        hash_sha256 *raw_h, *plain_h;
        uint64_t raw_n, plain_n;
        struct archive *outer; /* raw format over the decompressing filters */
        struct archive *inner; /* tar/cpio over the decompressed stream; lazily */
        char *raw_buf, *plain_buf;
        bool outer_eof;
        forge_error *err; /* from a callback */
};

static la_ssize_t raw_read(struct archive *a, void *ud, const void **out)
{
        layer_stream *ls = ud;
        ssize_t n;

        do
                n = read(ls->fd, ls->raw_buf, BUF_SIZE);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                archive_set_error(a, errno, "read the layer");
                return -1;
        }
        hash_sha256_update(ls->raw_h, ls->raw_buf, (size_t)n);
        ls->raw_n += (uint64_t)n;
        if (ls->w != NULL && n > 0 &&
            store_blob_writer_write(ls->w, ls->raw_buf, (size_t)n, &ls->err) < 0) {
                archive_set_error(a, EIO, "write the layer");
                return -1;
        }
        *out = ls->raw_buf;
        return n;
}

/* The next decompressed chunk, hashed; 0 at the end. */
static la_ssize_t plain_next(layer_stream *ls, const void **out)
{
        la_ssize_t r;

        if (ls->outer_eof)
                return 0;
        r = archive_read_data(ls->outer, ls->plain_buf, BUF_SIZE);
        if (r < 0)
                return r;
        if (r == 0)
                ls->outer_eof = true;
        hash_sha256_update(ls->plain_h, ls->plain_buf, (size_t)r);
        ls->plain_n += (uint64_t)r;
        *out = ls->plain_buf;
        return r;
}

static la_ssize_t plain_read(struct archive *a, void *ud, const void **out)
{
        layer_stream *ls = ud;
        la_ssize_t r = plain_next(ls, out);

        if (r < 0)
                archive_set_error(a, EIO, "decompress: %s", archive_error_string(ls->outer));
        return r;
}

void layer_stream_free(layer_stream *ls)
{
        if (ls == NULL)
                return;
        if (ls->inner)
                archive_read_free(ls->inner);
        if (ls->outer)
                archive_read_free(ls->outer);
        hash_sha256_free(ls->raw_h);
        hash_sha256_free(ls->plain_h);
        free(ls->raw_buf);
        free(ls->plain_buf);
        forge_error_release(&ls->err);
        free(ls);
}

int layer_stream_open(int fd, store_blob_writer *w, layer_stream **ret, forge_error **err)
{
        layer_stream *ls = calloc(1, sizeof(*ls));
        struct archive_entry *ae;

        if (ls == NULL)
                return forge_error_make(err, ENOMEM, "layer");
        ls->fd = fd;
        ls->w = w;
        ls->raw_h = hash_sha256_new();
        ls->plain_h = hash_sha256_new();
        ls->raw_buf = malloc(BUF_SIZE);
        ls->plain_buf = malloc(BUF_SIZE);
        ls->outer = store_archive_raw_reader();
        if (!ls->raw_h || !ls->plain_h || !ls->raw_buf || !ls->plain_buf || !ls->outer) {
                layer_stream_free(ls);
                return forge_error_make(err, ENOMEM, "layer");
        }
        if (archive_read_open(ls->outer, ls, NULL, raw_read, NULL) != ARCHIVE_OK ||
            archive_read_next_header(ls->outer, &ae) != ARCHIVE_OK) {
                if (ls->err) {
                        *err = ls->err;
                        ls->err = NULL;
                } else {
                        forge_error_make(err, EIO, "read the layer: %s",
                                         archive_error_string(ls->outer));
                }
                layer_stream_free(ls);
                return -1;
        }
        *ret = ls;
        return 0;
}

struct archive *layer_stream_tar(layer_stream *ls, forge_error **err)
{
        /* no filters: what the layer decompresses to is read as it is */
        if (ls->inner == NULL)
                ls->inner = store_archive_open_read(STORE_AR_TAR | STORE_AR_CPIO, ls, plain_read,
                                                    "read the layer", err);
        return ls->inner;
}

int layer_stream_finish(layer_stream *ls, char ret_digest[DIGEST_STR_SIZE],
                        char ret_diff[DIGEST_STR_SIZE], uint64_t *ret_size, uint64_t *ret_usize,
                        forge_error **err)
{
        const void *p;
        la_ssize_t r;

        /* what the tar reader left (end blocks, padding), then what the
         * decompressor left (trailing bytes): all of it is hashed */
        while ((r = plain_next(ls, &p)) > 0)
                ;
        if (r < 0)
                return forge_error_make(err, EIO, "decompress the layer: %s",
                                        archive_error_string(ls->outer));
        for (;;) {
                r = raw_read(ls->outer, ls, &p);
                if (r < 0) {
                        if (ls->err) {
                                *err = ls->err;
                                ls->err = NULL;
                                return -1;
                        }
                        return forge_error_make(err, errno, "read the layer");
                }
                if (r == 0)
                        break;
        }
        hash_sha256_final(ls->raw_h, ret_digest);
        hash_sha256_final(ls->plain_h, ret_diff);
        if (ret_size)
                *ret_size = ls->raw_n;
        if (ret_usize)
                *ret_usize = ls->plain_n;
        return 0;
}

int store_layer_put_fd(store *s, int fd, const char *digest, const char *diff_id, store_layer *ret,
                       forge_error **err)
{
        store_blob_writer *w = NULL;
        layer_stream *ls = NULL;
        char got_digest[DIGEST_STR_SIZE], got_diff[DIGEST_STR_SIZE];
        uint64_t size, usize;

        if (store_blob_writer_new(s, &w, err) < 0)
                return -1;
        if (layer_stream_open(fd, w, &ls, err) < 0 ||
            layer_stream_finish(ls, got_digest, got_diff, &size, &usize, err) < 0) {
                /* a damaged blob fails to decompress: say that it is damaged */
                forge_error *e = NULL;
                if (digest != NULL && lseek(fd, 0, SEEK_SET) == 0 &&
                    hash_sha256_fd(fd, got_digest, &e) == 0 && strcmp(got_digest, digest) != 0) {
                        forge_error_release(err);
                        forge_error_make(err, EBADMSG, "content is %s, expected %s", got_digest,
                                         digest);
                }
                forge_error_release(&e);
                goto fail;
        }
        if (digest != NULL && strcmp(got_digest, digest) != 0) {
                forge_error_make(err, EBADMSG, "content is %s, expected %s", got_digest, digest);
                goto fail;
        }
        if (strcmp(got_diff, diff_id) != 0) {
                forge_error_make(err, 0,
                                 "the layer's uncompressed content is %s but the image claims "
                                 "diff_id %s",
                                 got_diff, diff_id);
                (*err)->errnum = EBADMSG;
                goto fail;
        }
        layer_stream_free(ls);
        if (store_blob_writer_commit(w, got_digest, ret->digest, &ret->size, err) < 0)
                return -1;
        memcpy(ret->diff_id, got_diff, DIGEST_STR_SIZE);
        ret->usize = usize;
        (void)size;
        return 0;
fail:
        layer_stream_free(ls);
        store_blob_writer_abort(w);
        return -1;
}
