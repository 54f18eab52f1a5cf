/* SPDX-License-Identifier: MIT */
/*
 * essential: true, mmdebstrap's way: the packages' data.tar members are
 * unpacked into the layer's overlay upper directory (so the image has a
 * shell and dpkg), the .debs are linked in, and the image's own dpkg
 * installs them inside the build sandbox with no network: first the
 * Essential set (and what it needs) with --force-depends, since nothing
 * is configured yet, then the rest in the order libsolv gave. What the
 * scripts leave that depends on the clock or chance is then removed, so
 * the same lock gives the same layer.
 */
#include "builder/pkg-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"

#define DEBS_DIR "var/cache/forge-debs"

/* Whether rel exists in one of the trees, resolved inside it (a link such as
 * bin -> /usr/bin stays in the tree). */
static bool lower_has(const char *const *lowerdirs, size_t n, const char *rel)
{
        for (size_t i = 0; i < n; i++) {
                cleanup_close int d = open(lowerdirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                struct open_how how = {
                    .flags = O_PATH | O_CLOEXEC,
                    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
                };
                int fd = d < 0 ? -1 : (int)syscall(SYS_openat2, d, rel, &how, sizeof(how));
                if (fd >= 0) {
                        close(fd);
                        return true;
                }
        }
        return false;
}

/* /bin/sh and dpkg, in the upper directory or a layer below (links count). */
static bool has_tools(const char *upper, const char *const *lowerdirs, size_t n)
{
        const char *const up[] = {upper};
        bool sh = lower_has(up, 1, "bin/sh") || lower_has(lowerdirs, n, "bin/sh") ||
                  lower_has(up, 1, "usr/bin/sh") || lower_has(lowerdirs, n, "usr/bin/sh");
        bool dpkg = lower_has(up, 1, "usr/bin/dpkg") || lower_has(lowerdirs, n, "usr/bin/dpkg") ||
                    lower_has(up, 1, "bin/dpkg") || lower_has(lowerdirs, n, "bin/dpkg");
        return sh && dpkg;
}

static int write_at(int dfd, const char *rel, const char *text, forge_error **err)
{
        return fs_write_atomic(dfd, rel, text, strlen(text), 0644, err);
}

/* An empty dpkg database, as mmdebstrap starts one. */
static int dpkg_skeleton(const char *upper, forge_error **err)
{
        static const char *dirs[] = {"var/lib/dpkg/info",     "var/lib/dpkg/updates",
                                     "var/lib/dpkg/triggers", "var/lib/dpkg/alternatives",
                                     "etc/dpkg/dpkg.cfg.d",   DEBS_DIR};
        cleanup_close int dfd = -1;

        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                cleanup_free char *p = fs_path_join(upper, dirs[i]);
                if (p == NULL || fs_mkdir_p(p, 0755, err) < 0)
                        return p ? -1 : forge_error_make(err, ENOMEM, "dpkg");
        }
        dfd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return forge_error_make(err, errno, "open '%s'", upper);
        if (write_at(dfd, "var/lib/dpkg/status", "", err) < 0 ||
            write_at(dfd, "var/lib/dpkg/available", "", err) < 0)
                return -1;
        return 0;
}

/* Merged /usr, as Debian has it since bookworm (and its usr-is-merged
 * package checks): bin, sbin, lib (and lib64 on amd64) are links into usr/. */
static int merged_usr(const char *upper, const char *arch, forge_error **err)
{
        static const char *dirs[] = {"bin", "sbin", "lib", "lib64"};
        cleanup_close int dfd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (dfd < 0)
                return forge_error_make(err, errno, "open '%s'", upper);
        if (mkdirat(dfd, "usr", 0755) < 0 && errno != EEXIST)
                return forge_error_make(err, errno, "merged /usr");
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                char target[32];
                if (i == 3 && strcmp(arch, "amd64") != 0)
                        continue;
                snprintf(target, sizeof(target), "usr/%s", dirs[i]);
                if ((mkdirat(dfd, target, 0755) < 0 && errno != EEXIST) ||
                    symlinkat(target, dfd, dirs[i]) < 0)
                        return forge_error_make(err, errno, "merged /usr: '%s'", dirs[i]);
        }
        return 0;
}

static bool set_has(const pkg_set *set, const char *name)
{
        for (size_t i = 0; i < set->n; i++)
                if (strcmp(set->v[i].name, name) == 0)
                        return true;
        return false;
}

static int unpack_deb(store *s, const char *upper, const pkg_locked *p, forge_error **err)
{
        cleanup_free char *deb = store_blob_path(s, p->sha256);

        if (deb == NULL)
                return forge_error_make(err, ENOMEM, "unpack");
        if (store_deb_data_extract(deb, upper,
                                   STORE_EXTRACT_OWNERS | STORE_EXTRACT_SPECIAL_BITS |
                                       STORE_EXTRACT_DEVICES | STORE_EXTRACT_KEEP_DIR_SYMLINKS,
                                   err) < 0)
                return forge_error_prefix(err, "unpack '%s'", p->name);
        return 0;
}

