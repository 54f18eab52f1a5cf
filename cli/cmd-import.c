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

/* data: the --tag given, or NULL */
static int import(store *s, char **args, void *data, forge_error **err)
{
        store_import_result res;

        if (store_import_tagged(s, args[0], *(const char **)data, &res, err) < 0)
                return -1;
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

static const cli_opts_cmd import_cmd = {"import", import_usage, 0, 1, 1, "missing PATH"};

int cmd_import(cli_ctx *ctx, int argc, char **argv)
{
        const char *tag = NULL;
        const cli_opt opts[] = {CLI_VALUE("tag", 't', &tag)};

        return cli_store_command(ctx, &import_cmd, opts, ARRAY_SIZE(opts), argc, argv, import,
                                 &tag);
}
