/* SPDX-License-Identifier: MIT */
/*
 * User lookup in the container's /etc/passwd and /etc/group (never the
 * host's, never NSS): plain parsing of the colon-separated files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/safe-open.h"
#include "runtime/container/container-internal.h"

/* a passwd or group file larger than this is not one */
#define ETC_MAX (16 << 20)

#define FIELDS_MAX 8

/* Splits line in place on ':'; returns the number of fields. */
static size_t split(char *line, char **f)
{
        size_t n = 0;

        line[strcspn(line, "\n")] = '\0';
        f[n++] = line;
        for (char *p = line; *p && n < FIELDS_MAX; p++) {
                if (*p == ':') {
                        *p = '\0';
                        f[n++] = p + 1;
                }
        }
        return n;
}

static bool parse_id(const char *s, unsigned long *ret)
{
        char *end;
        unsigned long v;

        if (*s < '0' || *s > '9')
                return false;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v > 0xfffffffeUL)
                return false;
        *ret = v;
        return true;
}

/* Finds a passwd entry by name (name != NULL) or uid. */
static bool passwd_find(FILE *f, const char *name, uid_t uid, user_ids *ret, char *ret_name,
                        size_t name_len)
{
        char line[1024];
        char *fld[FIELDS_MAX];
        unsigned long u, g;

        if (f == NULL)
                return false;
        rewind(f);
        while (fgets(line, sizeof(line), f) != NULL) {
                size_t split_n = split(line, fld);

                if (split_n < 4 || !parse_id(fld[2], &u) || !parse_id(fld[3], &g))
                        continue;
                if (name != NULL ? strcmp(fld[0], name) != 0 : (uid_t)u != uid)
                        continue;
                ret->uid = (uid_t)u;
                ret->gid = (gid_t)g;
                snprintf(ret_name, name_len, "%s", fld[0]);
                ret->home[0] = '\0';
                if (split_n >= 6 && fld[5][0] == '/' && strlen(fld[5]) < sizeof(ret->home))
                        strcpy(ret->home, fld[5]);
                return true;
        }
        return false;
}

/* A walk over a group file's entries (one with a name, a password and a
 * valid gid at least), from its start. */
typedef struct group_iter {
        FILE *f; /* NULL: no entries */
        char line[4096];
        char *fld[FIELDS_MAX];
        size_t n_fld;
        gid_t gid;
} group_iter;

static void group_iter_start(group_iter *it, FILE *f)
{
        it->f = f;
        if (f != NULL)
                rewind(f);
}

static bool group_next(group_iter *it)
{
        unsigned long g;

        while (it->f != NULL && fgets(it->line, sizeof(it->line), it->f) != NULL) {
                it->n_fld = split(it->line, it->fld);
                if (it->n_fld >= 3 && parse_id(it->fld[2], &g)) {
                        it->gid = (gid_t)g;
                        return true;
                }
        }
        return false;
}

static bool group_find(FILE *f, const char *name, gid_t *ret)
{
        group_iter it;

        group_iter_start(&it, f);
        while (group_next(&it))
                if (strcmp(it.fld[0], name) == 0) {
                        *ret = it.gid;
                        return true;
                }
        return false;
}

static bool member_of(char *members, const char *user)
{
        for (char *tok = strtok(members, ","); tok != NULL; tok = strtok(NULL, ","))
                if (strcmp(tok, user) == 0)
                        return true;
        return false;
}

/* Supplementary groups: the primary group plus every group listing user. */
static void groups_collect(FILE *f, const char *user, user_ids *ids)
{
        group_iter it;

        ids->groups[0] = ids->gid;
        ids->n_groups = 1;
        if (user[0] == '\0')
                return;
        group_iter_start(&it, f);
        while (group_next(&it))
                if (it.n_fld >= 4 && it.gid != ids->gid && member_of(it.fld[3], user) &&
                    ids->n_groups < ARRAY_SIZE(ids->groups))
                        ids->groups[ids->n_groups++] = it.gid;
}

