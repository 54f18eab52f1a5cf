/* SPDX-License-Identifier: MIT */
/* forge pull REF [--tag NAME[:TAG]] [-q] [registry options] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/registry-cli.h"
#include "common/cleanup.h"

int cli_registry_option(const char *cmd, int c, const char *arg, registry_opts *o)
{
        switch (c) {
        case CLI_REG_OPT_TLS_VERIFY:
                if (strcmp(arg, "true") == 0)
                        o->tls_verify = 1;
                else if (strcmp(arg, "false") == 0)
                        o->tls_verify = 0;
                else {
                        cli_usage_error(cmd, "--tls-verify is 'true' or 'false', not '%s'", arg);
                        return -1;
                }
                return 1;
        case CLI_REG_OPT_CERT_DIR:
                o->certs_dir = arg;
                return 1;
        case CLI_REG_OPT_AUTHFILE:
                o->auth_file = arg;
                return 1;
        default:
                return 0;
        }
}

int cmd_pull(cli_ctx *ctx, int argc, char **argv)
{
        static const struct option opts[] = {
            {"tag", required_argument, NULL, 't'},
            {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            CLI_REGISTRY_LONG_OPTIONS,
            {NULL, 0, NULL, 0},
        };
        registry_opts ro;
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        char digest[DIGEST_STR_SIZE];
        bool quiet = false;
        int c, r;

        registry_opts_init(&ro);
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":t:qh", opts, NULL)) != -1) {
                if ((r = cli_registry_option("pull", c, optarg, &ro)) != 0) {
                        if (r < 0)
                                return FORGE_EXIT_USAGE;
                        continue;
                }
                switch (c) {
                case 't':
                        ro.local_tag = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        printf("usage: forge pull REF [--tag NAME[:TAG]] [-q] [options]\n\n"
                               "Pulls HOST[:PORT]/REPO[:TAG][@sha256:HEX] into the store (an "
                               "index gives its\nlinux/<host arch> image) and tags it "
                               "REPO-BASENAME:TAG, or --tag. Every blob is\nverified before "
                               "it is stored; an interrupted pull resumes. Prints the\nmanifest "
                               "digest.\n\n"
                               "  -t, --tag NAME[:TAG] the local name\n"
                               "  -q, --quiet          print only the digest\n" CLI_REGISTRY_HELP);
                        return 0;
                default:
                        return cli_bad_option("pull", c, argv);
                }
        }
        if (optind == argc)
                return cli_usage_error("pull", "missing REF");
        if (optind < argc - 1)
                return cli_extra_arg("pull", argv[optind + 1]);
        if (!quiet) {
                ro.progress = cli_registry_progress;
        }
        r = cli_store_open(ctx, &s, &err) < 0 ? -1
                                              : registry_pull(s, argv[optind], &ro, digest, &err);
        cli_registry_progress_end();
        if (r < 0)
                return cli_fail(&err);
        printf("%s\n", digest);
        return 0;
}

void cli_pull_opts_init(registry_opts *o)
{
        registry_opts_init(o);
        o->progress = cli_registry_progress;
}

int cli_pull_option(const char *cmd, int c, const char *arg, registry_opts *o)
{
        switch (c) {
        case 'q':
                o->progress = NULL;
                return 1;
        case CLI_REG_OPT_PULL:
                if (strcmp(arg, "missing") == 0)
                        o->pull = REGISTRY_PULL_MISSING;
                else if (strcmp(arg, "always") == 0)
                        o->pull = REGISTRY_PULL_ALWAYS;
                else if (strcmp(arg, "never") == 0)
                        o->pull = REGISTRY_PULL_NEVER;
                else {
                        cli_usage_error(cmd, "--pull is missing, always or never, not '%s'", arg);
                        return -1;
                }
                return 1;
        default:
                return cli_registry_option(cmd, c, arg, o);
        }
}

int cli_image_resolve(cli_ctx *ctx, store *s, const char *ref, char ret[DIGEST_STR_SIZE],
                      forge_error **err)
{
        registry_opts def;
        int r;

        if (ctx == NULL || ctx->pull == NULL)
                cli_pull_opts_init(&def);
        r = registry_resolve(s, ref, ctx && ctx->pull ? ctx->pull : &def, ret, err);
        cli_registry_progress_end();
        return r;
}
