/* SPDX-License-Identifier: MIT */
/* The builder's `run:` steps: /bin/sh -c COMMAND in a container over the
 * image so far, writing into the upper directory the builder gave us. */
#include <fcntl.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "cli/build-step.h"
#include "runtime/runtime.h"

int cli_build_step(const builder_run_step *step, int *ret_status, void *userdata, forge_error **err)
{
        char *argv[] = {"/bin/sh", "-c", (char *)step->command, NULL};
        const char *tmp_root = userdata;
        cleanup_close int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        runtime_config cfg;
        runtime_result res;

        runtime_config_init(&cfg);
        cfg.lowerdirs = step->lowerdirs;
        cfg.n_lowerdirs = step->n_lowerdirs;
        cfg.upper_dir = step->upper_dir;
        cfg.work_dir = step->work_dir;
        cfg.tmp_root = tmp_root;
        cfg.argv = argv;
        cfg.env = step->env;
        cfg.hostname = "forge-build";
        cfg.network_host = step->network_host;
        cfg.network_user = step->network_user;
        cfg.memory = step->memory;
        cfg.pids = step->pids ? step->pids : RUNTIME_DEFAULT_PIDS;
        cfg.caps = RUNTIME_CAPS_BUILD;
        cfg.stdin_fd = devnull;
        cfg.stdout_fd = step->output_fd;
        cfg.stderr_fd = step->output_fd;
        if (runtime_container_run(&cfg, &res, err) < 0)
                return forge_error_prefix(err, "run '%s'", step->command);
        *ret_status = res.status;
        return 0;
}
