/* SPDX-License-Identifier: MIT */
/*
 * Resolution with libsolv: the verified Packages indexes become repos of a
 * Debian pool (Debian version comparison, Depends, Pre-Depends, Provides,
 * Conflicts, Breaks, Multi-Arch), each layer's requests become install jobs
 * on top of what earlier layers installed, and the transaction gives dpkg's
 * order. Essential: yes, which libsolv does not record, is read from the
 * indexes here.
 */
#include "builder/pkg-internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <solv/pool.h>
#include <solv/poolarch.h>
#include <solv/problems.h>
#include <solv/repo.h>
#include <solv/repo_deb.h>
#include <solv/solver.h>
#include <solv/transaction.h>

#include "common/array.h"
#include "common/cleanup.h"

/* What libsolv does not keep of a stanza: its Size. Sorted by key. */
typedef struct sized {
        char *key; /* "name version arch" */
        uint64_t size;
} sized;

struct pkg_solver {
        Pool *pool;
        char *arch;
        char **essential; /* names with Essential: yes, NULL-terminated */
        size_t n_essential;
        sized *sizes;
        size_t n_sizes, cap_sizes;
};

static int add_size(pkg_solver *ps, const char *name, const char *ver, const char *arch,
                    uint64_t size)
{
        if (ARRAY_GROW(ps->sizes, ps->cap_sizes, ps->n_sizes + 1) < 0)
                return -1;
        if (asprintf(&ps->sizes[ps->n_sizes].key, "%s %s %s", name, ver, arch) < 0)
                return -1;
        ps->sizes[ps->n_sizes++].size = size;
        return 0;
}

static int cmp_sized(const void *a, const void *b)
{
        return strcmp(((const sized *)a)->key, ((const sized *)b)->key);
}

static uint64_t size_of(const pkg_solver *ps, const char *name, const char *ver, const char *arch)
{
        cleanup_free char *key = NULL;
        sized k, *hit;

        if (asprintf(&key, "%s %s %s", name, ver, arch) < 0)
                return 0;
        k.key = key;
        hit = bsearch(&k, ps->sizes, ps->n_sizes, sizeof(sized), cmp_sized);
        return hit ? hit->size : 0;
}

void pkg_set_free(pkg_set *s)
{
        for (size_t i = 0; i < s->n; i++) {
                free(s->v[i].name);
                free(s->v[i].version);
                free(s->v[i].arch);
                free(s->v[i].filename);
        }
        free(s->v);
        s->v = NULL;
        s->n = 0;
}

static int add_essential(pkg_solver *ps, const char *name)
{
        char **nv;
        for (size_t i = 0; i < ps->n_essential; i++)
                if (strcmp(ps->essential[i], name) == 0)
                        return 0;
        nv = realloc(ps->essential, (ps->n_essential + 2) * sizeof(char *));
        if (nv == NULL)
                return -1;
        ps->essential = nv;
        nv[ps->n_essential] = strdup(name);
        nv[ps->n_essential + 1] = NULL;
        if (nv[ps->n_essential] == NULL)
                return -1;
        ps->n_essential++;
        return 0;
}

/* The names of stanzas with "Essential: yes", and every stanza's Size. */
static int scan_stanzas(pkg_solver *ps, FILE *f)
{
        char line[4096], name[256] = "", ver[256] = "", arch[64] = "";
        unsigned long long size = 0;
        bool essential = false;

        rewind(f);
        for (;;) {
                bool eof = fgets(line, sizeof(line), f) == NULL;
                if (eof || line[0] == '\n') {
                        if (essential && name[0] && add_essential(ps, name) < 0)
                                return -1;
                        if (name[0] && ver[0] && arch[0] && add_size(ps, name, ver, arch, size) < 0)
                                return -1;
                        name[0] = ver[0] = arch[0] = '\0';
                        size = 0;
                        essential = false;
                        if (eof)
                                break;
                        continue;
                }
                if (strncasecmp(line, "Package:", 8) == 0)
                        sscanf(line + 8, " %255s", name);
                else if (strncasecmp(line, "Version:", 8) == 0)
                        sscanf(line + 8, " %255s", ver);
                else if (strncasecmp(line, "Architecture:", 13) == 0)
                        sscanf(line + 13, " %63s", arch);
                else if (strncasecmp(line, "Size:", 5) == 0)
                        sscanf(line + 5, " %llu", &size);
                else if (strncasecmp(line, "Essential:", 10) == 0) {
                        char v[8] = "";
                        sscanf(line + 10, " %7s", v);
                        essential = strcasecmp(v, "yes") == 0;
                }
                /* a long line's rest is read as more lines, which start no field we read */
        }
        rewind(f);
        return 0;
}

