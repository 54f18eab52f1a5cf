/* SPDX-License-Identifier: MIT */
/*
 * The dpkg status an essential: false layer writes extends the one the layers
 * below it leave (a from: base built by debootstrap, an earlier run: step that
 * ran apt-get): found in the topmost unpacked layer that has it, as overlayfs
 * would show it (whiteouts and opaque directories hide what is below), and
 * merged stanza by stanza. The base is an image forge did not build: its
 * status file is capped, must be text and every stanza must name a package
 * by Debian's grammar, or the build stops naming the file.
 */
#include "builder/pkg-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/array.h"
#include "common/cleanup.h"
#include "common/safe-open.h"

#define STATUS_PATH "var/lib/dpkg/status"

static bool is_whiteout(const struct stat *st)
{
        return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(int dirfd)
{
        char v[2];
        ssize_t n = fgetxattr(dirfd, "trusted.overlay.opaque", v, sizeof(v));
        return n == 1 && v[0] == 'y';
}

/* In one layer: 1 and the text when it has the file, 0 when the file is not
 * there (*ret_hidden: nor in any layer below), < 0 on errors. */
static int status_in_layer(const char *dir, size_t layer, char **ret, bool *ret_hidden,
                           forge_error **err)
{
        static const char *const comps[] = {"var", "lib", "dpkg"};
        cleanup_close int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;
        size_t len;

        *ret_hidden = false;
        if (d < 0)
                return forge_error_make(err, errno, "layer %zu", layer + 1);
        for (size_t i = 0; i <= ARRAY_SIZE(comps); i++) {
                const char *c = i < ARRAY_SIZE(comps) ? comps[i] : "status";
                int nd;

                if (fstatat(d, c, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                return 0;
                        return forge_error_make(err, errno, "layer %zu: '%s'", layer + 1,
                                                STATUS_PATH);
                }
                if (is_whiteout(&st)) {
                        *ret_hidden = true;
                        return 0;
                }
                if (S_ISLNK(st.st_mode))
                        return forge_error_make(err, ELOOP,
                                                "layer %zu: a component of '%s' is a symlink: "
                                                "forge cannot extend that dpkg database",
                                                layer + 1, STATUS_PATH);
                if (i == ARRAY_SIZE(comps))
                        break;
                if (!S_ISDIR(st.st_mode)) {
                        *ret_hidden = true;
                        return 0;
                }
                nd = openat(d, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nd < 0)
                        return forge_error_make(err, errno, "layer %zu: '%s'", layer + 1, c);
                close(d);
                d = nd;
                if (is_opaque(d))
                        *ret_hidden = true;
        }
        if (!S_ISREG(st.st_mode))
                return forge_error_make(err, EINVAL, "layer %zu: '%s' is not a regular file",
                                        layer + 1, STATUS_PATH);
        if (safe_read_file(d, "status", PKG_MAX_STATUS, ret, &len, err) < 0)
                return forge_error_prefix(err, "layer %zu: '%s'", layer + 1, STATUS_PATH);
        if (strlen(*ret) != len) {
                free(*ret);
                *ret = NULL;
                return forge_error_make(err, EBADMSG, "layer %zu: '%s' is not text (a NUL byte)",
                                        layer + 1, STATUS_PATH);
        }
        return 1;
}

int pkg_status_below(const char *const *lowerdirs, size_t n, char **ret, forge_error **err)
{
        *ret = NULL;
        for (size_t i = n; i-- > 0;) {
                bool hidden;
                int r;

                if (lowerdirs[i] == NULL)
                        continue;
                r = status_in_layer(lowerdirs[i], i, ret, &hidden, err);
                if (r != 0 || hidden)
                        return r < 0 ? -1 : 0;
        }
        return 0;
}

/* The value of a single-line field at a line start of the stanza [s, e). */
static char *stanza_field(const char *s, const char *e, const char *name)
{
        size_t nl = strlen(name);

        for (const char *p = s; p < e;) {
                const char *eol = memchr(p, '\n', (size_t)(e - p));
                if (eol == NULL)
                        eol = e;
                if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
                        const char *v = p + nl + 1, *ve = eol;
                        while (v < ve && (*v == ' ' || *v == '\t'))
                                v++;
                        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
                                ve--;
                        return strndup(v, (size_t)(ve - v));
                }
                p = eol + 1;
        }
        return NULL;
}

static int cmp_stanza(const void *a, const void *b)
{
        const pkg_stanza *x = *(const pkg_stanza *const *)a, *y = *(const pkg_stanza *const *)b;
        int r = strcmp(x->name, y->name);
        return r ? r : strcmp(x->arch, y->arch);
}

static bool fresh_has(const pkg_stanza *fresh, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(fresh[i].name, name) == 0)
                        return true;
        return false;
}

