/* SPDX-License-Identifier: MIT */
/*
 * cgroups: one interface, two implementations (cgroup-v2.c, cgroup-v1.c)
 * that make the directories and apply the limits; joining, the OOM counter
 * and the removal are the same for both, here.
 * The run's cgroup is made below forge's own cgroup in each hierarchy, so
 * forge works when it is itself confined (a service, a CI job's cgroup).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/container/container-internal.h"

char *ctr_cgroup_self_path(const char *controller)
{
        cleanup_fclose FILE *f = fopen("/proc/self/cgroup", "re");
        char line[4096];
        size_t clen = strlen(controller);

        if (f == NULL)
                return NULL;
        while (fgets(line, sizeof(line), f) != NULL) {
                char *list = strchr(line, ':'), *path;

                if (list == NULL)
                        continue;
                list++;
                path = strchr(list, ':');
                if (path == NULL)
                        continue;
                *path++ = '\0';
                path[strcspn(path, "\n")] = '\0';
                if (clen == 0) {
                        if (list[0] == '\0' && strncmp(line, "0:", 2) == 0)
                                return strdup(path);
                        continue;
                }
                for (char *tok = strtok(list, ","); tok != NULL; tok = strtok(NULL, ","))
                        if (strcmp(tok, controller) == 0)
                                return strdup(path);
        }
        return NULL;
}

int ctr_cgroup_write(const char *dir, const char *file, const char *value, forge_error **err)
{
        cleanup_free char *p = fs_path_join(dir, file);
        cleanup_close int fd = -1;

        if (p == NULL)
                return forge_error_make(err, ENOMEM, "cgroup");
        fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return forge_error_make(err, errno, "open '%s'", p);
        if (write(fd, value, strlen(value)) < 0)
                return forge_error_make(err, errno, "write '%s' to '%s'", value, p);
        return 0;
}

int ctr_cgroup_printf(const char *dir, const char *file, forge_error **err, const char *fmt, ...)
{
        char buf[64];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        return ctr_cgroup_write(dir, file, buf, err);
}

static bool is_cgroup2(const char *path)
{
        struct statfs st;

        return statfs(path, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}

bool ctr_cgroup_unified(void)
{
        return is_cgroup2("/sys/fs/cgroup");
}

int ctr_cgroup_new(const runtime_config *cfg, cgroup **ret, forge_error **err)
{
        unsigned rnd;
        cgroup *cg;

        *ret = NULL;
        if (cfg->memory == 0 && cfg->cpus_milli == 0 && cfg->pids == 0)
                return 0;
        cg = calloc(1, sizeof(*cg));
        if (cg == NULL)
                return forge_error_make(err, ENOMEM, "cgroup");
        cg->ops = is_cgroup2("/sys/fs/cgroup") ? &ctr_cgroup_v2_ops : &ctr_cgroup_v1_ops;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                rnd = (unsigned)time(NULL);
        snprintf(cg->name, sizeof(cg->name), "forge-%d-%06x", (int)getpid(), rnd & 0xffffff);
        if (cg->ops->create(cg, cfg, err) < 0) {
                const char *hierarchy = cg->ops->name; /* static: outlives cg */

                ctr_cgroup_free(cg);
                return forge_error_prefix(err, "set up the %s cgroup", hierarchy);
        }
        *ret = cg;
        return 0;
}

int ctr_cgroup_attach(cgroup *cg, pid_t pid, forge_error **err)
{
        for (size_t i = 0; i < cg->n_dirs; i++)
                if (ctr_cgroup_printf(cg->dirs[i], "cgroup.procs", err, "%d", (int)pid) < 0)
                        return -1;
        return 0;
}

bool ctr_cgroup_oom_counted(const char *dir, const char *file)
{
        cleanup_free char *p = fs_path_join(dir, file);
        cleanup_fclose FILE *f = p ? fopen(p, "re") : NULL;
        char key[64];
        unsigned long long v;

        if (f == NULL)
                return false;
        while (fscanf(f, "%63s %llu", key, &v) == 2)
                if (strcmp(key, "oom_kill") == 0)
                        return v > 0;
        return false;
}

bool ctr_cgroup_oom_killed(cgroup *cg)
{
        return cg != NULL && cg->memory_dir != NULL &&
               ctr_cgroup_oom_counted(cg->memory_dir, cg->ops->oom_file);
}

int ctr_cgroup_self_join_open(cgroup *cg, int fds[CGROUP_MAX_DIRS], size_t *ret_n,
                              forge_error **err)
{
        *ret_n = 0;
        if (cg == NULL || cg->ops->self_join_file == NULL)
                return 0;
        for (size_t i = 0; i < cg->n_dirs; i++) {
                cleanup_free char *p = fs_path_join(cg->dirs[i], cg->ops->self_join_file);

                fds[i] = p ? open(p, O_WRONLY | O_CLOEXEC) : -1;
                if (fds[i] < 0) {
                        int e = p ? errno : ENOMEM;

                        while (i-- > 0)
                                close(fds[i]);
                        return forge_error_make(err, e, "open '%s'", p ? p : cg->dirs[0]);
                }
        }
        *ret_n = cg->n_dirs;
        return 0;
}

/* rmdir once the last task is gone; exiting tasks may linger briefly. */
static void rmdir_retry(const char *dir)
{
        for (int i = 0; i < 200; i++) {
                if (rmdir(dir) == 0 || errno == ENOENT)
                        return;
                if (errno != EBUSY)
                        return;
                nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
}

void ctr_cgroup_forget(cgroup *cg)
{
        if (cg == NULL)
                return;
        for (size_t i = 0; i < cg->n_dirs; i++)
                free(cg->dirs[i]);
        free(cg);
}

void ctr_cgroup_free(cgroup *cg)
{
        for (size_t i = 0; cg != NULL && i < cg->n_dirs; i++)
                rmdir_retry(cg->dirs[i]);
        ctr_cgroup_forget(cg);
}
