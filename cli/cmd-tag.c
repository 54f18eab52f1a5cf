/* SPDX-License-Identifier: MIT */
/* forge tag IMAGE NAME[:TAG] */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "common/cleanup.h"
#include "common/image-name.h"
#include "store/registry.h"

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
