/* SPDX-License-Identifier: MIT */
/*
 * forge run's service options: -d/--detach, --name, --rm, --entrypoint,
 * --log-max. They are taken out of argv before the container or VM options
 * are parsed. With -d the run goes to a supervisor (runtime/service/) whose
 * workload process runs `forge run` again with the remaining arguments, as
 * an attached run would, its output going to the run's log.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
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

/* forge run options (of either kind) that take a value: skipped when looking
 * for the service options, which come before IMAGE like every option. */
static const char *const value_opts[] = {
    "-e",       "-v",        "-p",         "--memory", "--cpus",     "--pids",    "--network",
    "--user",   "--workdir", "--hostname", "--as",     "--rootfs",   "--timeout", "--publish",
    "--volume", "--env",     "--mount",    "--dns",    "--add-host",
};

static bool takes_value(const char *a)
{
        for (size_t i = 0; i < ARRAY_SIZE(value_opts); i++)
                if (strcmp(a, value_opts[i]) == 0)
                        return true;
        return false;
}

/* --opt VALUE or --opt=VALUE; *i moves past what was used. */
static const char *value_of(int argc, char **argv, int *i, const char *opt, bool *ret_match)
{
        size_t n = strlen(opt);

        *ret_match = false;
        if (strcmp(argv[*i], opt) == 0) {
                *ret_match = true;
                if (*i + 1 >= argc)
                        return NULL;
                return argv[++*i];
        }
        if (strncmp(argv[*i], opt, n) == 0 && argv[*i][n] == '=') {
                *ret_match = true;
                return argv[*i] + n + 1;
        }
        return NULL;
}

static void command_text(service_opts *o, int argc, char **argv, int from)
{
        size_t len = 0;

        o->command[0] = '\0';
        for (int i = from; i < argc && len + 2 < sizeof(o->command); i++) {
                int n = snprintf(o->command + len, sizeof(o->command) - len, "%s%s", len ? " " : "",
                                 argv[i]);
                if (n < 0)
                        break;
                len += (size_t)n;
        }
        if (len >= sizeof(o->command))
                o->command[sizeof(o->command) - 1] = '\0';
}

/* Removes the service options from argv (argv[0] is "run"). */
static int take_opts(int *argc, char **argv, service_opts *o)
{
        static const char *const svc_value[] = {"--name", "--entrypoint", "--log-max"};
        const char **slots[] = {&o->name, &o->entrypoint, &o->log_max};
        int out = 1, i;

        for (i = 1; i < *argc; i++) {
                const char *a = argv[i];
                bool match = false;
                size_t k;

                if (strcmp(a, "--") == 0 || a[0] != '-' || a[1] == '\0')
                        break;
                if (strcmp(a, "-d") == 0 || strcmp(a, "--detach") == 0) {
                        o->detach = true;
                        continue;
                }
                if (strcmp(a, "--rm") == 0) {
                        o->remove = true;
                        continue;
                }
                for (k = 0; k < ARRAY_SIZE(svc_value); k++) {
                        const char *v = value_of(*argc, argv, &i, svc_value[k], &match);
                        if (match) {
                                if (v == NULL)
                                        return cli_usage_error("run", "%s needs a value",
                                                               svc_value[k]);
                                *slots[k] = v;
                                break;
                        }
                }
                if (match)
                        continue;
                if (strcmp(a, "-t") == 0)
                        o->tty = true;
                if ((strcmp(a, "--as") == 0 && i + 1 < *argc && strcmp(argv[i + 1], "vm") == 0) ||
                    strcmp(a, "--as=vm") == 0)
                        o->vm = true;
                argv[out++] = argv[i];
                if (takes_value(a) && i + 1 < *argc)
                        argv[out++] = argv[++i];
        }
        if (i < *argc && strcmp(argv[i], "--") != 0)
                o->image = argv[i];
        command_text(o, *argc, argv, i + (o->image ? 1 : 0));
        for (; i < *argc; i++)
                argv[out++] = argv[i];
        argv[out] = NULL;
        *argc = out;
        return 0;
}

typedef struct workload_args {
        cli_ctx *ctx;
        int argc;
        char **argv;
} workload_args;

static int workload(void *data)
{
        workload_args *w = data;
        int r = cmd_run(w->ctx, w->argc, w->argv);

        fflush(stdout);
        fflush(stderr);
        return r;
}

static int start(cli_ctx *ctx, int argc, char **argv)
{
        cleanup_error forge_error *err = NULL;
        cleanup_store store *s = NULL;
        cleanup_free char *runs = NULL;
        service_start_result res = {0};
        workload_args w = {ctx, argc, argv};
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

                if (parse_size(opts.log_max, &v) < 0 || v < 4096)
                        return cli_usage_error("run",
                                               "--log-max wants a size of at least 4K, got "
                                               "'%s'",
                                               opts.log_max);
                p.log_max = v;
        }
        if (cli_store_open(ctx, &s, &err) < 0)
                return cli_fail(&err) == FORGE_EXIT_USAGE ? FORGE_EXIT_USAGE : 125;
        runs = path_join(store_root(s), "run");
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

int cli_run_service(cli_ctx *ctx, int *argc, char **argv)
{
        int r;

        if (service_in_workload())
                return -1; /* the options were taken by the forge that started us */
        r = take_opts(argc, argv, &opts);
        if (r != 0)
                return r;
        if (!opts.detach) {
                if (opts.name != NULL || opts.log_max != NULL)
                        return cli_usage_error("run", "--name and --log-max are for detached runs "
                                                      "(-d)");
                return -1;
        }
        return start(ctx, *argc, argv);
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
        json_t *env = json_array(), *j;
        cleanup_free char *s = NULL;

        (void)data;
        if (exec_errno != 0 || env == NULL)
                return;
        for (char *const *e = cfg->env; e && *e; e++)
                json_array_append_new(env, json_string(*e));
        j = json_pack("{s:i, s:o, s:s, s:s}", "init_pid", (int)init_pid, "env", env, "user",
                      cfg->user ? cfg->user : "", "workdir", cfg->workdir ? cfg->workdir : "");
        s = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
        json_decref(j);
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
