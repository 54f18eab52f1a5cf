/* SPDX-License-Identifier: MIT */
/* forge run's option table, for containers and VMs alike (run-opts.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/run-opts.h"
#include "common/cleanup.h"

#define BOTH (CLI_RUN_CONTAINER | CLI_RUN_VM)

enum {
        OPT_MEMORY = 256,
        OPT_CPUS,
        OPT_PIDS,
        OPT_NETWORK,
        OPT_READ_ONLY,
        OPT_USER,
        OPT_WORKDIR,
        OPT_HOSTNAME,
        OPT_STOP_TIMEOUT,
        OPT_TIMEOUT,
        OPT_PERSIST,
        OPT_VERBOSE,
        OPT_AS,
        OPT_ROOTFS,
        OPT_NAME,
        OPT_RM,
        OPT_ENTRYPOINT,
        OPT_LOG_MAX,
        OPT_HELP,
};

typedef struct run_option {
        const char *name; /* long name, or NULL */
        int id;           /* the short letter, or OPT_* */
        bool arg;
        unsigned kinds; /* cli_run_kind bits; 0: hidden, for both */
        const char *usage, *help;
} run_option;

/* The one table: getopt's options, the kind check and --help come from it. */
static const run_option options[] = {
    {"env", 'e', true, BOTH, "-e K=V", "set an environment variable"},
    {"volume", 'v', true, BOTH, "-v SRC:DST[:ro]",
     "bind-mount a host path (a VM: a directory, shared over virtio-fs)"},
    {"tty", 't', false, BOTH, "-t",
     "allocate a terminal (a VM: the host terminal raw, the console a terminal)"},
    {"publish", 'p', true, BOTH, "-p [IP:]HOSTPORT:PORT[/tcp|udp]",
     "publish a port (--network user; IP 127.0.0.1)"},
    {"memory", OPT_MEMORY, true, BOTH, "--memory SIZE",
     "memory limit (e.g. 256M); a VM's memory (default: the spec's vm.memory, else 512M)"},
    {"cpus", OPT_CPUS, true, BOTH, "--cpus N",
     "CPU limit (e.g. 1.5); a VM's vCPUs (default: the spec's vm.cpus, else 1)"},
    {"pids", OPT_PIDS, true, CLI_RUN_CONTAINER, "--pids N",
     "process limit (default 2048; -1: none)"},
    {"network", OPT_NETWORK, true, BOTH, "--network none|host|user",
     "default none: loopback only (a VM: no network device); user: own address, route, DNS, "
     "outbound through the host; host: the host's (containers)"},
    {"read-only", OPT_READ_ONLY, false, BOTH, "--read-only", "read-only root file system"},
    {"user", OPT_USER, true, BOTH, "--user U[:G]",
     "numeric or a name from the image's /etc/passwd"},
    {"workdir", OPT_WORKDIR, true, BOTH, "--workdir DIR", "working directory"},
    {"hostname", OPT_HOSTNAME, true, BOTH, "--hostname NAME", "host name"},
    {"stop-timeout", OPT_STOP_TIMEOUT, true, CLI_RUN_CONTAINER, "--stop-timeout N",
     "seconds from a SIGTERM/SIGINT (forwarded) to SIGKILL (default 10; a second signal kills "
     "at once)"},
    {"timeout", OPT_TIMEOUT, true, CLI_RUN_VM, "--timeout SECONDS",
     "stop the guest after this long (exit 124)"},
    {"persist", OPT_PERSIST, false, CLI_RUN_VM, "--persist",
     "write guest writes to DISK.img (default: thrown away)"},
    {"verbose", OPT_VERBOSE, false, CLI_RUN_VM, "--verbose",
     "show the guest kernel's messages on the console"},
    {"as", OPT_AS, true, BOTH, "--as container|vm", "default container"},
    {"detach", 'd', false, BOTH, "-d, --detach",
     "run in the background, print the run's id (docs/services.md)"},
    {"name", OPT_NAME, true, BOTH, "--name NAME", "the detached run's name"},
    {"rm", OPT_RM, false, BOTH, "--rm", "remove the detached run when it ends"},
    {"entrypoint", OPT_ENTRYPOINT, true, BOTH, "--entrypoint PROG",
     "replaces the image's entrypoint (and drops its cmd)"},
    {"log-max", OPT_LOG_MAX, true, BOTH, "--log-max SIZE",
     "detached run's log: rotated at SIZE (default 16M)"},
    {"rootfs", OPT_ROOTFS, true, 0, NULL, NULL},
    {"help", OPT_HELP, false, 0, NULL, NULL},
};