static bool is_essential(const pkg_solver *ps, const char *name)
{
        for (size_t i = 0; i < ps->n_essential; i++)
                if (strcmp(ps->essential[i], name) == 0)
                        return true;
        return false;
}

int pkg_solver_new(const pkg_index *ix, size_t n_ix, const char *arch, pkg_solver **ret,
                   forge_error **err)
{
        pkg_solver *ps = calloc(1, sizeof(*ps));

        if (ps == NULL || (ps->arch = strdup(arch)) == NULL) {
                free(ps);
                return forge_error_make(err, ENOMEM, "resolve");
        }
        ps->pool = pool_create();
        pool_setdisttype(ps->pool, DISTTYPE_DEB);
        pool_setarch(ps->pool, arch);
        for (size_t i = 0; i < n_ix; i++) {
                char name[32];
                Repo *repo;
                snprintf(name, sizeof(name), "%zu", i);
                repo = repo_create(ps->pool, name);
                repo->priority = (int)(n_ix - i); /* earlier entries win */
                repo->appdata = (void *)(uintptr_t)i;
                for (size_t c = 0; c < ix[i].n_packages; c++) {
                        if (scan_stanzas(ps, ix[i].packages[c]) < 0) {
                                pkg_solver_free(ps);
                                return forge_error_make(err, ENOMEM, "resolve");
                        }
                        if (repo_add_debpackages(repo, ix[i].packages[c],
                                                 REPO_REUSE_REPODATA | REPO_NO_INTERNALIZE) != 0) {
                                forge_error_make(err, EBADMSG, "%s: a Packages index: %s",
                                                 ix[i].src->origin, pool_errstr(ps->pool));
                                pkg_solver_free(ps);
                                return -1;
                        }
                }
                repo_internalize(repo);
        }
        qsort(ps->sizes, ps->n_sizes, sizeof(sized), cmp_sized);
        pool_addfileprovides(ps->pool);
        pool_createwhatprovides(ps->pool);
        *ret = ps;
        return 0;
}

void pkg_solver_free(pkg_solver *ps)
{
        if (ps == NULL)
                return;
        if (ps->pool)
                pool_free(ps->pool);
        for (size_t i = 0; i < ps->n_essential; i++)
                free(ps->essential[i]);
        free(ps->essential);
        for (size_t i = 0; i < ps->n_sizes; i++)
                free(ps->sizes[i].key);
        free(ps->sizes);
        free(ps->arch);
        free(ps);
}

/* "name", "name:arch", "name (op ver)" -> a job selection; 0 when nothing matches. */
static int request_job(pkg_solver *ps, const char *req, Id *ret_how, Id *ret_what, char *errbuf,
                       size_t errlen)
{
        Pool *pool = ps->pool;
        char name[256], op[3] = "", ver[256] = "";
        const char *paren = strchr(req, '(');
        size_t nl = paren ? (size_t)(paren - req) : strlen(req);
        char *colon;
        Id nid, what, p, pp;
        int flags = 0;
        bool by_name = false, any = false;

        while (nl > 0 && req[nl - 1] == ' ')
                nl--;
        if (nl >= sizeof(name))
                nl = sizeof(name) - 1;
        memcpy(name, req, nl);
        name[nl] = '\0';
        if ((colon = strchr(name, ':')) != NULL) {
                if (strcmp(colon + 1, ps->arch) != 0 && strcmp(colon + 1, "all") != 0) {
                        snprintf(errbuf, errlen,
                                 "'%s': only the image's architecture (%s) can "
                                 "be installed",
                                 req, ps->arch);
                        return -1;
                }
                *colon = '\0';
        }
        if (paren) {
                const char *q = paren + 1;
                size_t ol = strspn(q, "<>=");
                if (ol > 2)
                        ol = 2;
                memcpy(op, q, ol);
                op[ol] = '\0';
                q += ol;
                q += strspn(q, " ");
                snprintf(ver, sizeof(ver), "%.*s", (int)strcspn(q, ") "), q);
                if (!strcmp(op, "="))
                        flags = REL_EQ;
                else if (!strcmp(op, ">="))
                        flags = REL_GT | REL_EQ;
                else if (!strcmp(op, "<="))
                        flags = REL_LT | REL_EQ;
                else if (!strcmp(op, ">>"))
                        flags = REL_GT;
                else if (!strcmp(op, "<<"))
                        flags = REL_LT;
        }
        nid = pool_str2id(pool, name, 1);
        what = flags ? pool_rel2id(pool, nid, pool_str2id(pool, ver, 1), flags, 1) : nid;
        /* a real package of that name first; else whatever provides it (virtual) */
        FOR_PROVIDES(p, pp, what)
        {
                any = true;
                if (pool->solvables[p].name == nid)
                        by_name = true;
        }
        if (!any)
                return 0;
        *ret_how = SOLVER_INSTALL | (by_name ? SOLVER_SOLVABLE_NAME : SOLVER_SOLVABLE_PROVIDES);
        *ret_what = what;
        return 1;
}

