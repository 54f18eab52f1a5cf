/* SPDX-License-Identifier: MIT */
/* forge ps, logs, wait, stop, kill, rm, exec: detached runs (runtime/service/). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/runtime.h"
#include "runtime/service/service.h"

#define MAX_ENV 256

static int runs_dir(cli_ctx *ctx, char **ret, forge_error **err)
{
        cleanup_store store *s = NULL;

        if (cli_store_open(ctx, &s, err) < 0)
                return -1;
        *ret = fs_path_join(store_root(s), "run");
        return *ret ? 0 : forge_error_make(err, ENOMEM, "run directory");
}

static const char *display_name(const service_info *si)
{
        return si->name[0] ? si->name : si->id;
}

/* ---- ps ---- */

static const char *ago(int64_t t, char *buf, size_t len)
{
        int64_t d = (int64_t)time(NULL) - t;

        if (d < 0)
                d = 0;
        if (d < 60)
                snprintf(buf, len, "%lld seconds ago", (long long)d);
        else if (d < 3600)
                snprintf(buf, len, "%lld minutes ago", (long long)(d / 60));
        else if (d < 86400)
                snprintf(buf, len, "%lld hours ago", (long long)(d / 3600));
        else
                snprintf(buf, len, "%lld days ago", (long long)(d / 86400));
        return buf;
}

static const char ps_usage[] = "usage: forge ps [-a] [-q]\n\n"
                               "Lists the detached runs that are up (-a: all); -q: ids only.\n";

static const cli_opts_cmd ps_cmd = {"ps", ps_usage, 0, 0, 0, NULL};

int cmd_ps(cli_ctx *ctx, int argc, char **argv)
{
        bool all = false, quiet = false;
        const cli_opt opts[] = {CLI_FLAG("all", 'a', &all), CLI_FLAG("quiet", 'q', &quiet)};
        cleanup_error forge_error *err = NULL;
        cleanup_free char *runs = NULL;
        service_info *v = NULL;
        size_t n = 0;
        int first, r = cli_opts_parse(&ps_cmd, opts, ARRAY_SIZE(opts), argc, argv, &first);

        if (r != 0)
                return cli_opts_status(r);
        if (runs_dir(ctx, &runs, &err) < 0 || service_list(runs, &v, &n, &err) < 0)
                return cli_fail(&err);
        if (!quiet)
                printf("%-12s  %-16s  %-24s  %-9s  %-16s  %s\n", "ID", "NAME", "IMAGE", "KIND",
                       "STATUS", "CREATED");
        for (size_t i = 0; i < n; i++) {
                char st[32], when[32];

                if (!all && v[i].state != SERVICE_UP)
                        continue;
                if (quiet) {
                        printf("%.12s\n", v[i].id);
                        continue;
                }
                printf("%-12.12s  %-16s  %-24s  %-9s  %-16s  %s\n", v[i].id, v[i].name, v[i].image,
                       v[i].kind, service_state_text(&v[i], st, sizeof(st)),
                       ago(v[i].created, when, sizeof(when)));
        }
        service_list_free(v, n);
        return 0;
}

/* ---- logs ---- */

static int tail_opt(const char *cmd, const cli_opt *opt, const char *arg)
{
        long *tail = opt->data;
        char *end;

        errno = 0;
        *tail = strtol(arg, &end, 10);
        if (*end || end == arg || errno || *tail < 0)
                return cli_usage_error(cmd, "--tail wants a number of lines, got '%s'", arg);
        return 0;
}

static int find_run(cli_ctx *ctx, const char *ref, char **ret_runs, service_info *ret)
{
        cleanup_error forge_error *err = NULL;

        if (runs_dir(ctx, ret_runs, &err) < 0 || service_find(*ret_runs, ref, ret, &err) < 0)
                return cli_fail(&err) == FORGE_EXIT_USAGE ? FORGE_EXIT_USAGE : FORGE_EXIT_FAILURE;
        return 0;
}

/* What a command does to one run (ref as the user named it): an exit status. */
typedef int run_fn(const char *runs, service_info *si, const char *ref, void *data);

/* fn on each run named in refs[0..n): the last non-zero status of them; a
 * run not found is one (and with stop_unknown, the end: no further runs). */
