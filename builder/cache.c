/* SPDX-License-Identifier: MIT */
/*
 * Layer cache keys. A key is the sha256 of a canonical text: forge's layer
 * format version, the parent layer's key, source_date_epoch and the
 * layer's definition including the content hashes of its inputs. The
 * label (name:) is not part of it.
 *
 * File hashes are memoised per build context by (inode, size, mtime, ctime)
 * in the store (kv "fmemo"), so a no-change rebuild only stats its inputs.
 */
#include "builder/builder-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"

void bmemo_init(store *s, const spec *sp, bmemo *m)
{
        char id[DIGEST_STR_SIZE];

        memset(m, 0, sizeof(*m));
        m->s = s;
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
        if (m && m->map) {
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

int bkey_compute(const bkey_input *in, bkey *ret, forge_error **err)
{
        const spec_layer *l = in->layer;
        text t = {0};
        json_t *inputs = json_object();
        char h[DIGEST_STR_SIZE];
        int r = -1;

        if (inputs == NULL)
                return forge_error_make(err, ENOMEM, "cache key");
        if (addf(&t, "forge-layer %d\nsde %llu\nkind %s\n", BUILDER_LAYER_FORMAT,
                 (unsigned long long)in->sp->source_date_epoch, kind_name(l->kind)) < 0)
                goto oom;
        switch (l->kind) {
        case SPEC_LAYER_DEB:
        case SPEC_LAYER_ARCHIVE:
                if (bhash_file(in->memo, l->src_path, h, err) < 0)
                        goto out;
                memcpy(ret->input_sha256, h, DIGEST_STR_SIZE);
                if (addf(&t, "input %s\ndest %s\n", h, l->dest ? l->dest : "/") < 0)
                        goto oom;
                json_object_set_new(inputs, l->src, json_string(h));
                break;
        case SPEC_LAYER_FILES:
                for (size_t i = 0; i < in->entries->n; i++) {
                        const bentry *en = &in->entries->v[i];
                        if (addf(&t, "entry ") < 0 || add_escaped(&t, en->path) < 0 ||
                            addf(&t, " %o %o %u %u", (unsigned)(en->type >> 12), (unsigned)en->perm,
                                 (unsigned)en->uid, (unsigned)en->gid) < 0)
                                goto oom;
                        for (size_t x = 0; x < en->n_xattrs; x++) {
                                char xh[DIGEST_STR_SIZE];
                                hash_sha256_buf(en->xattr_values[x], en->xattr_sizes[x], xh);
                                if (addf(&t, " xattr %s=%s", en->xattr_names[x], xh) < 0)
                                        goto oom;
                        }
                        if (en->hardlink) {
                                cleanup_free char *v = NULL;
                                if (addf(&t, " => ") < 0 || add_escaped(&t, en->link) < 0 ||
                                    addf(&t, "\n") < 0 || asprintf(&v, "=> /%s", en->link) < 0)
                                        goto oom;
                                json_object_set_new(inputs, en->path, json_string(v));
                        } else if (en->type == S_IFREG && en->host_path) {
                                if (bhash_file(in->memo, en->host_path, h, err) < 0)
                                        goto out;
                                if (addf(&t, " %s\n", h) < 0)
                                        goto oom;
                                json_object_set_new(inputs, en->path, json_string(h));
                        } else if (en->type == S_IFLNK) {
                                if (addf(&t, " -> ") < 0 || add_escaped(&t, en->link) < 0 ||
                                    addf(&t, "\n") < 0)
                                        goto oom;
                                json_object_set_new(inputs, en->path, json_string(en->link));
                        } else if (addf(&t, "\n") < 0) {
                                goto oom;
                        }
                }
                break;
        case SPEC_LAYER_PACKAGES:
                if (addf(&t, "%s", in->pkg_def ? in->pkg_def : "") < 0)
                        goto oom;
                break;
        case SPEC_LAYER_RUN:
                if (addf(&t, "run ") < 0 || add_escaped(&t, l->run) < 0 ||
                    addf(&t, "\nnetwork %s\n",
                         l->network_host   ? "host"
                         : l->network_user ? "user"
                                           : "none") < 0)
                        goto oom;
                for (size_t i = 0; i < l->env.n; i++)
                        if (addf(&t, "env ") < 0 || add_escaped(&t, l->env.items[i].key) < 0 ||
                            addf(&t, "=") < 0 || add_escaped(&t, l->env.items[i].value) < 0 ||
                            addf(&t, "\n") < 0)
                                goto oom;
                break;
        }
        ret->def = t.buf ? strdup(t.buf) : strdup("");
        if (ret->def == NULL)
                goto oom;
        hash_sha256_buf(ret->def, strlen(ret->def), ret->def_hash);
        /* The parent goes in last so that `def` compares across parents. */
        if (addf(&t, "parent %s\n", in->parent_key ? in->parent_key : "scratch") < 0)
                goto oom;
        hash_sha256_buf(t.buf, t.len, ret->key);
        ret->inputs = inputs;
        inputs = NULL;
        r = 0;
        goto out;
oom:
        r = forge_error_make(err, ENOMEM, "cache key");
out:
        free(t.buf);
        json_decref(inputs);
        return r;
}

void bkey_release(bkey *k)
{
        free(k->def);
        json_decref(k->inputs);
        k->def = NULL;
        k->inputs = NULL;
}

void bstamp_files(const bentries *e, const char *parent_key, uint64_t sde,
                  char out[DIGEST_STR_SIZE])
{
        hash_sha256 *h = hash_sha256_new();
        char buf[256];

        snprintf(buf, sizeof(buf), "stamp %d %llu %s\n", BUILDER_LAYER_FORMAT,
                 (unsigned long long)sde, parent_key ? parent_key : "scratch");
        hash_sha256_update(h, buf, strlen(buf));
        for (size_t i = 0; i < e->n; i++) {
                const bentry *en = &e->v[i];
                hash_sha256_update(h, en->path, strlen(en->path) + 1);
                if (en->link)
                        hash_sha256_update(h, en->link, strlen(en->link) + 1);
                for (size_t x = 0; x < en->n_xattrs; x++) {
                        hash_sha256_update(h, en->xattr_names[x], strlen(en->xattr_names[x]) + 1);
                        hash_sha256_update(h, en->xattr_values[x], en->xattr_sizes[x]);
                }
                /* fixed-width binary record: no formatting on the hot path */
                uint64_t rec[9] = {en->type,
                                   en->perm,
                                   en->uid,
                                   en->gid,
                                   (uint64_t)en->host_dev,
                                   (uint64_t)en->host_ino,
                                   en->size,
                                   (uint64_t)en->host_mtim.tv_sec * 1000000000ULL +
                                       (uint64_t)en->host_mtim.tv_nsec,
                                   (uint64_t)en->host_ctim.tv_sec * 1000000000ULL +
                                       (uint64_t)en->host_ctim.tv_nsec};
                hash_sha256_update(h, rec, sizeof(rec));
        }
        hash_sha256_final(h, out);
        hash_sha256_free(h);
}

void bstamp_input(const spec_layer *l, const char *parent_key, uint64_t sde,
                  char out[DIGEST_STR_SIZE])
{
        struct stat st;
        char buf[8192];
        int n;

        if (lstat(l->src_path, &st) < 0) {
                out[0] = '\0';
                return;
        }
        n = snprintf(
            buf, sizeof(buf), "input %d %llu %s %d %s %s %llu %llu %lld %lld.%ld %lld.%ld",
            BUILDER_LAYER_FORMAT, (unsigned long long)sde, parent_key ? parent_key : "scratch",
            (int)l->kind, l->src_path, l->dest ? l->dest : "/", (unsigned long long)st.st_dev,
            (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
            st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
        hash_sha256_buf(buf, (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1), out);
}