static Id find_locked(pkg_solver *ps, const pkg_locked *lk)
{
        Pool *pool = ps->pool;
        Id nid = pool_str2id(pool, lk->name, 0);
        Id p, pp;

        if (nid == 0)
                return 0;
        FOR_PROVIDES(p, pp, nid)
        {
                Solvable *s = pool->solvables + p;
                if (s->name == nid && !strcmp(pool_id2str(pool, s->evr), lk->version) &&
                    !strcmp(pool_id2str(pool, s->arch), lk->arch))
                        return p;
        }
        return 0;
}

static bool in_set(const pkg_set *set, const char *name, const char *arch)
{
        for (size_t i = 0; set && i < set->n; i++)
                if (!strcmp(set->v[i].name, name) && !strcmp(set->v[i].arch, arch))
                        return true;
        return false;
}

/* The Essential set with what it needs (mmdebstrap's "essential" variant):
 * unpacked before dpkg first runs. Empty if it cannot be installed alone. */
static void essential_closure(pkg_solver *ps, Queue *ret)
{
        Pool *pool = ps->pool;
        Solver *solv;
        Queue job;

        queue_init(&job);
        for (size_t i = 0; i < ps->n_essential; i++)
                queue_push2(&job, SOLVER_INSTALL | SOLVER_SOLVABLE_NAME,
                            pool_str2id(pool, ps->essential[i], 1));
        if (job.count > 0 && pool_str2id(pool, "usr-is-merged", 0) != 0) {
                Id umid = pool_str2id(pool, "usr-is-merged", 0), p, pp;
                FOR_PROVIDES(p, pp, umid) if (pool->solvables[p].name == umid)
                {
                        queue_push2(&job, SOLVER_INSTALL | SOLVER_SOLVABLE_NAME, umid);
                        break;
                }
        }
        solv = solver_create(pool);
        solver_set_flag(solv, SOLVER_FLAG_IGNORE_RECOMMENDED, 1);
        if (job.count > 0 && solver_solve(solv, &job) == 0)
                solver_get_decisionqueue(solv, ret);
        for (int i = 0; i < ret->count; i++)
                if (ret->elements[i] < 0)
                        ret->elements[i] = 0;
        solver_free(solv);
        queue_free(&job);
}

static int locked_of(pkg_solver *ps, Id p, pkg_locked *lk, forge_error **err)
{
        Pool *pool = ps->pool;
        Solvable *s = pool->solvables + p;
        const char *loc = solvable_lookup_location(s, NULL);
        Id type = 0;
        const char *sum = solvable_lookup_checksum(s, SOLVABLE_CHECKSUM, &type);
        const char *name = pool_id2str(pool, s->name);

        memset(lk, 0, sizeof(*lk));
        if (loc == NULL || sum == NULL || type != REPOKEY_TYPE_SHA256 || strlen(sum) != 64)
                return forge_error_make(
                    err, EBADMSG, "package '%s' has no Filename or SHA256 in its index", name);
        if (!pkg_name_valid(name) || !pkg_version_valid(pool_id2str(pool, s->evr)) ||
            !pkg_arch_valid(pool_id2str(pool, s->arch)))
                return forge_error_make(err, EBADMSG,
                                        "package '%s' has an invalid name, version "
                                        "or architecture in its index",
                                        name);
        if (loc[0] == '/' || strstr(loc, "..") != NULL || strchr(loc, '\n'))
                return forge_error_make(err, EBADMSG,
                                        "package '%s': Filename '%s' is not a "
                                        "path inside the repository",
                                        name, loc);
        lk->name = strdup(name);
        lk->version = strdup(pool_id2str(pool, s->evr));
        lk->arch = strdup(pool_id2str(pool, s->arch));
        lk->filename = strdup(loc);
        lk->size = size_of(ps, name, lk->version ? lk->version : "", lk->arch ? lk->arch : "");
        lk->repo = (size_t)(uintptr_t)s->repo->appdata;
        lk->essential = is_essential(ps, name);
        snprintf(lk->sha256, sizeof(lk->sha256), "sha256:%s", sum);
        if (!lk->name || !lk->version || !lk->arch || !lk->filename)
                return forge_error_make(err, ENOMEM, "resolve");
        return 0;
}

