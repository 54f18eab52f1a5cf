/* SPDX-License-Identifier: MIT */
/*
 * Installing packages into a layer as dpkg leaves them, without running
 * anything (essential: false, distroless images): each package's data.tar
 * becomes entries (through the same hostile-archive reader as `deb:`
 * layers), and the dpkg database is written: status (sorted by name, with
 * "Status: install ok installed" and Conffiles), info/PKG.list, md5sums,
 * conffiles and the maintainer scripts, so dpkg -l, dpkg -S and apt work
 * inside the image.
 */
#include "builder/pkg-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/cleanup.h"
#include "common/fs.h"

/* Control members dpkg keeps in its info directory. */
static const char *const info_members[] = {"md5sums",  "conffiles", "preinst", "postinst",
                                           "prerm",    "postrm",    "config",  "templates",
                                           "triggers", "shlibs",    "symbols"};

typedef struct control {
        char *member[ARRAY_SIZE(info_members) + 1]; /* [0..]: info_members, last: control */
        size_t len[ARRAY_SIZE(info_members) + 1];
        char *conf_md5; /* md5sums-style lines of the conffiles, computed from the files */
} control;

#define CONTROL_IDX ARRAY_SIZE(info_members)

static void control_free(control *c)
{
        for (size_t i = 0; i <= CONTROL_IDX; i++)
                free(c->member[i]);
        free(c->conf_md5);
        memset(c, 0, sizeof(*c));
}

static int read_member(struct archive *a, control *c, size_t idx, const char *what,
                       forge_error **err)
{
        char *buf;
        size_t len;

        if (store_archive_entry_read(a, PKG_MAX_CONTROL, &buf, &len, err) < 0)
                return forge_error_prefix(err, "%s: control member", what);
        free(c->member[idx]);
        c->member[idx] = buf;
        c->len[idx] = len;
        return 0;
}

const char *pkg_tar_next_file(struct archive *in)
{
        struct archive_entry *ae;

        while (archive_read_next_header(in, &ae) == ARCHIVE_OK) {
                const char *m = archive_entry_pathname(ae);
                if (m == NULL || archive_entry_filetype(ae) != AE_IFREG)
                        continue;
                return strncmp(m, "./", 2) == 0 ? m + 2 : m;
        }
        return NULL;
}

static int read_control(const char *deb, const char *what, control *c, forge_error **err)
{
        cleanup_store_deb store_deb *d = NULL;
        struct archive *in;
        const char *name, *m;
        int r;

        if (store_deb_open(deb, &d, err) < 0)
                return forge_error_prefix(err, "%s", what);
        r = store_deb_next(d, "control.tar", &name, err);
        if (r < 0)
                return forge_error_prefix(err, "%s", what);
        if (r == 0)
                return forge_error_make(err, EBADMSG, "%s has no control.tar member", what);
        in = store_deb_tar(d, err);
        if (in == NULL)
                return forge_error_prefix(err, "%s", what);
        while ((m = pkg_tar_next_file(in)) != NULL) {
                if (strcmp(m, "control") == 0 && read_member(in, c, CONTROL_IDX, what, err) < 0)
                        return -1;
                for (size_t i = 0; i < ARRAY_SIZE(info_members); i++)
                        if (strcmp(m, info_members[i]) == 0 && read_member(in, c, i, what, err) < 0)
                                return -1;
        }
        if (c->member[CONTROL_IDX] == NULL)
                return forge_error_make(err, EBADMSG, "%s has no control file", what);
        return 0;
}

/* A file forge writes itself, its content in the spool. */
static int add_generated(bentries *out, const char *path, const char *data, size_t len, mode_t perm,
                         int64_t mtime, forge_error **err)
{
        off_t end = lseek(out->spool_fd, 0, SEEK_END);
        bentry *en;

        if (end < 0 || (len > 0 && pwrite(out->spool_fd, data, len, end) != (ssize_t)len))
                return forge_error_make(err, errno, "spool '%s'", path);
        en = bentries_add(out, path);
        if (en == NULL)
                return forge_error_make(err, ENOMEM, "install");
        en->type = S_IFREG;
        en->perm = perm;
        en->mtime = mtime;
        en->size = len;
        en->spool_off = end;
        return 0;
}

