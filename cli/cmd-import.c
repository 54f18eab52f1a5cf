/* SPDX-License-Identifier: MIT */
/* forge import PATH [--tag NAME:TAG] */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/cleanup.h"

int cmd_import(cli_ctx *ctx, int argc, char **argv)
{
        static const struct option opts[] = {
            {"tag", required_argument, NULL, 't'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *tag = NULL;
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        store_import_result res;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":t:h", opts, NULL)) != -1) {
                switch (c) {
                case 't':
                        tag = optarg;
                        break;
                case 'h':
                        printf("usage: forge import PATH [--tag NAME:TAG]\n\n"
                               "Imports an OCI image layout (directory or tar) or a "
                               "docker-archive tar\n(docker save). Every blob is verified. "
                               "Without --tag the image is named\nafter the layout's ref name "
                               "or the archive's RepoTags.\n");
                        return 0;
                default:
                        return cli_bad_option("import", c, argv);
                }
        }
        if (optind == argc)
                return cli_usage_error("import", "missing PATH");
        if (optind < argc - 1)
                return cli_extra_arg("import", argv[optind + 1]);
        if (cli_store_open(ctx, &s, &err) < 0 ||
            store_import_tagged(s, argv[optind], tag, &res, &err) < 0)
                return cli_fail(&err);
        printf("%s\n", res.digest);
        /* on stderr: stdout stays the digest alone, for scripts */
        for (size_t i = 0; i < res.n_tags; i++) {
                const store_import_tag *t = &res.tags[i];
                if (t->previous[0] == '\0')
                        fprintf(stderr, "tagged %s:%s (new tag)\n", t->name, t->tag);
                else if (strcmp(t->previous, res.digest) != 0)
                        fprintf(stderr, "tagged %s:%s (moved from %.19s)\n", t->name, t->tag,
                                t->previous);
                else
                        fprintf(stderr, "%s:%s already pointed at this image\n", t->name, t->tag);
        }
        return 0;
}
