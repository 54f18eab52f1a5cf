/* SPDX-License-Identifier: MIT */
/* forge push IMAGE REF [--compression gzip|zstd] [-q]; forge tag IMAGE NAME[:TAG] */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/registry-cli.h"
#include "common/cleanup.h"
#include "common/image-name.h"

int cmd_push(cli_ctx *ctx, int argc, char **argv)
{
        static const struct option opts[] = {
            {"compression", required_argument, NULL, 'c'},
            {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            CLI_REGISTRY_LONG_OPTIONS,
            {NULL, 0, NULL, 0},
        };
        registry_opts ro;
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        char digest[DIGEST_STR_SIZE], pushed[DIGEST_STR_SIZE];
        bool quiet = false;
        int c, r;

        registry_opts_init(&ro);
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
                if ((r = cli_registry_option("push", c, optarg, &ro)) != 0) {
                        if (r < 0)
                                return FORGE_EXIT_USAGE;
                        continue;
                }
                switch (c) {
                case 'c':
                        if (strcmp(optarg, "gzip") == 0)
                                ro.compression = STORE_COMPRESSION_GZIP;
                        else if (strcmp(optarg, "zstd") == 0)
                                ro.compression = STORE_COMPRESSION_ZSTD;
                        else
                                return cli_usage_error("push",
                                                       "--compression is gzip or zstd, "
                                                       "not '%s'",
                                                       optarg);
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        printf(
                            "usage: forge push IMAGE REF [--compression gzip|zstd] [-q] "
                            "[options]\n\n"
                            "Pushes IMAGE (NAME[:TAG] or sha256:HEX in the store) to "
                            "HOST[:PORT]/REPO[:TAG].\nBlobs the registry has are not "
                            "uploaded; blobs in another repository of the\nsame registry "
                            "are mounted. Layers go as the store holds them unless\n"
                            "--compression recompresses them. Prints the manifest digest.\n\n"
                            "  --compression gzip|zstd  recompress layers that differ\n"
                            "  -q, --quiet              print only the digest\n" CLI_REGISTRY_HELP);
                        return 0;
                default:
                        return cli_bad_option("push", c, argv);
                }
        }
        if (argc - optind < 2)
                return cli_usage_error("push", "expected IMAGE and REF");
        if (optind < argc - 2)
                return cli_extra_arg("push", argv[optind + 2]);
        if (!registry_ref_is_remote(argv[optind + 1]))
                return cli_usage_error("push",
                                       "'%s' names no registry (expected "
                                       "HOST[:PORT]/REPO[:TAG])",
                                       argv[optind + 1]);
        if (!quiet)
                ro.progress = cli_registry_progress;
        r = cli_store_open(ctx, &s, &err) < 0 || store_resolve(s, argv[optind], digest, &err) < 0 ||
                    registry_push(s, digest, argv[optind + 1], &ro, pushed, &err) < 0
                ? -1
                : 0;
        cli_registry_progress_end();
        if (r < 0)
                return cli_fail(&err);
        printf("%s\n", pushed);
        return 0;
}

int cmd_tag(cli_ctx *ctx, int argc, char **argv)
{
        cleanup_store store *s = NULL;
        cleanup_free char *name = NULL;
        forge_error *err = NULL;
        char digest[DIGEST_STR_SIZE];
        const char *tag = "latest";
        char *colon;

        if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                printf("usage: forge tag IMAGE NAME[:TAG]\n\n"
                       "Gives IMAGE (NAME[:TAG], sha256:HEX or a digest prefix) another name in "
                       "the store.\nTo publish it under a registry name, use 'forge push IMAGE "
                       "HOST/REPO:TAG'.\n");
                return 0;
        }
        if (argc != 3)
                return cli_usage_error("tag", "expected IMAGE and NAME[:TAG]");
        if (registry_ref_is_remote(argv[2]))
                return cli_usage_error("tag",
                                       "'%s' is a registry reference: use 'forge push %s "
                                       "%s'",
                                       argv[2], argv[1], argv[2]);
        name = strdup(argv[2]);
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
                                       argv[2]);
        if (cli_store_open(ctx, &s, &err) < 0 || store_resolve(s, argv[1], digest, &err) < 0 ||
            store_tag_set(s, name, tag, digest, &err) < 0)
                return cli_fail(&err);
        return 0;
}