static const run_option *find(int id)
{
        for (size_t i = 0; i < ARRAY_SIZE(options); i++)
                if (options[i].id == id)
                        return &options[i];
        return NULL;
}

/* TEXT after the option's column, wrapped at 79 columns */
static void wrap(const char *kind, const char *text)
{
        size_t col = 27 + strlen(kind);

        fputs(kind, stdout);
        for (const char *p = text; *p;) {
                size_t w = strcspn(p, " ");

                if (col > 27 && col + 1 + w > 79) {
                        printf("\n%27s", "");
                        col = 27;
                } else if (p != text) {
                        putchar(' ');
                        col++;
                }
                printf("%.*s", (int)w, p);
                col += w;
                p += w;
                p += strspn(p, " ");
        }
        putchar('\n');
}

static void help(void)
{
        printf("usage: forge run [--as container|vm] [OPTIONS] IMAGE|SPEC|DISK.img [-- ARG...]\n\n"
               "Runs the image's entrypoint as a container, or boots it as a VM with forge's own\n"
               "KVM launcher (--as vm; an IMAGE's disk image is built once and cached in the\n"
               "store); ARGs replace its cmd. A SPEC is built first; a DISK.img is for VMs.\n\n");
        for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
                const run_option *op = &options[i];
                const char *kind = op->kinds == CLI_RUN_CONTAINER ? "[container] "
                                   : op->kinds == CLI_RUN_VM      ? "[vm] "
                                                                  : "";

                if (op->usage == NULL)
                        continue;
                if (strlen(op->usage) > 24)
                        printf("  %s\n%27s", op->usage, "");
                else
                        printf("  %-24s ", op->usage);
                wrap(kind, op->help);
        }
        printf("\nexit status: the workload's; 128+N when it died of signal N; 124 on a VM's\n"
               "--timeout; 125 when forge could not start it or the guest failed (kernel panic\n"
               "...); 126 when the command cannot be executed; 127 when it is not found.\n"
               "See docs/run.md and docs/vm.md.\n");
}

/* The options of the other kind given, named with the ones this kind takes. */
static int kind_error(const run_option *op, cli_run_kind kind)
{
        char takes[512];
        size_t len = 0;

        if (kind == CLI_RUN_CONTAINER)
                return cli_usage_error("run", "%.*s is for VMs (--as vm)",
                                       (int)strcspn(op->usage, " ,"), op->usage);
        takes[0] = '\0';
        for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
                const run_option *o = &options[i];
                int n;

                if (o->usage == NULL || !(o->kinds & CLI_RUN_VM) || o->id == OPT_AS)
                        continue;
                n = snprintf(takes + len, sizeof(takes) - len, "%s%.*s", len ? ", " : "",
                             (int)strcspn(o->usage, " ,"), o->usage);
                if (n < 0 || (size_t)n >= sizeof(takes) - len)
                        break;
                len += (size_t)n;
        }
        return cli_usage_error("run", "%.*s is for containers: a VM takes %s",
                               (int)strcspn(op->usage, " ,"), op->usage, takes);
}

static int take(cli_run_opts *o, int c, const char *arg)
{
        switch (c) {
        case 'e':
                if (strchr(arg, '=') == NULL || arg[0] == '=' || o->n_env >= CLI_RUN_MAX_LIST)
                        return cli_usage_error("run", "-e wants K=V, got '%s'", arg);
                o->env[o->n_env++] = arg;
                return 0;
        case 'v':
                if (o->n_volumes >= CLI_RUN_MAX_LIST)
                        return cli_usage_error("run", "too many -v");
                o->volumes[o->n_volumes++] = arg;
                return 0;
        case 'p': {
                cleanup_error forge_error *perr = NULL;

                if (o->n_ports >= RUNTIME_NET_MAX_PORTS)
                        return cli_usage_error("run", "too many -p (at most %d)",
                                               RUNTIME_NET_MAX_PORTS);
                if (runtime_port_parse(arg, &o->ports[o->n_ports], &perr) < 0)
                        return cli_usage_error("run", "%s", perr->msg);
                o->n_ports++;
                return 0;
        }
        case OPT_ROOTFS:
                if (o->n_rootfs >= CLI_RUN_MAX_LIST)
                        return cli_usage_error("run", "too many --rootfs");
                o->rootfs[o->n_rootfs++] = arg;
                return 0;
        case OPT_AS:
                if (strcmp(arg, "container") == 0)
                        o->kind = CLI_RUN_CONTAINER;
                else if (strcmp(arg, "vm") == 0)
                        o->kind = CLI_RUN_VM;
                else
                        return cli_usage_error("run", "--as wants container or vm, got '%s'", arg);
                return 0;
        case 't':
                o->tty = true;
                return 0;
        case 'd':
                o->detach = true;
                return 0;
        case OPT_RM:
                o->remove = true;
                return 0;
        case OPT_READ_ONLY:
                o->read_only = true;
                return 0;
        case OPT_PERSIST:
                o->persist = true;
                return 0;
        case OPT_VERBOSE:
                o->verbose = true;
                return 0;
        case OPT_MEMORY:
                o->memory = arg;
                return 0;
        case OPT_CPUS:
                o->cpus = arg;
                return 0;
        case OPT_PIDS:
                o->pids = arg;
                return 0;
        case OPT_NETWORK:
                o->network = arg;
                return 0;
        case OPT_USER:
                o->user = arg;
                return 0;
        case OPT_WORKDIR:
                o->workdir = arg;
                return 0;
        case OPT_HOSTNAME:
                o->hostname = arg;
                return 0;
        case OPT_STOP_TIMEOUT:
                o->stop_timeout = arg;
                return 0;
        case OPT_TIMEOUT:
                o->timeout = arg;
                return 0;
        case OPT_NAME:
                o->name = arg;
                return 0;
        case OPT_ENTRYPOINT:
                o->entrypoint = arg;
                return 0;
        case OPT_LOG_MAX:
                o->log_max = arg;
                return 0;
        default:
                return -1;
        }
}

