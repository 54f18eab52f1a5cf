/* SPDX-License-Identifier: MIT */
/*
 * Layer cache keys. A key is the sha256 of a canonical text: forge's layer
 * format version, the parent layer's key, source_date_epoch and the
 * layer's definition including the content hashes of its inputs. The
 * label (name:) is not part of it.
 *
 * File hashes are memoised per build context by (dev, inode, size, mtime,
 * ctime, in ns) in the store (kv "fmemo"), and a layer's cache key is kept
 * with a fingerprint of the same stat data of all its inputs (bstamp_*), so
 * a no-change rebuild only stats its inputs.
 *
 * Why stat data is enough: ctime is set by the kernel to the current time on
 * every change of a file (content, size, mode, owner, xattrs, and the mtime
 * itself), and no user can set it. An edit that keeps the size and puts the
 * mtime back (touch -d) still moves ctime.
 *
 * The racy case (as git's "racily clean" index entries): file timestamps come
 * from a clock that ticks in steps (the kernel's coarse clock, or the file
 * system's granularity: 1-2 s on some), so a file changed in the same tick
 * as it was stat'ed can keep its ctime. A stat is therefore only trusted
 * when its ctime is at least BMEMO_RACY_NS older than the start of the build
 * that took it: a racy file's hash is not memoised and a layer with a racy
 * input records no fingerprint, so the next build hashes those files again.
 * This assumes the file system's clock (a file server's) is within that
 * margin of ours.
 */
#include "builder/builder-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"

void bmemo_init(store *s, const spec *sp, bmemo *m)
{
        char id[DIGEST_STR_SIZE];

        struct timespec now;

        memset(m, 0, sizeof(*m));
        m->s = s;
        clock_gettime(CLOCK_REALTIME, &now);
        m->trusted_before = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec - BMEMO_RACY_NS;
        hash_sha256_buf(sp->context_dir, strlen(sp->context_dir), id);
        memcpy(m->key, digest_hex(id), DIGEST_HEX_LEN + 1);
}

static void bmemo_ensure(bmemo *m)
{
        cleanup_free char *val = NULL;
        forge_error *e = NULL;

        if (m->map != NULL || m->s == NULL)
                return;
        if (store_kv_get(m->s, "fmemo", m->key, &val, &e) > 0)
                m->map = json_loads(val, 0, NULL);
        forge_error_release(&e);
        if (!json_is_object(m->map)) {
                json_decref(m->map);
                m->map = json_object();
        }
}

int bmemo_save(store *s, bmemo *m, forge_error **err)
{
        cleanup_free char *txt = NULL;

        if (!m->dirty || m->map == NULL)
                return 0;
        txt = json_dumps(m->map, JSON_COMPACT | JSON_SORT_KEYS);
        if (txt == NULL)
                return forge_error_make(err, ENOMEM, "memo");
        return store_kv_put(s, "fmemo", m->key, txt, err);
}

bool bmemo_trusted(const bmemo *m, const struct timespec *ctim)
{
        return (int64_t)ctim->tv_sec * 1000000000LL + ctim->tv_nsec < m->trusted_before;
}

void bmemo_release(bmemo *m)
{
        json_decref(m->map);
        m->map = NULL;
}

int bhash_file(bmemo *m, const char *path, char out[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        char stamp[160];
        const char *old;

        if (fd < 0 || fstat(fd, &st) < 0)
                return forge_error_make(err, errno, "read '%s'", path);
        snprintf(stamp, sizeof(stamp),
                 "%llu:%llu:%lld:%lld.%09ld:%lld.%09ld:", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                 st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
        if (m)
                bmemo_ensure(m);
        old = m && m->map ? json_string_value(json_object_get(m->map, path)) : NULL;
        if (old != NULL && strncmp(old, stamp, strlen(stamp)) == 0 &&
            digest_valid(old + strlen(stamp))) {
                memcpy(out, old + strlen(stamp), DIGEST_STR_SIZE);
                return 0;
        }
        if (hash_sha256_fd(fd, out, err) < 0)
                return forge_error_prefix(err, "hash '%s'", path);
        if (m && m->map && bmemo_trusted(m, &st.st_ctim)) {
                char val[sizeof(stamp) + DIGEST_STR_SIZE];
                snprintf(val, sizeof(val), "%s%s", stamp, out);
                json_object_set_new(m->map, path, json_string(val));
                m->dirty = true;
        }
        return 0;
}

typedef struct text {
        char *buf;
        size_t len, cap;
} text;

static int addf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int addf(text *t, const char *fmt, ...)
{
        va_list ap;
        int n;

        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt,
                              ap);
                va_end(ap);
                if (n < 0)
                        return -1;
                if (t->buf && t->len + (size_t)n < t->cap) {
                        t->len += (size_t)n;
                        return 0;
                }
                size_t ncap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
                char *nb = realloc(t->buf, ncap);
                if (nb == NULL)
                        return -1;
                t->buf = nb;
                t->cap = ncap;
        }
}

