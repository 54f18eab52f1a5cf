/* SPDX-License-Identifier: MIT */
/* forge run: option parsing and the image's run configuration; the container
 * itself is runtime_container_run(), the VM cli_run_vm(). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "builder/builder.h"
#include "cli/cli.h"
#include "cli/registry-cli.h"
#include "cli/run-opts.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "cli/build-step.h"
#include "runtime/runtime.h"

#define MAX_LIST CLI_RUN_MAX_LIST

/* The container's options: the table's (run-opts.h), with -v resolved. */
typedef struct run_opts {
        const cli_run_opts *c;
        runtime_mount mounts[MAX_LIST];
        size_t n_mounts;
} run_opts;

/* "SRC:DST[:ro|rw]"; the strings stay allocated for the whole run. */
static int parse_volume(const char *arg, runtime_mount *m)
{
        cleanup_free char *src = NULL;
        char *dst = NULL;

        if (cli_run_volume_split(arg, &src, &dst, &m->ro) < 0)
                return -1;
        m->dest = dst;
        m->src = realpath(src, NULL);
        return m->src == NULL ? -2 : 0;
}

static void volumes_free(run_opts *o)
{
        for (size_t i = 0; i < o->n_mounts; i++) {
                free((char *)o->mounts[i].src);
                free((char *)o->mounts[i].dest);
        }
}

/* -v SRC:DST[:ro] given, the sources resolved. */
static int volumes_resolve(run_opts *o)
{
        const cli_run_opts *c = o->c;

        for (size_t i = 0; i < c->n_volumes; i++) {
                int r = parse_volume(c->volumes[i], &o->mounts[o->n_mounts]);

                if (r == -2) {
                        fprintf(stderr, "forge run: volume source of '%s': %s\n", c->volumes[i],
                                strerror(errno));
                        free((char *)o->mounts[o->n_mounts].dest);
                        return 125;
                }
                if (r < 0)
                        return cli_usage_error("run",
                                               "-v wants SRC:DST[:ro] with an absolute DST, got "
                                               "'%s'",
                                               c->volumes[i]);
                o->n_mounts++;
        }
        return 0;
}

static int parse_limits(const cli_run_opts *o, runtime_config *cfg)
{
        unsigned long long v;

        if (o->memory != NULL) {
                if (fs_parse_size(o->memory, &v) < 0 || v == 0)
                        return cli_usage_error("run", "--memory wants a size like 256M, got '%s'",
                                               o->memory);
                cfg->memory = v;
        }
        if (o->cpus != NULL) {
                char *end;
                double d = strtod(o->cpus, &end);

                if (*end != '\0' || !(d > 0) || d > 4096)
                        return cli_usage_error("run", "--cpus wants a number like 1.5, got '%s'",
                                               o->cpus);
                cfg->cpus_milli = (uint32_t)(d * 1000 + 0.5);
                if (cfg->cpus_milli == 0)
                        cfg->cpus_milli = 1;
        }
        if (o->pids != NULL) {
                char *end;
                long long n = strtoll(o->pids, &end, 10);

                if (*end != '\0' || o->pids[0] == '\0' || (n <= 0 && n != -1))
                        return cli_usage_error("run",
                                               "--pids wants a positive number (or -1: no "
                                               "limit), got '%s'",
                                               o->pids);
                cfg->pids = n;
        }
        return 0;
}

static int report(const runtime_result *res, const char *cmd)
{
        if (res->exec_errno != 0) {
                fprintf(stderr, "forge run: cannot execute '%s': %s\n", cmd,
                        strerror(res->exec_errno));
                return res->exec_errno == ENOENT ? 127 : 126;
        }
        if (res->oom) {
                fprintf(stderr, "forge run: out of memory: the container hit its memory limit "
                                "and the kernel killed the workload (raise --memory)\n");
                return 137;
        }
        return res->status;
}

