/* SPDX-License-Identifier: MIT */
/* forge ps, logs, wait, stop, kill, rm, exec: detached runs (runtime/service/). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
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

/* Parses the common "-x" style options of these small commands; returns
 * the index of the first operand, or -1 after --help. */
static int parse(int argc, char **argv, const char *shortopts, const struct option *longopts,
                 int (*fn)(int c, const char *arg, void *data), void *data, const char *usage)
{
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
                if (c == 'h') {
                        printf("usage: %s\n", usage);
                        return -1;
                }
                if (c == '?' || c == ':' || fn(c, optarg, data) < 0)
                        return -2;
        }
        return optind;
}

static int usage_fail(const char *cmd, int argc, char **argv)
{
        (void)argc;
        return cli_usage_error(cmd, "bad option '%s'", argv[optind - 1]);
}

static const char *display_name(const service_info *si)
{
        return si->name[0] ? si->name : si->id;
}

/* ---- ps ---- */

typedef struct ps_opts {
        bool all, quiet;
} ps_opts;

static int ps_opt(int c, const char *arg, void *data)
{
        ps_opts *o = data;

        (void)arg;
        if (c == 'a')
                o->all = true;
        else if (c == 'q')
                o->quiet = true;
        else
                return -1;
        return 0;
}

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