/* A C-escaped rendering so names with newlines can't forge lines. */
static int add_escaped(text *t, const char *s)
{
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c < 0x20 || c == '\\' || c >= 0x7f) {
                        if (addf(t, "\\x%02x", c) < 0)
                                return -1;
                } else if (addf(t, "%c", c) < 0) {
                        return -1;
                }
        }
        return 0;
}

static const char *kind_name(spec_layer_kind k)
{
        static const char *names[] = {"deb", "archive", "files", "run", "packages"};
        return names[k];
}

/* deb and archive layers: the input file's hash and where it goes. */
static int key_input(const bkey_input *in, text *t, json_t *inputs, bkey *ret, forge_error **err)
{
        const spec_layer *l = in->layer;
        char h[DIGEST_STR_SIZE];

        if (bhash_file(in->memo, l->src_path, h, err) < 0)
                return -1;
        memcpy(ret->input_sha256, h, DIGEST_STR_SIZE);
        if (addf(t, "input %s\ndest %s\n", h, l->dest ? l->dest : "/") < 0 ||
            json_object_set_new(inputs, l->src, json_string(h)) < 0)
                return forge_error_make(err, ENOMEM, "cache key");
        return 0;
}

/* One line of a files layer: name, mode, owner, xattrs, then what it holds. */
static int key_entry(const bkey_input *in, const bentry *en, text *t, json_t *inputs,
                     forge_error **err)
{
        cleanup_free char *v = NULL;
        char h[DIGEST_STR_SIZE];

        if (addf(t, "entry ") < 0 || add_escaped(t, en->path) < 0 ||
            addf(t, " %o %o %u %u", (unsigned)(en->type >> 12), (unsigned)en->perm,
                 (unsigned)en->uid, (unsigned)en->gid) < 0)
                goto oom;
        for (size_t x = 0; x < en->n_xattrs; x++) {
                char xh[DIGEST_STR_SIZE];
                hash_sha256_buf(en->xattr_values[x], en->xattr_sizes[x], xh);
                if (addf(t, " xattr %s=%s", en->xattr_names[x], xh) < 0)
                        goto oom;
        }
        if (en->hardlink) {
                if (addf(t, " => ") < 0 || add_escaped(t, en->link) < 0 || addf(t, "\n") < 0 ||
                    asprintf(&v, "=> /%s", en->link) < 0)
                        goto oom;
                json_object_set_new(inputs, en->path, json_string(v));
        } else if (en->type == S_IFREG && en->host_path) {
                if (bhash_file(in->memo, en->host_path, h, err) < 0)
                        return -1;
                if (addf(t, " %s\n", h) < 0)
                        goto oom;
                json_object_set_new(inputs, en->path, json_string(h));
        } else if (en->type == S_IFLNK) {
                if (addf(t, " -> ") < 0 || add_escaped(t, en->link) < 0 || addf(t, "\n") < 0)
                        goto oom;
                json_object_set_new(inputs, en->path, json_string(en->link));
        } else if (addf(t, "\n") < 0) {
                goto oom;
        }
        return 0;
oom:
        return forge_error_make(err, ENOMEM, "cache key");
}

static int key_run(const spec_layer *l, text *t)
{
        if (addf(t, "run ") < 0 || add_escaped(t, l->run) < 0 ||
            addf(t, "\nnetwork %s\n",
                 l->network_host   ? "host"
                 : l->network_user ? "user"
                                   : "none") < 0)
                return -1;
        for (size_t i = 0; i < l->env.n; i++)
                if (addf(t, "env ") < 0 || add_escaped(t, l->env.items[i].key) < 0 ||
                    addf(t, "=") < 0 || add_escaped(t, l->env.items[i].value) < 0 ||
                    addf(t, "\n") < 0)
                        return -1;
        return 0;
}

/* The layer's definition (everything but the parent) into t. */
static int key_def(const bkey_input *in, text *t, json_t *inputs, bkey *ret, forge_error **err)
{
        const spec_layer *l = in->layer;
        int r = 0;

        if (addf(t, "forge-layer %d\nsde %llu\nkind %s\n", BUILDER_LAYER_FORMAT,
                 (unsigned long long)in->sp->source_date_epoch, kind_name(l->kind)) < 0)
                return forge_error_make(err, ENOMEM, "cache key");
        switch (l->kind) {
        case SPEC_LAYER_DEB:
        case SPEC_LAYER_ARCHIVE:
                return key_input(in, t, inputs, ret, err);
        case SPEC_LAYER_FILES:
                for (size_t i = 0; i < in->entries->n && r == 0; i++)
                        r = key_entry(in, &in->entries->v[i], t, inputs, err);
                return r;
        case SPEC_LAYER_PACKAGES:
                r = addf(t, "%s", in->pkg_def ? in->pkg_def : "");
                break;
        case SPEC_LAYER_RUN:
                r = key_run(l, t);
                break;
        }
        return r < 0 ? forge_error_make(err, ENOMEM, "cache key") : 0;
}