int cli_run_resolve(cli_ctx *ctx, store *s, const char *target, bool is_spec,
                    char ret[DIGEST_STR_SIZE], forge_error **err)
{
        builder_opts bo = {.run_step = cli_build_step};
        cleanup_free char *tmp = NULL;

        if (!is_spec)
                return cli_image_resolve(ctx, s, target, ret, err);
        tmp = fs_path_join(store_root(s), "tmp");
        if (tmp == NULL)
                return forge_error_make(err, ENOMEM, "build");
        bo.run_step_data = tmp;
        if (builder_build(s, target, &bo, ret, err) < 0)
                return forge_error_prefix(err, "build '%s'", target);
        return 0;
}

/* What only the spec being run brings, from its own context: host paths
 * (container.mounts, checked to stay inside the context by spec_load) and
 * host networking. An image never carries them (docs/run.md). */
typedef struct spec_grants {
        runtime_mount *mounts;
        size_t n_mounts;
        bool network_host;
        bool network_user;
        runtime_port ports[RUNTIME_NET_MAX_PORTS];
        size_t n_ports;
} spec_grants;

static void spec_grants_free(spec_grants *g)
{
        for (size_t i = 0; i < g->n_mounts; i++) {
                free((char *)g->mounts[i].src);
                free((char *)g->mounts[i].dest);
        }
        free(g->mounts);
        memset(g, 0, sizeof(*g));
}

static int spec_grants_load(const char *path, spec_grants *ret, forge_error **err)
{
        cleanup_spec spec *sp = NULL;
        spec_grants g = {0};

        if (spec_load(path, &sp, err) < 0)
                return -1;
        g.network_host = sp->container.network == SPEC_NETWORK_HOST;
        g.network_user = sp->container.network == SPEC_NETWORK_USER;
        for (char **p = sp->container.ports; p && *p; p++) {
                if (g.n_ports >= RUNTIME_NET_MAX_PORTS)
                        return forge_error_usage(err, "'%s': more than %d container.ports", path,
                                                 RUNTIME_NET_MAX_PORTS);
                if (runtime_port_parse(*p, &g.ports[g.n_ports], err) < 0)
                        return forge_error_prefix(err, "'%s'", path);
                g.n_ports++;
        }
        g.mounts = calloc(sp->container.n_mounts + 1, sizeof(runtime_mount));
        if (g.mounts == NULL)
                return forge_error_make(err, ENOMEM, "spec mounts");
        for (size_t i = 0; i < sp->container.n_mounts; i++) {
                runtime_mount *m = &g.mounts[g.n_mounts++];

                m->src = strdup(sp->container.mounts[i].src);
                m->dest = strdup(sp->container.mounts[i].dest);
                m->ro = sp->container.mounts[i].ro;
                if (m->src == NULL || m->dest == NULL) {
                        spec_grants_free(&g);
                        return forge_error_make(err, ENOMEM, "spec mounts");
                }
        }
        *ret = g;
        return 0;
}

/* The image's layers (unpacked once in the store) and run configuration;
 * a SPEC is built first. */
static int load_image(cli_ctx *ctx, const char *image, store **ret_store, char ***ret_lowers,
                      size_t *ret_n, runtime_image_config *ic, spec_grants *grants,
                      forge_error **err)
{
        cleanup_store store *s = NULL;
        cleanup_store_image store_image *img = NULL;
        char **lowers = NULL;
        char digest[DIGEST_STR_SIZE];

        if (cli_store_open(ctx, &s, err) < 0 || store_lock_shared(s, err) < 0)
                return -1;
        bool is_spec = spec_path_is_spec(image);

        if (cli_run_resolve(ctx, s, image, is_spec, digest, err) < 0)
                return -1;
        if (is_spec && spec_grants_load(image, grants, err) < 0)
                return -1;
        if (store_image_load(s, digest, &img, err) < 0 ||
            runtime_image_config_parse(img->config, ic, err) < 0)
                return -1;
        lowers = calloc(img->n_layers + 1, sizeof(char *));
        if (lowers == NULL)
                return forge_error_make(err, ENOMEM, "layers");
        for (size_t i = 0; i < img->n_layers; i++) {
                if (store_layer_unpack(s, &img->layers[i], &lowers[i], err) < 0) {
                        cleanup_strv_fn(&lowers);
                        runtime_image_config_free(ic);
                        return forge_error_prefix(err, "unpack layer %zu of '%s'", i + 1, image);
                }
        }
        *ret_lowers = lowers;
        *ret_n = store_layer_dirs_dedupe(lowers, img->n_layers, true);
        *ret_store = take_ptr(s);
        return 0;
}