int user_resolve(const char *user, FILE *passwd, FILE *group, user_ids *ret, char *errbuf,
                 size_t errlen)
{
        char buf[256], name[256] = "";
        const char *grp;
        unsigned long v;
        user_ids ids = {0};
        char *colon;

        if (user == NULL || user[0] == '\0')
                user = "0";
        if (strlen(user) >= sizeof(buf)) {
                snprintf(errbuf, errlen, "user '%s' is too long", user);
                return -EINVAL;
        }
        strcpy(buf, user);
        colon = strchr(buf, ':');
        grp = NULL;
        if (colon != NULL) {
                *colon = '\0';
                grp = colon + 1;
        }
        if (parse_id(buf, &v)) {
                /* Numeric: the primary group comes from passwd when the uid is
                 * listed there, else 0 (as docker does). */
                if (!passwd_find(passwd, NULL, (uid_t)v, &ids, name, sizeof(name))) {
                        ids.uid = (uid_t)v;
                        ids.gid = 0;
                }
        } else if (!passwd_find(passwd, buf, 0, &ids, name, sizeof(name))) {
                snprintf(errbuf, errlen,
                         "user '%s' not found in the image's /etc/passwd (use a numeric uid:gid)",
                         buf);
                return -ENOENT;
        }
        if (grp != NULL) {
                if (parse_id(grp, &v)) {
                        ids.gid = (gid_t)v;
                } else if (!group_find(group, grp, &ids.gid)) {
                        snprintf(errbuf, errlen,
                                 "group '%s' not found in the image's /etc/group (use a numeric "
                                 "gid)",
                                 grp);
                        return -ENOENT;
                }
        }
        groups_collect(group, name, &ids);
        *ret = ids;
        return 0;
}

/* The image's rel as a stream, read whole with safe_read_file (a FIFO, a
 * device, a symlink or a huge file is an error, never a hang). *ret is NULL
 * when the file does not exist. */
static int etc_open(int rootfd, const char *rel, char **ret_buf, FILE **ret, char *errbuf,
                    size_t errlen)
{
        forge_error *e = NULL;
        size_t len = 0;

        *ret = NULL;
        *ret_buf = NULL;
        if (safe_read_file(rootfd, rel, ETC_MAX, ret_buf, &len, &e) < 0) {
                int r = e->errnum == ENOENT ? 0 : -(e->errnum ? e->errnum : EINVAL);
                if (r < 0)
                        snprintf(errbuf, errlen, "the image's %s: %s", rel, e->msg);
                forge_error_release(&e);
                return r;
        }
        *ret = fmemopen(*ret_buf, len ? len : 1, "r");
        if (*ret == NULL) {
                snprintf(errbuf, errlen, "the image's %s: %s", rel, strerror(errno));
                return -ENOMEM;
        }
        return 0;
}

int user_resolve_in_root(const char *user, int rootfd, user_ids *ret, char *errbuf, size_t errlen)
{
        cleanup_free char *pwbuf = NULL, *grbuf = NULL;
        cleanup_fclose FILE *pw = NULL, *gr = NULL;
        int r;

        if ((r = etc_open(rootfd, "/etc/passwd", &pwbuf, &pw, errbuf, errlen)) < 0 ||
            (r = etc_open(rootfd, "/etc/group", &grbuf, &gr, errbuf, errlen)) < 0) {
                /* The default user (root) needs no entry: an unfit file only
                 * costs it HOME from passwd, as a missing one does. */
                if (user != NULL && user[0] != '\0')
                        return r;
                if (pw != NULL)
                        fclose(take_ptr(pw));
                if (gr != NULL)
                        fclose(take_ptr(gr));
                errbuf[0] = '\0';
        }
        return user_resolve(user, pw, gr, ret, errbuf, errlen);
}