/* Hard links (the store and the layer's scratch share a file system), else copies. */
static int place_deb(store *s, const char *debs, size_t i, const pkg_locked *p, char **ret_path,
                     forge_error **err)
{
        cleanup_free char *src = store_blob_path(s, p->sha256), *dst = NULL;

        if (src == NULL || asprintf(&dst, "%s/%04zu.deb", debs, i) < 0)
                return forge_error_make(err, ENOMEM, "dpkg");
        if (link(src, dst) < 0) {
                cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC);
                cleanup_close int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (in < 0 || out < 0 || fs_copy_fd(in, out, err) < 0)
                        return forge_error_make(err, errno, "copy '%s' into the layer", p->name);
        }
        if (asprintf(ret_path, "/" DEBS_DIR "/%04zu.deb", i) < 0)
                return forge_error_make(err, ENOMEM, "dpkg");
        return 0;
}

/* Whether p pre-depends on a package of chunk [from, to) of the set. */
static int predepends_on(store *s, const pkg_set *set, size_t idx, size_t from, size_t to,
                         bool *ret, forge_error **err)
{
        cleanup_free char *pd = NULL;

        *ret = false;
        if (pkg_deb_field(s, &set->v[idx], "Pre-Depends", &pd, err) < 0)
                return -1;
        for (char *tok = pd ? strtok(pd, ",|") : NULL; tok && !*ret; tok = strtok(NULL, ",|")) {
                size_t n;
                tok += strspn(tok, " ");
                n = strcspn(tok, " (:");
                for (size_t i = from; i < to && !*ret; i++)
                        *ret = strlen(set->v[i].name) == n && !strncmp(set->v[i].name, tok, n);
        }
        return 0;
}

/* dpkg configures a pre-dependency only at the end of an --install run:
 * a package that pre-depends on one of the same run starts a new run. */
static int script(store *s, FILE *m, const char *const *debs, const pkg_set *set, bool bootstrap,
                  uint64_t sde, forge_error **err)
{
        bool any_first = false, open_run = false;
        size_t run_from = 0;

        fprintf(m,
                "set -e\nexport SOURCE_DATE_EPOCH=%llu DEBIAN_FRONTEND=noninteractive "
                "DEBCONF_NONINTERACTIVE_SEEN=true LC_ALL=C.UTF-8 PYTHONDONTWRITEBYTECODE=1\n",
                (unsigned long long)sde);
        /* by path: a shell that prefers its built-in applets has a "dpkg" of its own */
        fputs("DPKG=/usr/bin/dpkg\n[ -x $DPKG ] || DPKG=/bin/dpkg\n", m);
        if (bootstrap) {
                fputs("$DPKG --force-depends --force-confdef --force-confold --force-unsafe-io "
                      "--install",
                      m);
                for (size_t i = 0; i < set->n; i++)
                        if (set->v[i].essential) {
                                fprintf(m, " %s", debs[i]);
                                any_first = true;
                        }
                fputs(any_first ? "\n" : " --version >/dev/null\n", m);
        }
        for (size_t i = 0; i < set->n; i++) {
                bool pre = false;
                if (bootstrap && set->v[i].essential)
                        continue;
                if (open_run && predepends_on(s, set, i, run_from, i, &pre, err) < 0)
                        return -1;
                if (!open_run || pre) {
                        fputs(open_run ? "\n" : "", m);
                        fputs("$DPKG --force-confdef --force-confold --force-unsafe-io --install",
                              m);
                        open_run = true;
                        run_from = i;
                }
                fprintf(m, " %s", debs[i]);
        }
        if (open_run)
                fputs("\n", m);
        /* a package that failed to configure must fail the build */
        fputs(
            "audit=$($DPKG --audit)\nif [ -n \"$audit\" ]; then echo \"$audit\" >&2; exit 1; fi\n",
            m);
        return ferror(m) ? forge_error_make(err, ENOMEM, "dpkg") : 0;
}

/* What scripts leave that depends on the clock or chance (see mmdebstrap and
 * the reproducible-builds work on installed systems). */
