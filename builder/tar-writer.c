/* SPDX-License-Identifier: MIT */
/*
 * Entries -> deterministic tar -> (sha256 = diff_id) -> zstd -> store blob
 * (sha256 = digest), in one pass. pax (restricted) format: ustar headers,
 * pax extended headers only where ustar can't say it (long names, big ids,
 * xattrs); no atime/ctime, no user or group names, nanoseconds zero.
 */
#include "builder/builder-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "common/cleanup.h"

#define ZSTD_LEVEL 3
#define COPY_BUF (1 << 20)

/*
 * Compression runs on its own thread: the tar side (reading files, hashing
 * the diff_id) and the zstd side (compressing, hashing and writing the blob)
 * each get a core. The tar stream is handed over in 1 MiB chunks through a
 * small ring; zstd's output does not depend on how its input is chunked.
 */
#define RING 4
#define CHUNK (1 << 20)

typedef struct sink {
        store_blob_writer *w;
        hash_sha256 *diff;
        ZSTD_CCtx *z;
        void *zout;
        size_t zout_size;
        uint64_t usize;
        forge_error *err; /* the compressor's error, read after join */

        pthread_t thread;
        bool started;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        char *bufs[RING];
        size_t lens[RING];
        unsigned head, count; /* filled chunks waiting: head .. head+count */
        bool closing, failed;
        char *fill; /* the chunk being filled by the tar side */
        size_t fill_len;
} sink;

static int zpush(sink *k, const void *buf, size_t len, ZSTD_EndDirective mode)
{
        ZSTD_inBuffer in = {buf, len, 0};

        for (;;) {
                ZSTD_outBuffer out = {k->zout, k->zout_size, 0};
                size_t rem = ZSTD_compressStream2(k->z, &out, &in, mode);
                if (ZSTD_isError(rem))
                        return forge_error_make(&k->err, EIO, "zstd: %s", ZSTD_getErrorName(rem));
                if (out.pos > 0 && store_blob_writer_write(k->w, k->zout, out.pos, &k->err) < 0)
                        return -1;
                if (mode == ZSTD_e_end ? rem == 0 : in.pos == in.size)
                        return 0;
        }
}

static void *compressor(void *ud)
{
        sink *k = ud;

        pthread_mutex_lock(&k->mu);
        for (;;) {
                char *buf;
                size_t len;
                while (k->count == 0 && !k->closing)
                        pthread_cond_wait(&k->cv, &k->mu);
                if (k->count == 0)
                        break;
                buf = k->bufs[k->head];
                len = k->lens[k->head];
                pthread_mutex_unlock(&k->mu);
                int r = zpush(k, buf, len, ZSTD_e_continue);
                pthread_mutex_lock(&k->mu);
                k->bufs[k->head] = buf; /* stays owned by the ring slot */
                k->head = (k->head + 1) % RING;
                k->count--;
                pthread_cond_broadcast(&k->cv);
                if (r < 0) {
                        k->failed = true;
                        break;
                }
        }
        if (!k->failed && zpush(k, NULL, 0, ZSTD_e_end) < 0)
                k->failed = true;
        pthread_cond_broadcast(&k->cv);
        pthread_mutex_unlock(&k->mu);
        return NULL;
}

/* Hands the filled chunk to the compressor and takes a free one. */
static int hand_over(sink *k)
{
        unsigned slot;

        pthread_mutex_lock(&k->mu);
        while (k->count == RING - 1 && !k->failed)
                pthread_cond_wait(&k->cv, &k->mu);
        if (k->failed) {
                pthread_mutex_unlock(&k->mu);
                return -1;
        }
        slot = (k->head + k->count) % RING;
        {
                char *free_buf = k->bufs[slot];
                k->bufs[slot] = k->fill;
                k->lens[slot] = k->fill_len;
                k->fill = free_buf;
                k->fill_len = 0;
        }
        k->count++;
        pthread_cond_broadcast(&k->cv);
        pthread_mutex_unlock(&k->mu);
        return 0;
}

