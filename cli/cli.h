/* SPDX-License-Identifier: MIT */
#pragma once

/* The thin command-line layer: option parsing, printing, exit statuses.
 * Only this module prints errors (once, in cli_fail). */

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "store/store.h"

struct registry_opts;

typedef struct cli_ctx {
        const char *store_path;           /* --store, or NULL */
        const struct registry_opts *pull; /* how a remote image is pulled, NULL: defaults */
} cli_ctx;

/* Every handler gets argv[0] = the command name, and returns an exit status. */
typedef int cli_command(cli_ctx *ctx, int argc, char **argv);
typedef cli_command *cli_cmd_fn;

/* Opens the store named by --store / $FORGE_STORE / the default. */
int cli_store_open(cli_ctx *ctx, store **ret, forge_error **err);

struct cli_opts_cmd;
struct cli_opt;
/* What a command does with the store open: operands are argv's after the
 * options (NULL-terminated); an exit status, or < 0 with *err set. */
typedef int cli_store_fn(store *s, char **operands, void *data, forge_error **err);
/* A command on the store: c's options parsed, the store opened, then fn.
 * Returns fn's exit status; 0 after --help; else that of the usage error or
 * the failure, printed (store-command.c). */
int cli_store_command(cli_ctx *ctx, const struct cli_opts_cmd *c, const struct cli_opt *opts,
                      size_t n, int argc, char **argv, cli_store_fn *fn, void *data);

/* Prints "forge: MESSAGE" to stderr, frees err, returns its exit status
 * (FORGE_EXIT_USAGE for usage/spec errors, else FORGE_EXIT_FAILURE). */
int cli_fail(forge_error **err);
/* Prints "forge CMD: MESSAGE" plus a hint to run --help; returns FORGE_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "1.2 MiB" style; buf of at least 16 bytes. */
const char *cli_format_size(unsigned long long bytes, char *buf, unsigned long len);

/* The commands of main.c's table, by file. */
cli_command cmd_build, cmd_check;             /* cmd-build.c */
cli_command cmd_run;                          /* cmd-run.c */
cli_command cmd_images, cmd_inspect, cmd_rmi; /* cmd-images.c */
cli_command cmd_export;                       /* cmd-export.c */
cli_command cmd_import;                       /* cmd-import.c */
cli_command cmd_store;                        /* cmd-store.c: gc, verify */
cli_command cmd_pull, cmd_push;               /* cmd-pull.c */
/* An image in the store, or a registry reference pulled first with
 * ctx->pull's options (cmd-pull.c). */
int cli_image_resolve(cli_ctx *ctx, store *s, const char *ref, char ret[DIGEST_STR_SIZE],
                      forge_error **err);
cli_command cmd_tag;               /* cmd-tag.c */
cli_command cmd_login, cmd_logout; /* cmd-login.c */
cli_command cmd_lock;              /* cmd-lock.c */
cli_command cmd_sbom;              /* cmd-sbom.c */

/* `forge export --format disk` (cmd-export-disk.c). */
int cli_export_disk(cli_ctx *ctx, store *s, const char *manifest_digest, const char *out_path);
/* forge run's target: an image (name:tag or digest) in the store, or a SPEC
 * built first (run: steps scratch in the store's tmp/); its manifest digest. */
int cli_run_resolve(cli_ctx *ctx, store *s, const char *target, bool is_spec,
                    char ret[DIGEST_STR_SIZE], forge_error **err);
/* `forge run`'s --user and --hostname (either may be NULL): 0, or a usage
 * error printed (exit 2) naming the bad value (cmd-run.c). */
int cli_run_check_names(const char *user, const char *hostname);
struct cli_run_opts;
/* forge run's two kinds, from the options read once (cli/run-opts.h): an
 * exit status each (cmd-run.c, cmd-run-vm.c). */
int cli_run_container(cli_ctx *ctx, const struct cli_run_opts *o);
int cli_run_vm(cli_ctx *ctx, const struct cli_run_opts *o);

/* forge run -d and friends (run-service.c): -d, --name, --rm, --entrypoint,
 * --log-max; with -d starts the run detached and returns its exit status,
 * else -1 (go on with the attached run). */
int cli_run_service(cli_ctx *ctx, const struct cli_run_opts *o);
/* --entrypoint: replaces the image's entrypoint and drops its cmd. */
void cli_run_command_override(char ***entrypoint, char ***cmd);
const char *cli_run_entrypoint(void); /* NULL when not given */
/* In a detached run's workload: its directory (the VM's control socket goes there), else NULL. */
const char *cli_run_control_dir(void);
struct runtime_config;
/* In a detached run's workload: reports the container's start to the supervisor. */
void cli_run_service_configure(struct runtime_config *cfg);
/* ps, logs, wait, stop, kill, rm, exec (cmd-service.c) */
cli_command cmd_ps, cmd_logs, cmd_wait, cmd_stop, cmd_kill, cmd_rm, cmd_exec;