static int add_dir(bentries *out, const char *path, int64_t mtime, forge_error **err)
{
        if (bentries_add_dir(out, path, mtime) == NULL)
                return forge_error_make(err, ENOMEM, "install");
        return 0;
}

/* The control file's stanza with Status after Package (and Conffiles), as dpkg writes it. */
static int status_stanza(FILE *m, const control *c, forge_error **err)
{
        const char *ctl = c->member[CONTROL_IDX];
        const char *conff = c->member[1], *md5 = c->conf_md5 ? c->conf_md5 : c->member[0];
        size_t len = strlen(ctl);

        while (len > 0 && (ctl[len - 1] == '\n' || ctl[len - 1] == ' '))
                len--;
        for (const char *p = ctl; p < ctl + len;) {
                const char *nl = memchr(p, '\n', (size_t)(ctl + len - p));
                size_t n = nl ? (size_t)(nl - p) : (size_t)(ctl + len - p);
                if (n == 0) /* a blank line would end the stanza early */
                        return forge_error_make(err, EBADMSG, "control file has a blank line");
                fprintf(m, "%.*s\n", (int)n, p);
                if (strncasecmp(p, "Package:", 8) == 0)
                        fputs("Status: install ok installed\n", m);
                p += n + 1;
        }
        if (conff != NULL && conff[0] != '\0') {
                fputs("Conffiles:\n", m);
                for (const char *p = conff; *p;) {
                        size_t n = strcspn(p, "\n");
                        char path[4096], hex[64] = "";
                        if (n > 1 && n < sizeof(path) && p[0] == '/') {
                                memcpy(path, p, n);
                                path[n] = '\0';
                                /* md5sums names files without the leading '/' */
                                for (const char *q = md5; q && *q;) {
                                        size_t ql = strcspn(q, "\n");
                                        if (ql > 34 && q[32] == ' ' && ql - 34 == n - 1 &&
                                            memcmp(q + 34, path + 1, n - 1) == 0)
                                                snprintf(hex, sizeof(hex), "%.32s", q);
                                        q += ql + (q[ql] == '\n');
                                }
                                fprintf(m, " %s %s\n", path, hex[0] ? hex : "newconffile");
                        }
                        p += n + (p[n] == '\n');
                }
        }
        fputc('\n', m);
        return 0;
}

static const char *field(const control *c, const char *name, char *buf, size_t len)
{
        const char *ctl = c->member[CONTROL_IDX];
        size_t nl = strlen(name);
        for (const char *p = ctl; p && *p;) {
                size_t n = strcspn(p, "\n");
                if (n > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
                        const char *v = p + nl + 1;
                        while (*v == ' ')
                                v++;
                        snprintf(buf, len, "%.*s", (int)(n - (size_t)(v - p)), v);
                        return buf;
                }
                p += n + (p[n] == '\n');
        }
        return NULL;
}

/* "name" or "name:arch" for Multi-Arch: same, as dpkg names info files. */
static void info_name(const control *c, const pkg_locked *p, char *buf, size_t len)
{
        char ma[32];
        const char *v = field(c, "Multi-Arch", ma, sizeof(ma));
        if (v && strcmp(v, "same") == 0)
                snprintf(buf, len, "%s:%s", p->name, p->arch);
        else
                snprintf(buf, len, "%s", p->name);
}

/* md5 of every file as unpacked: dpkg records them for the conffiles in
 * status, and writes info/PKG.md5sums itself when a package has none. */
