/* SPDX-License-Identifier: MIT */
/* forge run's option table, for containers and VMs alike (run-opts.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/registry-cli.h"
#include "cli/run-opts.h"
#include "common/cleanup.h"

typedef struct run_parse run_parse;

typedef struct run_option {
        /* its --help line: the option as written, what it does; usage NULL: hidden */
        const char *usage, *help;
        const char *name; /* long name; NULL: a --help line only (a registry option) */
        char short_name;
        cli_opt_type type;
        size_t field, count; /* offsets in cli_run_opts: the value, a list's count */
        size_t max;          /* a list's size */
        /* what the option does instead of a field (or a check of a list's value) */
        int (*fn)(run_parse *p, const cli_opt *row, const char *arg);
        unsigned only; /* the one cli_run_kind it is for; 0: both */
} run_option;

static int port_opt(run_parse *p, const cli_opt *row, const char *arg);
static int as_opt(run_parse *p, const cli_opt *row, const char *arg);
static int env_opt(run_parse *p, const cli_opt *row, const char *arg);

/* Where a row's value goes, checked to be of the type the row says. */
#define FIELD(f, T) (offsetof(cli_run_opts, f) + 0 * sizeof(1 ? &((cli_run_opts *)0)->f : (T *)0))
#define FLAG(n, c, f) .name = (n), .short_name = (c), .type = CLI_OPT_FLAG, .field = FIELD(f, bool)
#define VALUE(n, c, f)                                                                             \
        .name = (n), .short_name = (c), .type = CLI_OPT_VALUE, .field = FIELD(f, const char *)
#define LIST(n, c, f)                                                                              \
        .name = (n), .short_name = (c), .type = CLI_OPT_LIST, .field = FIELD(f[0], const char *),  \
        .count = FIELD(n_##f, size_t), .max = ARRAY_SIZE(((cli_run_opts *)0)->f)
#define CALL(n, c, f) .name = (n), .short_name = (c), .type = CLI_OPT_VALUE, .fn = (f)

/* The one table: the options, the kind check and --help come from it. The
 * registry options are registry-cli.h's; here are their --help lines. */
static const run_option options[] = {
    {"-e K=V", "set an environment variable", LIST("env", 'e', env), .fn = env_opt},
    {"-v SRC:DST[:ro]", "bind-mount a host path (a VM: a directory, shared over virtio-fs)",
     LIST("volume", 'v', volumes)},
    {"-t", "allocate a terminal (a VM: the host terminal raw, the console a terminal)",
     FLAG("tty", 't', tty)},
    {"-p [IP:]HOSTPORT:PORT[/tcp|udp]", "publish a port (--network user; IP 127.0.0.1)",
     CALL("publish", 'p', port_opt)},
    {"--memory SIZE",
     "memory limit (e.g. 256M); a VM's memory (default: the spec's vm.memory, else 512M)",
     VALUE("memory", 0, memory)},
    {"--cpus N", "CPU limit (e.g. 1.5); a VM's vCPUs (default: the spec's vm.cpus, else 1)",
     VALUE("cpus", 0, cpus)},
    {"--pids N", "process limit (default 2048; -1: none)", VALUE("pids", 0, pids),
     .only = CLI_RUN_CONTAINER},
    {"--network none|host|user",
     "default none: loopback only (a VM: no network device); user: own address, route, DNS, "
     "outbound through the host; host: the host's (containers)",
     VALUE("network", 0, network)},
    {"--read-only", "read-only root file system", FLAG("read-only", 0, read_only)},
    {"--upper-tmpfs", "the root's writable layer in memory, not in the store",
     FLAG("upper-tmpfs", 0, upper_tmpfs), .only = CLI_RUN_CONTAINER},
    {"--user U[:G]", "numeric or a name from the image's /etc/passwd", VALUE("user", 0, user)},
    {"--workdir DIR", "working directory", VALUE("workdir", 0, workdir)},
    {"--hostname NAME", "host name", VALUE("hostname", 0, hostname)},
    {"--stop-timeout N",
     "seconds from a SIGTERM/SIGINT (forwarded) to SIGKILL (default 10; a second signal kills "
     "at once)",
     VALUE("stop-timeout", 0, stop_timeout), .only = CLI_RUN_CONTAINER},
    {"--timeout SECONDS", "stop the guest after this long (exit 124)", VALUE("timeout", 0, timeout),
     .only = CLI_RUN_VM},
    {"--persist", "write guest writes to DISK.img (default: thrown away)",
     FLAG("persist", 0, persist), .only = CLI_RUN_VM},
    {"--verbose", "show the guest kernel's messages on the console", FLAG("verbose", 0, verbose),
     .only = CLI_RUN_VM},
    {"--as container|vm", "default container", CALL("as", 0, as_opt)},
    {"-d, --detach", "run in the background, print the run's id (docs/services.md)",
     FLAG("detach", 'd', detach)},
    {"--name NAME", "the detached run's name", VALUE("name", 0, name)},
    {"--rm", "remove the detached run when it ends", FLAG("rm", 0, remove)},
    {"--entrypoint PROG", "replaces the image's entrypoint (and drops its cmd)",
     VALUE("entrypoint", 0, entrypoint)},
    {"--log-max SIZE", "detached run's log: rotated at SIZE (default 16M)",
     VALUE("log-max", 0, log_max)},
    {.usage = "--pull POLICY",
     .help = "a remote IMAGE (HOST/REPO:TAG): missing (default) pulls it only when the "
             "store lacks it, always, or never (docs/registry.md)"},
    {.usage = "-q, --quiet", .help = "no pull progress"},
    {.usage = "--tls-verify=false",
     .help = "pull over plain HTTP or with an untrusted certificate"},
    {.usage = "--cert-dir DIR",
     .help = "per-registry TLS files in DIR/HOST/ (default /etc/containers/certs.d)"},
    {.usage = "--authfile FILE", .help = "registry credentials"},
    {LIST("rootfs", 0, rootfs)}, /* hidden: no usage */
};

/* One pass over argv: cli_opts_parse's rows (row i is options[i], then the
 * registry options), and the first option given that is for one kind only
 * (--as may come after it). */
struct run_parse {
        cli_run_opts *o;
        const run_option *first_narrow[2];
        cli_opt rows[ARRAY_SIZE(options) + 5];
};

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
                const char *kind = op->only == CLI_RUN_CONTAINER ? "[container] "
                                   : op->only == CLI_RUN_VM      ? "[vm] "
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

                if (o->usage == NULL || o->only == CLI_RUN_CONTAINER || o->fn == as_opt)
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

static int env_opt(run_parse *p, const cli_opt *row, const char *arg)
{
        (void)p;
        return cli_opt_env("run", row, arg);
}

static int port_opt(run_parse *p, const cli_opt *row, const char *arg)
{
        cli_run_opts *o = p->o;
        cleanup_error forge_error *perr = NULL;

        (void)row;
        if (o->n_ports >= RUNTIME_NET_MAX_PORTS)
                return cli_usage_error("run", "too many -p (at most %d)", RUNTIME_NET_MAX_PORTS);
        if (runtime_port_parse(arg, &o->ports[o->n_ports], &perr) < 0)
                return cli_usage_error("run", "%s", perr->msg);
        o->n_ports++;
        return 0;
}

static int as_opt(run_parse *p, const cli_opt *row, const char *arg)
{
        static const cli_choice kinds[] = {{"container", CLI_RUN_CONTAINER}, {"vm", CLI_RUN_VM}};
        int v;

        (void)row;
        if (cli_choice_find(kinds, ARRAY_SIZE(kinds), arg, &v) < 0)
                return cli_usage_error("run", "--as wants container or vm, got '%s'", arg);
        p->o->kind = (cli_run_kind)v;
        return 0;
}

/* Every option of the table given: the kinds it is for, then its own fn. */
static int seen(const char *cmd, const cli_opt *row, const char *arg)
{
        run_parse *p = row->data;
        const run_option *op = &options[row - p->rows];

        (void)cmd;
        if (op->only == CLI_RUN_CONTAINER && p->first_narrow[0] == NULL)
                p->first_narrow[0] = op;
        if (op->only == CLI_RUN_VM && p->first_narrow[1] == NULL)
                p->first_narrow[1] = op;
        return op->fn != NULL ? op->fn(p, row, arg) : 0;
}

static size_t rows_make(run_parse *p)
{
        const cli_opt pull[] = {CLI_PULL_OPTS(&p->o->registry, &p->o->quiet)};
        char *base = (char *)p->o;

        _Static_assert(ARRAY_SIZE(pull) == ARRAY_SIZE(p->rows) - ARRAY_SIZE(options),
                       "the registry options' rows");
        for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
                const run_option *op = &options[i];

                p->rows[i] = (cli_opt){.name = op->name,
                                       .short_name = op->short_name,
                                       .type = op->type,
                                       .max = op->max,
                                       .fn = seen,
                                       .data = p};
                if (op->name != NULL && (op->type == CLI_OPT_LIST || op->fn == NULL))
                        p->rows[i].field = base + op->field;
                if (op->type == CLI_OPT_LIST)
                        p->rows[i].count = (size_t *)(void *)(base + op->count);
        }
        memcpy(&p->rows[ARRAY_SIZE(options)], pull, sizeof(pull));
        return ARRAY_SIZE(p->rows);
}

