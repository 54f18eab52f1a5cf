/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The container runtime (runtime/container/). The KVM launcher has its own
 * header, runtime/vmm/vmm.h; the guest inits live in runtime/init/.
 */

#include "common/error.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct runtime_mount {
        const char *src; /* host path */
        const char *dest; /* absolute path in the container */
        bool ro;
} runtime_mount;

typedef enum runtime_caps {
        RUNTIME_CAPS_DEFAULT = 0, /* crun's default set (`crun spec`) */
        RUNTIME_CAPS_BUILD,       /* docker's default set, for `run:` build steps */
} runtime_caps;

/* The process limit of build steps and of containers that set none (podman's
 * default pids limit). */
#define RUNTIME_DEFAULT_PIDS 2048
/* Seconds between a first SIGTERM/SIGINT (forwarded) and SIGKILL, docker
 * stop's default. */
#define RUNTIME_DEFAULT_STOP_TIMEOUT 10

typedef struct runtime_config {
        /* The root file system: an overlay of lowerdirs (bottom first). When
         * upper_dir is NULL a per-run upper/work pair is made under tmp_root and
         * removed afterwards. */
        const char *const *lowerdirs;
        size_t n_lowerdirs;
        const char *upper_dir;
        const char *work_dir;
        const char *tmp_root; /* e.g. the store's tmp/; NULL: /tmp */
        bool read_only;

        char *const *argv; /* entrypoint + cmd, NULL-terminated, non-empty */
        char *const *env;  /* "K=V", NULL-terminated */
        const char *workdir;  /* NULL: "/" */
        const char *user;     /* "uid[:gid]" or "name[:group]" from the image; NULL: root */
        const char *hostname; /* NULL: "forge" */
        const runtime_mount *mounts;
        size_t n_mounts;
        bool tty;
        bool network_host;
        runtime_caps caps;

        unsigned stop_timeout; /* seconds from SIGTERM/SIGINT to SIGKILL; 0: the default */

        uint64_t memory;     /* bytes, 0 = no limit */
        uint32_t cpus_milli; /* 0 = no limit */
        int64_t pids;        /* 0 = no limit */

        int stdin_fd; /* -1: forge's own (also for stdout/stderr) */
        int stdout_fd;
        int stderr_fd;
        const char *init_path; /* forge-init; NULL: runtime_init_find() */
} runtime_config;

/* Sets the defaults (fds -1, everything else zero). */
void runtime_config_init(runtime_config *cfg);

typedef struct runtime_result {
        int status;       /* workload's exit status, 128+N for signal N */
        bool oom;         /* the memory limit was hit and the kernel killed a process */
        int exec_errno;   /* != 0: the command could not be executed (status 126/127) */
} runtime_result;

/* Runs a container to completion. Returns < 0 when it could not be started
 * (the caller exits 125). Signals SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
 * SIGUSR2 sent to the caller are forwarded to the workload meanwhile; after a
 * SIGTERM or SIGINT, a second one or stop_timeout seconds kill the container
 * (status 128 + the first signal's number). */
int runtime_container_run(const runtime_config *cfg, runtime_result *ret, forge_error **err);

/* Where forge-init is: $FORGE_INIT, next to the running executable, the build
 * tree (../runtime/init/), then /usr/local/libexec/forge and /usr/libexec/forge. */
int runtime_init_find(char **ret_path, forge_error **err);

/* ---- an image's run configuration (runtime/image-config.c) ---- */

#include <jansson.h>

/* What `forge run` reads from an OCI image config: config.Entrypoint, Cmd,
 * Env, WorkingDir, User, Hostname, and forge's extension
 * "dev.forge": {"container": {"memory", "cpus_milli" (or "cpus"), "pids",
 * "read_only"}} (also under "config"). memory may be a number of bytes or a
 * size string ("256M"). An image is data, not authority: host paths
 * ("mounts") and host networking ("network") in it are ignored; they come
 * only from the command line or the spec being run (docs/run.md). */
typedef struct runtime_image_config {
        char **entrypoint; /* NULL-terminated, never NULL */
        char **cmd;
        char **env;
        char *workdir; /* NULL when unset */
        char *user;
        char *hostname;
        uint64_t memory;
        uint32_t cpus_milli;
        int64_t pids;
        int read_only; /* -1 unset, 0, 1 */
} runtime_image_config;

/* Fails (usage error) on wrongly typed values. */
int runtime_image_config_parse(const json_t *config, runtime_image_config *ret,
                               forge_error **err);
void runtime_image_config_free(runtime_image_config *c);
/* entrypoint + (args when n_args > 0, else cmd). Pointers are borrowed. */
char **runtime_argv_build(char *const *entrypoint, char *const *cmd, char *const *args,
                          size_t n_args);
/* image env, then extra "K=V" (a later K replaces an earlier one); PATH is
 * added when neither sets it. malloc'd strv. */
char **runtime_env_merge(char *const *image_env, const char *const *extra, size_t n_extra);