static int each_run(cli_ctx *ctx, char **refs, int n, bool stop_unknown, run_fn *fn, void *data)
{
        int ret = 0;

        for (int i = 0; i < n; i++) {
                cleanup_free char *runs = NULL;
                service_info si = {0};
                int r = find_run(ctx, refs[i], &runs, &si);

                if (r != 0 && stop_unknown)
                        return r;
                if (r == 0) {
                        r = fn(runs, &si, refs[i], data);
                        service_info_free(&si);
                }
                if (r != 0)
                        ret = r;
        }
        return ret;
}

static const char logs_usage[] =
    "usage: forge logs [-f] [--tail N] NAME|ID\n\n"
    "Prints a run's output (stdout and stderr); -f follows it until the run ends.\n";

static const cli_opts_cmd logs_cmd = {"logs", logs_usage, 0, 1, 1, "want one NAME or ID"};

int cmd_logs(cli_ctx *ctx, int argc, char **argv)
{
        bool follow = false;
        long tail = -1;
        const cli_opt opts[] = {
            CLI_FLAG("follow", 'f', &follow),
            CLI_CALL("tail", 'n', true, tail_opt, &tail),
        };
        cleanup_error forge_error *err = NULL;
        cleanup_free char *runs = NULL;
        service_info si = {0};
        int first, r = cli_opts_parse(&logs_cmd, opts, ARRAY_SIZE(opts), argc, argv, &first);

        if (r != 0)
                return cli_opts_status(r);
        r = find_run(ctx, argv[first], &runs, &si);
        if (r != 0)
                return r;
        fflush(stdout);
        r = service_logs(&si, STDOUT_FILENO, tail, follow, &err) < 0 ? cli_fail(&err) : 0;
        service_info_free(&si);
        return r;
}

/* ---- wait ---- */

static const char wait_usage[] =
    "usage: forge wait NAME|ID...\n\n"
    "Waits until each run ends and prints its exit status (exit 1 when it is unknown).\n";

static const cli_opts_cmd wait_cmd = {"wait", wait_usage, 0, 1, -1, "want a NAME or ID"};

static int wait_one(const char *runs, service_info *si, const char *ref, void *data)
{
        cleanup_error forge_error *err = NULL;

        (void)runs;
        (void)ref;
        (void)data;
        if (service_wait(si, -1, &err) < 0)
                return cli_fail(&err);
        if (si->state != SERVICE_EXITED) {
                fprintf(stderr,
                        "forge: run '%s' ended with no exit status (its supervisor was "
                        "killed, or the machine rebooted)\n",
                        display_name(si));
                return FORGE_EXIT_FAILURE;
        }
        printf("%d\n", si->status);
        return 0;
}

int cmd_wait(cli_ctx *ctx, int argc, char **argv)
{
        int first, r = cli_opts_parse(&wait_cmd, NULL, 0, argc, argv, &first);

        if (r != 0)
                return cli_opts_status(r);
        return each_run(ctx, argv + first, argc - first, true, wait_one, NULL);
}

/* ---- stop, kill, rm ---- */

enum ctl { CTL_STOP, CTL_KILL, CTL_RM };

typedef struct ctl_opts {
        enum ctl what;
        unsigned timeout;
        int sig;
        bool force;
} ctl_opts;

static int parse_signal(const char *s)
{
        static const struct {
                const char *name;
                int sig;
        } names[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},  {"KILL", SIGKILL},
                     {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM},  {"ALRM", SIGALRM},
                     {"STOP", SIGSTOP}, {"CONT", SIGCONT}, {"WINCH", SIGWINCH}};
        char *end;
        long n;

        if (strncmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                if (strcmp(s, names[i].name) == 0)
                        return names[i].sig;
        n = strtol(s, &end, 10);
        if (*end || n <= 0 || n >= 65)
                return -1;
        return (int)n;
}

static int time_opt(const char *cmd, const cli_opt *opt, const char *arg)
{
        unsigned *timeout = opt->data;
        char *end;
        unsigned long v = strtoul(arg, &end, 10);

        if (*end || end == arg || v > 86400)
                return cli_usage_error(cmd, "-t wants SECONDS (0 to 86400), got '%s'", arg);
        *timeout = (unsigned)v;
        return 0;
}

static int signal_opt(const char *cmd, const cli_opt *opt, const char *arg)
{
        int *sig = opt->data;

        *sig = parse_signal(arg);
        if (*sig < 0)
                return cli_usage_error(
                    cmd, "-s wants a signal (KILL, TERM, ... or 1 to 64), got '%s'", arg);
        return 0;
}

