/* SPDX-License-Identifier: MIT */
/* forge pull REF [--tag NAME[:TAG]] [-q] [registry options]
 * forge push IMAGE REF [--compression gzip|zstd] [-q] [registry options] */
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

static const char push_usage[] =
    "usage: forge push IMAGE REF [--compression gzip|zstd] [-q] [options]\n\n"
    "Pushes IMAGE (NAME[:TAG] or sha256:HEX in the store) to HOST[:PORT]/REPO[:TAG].\n"
    "Blobs the registry has are not uploaded; blobs in another repository of the\n"
    "same registry are mounted. Layers go as the store holds them unless\n"
    "--compression recompresses them. Prints the manifest digest.\n\n"
    "  --compression gzip|zstd  recompress layers that differ\n"
    "  -q, --quiet              print only the digest\n" CLI_REGISTRY_HELP;

enum transfer { PULL, PUSH };

/* The image fetched into the store or sent from it: the manifest digest. */
static int transfer_run(cli_ctx *ctx, enum transfer what, char **args, const registry_opts *ro,
                        char ret[DIGEST_STR_SIZE], forge_error **err)
{
        cleanup_store store *s = NULL;
        char digest[DIGEST_STR_SIZE];

        if (cli_store_open(ctx, &s, err) < 0)
                return -1;
        if (what == PULL)
                return registry_pull(s, args[0], ro, ret, err);
        if (store_resolve(s, args[0], digest, err) < 0)
                return -1;
        return registry_push(s, digest, args[1], ro, ret, err);
}

/* pull and push: an option of their own, -q and the registry options; the
 * transfer's progress on stderr (unless -q), the manifest digest on stdout. */
static int transfer(cli_ctx *ctx, int argc, char **argv, enum transfer what)
{
        static const cli_opts_cmd cmds[] = {
            [PULL] = {"pull", pull_usage, 0, 1, 1, "missing REF"},
            [PUSH] = {"push", push_usage, 0, 2, 2, "expected IMAGE and REF"},
        };
        registry_opts ro;
        bool quiet = false;
        const cli_opt own[] = {
            [PULL] = CLI_VALUE("tag", 't', &ro.local_tag),
            [PUSH] = CLI_CHOICE("compression", 0, &ro.compression, &cli_compressions),
        };
        const cli_opt opts[] = {own[what], CLI_FLAG("quiet", 'q', &quiet), CLI_REGISTRY_OPTS(&ro)};
        forge_error *err = NULL;
        char digest[DIGEST_STR_SIZE];
        int first, r;

        r = cli_registry_opts_parse(&cmds[what], opts, ARRAY_SIZE(opts), argc, argv, &ro, &quiet,
                                    &first);
        if (r != 0)
                return cli_opts_status(r);
        if (what == PUSH && !registry_ref_is_remote(argv[first + 1]))
                return cli_usage_error("push",
                                       "'%s' names no registry (expected "
                                       "HOST[:PORT]/REPO[:TAG])",
                                       argv[first + 1]);
        r = transfer_run(ctx, what, argv + first, &ro, digest, &err);
        cli_registry_progress_end();
        if (r < 0)
                return cli_fail(&err);
        printf("%s\n", digest);
        return 0;
}

int cmd_pull(cli_ctx *ctx, int argc, char **argv)
{
        return transfer(ctx, argc, argv, PULL);
}

int cmd_push(cli_ctx *ctx, int argc, char **argv)
{
        return transfer(ctx, argc, argv, PUSH);
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
