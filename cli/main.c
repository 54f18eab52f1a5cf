/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/cleanup.h"

typedef struct command {
        const char *name;
        cli_cmd_fn handler;
        const char *summary;
} command;

static const command commands[] = {
    {"build", cmd_build, "build an image from a spec"},
    {"check", cmd_check, "validate a spec"},
    {"run", cmd_run, "run an image as a container or a VM"},
    {"images", cmd_images, "list images"},
    {"inspect", cmd_inspect, "show an image's layers, digests, sizes and config"},
    {"rmi", cmd_rmi, "untag an image"},
    {"export", cmd_export, "export an image as a dir, tar, OCI layout or VM disk"},
    {"import", cmd_import, "import an OCI layout or docker-archive"},
    {"store", cmd_store, "store maintenance: gc, verify"},
    {"ps", cmd_ps, "list detached runs"},
    {"logs", cmd_logs, "print a detached run's output"},
    {"exec", cmd_exec, "run a command in a running detached run"},
    {"wait", cmd_wait, "wait for a detached run to end, print its status"},
    {"stop", cmd_stop, "stop a detached run (SIGTERM, then SIGKILL)"},
    {"kill", cmd_kill, "send a signal to a detached run"},
    {"rm", cmd_rm, "remove ended detached runs"},
    {"pull", cmd_pull, "pull an image from a registry"},
    {"push", cmd_push, "push an image to a registry"},
    {"tag", cmd_tag, "give an image another name"},
    {"login", cmd_login, "save credentials for a registry"},
    {"logout", cmd_logout, "remove credentials for a registry"},
    {"lock", cmd_lock, "resolve a spec's packages and write SPEC.lock"},
    {"sbom", cmd_sbom, "an image's bill of materials (SPDX or CycloneDX)"},
};

static void usage(FILE *f)
{
        fprintf(f, "usage: forge [--store DIR] COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
        for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
                fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
        fprintf(f, "\nglobal options:\n"
                   "  --store DIR  the store (else $FORGE_STORE, else /var/lib/forge as root,\n"
                   "               $XDG_DATA_HOME/forge otherwise)\n"
                   "  --help       this text; COMMAND --help or help COMMAND for a command's\n"
                   "               options\n"
                   "  --version    forge's version\n"
                   "\nexit status: 0 success, 1 failure, 2 usage or spec error;\n"
                   "forge run returns the workload's status (see forge run --help)\n");
}

int cli_store_open(cli_ctx *ctx, store **ret, forge_error **err)
{
        cleanup_free char *def = NULL;
        const char *root = ctx->store_path;

        if (root == NULL) {
                def = store_default_root();
                if (def == NULL)
                        return forge_error_make(err, 0,
                                                "cannot determine the store directory: "
                                                "pass --store DIR or set FORGE_STORE");
                root = def;
        }
        return store_open(root, ret, err);
}

int cli_fail(forge_error **err)
{
        int status = FORGE_EXIT_FAILURE;

        if (err != NULL && *err != NULL) {
                fprintf(stderr, "forge: %s\n", (*err)->msg ? (*err)->msg : "unknown error");
                if ((*err)->status == FORGE_EXIT_USAGE)
                        status = FORGE_EXIT_USAGE;
                forge_error_release(err);
        } else {
                fprintf(stderr, "forge: failed\n");
        }
        return status;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "forge %s: ", cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nrun 'forge %s --help' for usage\n", cmd);
        return FORGE_EXIT_USAGE;
}

const char *cli_format_size(unsigned long long bytes, char *buf, unsigned long len)
{
        static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = (double)bytes;
        unsigned u = 0;

        while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, len, "%llu B", bytes);
        else
                snprintf(buf, len, "%.1f %s", v, units[u]);
        return buf;
}

int main(int argc, char **argv)
{
        cli_ctx ctx = {0};
        int i = 1;

        /* Global options come before the command; --store is also accepted after
         * it (before any "--"), since users put it anywhere. */
        for (int j = 1; j < argc; j++) {
                if (strcmp(argv[j], "--") == 0)
                        break;
                if (strcmp(argv[j], "--store") == 0 || strncmp(argv[j], "--store=", 8) == 0) {
                        int drop = 1;
                        if (argv[j][7] == '=') {
                                ctx.store_path = argv[j] + 8;
                        } else {
                                if (j + 1 >= argc)
                                        return cli_usage_error("", "--store needs a directory");
                                ctx.store_path = argv[j + 1];
                                drop = 2;
                        }
                        memmove(&argv[j], &argv[j + drop],
                                sizeof(char *) * (size_t)(argc - j - drop + 1));
                        argc -= drop;
                        j--;
                }
        }
        if (i >= argc) {
                usage(stderr);
                return FORGE_EXIT_USAGE;
        }
        if (strcmp(argv[i], "help") == 0 && i + 1 < argc) {
                /* forge help CMD: CMD --help */
                for (size_t c = 0; c < ARRAY_SIZE(commands); c++)
                        if (strcmp(argv[i + 1], commands[c].name) == 0) {
                                char *hargv[] = {argv[i + 1], "--help", NULL};
                                return commands[c].handler(&ctx, 2, hargv);
                        }
                fprintf(stderr, "forge help: unknown command '%s'\n", argv[i + 1]);
                usage(stderr);
                return FORGE_EXIT_USAGE;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
            strcmp(argv[i], "help") == 0) {
                usage(stdout);
                return FORGE_EXIT_OK;
        }
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "version") == 0) {
                printf("forge %s\n", FORGE_VERSION);
                return FORGE_EXIT_OK;
        }
        for (size_t c = 0; c < ARRAY_SIZE(commands); c++) {
                if (strcmp(argv[i], commands[c].name) == 0) {
                        int r = commands[c].handler(&ctx, argc - i, argv + i);
                        if (fflush(stdout) != 0 && r == 0)
                                r = FORGE_EXIT_FAILURE;
                        return r;
                }
        }
        fprintf(stderr, "forge: unknown command '%s'\n", argv[i]);
        usage(stderr);
        return FORGE_EXIT_USAGE;
}