static int control_one(const char *runs, service_info *si, const char *ref, void *data)
{
        const ctl_opts *o = data;
        cleanup_error forge_error *err = NULL;
        int r;

        if (o->what == CTL_STOP)
                r = service_stop(si, o->timeout, &err);
        else if (o->what == CTL_KILL)
                r = service_kill(si, o->sig, &err);
        else
                r = service_remove(runs, si, o->force, &err);
        if (r < 0)
                return cli_fail(&err);
        printf("%s\n", ref);
        return 0;
}

static int control(cli_ctx *ctx, int argc, char **argv, enum ctl what)
{
        static const cli_opts_cmd cmds[] = {
            {"stop",
             "usage: forge stop [-t SECONDS] NAME|ID...\n\nSIGTERM, then SIGKILL after SECONDS "
             "(default 10); waits until the run has ended.\n",
             0, 1, -1, "want a NAME or ID"},
            {"kill",
             "usage: forge kill [-s SIGNAL] NAME|ID...\n\nSends SIGNAL (default KILL) to the "
             "run.\n",
             0, 1, -1, "want a NAME or ID"},
            {"rm",
             "usage: forge rm [-f] NAME|ID...\n\nRemoves ended runs (-f: kills an up one first).\n",
             0, 1, -1, "want a NAME or ID"},
        };
        ctl_opts o = {.what = what, .timeout = 10, .sig = SIGKILL};
        const cli_opt opts[] = {
            [CTL_STOP] = CLI_CALL("time", 't', true, time_opt, &o.timeout),
            [CTL_KILL] = CLI_CALL("signal", 's', true, signal_opt, &o.sig),
            [CTL_RM] = CLI_FLAG("force", 'f', &o.force),
        };
        /* each command its own option */
        int first, r = cli_opts_parse(&cmds[what], &opts[what], 1, argc, argv, &first);

        if (r != 0)
                return cli_opts_status(r);
        return each_run(ctx, argv + first, argc - first, false, control_one, &o);
}

int cmd_stop(cli_ctx *ctx, int argc, char **argv)
{
        return control(ctx, argc, argv, CTL_STOP);
}

int cmd_kill(cli_ctx *ctx, int argc, char **argv)
{
        return control(ctx, argc, argv, CTL_KILL);
}

int cmd_rm(cli_ctx *ctx, int argc, char **argv)
{
        return control(ctx, argc, argv, CTL_RM);
}

/* ---- exec ---- */

typedef struct exec_opts {
        const char *env[MAX_ENV];
        size_t n_env;
        const char *user, *workdir;
        bool tty;
} exec_opts;

/* container.json, written by the run's workload process when it started */
static int exec_record(const service_info *si, json_t **ret, forge_error **err)
{
        cleanup_free char *path = fs_path_join(si->dir, "container.json");
        cleanup_free char *buf = NULL;
        cleanup_json json_t *j = NULL;

        if (path == NULL || fs_read_all(AT_FDCWD, path, 1 << 20, &buf, NULL, err) < 0)
                return forge_error_prefix(err, "run '%s'", display_name(si));
        j = json_loads(buf, 0, NULL);
        if (!json_is_object(j) || !json_is_array(json_object_get(j, "env")))
                return forge_error_make(err, 0, "run '%s': corrupt container.json",
                                        display_name(si));
        *ret = take_ptr(j);
        return 0;
}