static la_ssize_t sink_write(struct archive *a, void *ud, const void *buf, size_t len)
{
        sink *k = ud;
        const char *p = buf;
        size_t left = len;

        hash_sha256_update(k->diff, buf, len);
        k->usize += len;
        while (left > 0) {
                size_t n = CHUNK - k->fill_len < left ? CHUNK - k->fill_len : left;
                memcpy(k->fill + k->fill_len, p, n);
                k->fill_len += n;
                p += n;
                left -= n;
                if (k->fill_len == CHUNK && hand_over(k) < 0) {
                        archive_set_error(a, EIO, "compression failed");
                        return -1;
                }
        }
        return (la_ssize_t)len;
}

/* Flushes the last chunk, waits for the compressor; 0 when all went well. */
static int sink_close(sink *k)
{
        int r = 0;

        if (!k->started)
                return 0;
        if (k->fill_len > 0 && hand_over(k) < 0)
                r = -1;
        pthread_mutex_lock(&k->mu);
        k->closing = true;
        pthread_cond_broadcast(&k->cv);
        pthread_mutex_unlock(&k->mu);
        pthread_join(k->thread, NULL);
        k->started = false;
        return r < 0 || k->failed ? -1 : 0;
}

static int sink_start(sink *k, forge_error **err)
{
        k->fill = malloc(CHUNK);
        for (int i = 0; i < RING; i++)
                k->bufs[i] = malloc(CHUNK);
        for (int i = 0; i < RING; i++)
                if (k->bufs[i] == NULL || k->fill == NULL)
                        return forge_error_make(err, ENOMEM, "write layer");
        pthread_mutex_init(&k->mu, NULL);
        pthread_cond_init(&k->cv, NULL);
        if (pthread_create(&k->thread, NULL, compressor, k) != 0)
                return forge_error_make(err, EAGAIN, "write layer: start the compressor");
        k->started = true;
        return 0;
}

static void sink_free(sink *k)
{
        sink_close(k);
        free(k->fill);
        for (int i = 0; i < RING; i++)
                free(k->bufs[i]);
}