int cli_run_opts_parse(int argc, char **argv, cli_run_opts *o)
{
        struct option longopts[ARRAY_SIZE(options) + 1];
        char shorts[32] = "+:";
        size_t ns = 2, nl = 0;
        const run_option *first_narrow[2] = {NULL, NULL};
        int c;

        for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
                const run_option *op = &options[i];

                longopts[nl++] = (struct option){
                    op->name, op->arg ? required_argument : no_argument, NULL, op->id};
                if (op->id < 128 && ns + 3 < sizeof(shorts)) {
                        shorts[ns++] = (char)op->id;
                        if (op->arg)
                                shorts[ns++] = ':';
                }
        }
        longopts[nl] = (struct option){NULL, 0, NULL, 0};
        shorts[ns] = '\0';
        *o = (cli_run_opts){.kind = CLI_RUN_CONTAINER};
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
                const run_option *op = find(c);
                int r;

                if (c == OPT_HELP) {
                        help();
                        return -1;
                }
                if (op == NULL)
                        return cli_bad_option("run", c, argv);
                if (op->kinds == CLI_RUN_CONTAINER && first_narrow[0] == NULL)
                        first_narrow[0] = op;
                if (op->kinds == CLI_RUN_VM && first_narrow[1] == NULL)
                        first_narrow[1] = op;
                r = take(o, c, optarg);
                if (r != 0)
                        return r;
        }
        /* --as may come after the options it decides about */
        if (o->kind == CLI_RUN_VM && first_narrow[0] != NULL)
                return kind_error(first_narrow[0], CLI_RUN_VM);
        if (o->kind == CLI_RUN_CONTAINER && first_narrow[1] != NULL)
                return kind_error(first_narrow[1], CLI_RUN_CONTAINER);
        if (o->n_rootfs == 0 || o->kind == CLI_RUN_VM) {
                if (optind >= argc || strcmp(argv[optind], "--") == 0)
                        return cli_usage_error("run", o->kind == CLI_RUN_VM
                                                          ? "missing IMAGE, SPEC or DISK.img"
                                                          : "missing IMAGE or SPEC");
                o->target = argv[optind++];
        }
        if (optind < argc && strcmp(argv[optind], "--") == 0)
                optind++;
        o->args = argv + optind;
        o->n_args = argc - optind;
        return 0;
}

int cli_run_volume_split(const char *arg, char **ret_src, char **ret_dst, bool *ret_ro)
{
        cleanup_free char *s = strdup(arg);
        char *dst, *mode;

        *ret_ro = false;
        if (s == NULL)
                return -1;
        dst = strchr(s, ':');
        if (dst == NULL || dst == s)
                return -1;
        *dst++ = '\0';
        mode = strchr(dst, ':');
        if (mode != NULL) {
                *mode++ = '\0';
                if (strcmp(mode, "ro") == 0)
                        *ret_ro = true;
                else if (strcmp(mode, "rw") != 0)
                        return -1;
        }
        if (dst[0] != '/')
                return -1;
        *ret_dst = strdup(dst);
        if (*ret_dst == NULL)
                return -1;
        *ret_src = take_ptr(s);
        return 0;
}