static int normalise(const char *upper, forge_error **err)
{
        static const char *drop[] = {
            "var/log/dpkg.log",
            "var/log/alternatives.log",
            "var/log/apt/history.log",
            "var/log/apt/term.log",
            "var/log/apt/eipp.log.xz",
            "var/cache/ldconfig/aux-cache",
            "var/lib/dpkg/status-old",
            "var/lib/dpkg/available-old",
            "var/lib/dpkg/diversions-old",
            "var/lib/dpkg/statoverride-old",
            "var/cache/debconf/config.dat-old",
            "var/cache/debconf/templates.dat-old",
            "var/cache/debconf/passwords.dat-old",
            "etc/passwd-",
            "etc/group-",
            "etc/shadow-",
            "etc/gshadow-",
            "etc/subuid-",
            "etc/subgid-",
            "var/lib/dbus/machine-id",
            DEBS_DIR,
        };
        cleanup_close int dfd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;

        if (dfd < 0)
                return forge_error_make(err, errno, "open '%s'", upper);
        for (size_t i = 0; i < ARRAY_SIZE(drop); i++) {
                cleanup_free char *p = fs_path_join(upper, drop[i]);
                if (p == NULL || fs_rm_rf(p, err) < 0)
                        return p ? -1 : forge_error_make(err, ENOMEM, "normalise");
        }
        /* an empty machine-id means "not yet set", for systemd and dbus */
        if (fstatat(dfd, "etc/machine-id", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            write_at(dfd, "etc/machine-id", "", err) < 0)
                return -1;
        return 0;
}

static int install_dpkg(store *s, const spec *sp, const builder_opts *o,
                        const char *const *lowerdirs, size_t n_lower, const pkg_set *set,
                        bentries *out, forge_error **err)
{
        cleanup_free char *tmp = NULL, *upper = NULL, *work = NULL, *debs = NULL, *cmd = NULL;
        char **paths = calloc(set->n + 1, sizeof(char *));
        char *env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        builder_run_step step = {0};
        bool bootstrap = !lower_has(lowerdirs, n_lower, "var/lib/dpkg/status");
        size_t cmd_len = 0;
        FILE *m = NULL;
        int status = 0, r = -1;

        if (paths == NULL)
                goto oom;
        if (store_tmpdir(s, &tmp, err) < 0)
                goto out;
        upper = fs_path_join(tmp, "upper");
        work = fs_path_join(tmp, "work");
        debs = upper ? fs_path_join(upper, DEBS_DIR) : NULL;
        if (!upper || !work || !debs)
                goto oom;
        if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0) {
                forge_error_make(err, errno, "mkdir in '%s'", tmp);
                goto out;
        }
        if (bootstrap) {
                if (set_has(set, "usr-is-merged") &&
                    merged_usr(upper, sp->architecture ? sp->architecture : pkg_host_arch(), err) <
                        0)
                        goto out;
                if (dpkg_skeleton(upper, err) < 0)
                        goto out;
                /* the Essential set is enough for dpkg to run; it unpacks the rest */
                bool any = false;
                for (size_t i = 0; i < set->n; i++)
                        any |= set->v[i].essential;
                for (size_t i = 0; i < set->n; i++)
                        if ((set->v[i].essential || !any) &&
                            unpack_deb(s, upper, &set->v[i], err) < 0)
                                goto out;
        } else if (fs_mkdir_p(debs, 0755, err) < 0) {
                goto out;
        }
        if (!has_tools(upper, lowerdirs, n_lower)) {
                forge_error_usage(err,
                                  "%s: 'essential: true' needs a shell and dpkg in the image, "
                                  "and neither the layers below nor the Essential set of the "
                                  "repositories has them (use 'essential: false' for an image "
                                  "without them)",
                                  sp->path);
                goto out;
        }
        for (size_t i = 0; i < set->n; i++)
                if (place_deb(s, debs, i, &set->v[i], &paths[i], err) < 0)
                        goto out;
        m = open_memstream(&cmd, &cmd_len);
        if (m == NULL)
                goto oom;
        if (script(s, m, (const char *const *)paths, set, bootstrap, sp->source_date_epoch, err) <
            0)
                goto out;
        fclose(m);
        m = NULL;
        step.lowerdirs = lowerdirs;
        step.n_lowerdirs = n_lower;
        step.upper_dir = upper;
        step.work_dir = work;
        step.command = cmd;
        step.env = env;
        step.network_host = false;
        step.output_fd = STDERR_FILENO;
        if (o->run_step(&step, &status, o->run_step_data, err) < 0) {
                forge_error_prefix(err, "start dpkg in the build sandbox");
                goto out;
        }
        if (status != 0) {
                forge_error_make(err, 0, "dpkg failed with exit status %d (its output is above)",
                                 status);
                goto out;
        }
        if (normalise(upper, err) < 0 || bsrc_upper(sp, upper, out, err) < 0)
                goto out;
        r = 0;
        goto out;
oom:
        forge_error_make(err, ENOMEM, "dpkg");
out:
        if (m)
                fclose(m);
        for (size_t i = 0; paths && i < set->n; i++)
                free(paths[i]);
        free(paths);
        out->tmp_dir = take_ptr(tmp);
        return r;
}

int pkg_install_dpkg(store *s, const spec *sp, const builder_opts *o, const char *const *lowerdirs,
                     size_t n_lower, const pkg_set *set, bentries *out, forge_error **err)
{
        /* what forge and the sandbox create in the layer must not depend on
         * the caller's umask (dpkg sets its own for what it unpacks) */
        mode_t old = umask(022);
        int r = install_dpkg(s, sp, o, lowerdirs, n_lower, set, out, err);
        umask(old);
        return r;
}