static int problems(pkg_solver *ps, Solver *solv, int n, const spec *sp, const spec_layer *l,
                    forge_error **err)
{
        char *msg = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&msg, &len);
        cleanup_free char *label = blayer_label(l);
        int shown = 0;

        if (m == NULL)
                return forge_error_make(err, ENOMEM, "resolve");
        for (Id pr = 1; pr <= (Id)n && shown < 5; pr++, shown++)
                fprintf(m, "\n  %s", solver_problem2str(solv, pr));
        if (n > shown)
                fprintf(m, "\n  (and %d more)", n - shown);
        fclose(m);
        spec_error(err, sp, l->src_pos, "layer '%s': the packages cannot be installed together:%s",
                   label ? label : "", msg ? msg : "");
        free(msg);
        return -1;
}

/* The leftmost name of an "a | b | c" dependency. */
static Id first_alternative(Pool *pool, Id dep)
{
        while (ISRELDEP(dep) && GETRELDEP(pool, dep)->flags == REL_OR)
                dep = GETRELDEP(pool, dep)->name;
        return dep;
}

static bool chosen_explicitly(Pool *pool, Solver *solv, Id dep, const Queue *explicit_names)
{
        Id p, pp;

        if (ISRELDEP(dep) && GETRELDEP(pool, dep)->flags == REL_OR)
                return chosen_explicitly(pool, solv, GETRELDEP(pool, dep)->name, explicit_names) ||
                       chosen_explicitly(pool, solv, GETRELDEP(pool, dep)->evr, explicit_names);
        FOR_PROVIDES(p, pp, dep)
        {
                if (solver_get_decisionlevel(solv, p) <= 0)
                        continue;
                for (int i = 0; i < explicit_names->count; i++)
                        if (explicit_names->elements[i] == pool->solvables[p].name)
                                return true;
        }
        return false;
}

/* apt installs the first alternative of "a | b" that can be, unless the
 * dependency is met by a package asked for anyway: where libsolv chose
 * another one, favour the first (the caller solves again). */
static void favour_first_alternatives(Pool *pool, Solver *solv, const Queue *job, Queue *favour)
{
        Queue dq, names;

        queue_init(&dq);
        queue_init(&names);
        for (int i = 0; i + 1 < job->count; i += 2) {
                Id how = job->elements[i] & SOLVER_SELECTMASK, what = job->elements[i + 1];
                if (how == SOLVER_SOLVABLE)
                        queue_push(&names, pool->solvables[what].name);
                else if (how == SOLVER_SOLVABLE_NAME)
                        queue_push(&names, ISRELDEP(what) ? GETRELDEP(pool, what)->name : what);
        }
        solver_get_decisionqueue(solv, &dq);
        for (int i = 0; i < dq.count; i++) {
                Solvable *s;
                Id *rp, req;
                if (dq.elements[i] <= 0)
                        continue;
                s = pool->solvables + dq.elements[i];
                if (s->repo == NULL || !s->requires)
                        continue;
                for (rp = s->repo->idarraydata + s->requires; (req = *rp) != 0; rp++) {
                        Id first, p, pp;
                        bool chosen = false, any = false;
                        if (!ISRELDEP(req) || GETRELDEP(pool, req)->flags != REL_OR)
                                continue;
                        first = first_alternative(pool, req);
                        FOR_PROVIDES(p, pp, first)
                        {
                                any = true;
                                chosen |= solver_get_decisionlevel(solv, p) > 0;
                        }
                        if (any && !chosen && !chosen_explicitly(pool, solv, req, &names))
                                queue_push2(favour, SOLVER_FAVOR | SOLVER_SOLVABLE_PROVIDES, first);
                }
        }
        queue_free(&names);
        queue_free(&dq);
}

