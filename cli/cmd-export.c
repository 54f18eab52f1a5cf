/* SPDX-License-Identifier: MIT */
/* forge export IMAGE --format dir|tar|oci|disk -o PATH [--compression gzip|zstd] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/cleanup.h"

static const char usage_text[] =
        "usage: forge export IMAGE --format dir|tar|oci|disk -o PATH [--compression gzip|zstd]\n\n"
        "  dir    the flattened root filesystem (whiteouts applied) as a directory\n"
        "  tar    the same as a deterministic tar\n"
        "  oci    an OCI image layout (a directory, or a tar if PATH ends in .tar);\n"
        "         layers gzip-compressed unless --compression zstd\n"
        "  disk   a bootable VM disk image (the spec needs a vm: section)\n\n"
        "PATH must not exist yet. exit status: 0 ok, 1 failed, 2 usage error\n";

int cmd_export(cli_ctx *ctx, int argc, char **argv)
{
        static const struct option opts[] = {
                {"format", required_argument, NULL, 'f'},
                {"output", required_argument, NULL, 'o'},
                {"compression", required_argument, NULL, 'c'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        const char *format = NULL, *out = NULL, *compression = NULL;
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        store_export_format fmt;
        store_compression comp = STORE_COMPRESSION_DEFAULT;
        char digest[DIGEST_STR_SIZE];
        cleanup_free char *ref = NULL;
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "f:o:h", opts, NULL)) != -1) {
                switch (c) {
                case 'f':
                        format = optarg;
                        break;
                case 'o':
                        out = optarg;
                        break;
                case 'c':
                        compression = optarg;
                        break;
                case 'h':
                        fputs(usage_text, stdout);
                        return 0;
                default:
                        return cli_usage_error("export", "bad option");
                }
        }
        if (optind != argc - 1)
                return cli_usage_error("export", "expected one IMAGE");
        if (format == NULL || out == NULL)
                return cli_usage_error("export", "--format and -o PATH are required");
        if (strcmp(format, "dir") == 0)
                fmt = STORE_EXPORT_DIR;
        else if (strcmp(format, "tar") == 0)
                fmt = STORE_EXPORT_TAR;
        else if (strcmp(format, "oci") == 0)
                fmt = STORE_EXPORT_OCI;
        else if (strcmp(format, "disk") == 0)
                fmt = (store_export_format)-1;
        else
                return cli_usage_error("export", "unknown --format '%s' (dir, tar, oci or disk)",
                                       format);
        if (compression != NULL) {
                if (strcmp(compression, "gzip") == 0)
                        comp = STORE_COMPRESSION_GZIP;
                else if (strcmp(compression, "zstd") == 0)
                        comp = STORE_COMPRESSION_ZSTD;
                else
                        return cli_usage_error("export", "unknown --compression '%s' (gzip or "
                                                         "zstd)",
                                               compression);
                if (fmt != STORE_EXPORT_OCI)
                        return cli_usage_error("export", "--compression applies to --format oci");
        }
        if (cli_store_open(ctx, &s, &err) < 0 || cli_image_resolve(s, argv[optind], digest, &err) < 0)
                return cli_fail(&err);
        if ((int)fmt == -1)
                return cli_export_disk(ctx, s, digest, out);
        /* The OCI ref name: the tag the user named, else "latest". */
        {
                const char *slash = strrchr(argv[optind], '/');
                const char *colon = strchr(slash ? slash + 1 : argv[optind], ':');
                ref = strdup(colon && strncmp(argv[optind], "sha256:", 7) != 0 ? colon + 1 : "latest");
                if (ref != NULL)
                        ref[strcspn(ref, "@")] = '\0';
        }
        if (ref == NULL ||
            store_export_ref(s, digest, ref, fmt, comp, out, &err) < 0)
                return cli_fail(&err);
        printf("exported %s to %s\n", digest, out);
        return 0;
}