int bkey_compute(const bkey_input *in, bkey *ret, forge_error **err)
{
        text t = {0};
        cleanup_json json_t *inputs = json_object();
        int r = -1;

        if (inputs == NULL)
                return forge_error_make(err, ENOMEM, "cache key");
        if (key_def(in, &t, inputs, ret, err) < 0)
                goto out;
        ret->def = t.buf ? strdup(t.buf) : strdup("");
        if (ret->def == NULL)
                goto oom;
        hash_sha256_buf(ret->def, strlen(ret->def), ret->def_hash);
        /* The parent goes in last so that `def` compares across parents. */
        if (addf(&t, "parent %s\n", in->parent_key ? in->parent_key : "scratch") < 0)
                goto oom;
        hash_sha256_buf(t.buf, t.len, ret->key);
        ret->inputs = take_ptr(inputs);
        r = 0;
        goto out;
oom:
        r = forge_error_make(err, ENOMEM, "cache key");
out:
        free(t.buf);
        return r;
}

void bkey_release(bkey *k)
{
        free(k->def);
        json_decref(k->inputs);
        k->def = NULL;
        k->inputs = NULL;
}

static uint64_t ns_of(const struct timespec *ts)
{
        return (uint64_t)ts->tv_sec * 1000000000ULL + (uint64_t)ts->tv_nsec;
}

/* Stamp records are gathered into a buffer and hashed a block at a time. */
typedef struct stamp_buf {
        hash_sha256 *h;
        size_t len;
        unsigned char b[16384];
} stamp_buf;

static void stamp_add(stamp_buf *sb, const void *p, size_t n)
{
        if (sb->len + n > sizeof(sb->b)) {
                hash_sha256_update(sb->h, sb->b, sb->len);
                sb->len = 0;
        }
        if (n > sizeof(sb->b)) {
                hash_sha256_update(sb->h, p, n);
                return;
        }
        memcpy(sb->b + sb->len, p, n);
        sb->len += n;
}

/* A fixed-width record (no formatting on the hot path) that says what
 * follows it, then the names: the stream decodes one way only. */
static void stamp_entry(stamp_buf *sb, const bentry *en)
{
        struct __attribute__((packed)) {
                uint32_t mode, uid, gid, flags, n_xattrs;
                uint64_t dev, ino, size, mtime, ctime;
        } rec = {(uint32_t)(en->type | en->perm),
                 (uint32_t)en->uid,
                 (uint32_t)en->gid,
                 (en->link ? 1u : 0u) | (en->hardlink ? 2u : 0u),
                 (uint32_t)en->n_xattrs,
                 (uint64_t)en->host_dev,
                 (uint64_t)en->host_ino,
                 en->size,
                 ns_of(&en->host_mtim),
                 ns_of(&en->host_ctim)};

        stamp_add(sb, &rec, sizeof(rec));
        stamp_add(sb, en->path, strlen(en->path) + 1);
        if (en->link)
                stamp_add(sb, en->link, strlen(en->link) + 1);
        for (size_t x = 0; x < en->n_xattrs; x++) {
                uint64_t n = en->xattr_sizes[x];
                stamp_add(sb, en->xattr_names[x], strlen(en->xattr_names[x]) + 1);
                stamp_add(sb, &n, sizeof(n));
                stamp_add(sb, en->xattr_values[x], en->xattr_sizes[x]);
        }
}

bool bstamp_files(const bmemo *m, const bentries *e, const char *parent_key, uint64_t sde,
                  char out[DIGEST_STR_SIZE])
{
        cleanup_free stamp_buf *sb = NULL;
        char buf[256];

        out[0] = '\0';
        for (size_t i = 0; i < e->n; i++)
                if (e->v[i].host_path != NULL && !bmemo_trusted(m, &e->v[i].host_ctim))
                        return false;
        sb = malloc(sizeof(*sb));
        if (sb == NULL || (sb->h = hash_sha256_new()) == NULL)
                return false;
        sb->len = 0;
        snprintf(buf, sizeof(buf), "stamp %d %llu %s\n", BUILDER_LAYER_FORMAT,
                 (unsigned long long)sde, parent_key ? parent_key : "scratch");
        stamp_add(sb, buf, strlen(buf));
        for (size_t i = 0; i < e->n; i++)
                stamp_entry(sb, &e->v[i]);
        hash_sha256_update(sb->h, sb->b, sb->len);
        hash_sha256_final(sb->h, out);
        hash_sha256_free(sb->h);
        return true;
}

bool bstamp_input(const bmemo *m, const spec_layer *l, const char *parent_key, uint64_t sde,
                  char out[DIGEST_STR_SIZE])
{
        struct stat st;
        char buf[8192];
        int n;

        out[0] = '\0';
        if (lstat(l->src_path, &st) < 0 || !bmemo_trusted(m, &st.st_ctim))
                return false;
        n = snprintf(
            buf, sizeof(buf), "input %d %llu %s %d %s %s %llu %llu %lld %lld.%ld %lld.%ld",
            BUILDER_LAYER_FORMAT, (unsigned long long)sde, parent_key ? parent_key : "scratch",
            (int)l->kind, l->src_path, l->dest ? l->dest : "/", (unsigned long long)st.st_dev,
            (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
            st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
        hash_sha256_buf(buf, (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1), out);
        return true;
}
