/* SPDX-License-Identifier: MIT */
/* forge sbom IMAGE [--format spdx|cyclonedx] [-o FILE] */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builder/builder.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "common/cleanup.h"
#include "common/fs.h"

static const char sbom_usage[] =
    "usage: forge sbom IMAGE [--format spdx|cyclonedx] [-o FILE]\n\n"
    "Prints the software bill of materials of an image: every Debian package\n"
    "(name, version, architecture, purl, sha256 of the .deb, licences where its\n"
    "copyright file is machine-readable) and the other inputs (files, archives,\n"
    ".debs, the base image) with their digests.\n\n"
    "  --format F   spdx (SPDX 2.3 JSON, the default) or cyclonedx (CycloneDX 1.5 JSON)\n"
    "  -o FILE      write to FILE instead of stdout\n\n"
    "exit status: 0 written, 1 failed, 2 usage error or unknown image\n";

static int format_opt(const char *cmd, const cli_opt *opt, const char *arg)
{
        static const cli_choice formats[] = {{"cyclonedx", true}, {"spdx", false}};
        bool *cdx = opt->data;
        int v;

        if (cli_choice_find(formats, ARRAY_SIZE(formats), arg, &v) < 0)
                return cli_usage_error(cmd, "--format is spdx or cyclonedx");
        *cdx = v;
        return 0;
}

typedef struct sbom_opts {
        const char *out; /* -o FILE, or NULL: stdout */
        bool cdx;
} sbom_opts;

static int sbom(store *s, char **args, void *data, forge_error **err)
{
        const sbom_opts *o = data;
        cleanup_free char *doc = NULL;

        if (builder_sbom(s, args[0], o->cdx, &doc, err) < 0) {
                if (*err && (*err)->errnum == ENOENT)
                        (*err)->status = FORGE_EXIT_USAGE;
                return -1;
        }
        if (o->out == NULL) {
                printf("%s\n", doc);
                return 0;
        }
        {
                size_t len = strlen(doc);
                doc[len] = '\0';
                cleanup_free char *withnl = malloc(len + 2);
                if (withnl == NULL)
                        return -1;
                memcpy(withnl, doc, len);
                withnl[len] = '\n';
                if (fs_write_atomic(AT_FDCWD, o->out, withnl, len + 1, 0644, err) < 0)
                        return -1;
        }
        return 0;
}

static const cli_opts_cmd sbom_cmd = {"sbom", sbom_usage, 0, 1, 1, "expected one IMAGE"};

int cmd_sbom(cli_ctx *ctx, int argc, char **argv)
{
        sbom_opts o = {0};
        const cli_opt opts[] = {
            CLI_CALL("format", 'f', true, format_opt, &o.cdx),
            CLI_VALUE("output", 'o', &o.out),
        };

        return cli_store_command(ctx, &sbom_cmd, opts, ARRAY_SIZE(opts), argc, argv, sbom, &o);
}