static void stanza_clear(pkg_stanza *st)
{
        free(st->name);
        free(st->arch);
        free(st->text);
        memset(st, 0, sizeof(*st));
}

typedef struct stanzas {
        pkg_stanza *v;
        size_t n, cap;
} stanzas;

static void stanzas_clear(stanzas *s)
{
        for (size_t i = 0; i < s->n; i++)
                stanza_clear(&s->v[i]);
        free(s->v);
        memset(s, 0, sizeof(*s));
}

static int stanzas_push(stanzas *s, pkg_stanza *st)
{
        if (ARRAY_GROW(s->v, s->cap, s->n + 1) < 0)
                return -1;
        s->v[s->n++] = *st;
        memset(st, 0, sizeof(*st));
        return 0;
}

/* One stanza [s, e) of the base, as a pkg_stanza ending in one blank line. */
static int base_stanza(const char *s, const char *e, const char *what, size_t no, pkg_stanza *st,
                       forge_error **err)
{
        size_t l = (size_t)(e - s);

        st->name = stanza_field(s, e, "Package");
        if (st->name == NULL || !pkg_name_valid(st->name))
                return forge_error_make(err, EBADMSG, "%s: stanza %zu has no valid Package field",
                                        what, no);
        st->arch = stanza_field(s, e, "Architecture");
        if (st->arch == NULL)
                st->arch = strdup("");
        st->text = malloc(l + 3);
        if (st->arch == NULL || st->text == NULL)
                return forge_error_make(err, ENOMEM, "%s", what);
        memcpy(st->text, s, l);
        if (l == 0 || s[l - 1] != '\n')
                st->text[l++] = '\n';
        st->text[l++] = '\n';
        st->text[l] = '\0';
        return 0;
}

/* base's stanzas that fresh does not replace. */
static int split_base(const char *base, const char *what, const pkg_stanza *fresh, size_t n_fresh,
                      stanzas *out, forge_error **err)
{
        const char *p = base;
        size_t no = 0;

        for (;;) {
                pkg_stanza st = {0};
                const char *s, *e;

                while (*p == '\n')
                        p++;
                if (*p == '\0')
                        return 0;
                s = p;
                e = strstr(p, "\n\n");
                e = e ? e + 1 : p + strlen(p);
                p = e;
                if (base_stanza(s, e, what, ++no, &st, err) < 0) {
                        stanza_clear(&st);
                        return -1;
                }
                if (fresh_has(fresh, n_fresh, st.name)) {
                        stanza_clear(&st);
                        continue;
                }
                if (stanzas_push(out, &st) < 0) {
                        stanza_clear(&st);
                        return forge_error_make(err, ENOMEM, "%s", what);
                }
        }
}

int pkg_status_merge(const char *base, const char *what, const pkg_stanza *fresh, size_t n_fresh,
                     char **ret, size_t *ret_len, forge_error **err)
{
        stanzas kept = {0};
        cleanup_free const pkg_stanza **order = NULL;
        size_t n, len = 0;
        char *out, *o;
        int r = -1;

        if (base != NULL && split_base(base, what, fresh, n_fresh, &kept, err) < 0)
                goto done;
        n = kept.n + n_fresh;
        order = calloc(n + 1, sizeof(*order));
        if (order == NULL) {
                forge_error_make(err, ENOMEM, "dpkg status");
                goto done;
        }
        for (size_t i = 0; i < kept.n; i++)
                order[i] = &kept.v[i];
        for (size_t i = 0; i < n_fresh; i++)
                order[kept.n + i] = &fresh[i];
        qsort(order, n, sizeof(*order), cmp_stanza);
        for (size_t i = 0; i < n; i++)
                len += strlen(order[i]->text);
        o = out = malloc(len + 1);
        if (out == NULL) {
                forge_error_make(err, ENOMEM, "dpkg status");
                goto done;
        }
        for (size_t i = 0; i < n; i++) {
                size_t l = strlen(order[i]->text);
                memcpy(o, order[i]->text, l);
                o += l;
        }
        *o = '\0';
        *ret = out;
        *ret_len = len;
        r = 0;
done:
        stanzas_clear(&kept);
        return r;
}
