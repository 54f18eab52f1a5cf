/* SPDX-License-Identifier: MIT */
/*
 * forge run's service options: -d/--detach, --name, --rm, --entrypoint,
 * --log-max, read with the other run options (run-opts.c). With -d the run
 * goes to a supervisor (runtime/service/) whose workload process runs it as
 * an attached run would, its output going to the run's log.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/run-opts.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/runtime.h"
#include "runtime/service/service.h"

typedef struct service_opts {
        bool detach, remove, tty, vm;
        const char *name, *entrypoint, *log_max, *image;
        char command[512];
} service_opts;

static service_opts opts;

/* "ARG ARG ..." for `forge ps`, cut to the buffer */
static void command_text(service_opts *o, char **args, int n)
{
        size_t len = 0;

        o->command[0] = '\0';
        for (int i = 0; i < n && len + 2 < sizeof(o->command); i++) {
                int w = snprintf(o->command + len, sizeof(o->command) - len, "%s%s", len ? " " : "",
                                 args[i]);
                if (w < 0)
                        break;
                len += (size_t)w;
        }
        if (len >= sizeof(o->command))
                o->command[sizeof(o->command) - 1] = '\0';
}

typedef struct workload_args {
        cli_ctx *ctx;
        const cli_run_opts *run;
} workload_args;

/* The detached run's workload process: the run itself, as an attached run
 * would go, with the options already read. */
static int workload(void *data)
{
        workload_args *w = data;
        int r = w->run->kind == CLI_RUN_VM ? cli_run_vm(w->ctx, w->run)
                                           : cli_run_container(w->ctx, w->run);

        fflush(stdout);
        fflush(stderr);
        return r;
}

static int start(cli_ctx *ctx, const cli_run_opts *run)
{
        cleanup_error forge_error *err = NULL;
        cleanup_store store *s = NULL;
        cleanup_free char *runs = NULL;
        service_start_result res = {0};
        workload_args w = {ctx, run};
        service_params p = {
            .name = opts.name,
            .image = opts.image ? opts.image : "(rootfs)",
            .kind = opts.vm ? "vm" : "container",
            .command = opts.command,
            .remove = opts.remove,
        };

        if (opts.tty)
                return cli_usage_error("run", "-t and -d do not go together: a detached run has "
                                              "no terminal (forge exec -t gives one)");
        if (opts.log_max != NULL) {
                unsigned long long v;

                if (fs_parse_size(opts.log_max, &v) < 0 || v < 4096)
                        return cli_usage_error("run",
                                               "--log-max wants a size of at least 4K, got "
                                               "'%s'",
                                               opts.log_max);
                p.log_max = v;
        }
        if (cli_store_open(ctx, &s, &err) < 0)
                return cli_fail(&err) == FORGE_EXIT_USAGE ? FORGE_EXIT_USAGE : 125;
        runs = fs_path_join(store_root(s), "run");
        if (runs == NULL)
                return 125;
        p.runs_dir = runs;
        store_close(take_ptr(s));
        if (service_start(&p, workload, &w, &res, &err) < 0) {
                int st = cli_fail(&err);
                return st == FORGE_EXIT_USAGE ? st : 125;
        }
        if (!res.started) {
                if (res.output)
                        fputs(res.output, stderr);
                free(res.output);
                return res.status;
        }
        printf("%s\n", res.id);
        return 0;
}

int cli_run_service(cli_ctx *ctx, const cli_run_opts *run)
{
        opts = (service_opts){
            .detach = run->detach,
            .remove = run->remove,
            .tty = run->tty,
            .vm = run->kind == CLI_RUN_VM,
            .name = run->name,
            .entrypoint = run->entrypoint,
            .log_max = run->log_max,
            .image = run->target,
        };
        command_text(&opts, run->args, run->n_args);
        if (!opts.detach) {
                if (opts.name != NULL || opts.log_max != NULL)
                        return cli_usage_error("run", "--name and --log-max are for "
                                                      "detached runs (-d)");
                return -1;
        }
        return start(ctx, run);
}

const char *cli_run_control_dir(void)
{
        return service_workload_dir();
}

const char *cli_run_entrypoint(void)
{
        return opts.entrypoint;
}

void cli_run_command_override(char ***entrypoint, char ***cmd)
{
        static char *ep[2];
        static char *none[1];

        if (opts.entrypoint == NULL)
                return;
        /* as docker: --entrypoint also drops the image's cmd */
        ep[0] = (char *)opts.entrypoint;
        *entrypoint = ep;
        *cmd = none;
}

/* What `forge exec` needs to be the container's peer. */
static void on_start(const runtime_config *cfg, pid_t init_pid, int exec_errno, void *data)
{
        json_t *env = json_array();
        cleanup_json json_t *j = NULL;
        cleanup_free char *s = NULL;

        (void)data;
        if (exec_errno != 0 || env == NULL)
                return;
        for (char *const *e = cfg->env; e && *e; e++)
                json_array_append_new(env, json_string(*e));
        j = json_pack("{s:i, s:o, s:s, s:s}", "init_pid", (int)init_pid, "env", env, "user",
                      cfg->user ? cfg->user : "", "workdir", cfg->workdir ? cfg->workdir : "");
        s = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
        if (s == NULL || service_file_put("container.json", s, strlen(s), NULL) < 0)
                fprintf(stderr, "forge run: cannot record the container for forge exec\n");
        service_ready(init_pid);
}

void cli_run_service_configure(runtime_config *cfg)
{
        if (!service_in_workload())
                return;
        cfg->on_start = on_start;
}