int pkg_solver_layer(pkg_solver *ps, const spec *sp, const spec_layer *l, const pkg_set *below,
                     bool add_essential_set, pkg_set *ret, forge_error **err)
{
        Pool *pool = ps->pool;
        Solver *solv = NULL;
        Transaction *trans = NULL;
        Queue job, closure;
        pkg_set out = {0};
        int r = -1, np;

        queue_init(&job);
        queue_init(&closure);
        if (add_essential_set)
                essential_closure(ps, &closure);
        for (size_t i = 0; i < l->n_packages; i++) {
                Id how = 0, what = 0;
                char eb[256];
                int k = request_job(ps, l->packages[i], &how, &what, eb, sizeof(eb));
                if (k < 0) {
                        spec_error(err, sp, l->package_pos[i], "%s", eb);
                        goto out;
                }
                if (k == 0) {
                        spec_error(err, sp, l->package_pos[i],
                                   "package '%s' is not in any repository for %s (check the "
                                   "name, the version and 'repositories')",
                                   l->packages[i], ps->arch);
                        goto out;
                }
                queue_push2(&job, how, what);
        }
        for (size_t i = 0; below && i < below->n; i++) {
                Id p = find_locked(ps, &below->v[i]);
                if (p == 0) {
                        forge_error_make(err, 0,
                                         "package '%s' %s of an earlier layer is gone from "
                                         "the indexes",
                                         below->v[i].name, below->v[i].version);
                        goto out;
                }
                queue_push2(&job, SOLVER_INSTALL | SOLVER_SOLVABLE, p);
        }
        if (add_essential_set) {
                Id umid = pool_str2id(pool, "usr-is-merged", 0), p, pp;
                bool have_um = false;
                for (size_t i = 0; i < ps->n_essential; i++)
                        queue_push2(&job, SOLVER_INSTALL | SOLVER_SOLVABLE_NAME,
                                    pool_str2id(pool, ps->essential[i], 1));
                /* forge sets up a merged /usr itself, as mmdebstrap does: say so
                 * rather than let "usrmerge | usr-is-merged" convert it */
                if (umid != 0)
                        FOR_PROVIDES(p, pp, umid) have_um |= pool->solvables[p].name == umid;
                if (have_um)
                        queue_push2(&job, SOLVER_INSTALL | SOLVER_SOLVABLE_NAME, umid);
        }
        solv = solver_create(pool);
        solver_set_flag(solv, SOLVER_FLAG_IGNORE_RECOMMENDED, !l->recommends);
        np = solver_solve(solv, &job);
        if (np > 0) {
                problems(ps, solv, np, sp, l, err);
                goto out;
        }
        {
                Queue favour;
                int base = job.count;
                queue_init(&favour);
                favour_first_alternatives(pool, solv, &job, &favour);
                if (favour.count > 0) {
                        queue_insertn(&job, job.count, favour.count, favour.elements);
                        /* a favour is a preference: if it cannot hold, the first answer stands */
                        if (solver_solve(solv, &job) > 0) {
                                queue_truncate(&job, base);
                                solver_solve(solv, &job);
                        }
                }
                queue_free(&favour);
        }
        trans = solver_create_transaction(solv);
        transaction_order(trans, 0);
        out.v = calloc((size_t)trans->steps.count + 1, sizeof(*out.v));
        if (out.v == NULL) {
                forge_error_make(err, ENOMEM, "resolve");
                goto out;
        }
        for (int i = 0; i < trans->steps.count; i++) {
                Id p = trans->steps.elements[i];
                Solvable *s = pool->solvables + p;
                if (in_set(below, pool_id2str(pool, s->name), pool_id2str(pool, s->arch)))
                        continue;
                if (locked_of(ps, p, &out.v[out.n], err) < 0) {
                        out.n++;
                        goto out;
                }
                for (int c = 0; c < closure.count; c++)
                        if (closure.elements[c] == p)
                                out.v[out.n].essential = true;
                out.n++;
        }
        *ret = out;
        memset(&out, 0, sizeof(out));
        r = 0;
out:
        pkg_set_free(&out);
        if (trans)
                transaction_free(trans);
        if (solv)
                solver_free(solv);
        queue_free(&job);
        queue_free(&closure);
        return r;
}
