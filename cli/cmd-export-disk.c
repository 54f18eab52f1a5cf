/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: replaced by the module owner */
#include <stdio.h>
#include "cli/cli.h"
int cli_export_disk(cli_ctx *ctx, store *s, const char *manifest_digest, const char *out_path)
{
        fprintf(stderr, "forge export: --format disk: not implemented yet\n");
        return 1;
}
