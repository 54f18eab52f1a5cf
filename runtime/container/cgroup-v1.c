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
        char buf[64], *dir;

        if (cfg->memory) {
                if (make_dir(cg, "memory", &dir, err) < 0)
                        return -1;
                cg->memory_dir = dir;
                snprintf(buf, sizeof(buf), "%llu", (unsigned long long)cfg->memory);
                if (ctr_cgroup_write(dir, "memory.limit_in_bytes", buf, err) < 0)
                        return -1;
                /* No escape into swap: memory+swap gets the same limit. */
                ctr_cgroup_write(dir, "memory.memsw.limit_in_bytes", buf, NULL);
                ctr_cgroup_write(dir, "memory.swappiness", "0", NULL);
        }
        if (cfg->pids) {
                if (make_dir(cg, "pids", &dir, err) < 0)
                        return -1;
                snprintf(buf, sizeof(buf), "%lld", (long long)cfg->pids);
                if (ctr_cgroup_write(dir, "pids.max", buf, err) < 0)
                        return -1;
        }
        if (cfg->cpus_milli) {
                if (make_dir(cg, "cpu", &dir, err) < 0)
                        return -1;
                snprintf(buf, sizeof(buf), "%u", cfg->cpus_milli * 100);
                if (ctr_cgroup_write(dir, "cpu.cfs_period_us", "100000", err) < 0 ||
                    ctr_cgroup_write(dir, "cpu.cfs_quota_us", buf, err) < 0)
                        return -1;
        }
        return 0;
}

const cgroup_ops ctr_cgroup_v1_ops = {
    .name = "v1",
    .create = v1_create,
    .oom_file = "memory.oom_control",
};
