/* SPDX-License-Identifier: MIT */
#pragma once

/* forge run's options, for both kinds: one table (run-opts.c) gives each
 * option its name, its value, the kinds it is for and its --help line; argv
 * is read once, by cli_run_opts_parse(). Each kind then resolves what it was
 * given (cmd-run.c for containers, cmd-run-vm.c for VMs, run-service.c for
 * -d and friends). */

#include <stdbool.h>
#include <stddef.h>

#include "runtime/runtime.h"
#include "store/registry.h"

#define CLI_RUN_MAX_LIST 256

typedef enum cli_run_kind {
        CLI_RUN_CONTAINER = 1u << 0,
        CLI_RUN_VM = 1u << 1,
} cli_run_kind;

typedef struct cli_run_opts {
        cli_run_kind kind; /* --as; CLI_RUN_CONTAINER by default */
        const char *env[CLI_RUN_MAX_LIST];
        size_t n_env;
        const char *volumes[CLI_RUN_MAX_LIST]; /* -v SRC:DST[:ro|rw] as given */
        size_t n_volumes;
        runtime_port ports[RUNTIME_NET_MAX_PORTS];
        size_t n_ports;
        const char *rootfs[CLI_RUN_MAX_LIST]; /* hidden --rootfs DIR: layers without a store */
        size_t n_rootfs;
        bool tty, read_only, upper_tmpfs, persist, verbose;
        const char *memory, *cpus, *pids, *network, *user, *workdir, *hostname;
        const char *stop_timeout, *timeout;
        /* the service options (run-service.c) */
        bool detach, remove;
        const char *name, *entrypoint, *log_max;
        /* how a remote IMAGE is pulled: --pull, the registry options; -q */
        registry_opts registry;
        bool quiet;
        /* what follows the options: IMAGE|SPEC|DISK.img (NULL with --rootfs),
         * then the workload's arguments */
        const char *target;
        char **args;
        int n_args;
} cli_run_opts;

/* Reads argv (argv[0] = "run") into *o. Returns 0; -1 after printing --help;
 * else an exit status after printing a usage error (an unknown option, a
 * missing value, an option of the other kind, a missing IMAGE). The strings
 * in *o point into argv. */
int cli_run_opts_parse(int argc, char **argv, cli_run_opts *o);

/* "SRC:DST[:ro|rw]" with an absolute DST: 0 and SRC, DST (both malloc'd)
 * and ro; -1 when it is not of that form (or out of memory). */
int cli_run_volume_split(const char *arg, char **ret_src, char **ret_dst, bool *ret_ro);
