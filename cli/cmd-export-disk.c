/* SPDX-License-Identifier: MIT */
/* forge export IMAGE --format disk -o PATH */
#include <stdio.h>

#include "cli/cli.h"
#include "vmimage/vmimage.h"

int cli_export_disk(cli_ctx *ctx, store *s, const char *manifest_digest, const char *out_path)
{
        forge_error *err = NULL;

        (void)ctx;
        if (vmimage_export(s, manifest_digest, out_path, &err) < 0)
                return cli_fail(&err);
        printf("exported %s to %s (bootable disk image)\n", manifest_digest, out_path);
        return 0;
}