static int exec_container(const service_info *si, const exec_opts *o, char **cmd, int n_cmd)
{
        cleanup_error forge_error *err = NULL;
        cleanup_close int pidfd = -1;
        cleanup_strv char **env = NULL;
        cleanup_free char **argv = calloc((size_t)n_cmd + 1, sizeof(char *));
        const char **image_env = NULL;
        runtime_exec_config cfg = {0};
        runtime_result res = {0};
        cleanup_json json_t *rec = NULL;
        json_t *e;
        const char *s;
        size_t i, n;
        int r = 125;

        if (argv == NULL)
                return 125;
        memcpy(argv, cmd, (size_t)n_cmd * sizeof(char *));
        pidfd = service_pidfd(si->init_pid, si->init_start);
        if (pidfd < 0) {
                fprintf(stderr, "forge exec: run '%s' is not up\n", display_name(si));
                return FORGE_EXIT_FAILURE;
        }
        if (exec_record(si, &rec, &err) < 0)
                return cli_fail(&err), 125;
        n = json_array_size(json_object_get(rec, "env"));
        image_env = calloc(n + 1, sizeof(char *));
        if (image_env == NULL)
                goto out;
        json_array_foreach(json_object_get(rec, "env"), i, e) image_env[i] =
            json_string_value(e) ? json_string_value(e) : "";
        env = runtime_env_merge((char *const *)image_env, o->env, o->n_env);
        if (env == NULL)
                goto out;
        cfg.init_pid = si->init_pid;
        cfg.init_pidfd = pidfd;
        cfg.argv = argv;
        cfg.env = env;
        s = json_string_value(json_object_get(rec, "user"));
        cfg.user = o->user ? o->user : (s && s[0] ? s : NULL);
        s = json_string_value(json_object_get(rec, "workdir"));
        cfg.workdir = o->workdir ? o->workdir : (s && s[0] ? s : NULL);
        cfg.tty = o->tty;
        cfg.caps = RUNTIME_CAPS_DEFAULT;
        if (runtime_container_exec(&cfg, &res, &err) < 0) {
                cli_fail(&err);
                goto out;
        }
        if (res.exec_errno != 0) {
                fprintf(stderr, "forge exec: cannot execute '%s': %s\n", argv[0],
                        strerror(res.exec_errno));
                r = res.exec_errno == ENOENT ? 127 : 126;
        } else {
                r = res.status;
        }
out:
        free(image_env);
        return r;
}

static int exec_vm(const service_info *si, const exec_opts *o, char **cmd, int n_cmd)
{
        cleanup_error forge_error *err = NULL;
        cleanup_free char *msg = NULL;
        service_vm_exec x = {
            .argv = cmd,
            .argc = (size_t)n_cmd,
            .env = o->env,
            .n_env = o->n_env,
            .user = o->user,
            .workdir = o->workdir,
            .tty = o->tty,
        };
        int status = 125;

        if (service_vm_exec_run(si, &x, &status, &msg, &err) < 0) {
                cli_fail(&err);
                return 125;
        }
        if (msg != NULL)
                fprintf(stderr, "forge exec: %s\n", msg);
        return status;
}

static const char exec_usage[] =
    "usage: forge exec [-t] [-e K=V] [--user U] [--workdir DIR] NAME|ID CMD [ARG...]\n\n"
    "Runs CMD in a running detached run, confined as its workload is.\n"
    "exit status: CMD's; 125 when it could not be started; 126/127 when it\n"
    "cannot be executed / is not found; 1 when the run is unknown or not up.\n";

/* options end at NAME|ID: what follows is the command's */
static const cli_opts_cmd exec_cmd = {"exec", exec_usage, CLI_OPTS_IN_ORDER, 0, -1, NULL};

int cmd_exec(cli_ctx *ctx, int argc, char **argv)
{
        exec_opts o = {0};
        bool interactive = false; /* stdin is always passed on */
        const cli_opt opts[] = {
            CLI_LIST("env", 'e', o.env, &o.n_env, cli_opt_env),
            CLI_FLAG("tty", 't', &o.tty),
            CLI_FLAG("interactive", 'i', &interactive),
            CLI_VALUE("user", 0, &o.user),
            CLI_VALUE("workdir", 0, &o.workdir),
        };
        cleanup_free char *runs = NULL;
        service_info si = {0};
        int first, c, r = cli_opts_parse(&exec_cmd, opts, ARRAY_SIZE(opts), argc, argv, &first);

        if (r != 0)
                return cli_opts_status(r);
        if (first < argc && strcmp(argv[first], "--") == 0)
                first++;
        if (first + 1 >= argc)
                return cli_usage_error("exec", "want NAME|ID and a command");
        r = find_run(ctx, argv[first], &runs, &si);
        if (r != 0)
                return r;
        c = first + 1;
        if (strcmp(argv[c], "--") == 0)
                c++;
        if (si.state != SERVICE_UP) {
                char st[32];
                fprintf(stderr, "forge: run '%s' is not up (%s)\n", display_name(&si),
                        service_state_text(&si, st, sizeof(st)));
                r = FORGE_EXIT_FAILURE;
        } else if (c >= argc) {
                r = cli_usage_error("exec", "want a command");
        } else if (strcmp(si.kind, "vm") == 0) {
                r = exec_vm(&si, &o, argv + c, argc - c);
        } else {
                r = exec_container(&si, &o, argv + c, argc - c);
        }
        service_info_free(&si);
        return r;
}