int cli_run_opts_parse(int argc, char **argv, cli_run_opts *o)
{
        /* no usage text: help() prints the table's; options end at IMAGE;
         * -h is not --help (it is --hostname elsewhere) */
        static const cli_opts_cmd cmd = {"run", NULL, CLI_OPTS_IN_ORDER | CLI_OPTS_NO_H,
                                         0,     -1,   NULL};
        run_parse p = {.o = o};
        int first, r;

        *o = (cli_run_opts){.kind = CLI_RUN_CONTAINER};
        registry_opts_init(&o->registry);
        r = cli_opts_parse(&cmd, p.rows, rows_make(&p), argc, argv, &first);
        if (r == CLI_OPTS_HELP)
                help();
        if (r != 0)
                return r;
        /* --as may come after the options it decides about */
        if (o->kind == CLI_RUN_VM && p.first_narrow[0] != NULL)
                return kind_error(p.first_narrow[0], CLI_RUN_VM);
        if (o->kind == CLI_RUN_CONTAINER && p.first_narrow[1] != NULL)
                return kind_error(p.first_narrow[1], CLI_RUN_CONTAINER);
        if (o->n_rootfs == 0 || o->kind == CLI_RUN_VM) {
                if (first >= argc || strcmp(argv[first], "--") == 0)
                        return cli_usage_error("run", o->kind == CLI_RUN_VM
                                                          ? "missing IMAGE, SPEC or DISK.img"
                                                          : "missing IMAGE or SPEC");
                o->target = argv[first++];
        }
        if (first < argc && strcmp(argv[first], "--") == 0)
                first++;
        o->args = argv + first;
        o->n_args = argc - first;
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