static int file_md5s(const bentries *out, size_t first, control *c, forge_error **err)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);

        if (m == NULL)
                return forge_error_make(err, ENOMEM, "install");
        for (size_t i = first; i < out->n; i++) {
                const bentry *en = &out->v[i];
                unsigned char md[EVP_MAX_MD_SIZE], chunk[1 << 14];
                unsigned mdlen = 0;
                EVP_MD_CTX *ctx;
                if (en->type != S_IFREG || en->hardlink || en->spool_off < 0)
                        continue;
                ctx = EVP_MD_CTX_new();
                if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
                        EVP_MD_CTX_free(ctx);
                        fclose(m);
                        free(buf);
                        return forge_error_make(err, ENOMEM, "md5");
                }
                for (uint64_t o = 0; o < en->size;) {
                        size_t want =
                            en->size - o < sizeof(chunk) ? (size_t)(en->size - o) : sizeof(chunk);
                        ssize_t got = pread(out->spool_fd, chunk, want, en->spool_off + (off_t)o);
                        if (got <= 0)
                                break;
                        EVP_DigestUpdate(ctx, chunk, (size_t)got);
                        o += (uint64_t)got;
                }
                EVP_DigestFinal_ex(ctx, md, &mdlen);
                EVP_MD_CTX_free(ctx);
                for (unsigned k = 0; k < mdlen; k++)
                        fprintf(m, "%02x", md[k]);
                fprintf(m, "  %s\n", en->path);
        }
        if (fclose(m) != 0) {
                free(buf);
                return forge_error_make(err, ENOMEM, "md5");
        }
        free(c->conf_md5);
        c->conf_md5 = buf;
        if (c->member[0] == NULL) {
                c->member[0] = strdup(buf);
                c->len[0] = len;
                if (c->member[0] == NULL)
                        return forge_error_make(err, ENOMEM, "md5");
        }
        return 0;
}

typedef struct inst {
        const pkg_locked *p;
        control c;
} inst;

static int install_one(store *s, const spec *sp, inst *in, bentries *out, forge_error **err)
{
        cleanup_free char *deb = store_blob_path(s, in->p->sha256);
        cleanup_free char *spool = fs_path_join(store_root(s), "tmp");
        cleanup_free char *label = NULL, *list = NULL;
        size_t first = out->n, list_len = 0;
        spec_layer fake = {0};
        char name[300], path[400];
        int64_t sde = (int64_t)sp->source_date_epoch;
        FILE *m;

        if (deb == NULL || spool == NULL ||
            asprintf(&label, "%s_%s_%s.deb", in->p->name, in->p->version, in->p->arch) < 0)
                return forge_error_make(err, ENOMEM, "install");
        if (read_control(deb, label, &in->c, err) < 0)
                return -1;
        fake.kind = SPEC_LAYER_DEB;
        fake.src = label;
        fake.src_path = deb;
        fake.dest = (char *)"/";
        fake.src_pos = sp->layers ? sp->layers[0].pos : (spec_pos){0, 0};
        if (bsrc_archive(sp, &fake, spool, out, err) < 0)
                return forge_error_prefix(err, "install '%s'", label);
        if (file_md5s(out, first, &in->c, err) < 0)
                return -1;
        m = open_memstream(&list, &list_len);
        if (m == NULL)
                return forge_error_make(err, ENOMEM, "install");
        fputs("/.\n", m);
        for (size_t i = first; i < out->n; i++)
                fprintf(m, "/%s\n", out->v[i].path);
        fclose(m);
        info_name(&in->c, in->p, name, sizeof(name));
        snprintf(path, sizeof(path), "var/lib/dpkg/info/%s.list", name);
        if (add_generated(out, path, list, list_len, 0644, sde, err) < 0)
                return -1;
        for (size_t i = 0; i < ARRAY_SIZE(info_members); i++) {
                bool script = i >= 2 && i <= 6;
                if (in->c.member[i] == NULL)
                        continue;
                snprintf(path, sizeof(path), "var/lib/dpkg/info/%s.%s", name, info_members[i]);
                if (add_generated(out, path, in->c.member[i], in->c.len[i], script ? 0755 : 0644,
                                  sde, err) < 0)
                        return -1;
        }
        return 0;
}

/* The status stanza of each package, as pkg_stanza (borrowing the names). */
static int fresh_stanzas(inst *all, size_t k, pkg_stanza *st, forge_error **err)
{
        for (size_t i = 0; i < k; i++) {
                size_t len = 0;
                FILE *m = open_memstream(&st[i].text, &len);

                if (m == NULL)
                        return forge_error_make(err, ENOMEM, "install");
                if (status_stanza(m, &all[i].c, err) < 0) {
                        fclose(m);
                        return forge_error_prefix(err, "package '%s'", all[i].p->name);
                }
                if (fclose(m) != 0)
                        return forge_error_make(err, ENOMEM, "install");
                /* status_stanza ends the stanza with one blank line */
                st[i].name = all[i].p->name;
                st[i].arch = all[i].p->arch;
        }
        return 0;
}

