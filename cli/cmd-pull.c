/* SPDX-License-Identifier: MIT */
/* forge pull REF [--tag NAME[:TAG]] [-q] [registry options] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/registry-cli.h"
#include "common/cleanup.h"

static const char pull_usage[] =
    "usage: forge pull REF [--tag NAME[:TAG]] [-q] [options]\n\n"
    "Pulls HOST[:PORT]/REPO[:TAG][@sha256:HEX] into the store (an index gives its\n"
    "linux/<host arch> image) and tags it REPO-BASENAME:TAG, or --tag. Every blob is\n"
    "verified before it is stored; an interrupted pull resumes. Prints the\n"
    "manifest digest.\n\n"
    "  -t, --tag NAME[:TAG] the local name\n"
    "  -q, --quiet          print only the digest\n" CLI_REGISTRY_HELP;

static const cli_opts_cmd pull_cmd = {"pull", pull_usage, 0, 1, 1, "missing REF"};

int cmd_pull(cli_ctx *ctx, int argc, char **argv)
{
        registry_opts ro;
        bool quiet = false;
        const cli_opt opts[] = {
            CLI_VALUE("tag", 't', &ro.local_tag),
            CLI_FLAG("quiet", 'q', &quiet),
            CLI_REGISTRY_OPTS(&ro),
        };
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        char digest[DIGEST_STR_SIZE];
        int first, r;

        r = cli_registry_opts_parse(&pull_cmd, opts, ARRAY_SIZE(opts), argc, argv, &ro, &quiet,
                                    &first);
        if (r != 0)
                return cli_opts_status(r);
        r = cli_store_open(ctx, &s, &err) < 0 ? -1
                                              : registry_pull(s, argv[first], &ro, digest, &err);
        cli_registry_progress_end();
        if (r < 0)
                return cli_fail(&err);
        printf("%s\n", digest);
        return 0;
}

int cli_registry_opts_parse(const cli_opts_cmd *c, const cli_opt *opts, size_t n, int argc,
                            char **argv, registry_opts *ro, const bool *quiet, int *ret_first)
{
        int r;

        registry_opts_init(ro);
        r = cli_opts_parse(c, opts, n, argc, argv, ret_first);
        if (r == 0 && quiet != NULL && !*quiet)
                ro->progress = cli_registry_progress;
        return r;
}

int cli_image_resolve(cli_ctx *ctx, store *s, const char *ref, char ret[DIGEST_STR_SIZE],
                      forge_error **err)
{
        registry_opts def;
        int r;

        if (ctx == NULL || ctx->pull == NULL) {
                registry_opts_init(&def);
                def.progress = cli_registry_progress;
        }
        r = registry_resolve(s, ref, ctx && ctx->pull ? ctx->pull : &def, ret, err);
        cli_registry_progress_end();
        return r;
}