int cmd_ps(cli_ctx *ctx, int argc, char **argv)
{
        static const struct option lo[] = {{"all", no_argument, NULL, 'a'},
                                           {"quiet", no_argument, NULL, 'q'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
        cleanup_error forge_error *err = NULL;
        cleanup_free char *runs = NULL;
        service_info *v = NULL;
        ps_opts o = {0};
        size_t n = 0;
        int idx = parse(argc, argv, "aqh", lo, ps_opt, &o,
                        "forge ps [-a] [-q]\n\nLists the detached runs that are up (-a: all); "
                        "-q: ids only.");

        if (idx == -1)
                return 0;
        if (idx < 0)
                return usage_fail("ps", argc, argv);
        if (idx < argc)
                return cli_usage_error("ps", "unexpected argument '%s'", argv[idx]);
        if (runs_dir(ctx, &runs, &err) < 0 || service_list(runs, &v, &n, &err) < 0)
                return cli_fail(&err);
        if (!o.quiet)
                printf("%-12s  %-16s  %-24s  %-9s  %-16s  %s\n", "ID", "NAME", "IMAGE", "KIND",
                       "STATUS", "CREATED");
        for (size_t i = 0; i < n; i++) {
                char st[32], when[32];

                if (!o.all && v[i].state != SERVICE_UP)
                        continue;
                if (o.quiet) {
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

typedef struct logs_opts {
        bool follow;
        long tail;
        bool bad;
} logs_opts;

static int logs_opt(int c, const char *arg, void *data)
{
        logs_opts *o = data;
        char *end;

        if (c == 'f') {
                o->follow = true;
        } else if (c == 'n') {
                errno = 0;
                o->tail = strtol(arg, &end, 10);
                if (*end || errno || o->tail < 0)
                        return -1;
        } else {
                return -1;
        }
        return 0;
}

static int find_run(cli_ctx *ctx, const char *ref, char **ret_runs, service_info *ret)
{
        cleanup_error forge_error *err = NULL;

        if (runs_dir(ctx, ret_runs, &err) < 0 || service_find(*ret_runs, ref, ret, &err) < 0)
                return cli_fail(&err) == FORGE_EXIT_USAGE ? FORGE_EXIT_USAGE : FORGE_EXIT_FAILURE;
        return 0;
}

int cmd_logs(cli_ctx *ctx, int argc, char **argv)
{
        static const struct option lo[] = {{"follow", no_argument, NULL, 'f'},
                                           {"tail", required_argument, NULL, 'n'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
        cleanup_error forge_error *err = NULL;
        cleanup_free char *runs = NULL;
        service_info si = {0};
        logs_opts o = {.tail = -1};
        int idx = parse(argc, argv, "fn:h", lo, logs_opt, &o,
                        "forge logs [-f] [--tail N] NAME|ID\n\nPrints a run's output (stdout and "
                        "stderr); -f follows it until the run ends.");
        int r;

        if (idx == -1)
                return 0;
        if (idx < 0)
                return cli_usage_error("logs", "bad option (-f, --tail N)");
        if (idx + 1 != argc)
                return cli_usage_error("logs", "want one NAME or ID");
        r = find_run(ctx, argv[idx], &runs, &si);
        if (r != 0)
                return r;
        fflush(stdout);
        r = service_logs(&si, STDOUT_FILENO, o.tail, o.follow, &err) < 0 ? cli_fail(&err) : 0;
        service_info_free(&si);
        return r;
}

/* ---- wait ---- */

int cmd_wait(cli_ctx *ctx, int argc, char **argv)
{
        int ret = 0;

        if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
                printf("usage: forge wait NAME|ID...\n\nWaits until each run ends and prints its "
                       "exit status (exit 1 when it is unknown).\n");
                return 0;
        }
        if (argc < 2)
                return cli_usage_error("wait", "want a NAME or ID");
        for (int i = 1; i < argc; i++) {
                cleanup_error forge_error *err = NULL;
                cleanup_free char *runs = NULL;
                service_info si = {0};
                int r = find_run(ctx, argv[i], &runs, &si);

                if (r != 0)
                        return r;
                if (service_wait(&si, -1, &err) < 0) {
                        ret = cli_fail(&err);
                } else if (si.state == SERVICE_EXITED) {
                        printf("%d\n", si.status);
                } else {
                        fprintf(stderr,
                                "forge: run '%s' ended with no exit status (its supervisor was "
                                "killed, or the machine rebooted)\n",
                                display_name(&si));
                        ret = FORGE_EXIT_FAILURE;
                }
                service_info_free(&si);
        }
        return ret;
}

/* ---- stop, kill, rm ---- */

typedef struct ctl_opts {
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

static int ctl_opt(int c, const char *arg, void *data)
{
        ctl_opts *o = data;
        char *end;
        unsigned long v;

        switch (c) {
        case 't':
                v = strtoul(arg, &end, 10);
                if (*end || end == arg || v > 86400)
                        return -1;
                o->timeout = (unsigned)v;
                return 0;
        case 's':
                o->sig = parse_signal(arg);
                return o->sig < 0 ? -1 : 0;
        case 'f':
                o->force = true;
                return 0;
        }
        return -1;
}

enum ctl { CTL_STOP, CTL_KILL, CTL_RM };

static int control(cli_ctx *ctx, int argc, char **argv, enum ctl what)
{
        static const struct option lo[] = {{"time", required_argument, NULL, 't'},
                                           {"signal", required_argument, NULL, 's'},
                                           {"force", no_argument, NULL, 'f'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
        static const char *const names[] = {"stop", "kill", "rm"};
        static const char *const shorts[] = {"t:h", "s:h", "fh"};
        static const char *const usages[] = {
            "forge stop [-t SECONDS] NAME|ID...\n\nSIGTERM, then SIGKILL after SECONDS (default "
            "10); waits until the run has ended.",
            "forge kill [-s SIGNAL] NAME|ID...\n\nSends SIGNAL (default KILL) to the run.",
            "forge rm [-f] NAME|ID...\n\nRemoves ended runs (-f: kills an up one first)."};
        ctl_opts o = {.timeout = 10, .sig = SIGKILL};
        int idx = parse(argc, argv, shorts[what], lo, ctl_opt, &o, usages[what]);
        int ret = 0;

        if (idx == -1)
                return 0;
        if (idx < 0)
                return cli_usage_error(names[what], "bad option or value '%s'", argv[optind - 1]);
        if (idx >= argc)
                return cli_usage_error(names[what], "want a NAME or ID");
        for (int i = idx; i < argc; i++) {
                cleanup_error forge_error *err = NULL;
                cleanup_free char *runs = NULL;
                service_info si = {0};
                int r = find_run(ctx, argv[i], &runs, &si);

                if (r != 0) {
                        ret = r;
                        continue;
                }
                if (what == CTL_STOP)
                        r = service_stop(&si, o.timeout, &err);
                else if (what == CTL_KILL)
                        r = service_kill(&si, o.sig, &err);
                else
                        r = service_remove(runs, &si, o.force, &err);
                if (r < 0)
                        ret = cli_fail(&err);
                else
                        printf("%s\n", argv[i]);
                service_info_free(&si);
        }
        return ret;
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

enum { OPT_USER = 256, OPT_WORKDIR };

static int exec_opt(int c, const char *arg, void *data)
{
        exec_opts *o = data;

        switch (c) {
        case 'e':
                if (strchr(arg, '=') == NULL || arg[0] == '=' || o->n_env >= MAX_ENV)
                        return -1;
                o->env[o->n_env++] = arg;
                return 0;
        case 't':
                o->tty = true;
                return 0;
        case 'i':
                return 0; /* stdin is always passed on */
        case OPT_USER:
                o->user = arg;
                return 0;
        case OPT_WORKDIR:
                o->workdir = arg;
                return 0;
        }
        return -1;
}

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

int cmd_exec(cli_ctx *ctx, int argc, char **argv)
{
        static const struct option lo[] = {{"env", required_argument, NULL, 'e'},
                                           {"tty", no_argument, NULL, 't'},
                                           {"interactive", no_argument, NULL, 'i'},
                                           {"user", required_argument, NULL, OPT_USER},
                                           {"workdir", required_argument, NULL, OPT_WORKDIR},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
        cleanup_free char *runs = NULL;
        service_info si = {0};
        exec_opts o = {0};
        int idx =
            parse(argc, argv, "+e:tih", lo, exec_opt, &o,
                  "forge exec [-t] [-e K=V] [--user U] [--workdir DIR] NAME|ID CMD [ARG...]\n\n"
                  "Runs CMD in a running detached run, confined as its workload is.\n"
                  "exit status: CMD's; 125 when it could not be started; 126/127 when it\n"
                  "cannot be executed / is not found; 1 when the run is unknown or not up.");
        int r;

        if (idx == -1)
                return 0;
        if (idx < 0)
                return cli_usage_error("exec", "bad option '%s' (-t, -e K=V, --user, --workdir)",
                                       argv[optind - 1]);
        if (idx < argc && strcmp(argv[idx], "--") == 0)
                idx++;
        if (idx + 1 >= argc)
                return cli_usage_error("exec", "want NAME|ID and a command");
        r = find_run(ctx, argv[idx], &runs, &si);
        if (r != 0)
                return r;
        if (si.state != SERVICE_UP) {
                char st[32];
                fprintf(stderr, "forge: run '%s' is not up (%s)\n", display_name(&si),
                        service_state_text(&si, st, sizeof(st)));
                r = FORGE_EXIT_FAILURE;
        } else if (strcmp(si.kind, "vm") == 0) {
                int c = idx + 1;
                if (strcmp(argv[c], "--") == 0)
                        c++;
                r = c < argc ? exec_vm(&si, &o, argv + c, argc - c)
                             : cli_usage_error("exec", "want a command");
        } else {
                int c = idx + 1;
                if (strcmp(argv[c], "--") == 0)
                        c++;
                r = c < argc ? exec_container(&si, &o, argv + c, argc - c)
                             : cli_usage_error("exec", "want a command");
        }
        service_info_free(&si);
        return r;
}
