/* SPDX-License-Identifier: MIT */
/* forge push IMAGE REF [--compression gzip|zstd] [-q]; forge tag IMAGE NAME[:TAG] */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/registry-cli.h"
#include "common/cleanup.h"
#include "common/image-name.h"

static const char push_usage[] =
    "usage: forge push IMAGE REF [--compression gzip|zstd] [-q] [options]\n\n"
    "Pushes IMAGE (NAME[:TAG] or sha256:HEX in the store) to HOST[:PORT]/REPO[:TAG].\n"
    "Blobs the registry has are not uploaded; blobs in another repository of the\n"
    "same registry are mounted. Layers go as the store holds them unless\n"
    "--compression recompresses them. Prints the manifest digest.\n\n"
    "  --compression gzip|zstd  recompress layers that differ\n"
    "  -q, --quiet              print only the digest\n" CLI_REGISTRY_HELP;

static const cli_opts_cmd push_cmd = {"push", push_usage, 0, 2, 2, "expected IMAGE and REF"};

int cmd_push(cli_ctx *ctx, int argc, char **argv)
{
        registry_opts ro;
        bool quiet = false;
        const cli_opt opts[] = {
            CLI_CHOICE("compression", 0, &ro.compression, &cli_compressions),
            CLI_FLAG("quiet", 'q', &quiet),
            CLI_REGISTRY_OPTS(&ro),
        };
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        char digest[DIGEST_STR_SIZE], pushed[DIGEST_STR_SIZE];
        int first, r;

        r = cli_registry_opts_parse(&push_cmd, opts, ARRAY_SIZE(opts), argc, argv, &ro, &quiet,
                                    &first);
        if (r != 0)
                return cli_opts_status(r);
        if (!registry_ref_is_remote(argv[first + 1]))
                return cli_usage_error("push",
                                       "'%s' names no registry (expected "
                                       "HOST[:PORT]/REPO[:TAG])",
                                       argv[first + 1]);
        r = cli_store_open(ctx, &s, &err) < 0 || store_resolve(s, argv[first], digest, &err) < 0 ||
                    registry_push(s, digest, argv[first + 1], &ro, pushed, &err) < 0
                ? -1
                : 0;
        cli_registry_progress_end();
        if (r < 0)
                return cli_fail(&err);
        printf("%s\n", pushed);
        return 0;
}

static const char tag_usage[] =
    "usage: forge tag IMAGE NAME[:TAG]\n\n"
    "Gives IMAGE (NAME[:TAG], sha256:HEX or a digest prefix) another name in the store.\n"
    "To publish it under a registry name, use 'forge push IMAGE HOST/REPO:TAG'.\n";

static const cli_opts_cmd tag_cmd = {"tag", tag_usage, 0, 2, 2, "expected IMAGE and NAME[:TAG]"};

int cmd_tag(cli_ctx *ctx, int argc, char **argv)
{
        cleanup_store store *s = NULL;
        cleanup_free char *name = NULL;
        forge_error *err = NULL;
        char digest[DIGEST_STR_SIZE];
        const char *tag = "latest", *image, *ref;
        char *colon;
        int first, r = cli_opts_parse(&tag_cmd, NULL, 0, argc, argv, &first);

        if (r != 0)
                return cli_opts_status(r);
        image = argv[first];
        ref = argv[first + 1];
        if (registry_ref_is_remote(ref))
                return cli_usage_error("tag",
                                       "'%s' is a registry reference: use 'forge push %s "
                                       "%s'",
                                       ref, image, ref);
        name = strdup(ref);
        if (name == NULL)
                return cli_fail(&err);
        colon = strchr(name, ':');
        if (colon) {
                *colon = '\0';
                tag = colon + 1;
        }
        if (!image_name_valid(name) || !image_tag_valid(tag))
                return cli_usage_error("tag",
                                       "'%s' is not NAME[:TAG] (name [a-z0-9][a-z0-9._-]*, "
                                       "tag [A-Za-z0-9_][A-Za-z0-9._-]*)",
                                       ref);
        if (cli_store_open(ctx, &s, &err) < 0 || store_resolve(s, image, digest, &err) < 0 ||
            store_tag_set(s, name, tag, digest, &err) < 0)
                return cli_fail(&err);
        return 0;
}
