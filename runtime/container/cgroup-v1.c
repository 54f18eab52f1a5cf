/* SPDX-License-Identifier: MIT */
/* cgroup v1: a directory per controller (memory, pids, cpu). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/container/container-internal.h"

static int make_dir(cgroup *cg, const char *controller, char **ret_dir, forge_error **err)
{
        cleanup_free char *self = ctr_cgroup_self_path(controller);
        char *dir = NULL;

        if (self == NULL)
                return forge_error_make(err, 0,
                                        "the '%s' cgroup controller is not available "
                                        "(not in /proc/self/cgroup)",
                                        controller);
        if (asprintf(&dir, "/sys/fs/cgroup/%s%s/%s", controller, strcmp(self, "/") == 0 ? "" : self,
                     cg->name) < 0)
                return forge_error_make(err, ENOMEM, "cgroup");
        if (mkdir(dir, 0755) < 0) {
                int e = errno;

                forge_error_make(err, e, "create cgroup '%s'", dir);
                free(dir);
                return -1;
        }
        cg->dirs[cg->n_dirs++] = dir;
        *ret_dir = dir;
        return 0;
}

static int v1_create(cgroup *cg, const runtime_config *cfg, forge_error **err)
{
        char *dir;

        if (cfg->memory) {
                if (make_dir(cg, "memory", &dir, err) < 0)
                        return -1;
                cg->memory_dir = dir;
                if (ctr_cgroup_printf(dir, "memory.limit_in_bytes", err, "%llu",
                                      (unsigned long long)cfg->memory) < 0)
                        return -1;
                /* No escape into swap: memory+swap gets the same limit. */
                ctr_cgroup_printf(dir, "memory.memsw.limit_in_bytes", NULL, "%llu",
                                  (unsigned long long)cfg->memory);
                ctr_cgroup_write(dir, "memory.swappiness", "0", NULL);
        }
        if (cfg->pids) {
                if (make_dir(cg, "pids", &dir, err) < 0 ||
                    ctr_cgroup_printf(dir, "pids.max", err, "%lld", (long long)cfg->pids) < 0)
                        return -1;
        }
        if (cfg->cpus_milli) {
                unsigned quota_us = cfg->cpus_milli * 100; /* of every 100000 */

                if (make_dir(cg, "cpu", &dir, err) < 0 ||
                    ctr_cgroup_write(dir, "cpu.cfs_period_us", "100000", err) < 0 ||
                    ctr_cgroup_printf(dir, "cpu.cfs_quota_us", err, "%u", quota_us) < 0)
                        return -1;
        }
        return 0;
}

const cgroup_ops ctr_cgroup_v1_ops = {
    .name = "v1",
    .self_join_file = "tasks",
    .create = v1_create,
    .oom_file = "memory.oom_control",
};
