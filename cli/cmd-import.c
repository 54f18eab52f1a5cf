/* SPDX-License-Identifier: MIT */
/* forge import PATH [--tag NAME:TAG] */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "common/cleanup.h"

static const char import_usage[] =
    "usage: forge import PATH [--tag NAME:TAG]\n\n"
    "Imports an OCI image layout (directory or tar) or a docker-archive tar\n(docker save). "
    "Every blob is verified. Without --tag the image is named\nafter the layout's ref name or "
    "the archive's RepoTags.\n";

static const cli_opts_cmd import_cmd = {"import", import_usage, 0, 1, 1, "missing PATH"};

int cmd_import(cli_ctx *ctx, int argc, char **argv)
{
        const char *tag = NULL;
        const cli_opt opts[] = {CLI_VALUE("tag", 't', &tag)};
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        store_import_result res;
        int first, r = cli_opts_parse(&import_cmd, opts, ARRAY_SIZE(opts), argc, argv, &first);

        if (r != 0)
                return cli_opts_status(r);
        if (cli_store_open(ctx, &s, &err) < 0 ||
            store_import_tagged(s, argv[first], tag, &res, &err) < 0)
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