/* A host name as sethostname(2) and resolvers take it: dot-separated labels
 * of letters, digits and '-' (not first or last), at most 64 bytes. */
static bool hostname_valid(const char *h)
{
        size_t len = strlen(h), label = 0;

        if (len == 0 || len > 64 || h[0] == '.' || h[len - 1] == '.')
                return false;
        for (size_t i = 0; i < len; i++) {
                if (h[i] == '.') {
                        if (label == 0 || h[i - 1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!isalnum((unsigned char)h[i]) && !(h[i] == '-' && label > 0))
                        return false;
                if (++label > 63)
                        return false;
        }
        return h[len - 1] != '-';
}

int cli_run_check_names(const char *user, const char *hostname)
{
        if (user != NULL && user[0] == '\0')
                return cli_usage_error("run", "--user wants a NAME or UID[:GID], got ''");
        if (hostname != NULL && !hostname_valid(hostname))
                return cli_usage_error("run",
                                       "--hostname wants a host name (letters, digits, '-' "
                                       "and '.', at most 64 bytes), got '%s'",
                                       hostname);
        return 0;
}

static int configure(const cli_run_opts *o, const runtime_image_config *ic, const spec_grants *g,
                     runtime_config *cfg)
{
        const char *net = o->network;
        int r;

        r = cli_run_check_names(o->user, o->hostname);
        if (r != 0)
                return r;

        cfg->memory = ic->memory;
        cfg->cpus_milli = ic->cpus_milli;
        cfg->pids = ic->pids;
        r = parse_limits(o, cfg);
        if (r != 0)
                return r;
        if (cfg->pids == 0)
                cfg->pids = RUNTIME_DEFAULT_PIDS;
        else if (cfg->pids == -1)
                cfg->pids = 0; /* --pids -1: no limit, as podman's --pids-limit -1 */
        if (net != NULL && strcmp(net, "host") != 0 && strcmp(net, "none") != 0 &&
            strcmp(net, "user") != 0)
                return cli_usage_error("run", "--network wants none, host or user, got '%s'", net);
        cfg->network_host = net != NULL ? strcmp(net, "host") == 0 : g->network_host;
        cfg->network_user = net != NULL ? strcmp(net, "user") == 0 : g->network_user;
        /* the spec's ports go with its network: user; -p wants one */
        cfg->ports = o->n_ports > 0 ? o->ports : g->ports;
        cfg->n_ports = o->n_ports > 0 ? o->n_ports : cfg->network_user ? g->n_ports : 0;
        if (cfg->n_ports > 0 && !cfg->network_user)
                return cli_usage_error("run",
                                       "-p publishes a port of --network user; this "
                                       "container's network is %s",
                                       cfg->network_host ? "host" : "none");
        cfg->read_only = o->read_only || ic->read_only == 1;
        cfg->workdir = o->workdir ? o->workdir : ic->workdir;
        cfg->user = o->user ? o->user : ic->user;
        cfg->hostname = o->hostname ? o->hostname : ic->hostname;
        cfg->tty = o->tty;
        if (o->stop_timeout != NULL) {
                char *end;
                long n = strtol(o->stop_timeout, &end, 10);

                if (*end != '\0' || o->stop_timeout[0] == '\0' || n <= 0 || n > 86400)
                        return cli_usage_error("run",
                                               "--stop-timeout wants seconds (1-86400), got '%s'",
                                               o->stop_timeout);
                cfg->stop_timeout = (unsigned)n;
        }
        return 0;
}

static int run_container(cli_ctx *ctx, const run_opts *ro)
{
        const cli_run_opts *o = ro->c;
        cleanup_error forge_error *err = NULL;
        cleanup_store store *s = NULL;
        cleanup_strv char **lowers = NULL;
        cleanup_free char **argv = NULL;
        cleanup_strv char **env = NULL;
        cleanup_free char *tmp = NULL;
        cleanup_free runtime_mount *mounts = NULL;
        runtime_image_config ic = {.read_only = -1};
        spec_grants grants = {0};
        runtime_config cfg;
        runtime_result res;
        size_t n_mounts = 0, n_lowers = 0;
        int r = 125;

        runtime_config_init(&cfg);
        if (o->tty && !isatty(STDIN_FILENO)) {
                /* docker's answer: a -t shell on a pipe would wait forever */
                fprintf(stderr, "forge run: the input device is not a TTY (drop -t, or run "
                                "from a terminal)\n");
                return 125;
        }
        if (o->n_rootfs > 0) {
                lowers = calloc(o->n_rootfs + 1, sizeof(char *));
                if (lowers == NULL)
                        return 125;
                for (size_t i = 0; i < o->n_rootfs; i++)
                        if ((lowers[n_lowers++] = strdup(o->rootfs[i])) == NULL)
                                return 125;
        } else {
                if (load_image(ctx, o->target, &s, &lowers, &n_lowers, &ic, &grants, &err) < 0) {
                        spec_grants_free(&grants);
                        r = cli_fail(&err);
                        return r == FORGE_EXIT_USAGE ? r : 125;
                }
                tmp = fs_path_join(store_root(s), "tmp");
        }
        mounts = calloc(grants.n_mounts + ro->n_mounts + 1, sizeof(runtime_mount));
        {
                char **ep = ic.entrypoint, **cmd = ic.cmd;

                cli_run_command_override(&ep, &cmd); /* --entrypoint */
                argv = runtime_argv_build(ep, cmd, o->args, (size_t)o->n_args);
        }
        env = runtime_env_merge(ic.env, o->env, o->n_env);
        if (mounts == NULL || argv == NULL || env == NULL)
                goto out;
        for (size_t i = 0; i < grants.n_mounts; i++)
                mounts[n_mounts++] = grants.mounts[i];
        for (size_t i = 0; i < ro->n_mounts; i++)
                mounts[n_mounts++] = ro->mounts[i];
        r = configure(o, &ic, &grants, &cfg);
        if (r != 0)
                goto out;
        if (argv[0] == NULL) {
                r = cli_usage_error("run", "the image has no entrypoint or cmd: give a command "
                                           "after --");
                goto out;
        }
        cfg.lowerdirs = (const char *const *)lowers;
        cfg.n_lowerdirs = n_lowers;
        cfg.tmp_root = tmp;
        /* the status first; the run's directories go afterwards */
        cfg.defer_cleanup = true;
        cfg.upper_tmpfs = o->upper_tmpfs;
        cfg.cleanup_lock_fd = s != NULL ? store_lock_fd(s) : -1;
        cfg.argv = argv;
        cfg.env = env;
        cfg.mounts = mounts;
        cfg.n_mounts = n_mounts;
        cli_run_service_configure(&cfg); /* -d */
        if (runtime_container_run(&cfg, &res, &err) < 0) {
                cli_fail(&err);
                r = 125;
        } else {
                r = report(&res, argv[0]);
        }
out:
        runtime_image_config_free(&ic);
        spec_grants_free(&grants);
        return r;
}

int cli_run_container(cli_ctx *ctx, const cli_run_opts *c)
{
        run_opts *o = calloc(1, sizeof(*o));
        int r;

        if (o == NULL)
                return 125;
        o->c = c;
        r = volumes_resolve(o);
        if (r == 0)
                r = run_container(ctx, o);
        volumes_free(o);
        free(o);
        return r;
}

int cmd_run(cli_ctx *ctx, int argc, char **argv)
{
        cleanup_free cli_run_opts *o = calloc(1, sizeof(*o));
        int r;

        if (o == NULL)
                return 125;
        r = cli_run_opts_parse(argc, argv, o);
        if (r < 0)
                return 0; /* --help */
        if (r != 0)
                return r;
        if (!o->quiet)
                o->registry.progress = cli_registry_progress;
        ctx->pull = &o->registry;
        r = cli_run_service(ctx, o); /* -d */
        if (r >= 0)
                return r;
        return o->kind == CLI_RUN_VM ? cli_run_vm(ctx, o) : cli_run_container(ctx, o);
}