static int copy_content(struct archive *a, const bentries *e, const bentry *en, char *buf,
                        forge_error **err)
{
        cleanup_close int fd = -1;
        uint64_t left = en->size;
        off_t off = 0;
        int src;

        if (en->host_path != NULL) {
                struct stat st;
                /* the file the walk saw, and only a regular file: a FIFO or
                 * device put in its place (a run step's upper dir is the
                 * image's) neither blocks nor is read */
                fd = open(en->host_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
                if (fd < 0)
                        return forge_error_make(err, errno, "read '%s'", en->host_path);
                if (fstat(fd, &st) < 0)
                        return forge_error_make(err, errno, "read '%s'", en->host_path);
                if (!S_ISREG(st.st_mode) ||
                    (en->host_ino != 0 && (st.st_dev != en->host_dev || st.st_ino != en->host_ino)))
                        return forge_error_make(err, EAGAIN,
                                                "'%s' was replaced while the layer was written",
                                                en->host_path);
                src = fd;
        } else {
                src = e->spool_fd;
                off = en->spool_off;
        }
        while (left > 0) {
                size_t want = left < COPY_BUF ? (size_t)left : COPY_BUF;
                ssize_t n = pread(src, buf, want, off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return forge_error_make(err, errno, "read '%s'", en->path);
                if (n == 0)
                        return forge_error_make(err, EIO, "'%s' changed size while being read",
                                                en->host_path ? en->host_path : en->path);
                if (archive_write_data(a, buf, (size_t)n) != n)
                        return forge_error_make(err, EIO, "write layer: %s",
                                                archive_error_string(a));
                left -= (uint64_t)n;
                off += n;
        }
        return 0;
}

static int write_entry(struct archive *a, struct archive_entry *ae, const bentries *e,
                       const bentry *en, char *buf, forge_error **err)
{
        archive_entry_clear(ae);
        if (en->type == S_IFDIR) {
                cleanup_free char *p = NULL;
                if (asprintf(&p, "%s/", en->path) < 0)
                        return forge_error_make(err, ENOMEM, "layer");
                archive_entry_copy_pathname(ae, p);
        } else {
                archive_entry_copy_pathname(ae, en->path);
        }
        archive_entry_set_mode(ae, en->type | (en->perm & 07777));
        archive_entry_set_uid(ae, en->uid);
        archive_entry_set_gid(ae, en->gid);
        archive_entry_set_mtime(ae, en->mtime, 0);
        if (en->hardlink) {
                archive_entry_set_filetype(ae, AE_IFREG);
                archive_entry_copy_hardlink(ae, en->link);
                archive_entry_set_size(ae, 0);
        } else if (en->type == S_IFLNK) {
                archive_entry_copy_symlink(ae, en->link);
        } else if (en->type == S_IFCHR || en->type == S_IFBLK) {
                archive_entry_set_rdev(ae, en->rdev);
        } else if (en->type == S_IFREG) {
                archive_entry_set_size(ae, (la_int64_t)en->size);
        }
        for (size_t i = 0; i < en->n_xattrs; i++)
                archive_entry_xattr_add_entry(ae, en->xattr_names[i], en->xattr_values[i],
                                              en->xattr_sizes[i]);
        if (store_archive_write_header(a, ae) != ARCHIVE_OK)
                return forge_error_make(err, EIO, "write layer entry '%s': %s", en->path,
                                        archive_error_string(a));
        if (en->type == S_IFREG && !en->hardlink && en->size > 0)
                return copy_content(a, e, en, buf, err);
        return 0;
}

int btar_write(store *s, const bentries *e, store_layer *ret, forge_error **err)
{
        sink k = {0};
        struct archive *a = NULL;
        struct archive_entry *ae = NULL;
        cleanup_free char *buf = malloc(COPY_BUF);
        locale_t cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0), old_loc = (locale_t)0;
        int r = -1;

        if (cloc == (locale_t)0)
                return forge_error_make(err, errno, "write layer: the C locale");
        old_loc = uselocale(cloc); /* see store_archive_write_header */
        k.diff = hash_sha256_new();
        k.z = ZSTD_createCCtx();
        k.zout_size = ZSTD_CStreamOutSize();
        k.zout = malloc(k.zout_size);
        a = archive_write_new();
        ae = archive_entry_new();
        if (buf == NULL || k.diff == NULL || k.z == NULL || k.zout == NULL || a == NULL ||
            ae == NULL) {
                forge_error_make(err, ENOMEM, "write layer");
                goto out;
        }
        ZSTD_CCtx_setParameter(k.z, ZSTD_c_compressionLevel, ZSTD_LEVEL);
        ZSTD_CCtx_setParameter(k.z, ZSTD_c_checksumFlag, 1);
        if (store_blob_writer_new(s, &k.w, err) < 0 || sink_start(&k, err) < 0)
                goto out;
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_set_bytes_per_block(a, 10240) != ARCHIVE_OK ||
            archive_write_open2(a, &k, NULL, sink_write, NULL, NULL) != ARCHIVE_OK) {
                forge_error_make(err, EIO, "write layer: %s", archive_error_string(a));
                goto out;
        }
        for (size_t i = 0; i < e->n; i++) {
                if (write_entry(a, ae, e, &e->v[i], buf, err) < 0) {
                        sink_close(&k);
                        if (k.err) {
                                forge_error_release(err);
                                *err = take_ptr(k.err);
                        }
                        goto out;
                }
        }
        if (archive_write_close(a) != ARCHIVE_OK || sink_close(&k) < 0) {
                sink_close(&k);
                if (k.err)
                        *err = take_ptr(k.err);
                else
                        forge_error_make(err, EIO, "write layer: %s", archive_error_string(a));
                goto out;
        }
        hash_sha256_final(k.diff, ret->diff_id);
        ret->usize = k.usize;
        snprintf(ret->media_type, sizeof(ret->media_type), "%s", STORE_MEDIA_LAYER_ZSTD);
        r = store_blob_writer_commit(take_ptr(k.w), NULL, ret->digest, &ret->size, err);
out:
        if (a)
                archive_write_free(a); /* may still flush into the sink */
        sink_free(&k);
        store_blob_writer_abort(k.w);
        forge_error_release(&k.err);
        archive_entry_free(ae);
        hash_sha256_free(k.diff);
        ZSTD_freeCCtx(k.z);
        free(k.zout);
        uselocale(old_loc);
        freelocale(cloc);
        return r;
}
