/* SPDX-License-Identifier: MIT */
/* cgroup v2: one directory in the unified hierarchy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/container/container-internal.h"

/* Enables the controllers cfg needs in dir's children; true when they are
 * (already) available there. */
static bool delegate(const char *dir, const runtime_config *cfg)
{
        bool ok = true;

        if (cfg->memory)
                ok &= ctr_cgroup_write(dir, "cgroup.subtree_control", "+memory", NULL) == 0;
        if (cfg->pids)
                ok &= ctr_cgroup_write(dir, "cgroup.subtree_control", "+pids", NULL) == 0;
        if (cfg->cpus_milli)
                ok &= ctr_cgroup_write(dir, "cgroup.subtree_control", "+cpu", NULL) == 0;
        return ok;
}

/* The parent for the run's cgroup: forge's own cgroup when controllers can be
 * delegated from it; otherwise (it holds processes: the "no internal
 * processes" rule, e.g. a service or session scope) the nearest ancestor that
 * can, up to the root, which always can. */
static char *pick_parent(const char *self, const runtime_config *cfg)
{
        cleanup_free char *rel = strdup(strcmp(self, "/") == 0 ? "" : self);

        if (rel == NULL)
                return NULL;
        for (;;) {
                char *dir = NULL;
                char *slash;

                if (asprintf(&dir, "/sys/fs/cgroup%s", rel) < 0)
                        return NULL;
                if (delegate(dir, cfg) || rel[0] == '\0')
                        return dir;
                free(dir);
                slash = strrchr(rel, '/');
                if (slash == NULL)
                        rel[0] = '\0';
                else
                        *slash = '\0';
        }
}

static int v2_create(cgroup *cg, const runtime_config *cfg, forge_error **err)
{
        cleanup_free char *self = ctr_cgroup_self_path("");
        cleanup_free char *parent = NULL;
        char *dir = NULL;

        if (self == NULL)
                return forge_error_make(err, 0, "no cgroup v2 path in /proc/self/cgroup");
        parent = pick_parent(self, cfg);
        if (parent == NULL || asprintf(&dir, "%s/%s", parent, cg->name) < 0)
                return forge_error_make(err, ENOMEM, "cgroup");
        if (mkdir(dir, 0755) < 0) {
                int e = errno;

                free(dir);
                return forge_error_make(err, e, "create cgroup under '%s'", parent);
        }
        cg->dirs[cg->n_dirs++] = dir;
        if (cfg->memory) {
                cg->memory_dir = dir;
                if (ctr_cgroup_printf(dir, "memory.max", err, "%llu",
                                      (unsigned long long)cfg->memory) < 0)
                        return forge_error_prefix(err,
                                                  "is the memory controller enabled in "
                                                  "'%s/cgroup.subtree_control'",
                                                  parent);
                ctr_cgroup_write(dir, "memory.swap.max", "0", NULL);
        }
        if (cfg->pids && ctr_cgroup_printf(dir, "pids.max", err, "%lld", (long long)cfg->pids) < 0)
                return -1;
        if (cfg->cpus_milli &&
            ctr_cgroup_printf(dir, "cpu.max", err, "%u 100000", cfg->cpus_milli * 100) < 0)
                return -1;
        return 0;
}

const cgroup_ops ctr_cgroup_v2_ops = {
    .name = "v2",
    .create = v2_create,
    .oom_file = "memory.events",
};
