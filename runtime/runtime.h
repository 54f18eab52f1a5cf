/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The container runtime (runtime/container/). The KVM launcher has its own
 * header, runtime/vmm/vmm.h; the guest inits live in runtime/init/.
 */

#include "common/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct runtime_mount {
        const char *src;  /* host path */
        const char *dest; /* absolute path in the container */
        bool ro;
} runtime_mount;

/* A port published with -p [IP:]HOSTPORT:PORT[/tcp|udp] (runtime/container/net.c). */
typedef struct runtime_port {
        char host_ip[16]; /* dotted IPv4; "127.0.0.1" unless given */
        uint16_t host_port;
        uint16_t port; /* in the container or the guest */
        bool udp;
} runtime_port;

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
        /* without upper_dir: the per-run upper and work directories on a tmpfs
         * of the container's own (in memory, charged to its memory cgroup,
         * gone with its mount namespace) instead of under tmp_root */
        bool upper_tmpfs;
        bool read_only;

        char *const *argv;    /* entrypoint + cmd, NULL-terminated, non-empty */
        char *const *env;     /* "K=V", NULL-terminated */
        const char *workdir;  /* NULL: "/" */
        const char *user;     /* "uid[:gid]" or "name[:group]" from the image; NULL: root */
        const char *hostname; /* NULL: "forge" */
        const runtime_mount *mounts;
        size_t n_mounts;
        bool tty;
        bool network_host;
        bool network_user;         /* own stack through pasta (docs/network.md) */
        const runtime_port *ports; /* -p, with network_user */
        size_t n_ports;
        runtime_caps caps;

        unsigned stop_timeout; /* seconds from SIGTERM/SIGINT to SIGKILL; 0: the default */

        uint64_t memory;     /* bytes, 0 = no limit */
        uint32_t cpus_milli; /* 0 = no limit */
        int64_t pids;        /* 0 = no limit */

        int stdin_fd; /* -1: forge's own (also for stdout/stderr) */
        int stdout_fd;
        int stderr_fd;
        const char *init_path; /* forge-init; NULL: runtime_init_find() */
        /* Called once the workload runs (exec_errno 0) or failed to execute,
         * with the pid of the container's init (`forge run -d`). */
        void (*on_start)(const struct runtime_config *cfg, pid_t init_pid, int exec_errno,
                         void *data);
        void *on_start_data;
        /* The per-run directories and cgroup are removed after the status is
         * known by a detached process, so the caller reports at once; it
         * keeps a lock of its own on cleanup_lock_fd's file (the store's lock:
         * gc waits for it), taken before runtime_container_run returns. */
        bool defer_cleanup;
        int cleanup_lock_fd; /* -1: none */
} runtime_config;

/* Sets the defaults (fds -1, everything else zero). */
void runtime_config_init(runtime_config *cfg);

typedef struct runtime_result {
        int status;     /* workload's exit status, 128+N for signal N */
        bool oom;       /* the memory limit was hit and the kernel killed a process */
        int exec_errno; /* != 0: the command could not be executed (status 126/127) */
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

/* ---- user-mode networking (runtime/container/net.c, docs/network.md) ---- */

/* The addressing of `--network user`, the same for containers and VMs
 * (QEMU's user-mode layout): the workload at .100, the gateway (the host's
 * loopback as seen from inside) at .2, the DNS forwarder at .3. */
#define RUNTIME_NET_ADDR "10.0.2.100"
#define RUNTIME_NET_PREFIX 24
#define RUNTIME_NET_GATEWAY "10.0.2.2"
#define RUNTIME_NET_DNS "10.0.2.3"
#define RUNTIME_NET_HOST_NAME "host.forge.internal"
#define RUNTIME_NET_MAX_PORTS 64

/* Parses "[IP:]HOSTPORT:PORT[/tcp|udp]" (usage error). */
int runtime_port_parse(const char *s, runtime_port *ret, forge_error **err);
/* "127.0.0.1:8080/tcp" into buf. */
const char *runtime_port_format(const runtime_port *p, char *buf, size_t len);
/* Fails naming the first host port that cannot be bound (in use, or an
 * address this host does not have). */
int runtime_ports_check(const runtime_port *ports, size_t n, forge_error **err);

/* The user-mode stack of one run: pasta for a container's network
 * namespace, passt on a socket for a VM. Nothing of it outlives forge (or
 * forge-vmm, which forge becomes): see docs/network.md. */
typedef struct runtime_net runtime_net;

/* pasta attached to the network namespace netns_fd (forge must be root). */
int runtime_net_start_ns(int netns_fd, const runtime_port *ports, size_t n_ports, runtime_net **ret,
                         forge_error **err);
/* passt speaking QEMU's stream protocol (4-byte big-endian length, then an
 * Ethernet frame) on sock_fd, a connected AF_UNIX stream socket; passt exits
 * when its peer is closed. */
int runtime_net_start_socket(int sock_fd, const runtime_port *ports, size_t n_ports,
                             runtime_net **ret, forge_error **err);
/* Stops the stack (if still running) and frees n; NULL is fine. */
void runtime_net_stop(runtime_net *n);
/* Starts stopping it (SIGKILL, no wait): the caller's own clean-up overlaps
 * the stack's teardown, runtime_net_stop still waits for it. */
void runtime_net_kill(runtime_net *n);

/* The /etc/hosts and /etc/resolv.conf a workload with `--network user` sees. */
int runtime_net_hosts(const char *hostname, char **ret, forge_error **err);
int runtime_net_resolv_conf(char **ret, forge_error **err);

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
int runtime_image_config_parse(const json_t *config, runtime_image_config *ret, forge_error **err);
void runtime_image_config_free(runtime_image_config *c);
/* entrypoint + (args when n_args > 0, else cmd). Pointers are borrowed. */
char **runtime_argv_build(char *const *entrypoint, char *const *cmd, char *const *args,
                          size_t n_args);
/* image env, then extra "K=V" (a later K replaces an earlier one); PATH is
 * added when neither sets it. malloc'd strv. */
char **runtime_env_merge(char *const *image_env, const char *const *extra, size_t n_extra);

/* ---- exec into a running container (runtime/container/exec.c) ---- */

typedef struct runtime_exec_config {
        pid_t init_pid;      /* the container's PID 1 */
        int init_pidfd;      /* a pidfd of it, its start time checked by the caller */
        char *const *argv;   /* NULL-terminated, non-empty */
        char *const *env;    /* "K=V", NULL-terminated */
        const char *workdir; /* NULL: "/" */
        const char *user;    /* resolved in the container's /etc/passwd; NULL: root */
        bool tty;
        runtime_caps caps;
} runtime_exec_config;

/* Runs argv in the container's namespaces (setns on init_pidfd) and cgroup,
 * as the container's own processes are confined: the capability set,
 * no_new_privs, the seccomp filter; waits for it, forwarding signals and,
 * with tty, relaying a pty of the container's devpts. Returns < 0 when it
 * could not be started (125). */
int runtime_container_exec(const runtime_exec_config *cfg, runtime_result *ret, forge_error **err);