int pkg_install_files(store *s, const spec *sp, const pkg_set *below, const pkg_set *set,
                      const char *base_status, bentries *out, forge_error **err)
{
        size_t n = (below ? below->n : 0) + set->n;
        inst *all = calloc(n + 1, sizeof(*all));
        pkg_stanza *fresh = calloc(n + 1, sizeof(*fresh));
        cleanup_free char *status = NULL;
        size_t status_len = 0, k = 0;
        int64_t sde = (int64_t)sp->source_date_epoch;
        cleanup_free char *spool = fs_path_join(store_root(s), "tmp");
        int r = -1;

        if (all == NULL || fresh == NULL || spool == NULL) {
                forge_error_make(err, ENOMEM, "install");
                goto out;
        }
        if (out->spool_fd < 0 &&
            (out->spool_fd = open(spool, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0) {
                forge_error_make(err, errno, "spool file in '%s'", spool);
                goto out;
        }
        for (size_t i = 0; i < set->n; i++) {
                all[k].p = &set->v[i];
                if (install_one(s, sp, &all[k++], out, err) < 0)
                        goto out;
        }
        /* earlier layers' packages stay in the status file this layer replaces */
        for (size_t i = 0; below && i < below->n; i++) {
                cleanup_free char *deb = store_blob_path(s, below->v[i].sha256);
                all[k].p = &below->v[i];
                if (deb == NULL || read_control(deb, below->v[i].name, &all[k++].c, err) < 0)
                        goto out;
        }
        /* and so do the other packages of the status the layers below leave */
        if (fresh_stanzas(all, k, fresh, err) < 0 ||
            pkg_status_merge(base_status, "the image's var/lib/dpkg/status (below this layer)",
                             fresh, k, &status, &status_len, err) < 0)
                goto out;
        if (add_dir(out, "var/lib/dpkg/info", sde, err) < 0 ||
            add_dir(out, "var/lib/dpkg/updates", sde, err) < 0 ||
            add_dir(out, "var/lib/dpkg/triggers", sde, err) < 0 ||
            add_dir(out, "var/lib/dpkg/alternatives", sde, err) < 0 ||
            add_generated(out, "var/lib/dpkg/status", status, status_len, 0644, sde, err) < 0 ||
            add_generated(out, "var/lib/dpkg/available", "", 0, 0644, sde, err) < 0 ||
            add_generated(out, "var/lib/dpkg/info/format", "1\n", 2, 0644, sde, err) < 0)
                goto out;
        r = 0;
out:
        for (size_t i = 0; all && fresh && i < n; i++) {
                control_free(&all[i].c);
                free(fresh[i].text);
        }
        free(all);
        free(fresh);
        return r;
}

char *pkg_layer_def(const spec_layer *l, const pkg_set *set)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);

        if (m == NULL)
                return NULL;
        fprintf(m, "essential %d\nrecommends %d\n", l->essential, l->recommends);
        for (size_t i = 0; i < set->n; i++)
                fprintf(m, "package %s %s %s %s\n", set->v[i].name, set->v[i].version,
                        set->v[i].arch, set->v[i].sha256);
        if (fclose(m) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

int pkg_deb_field(store *s, const pkg_locked *p, const char *name, char **ret, forge_error **err)
{
        cleanup_free char *deb = store_blob_path(s, p->sha256);
        control c = {0};
        char buf[8192];
        const char *v;

        *ret = NULL;
        if (deb == NULL)
                return forge_error_make(err, ENOMEM, "control");
        if (read_control(deb, p->name, &c, err) < 0)
                return -1;
        v = field(&c, name, buf, sizeof(buf));
        if (v != NULL && (*ret = strdup(v)) == NULL) {
                control_free(&c);
                return forge_error_make(err, ENOMEM, "control");
        }
        control_free(&c);
        return 0;
}
