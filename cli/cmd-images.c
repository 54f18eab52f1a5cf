/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: replaced by the module owner */
#include <stdio.h>
#include "cli/cli.h"
int cmd_images(cli_ctx *ctx, int argc, char **argv)
{
        fprintf(stderr, "forge %s: not implemented yet\n", argv[0]);
        return 1;
}
int cmd_inspect(cli_ctx *ctx, int argc, char **argv)
{
        fprintf(stderr, "forge %s: not implemented yet\n", argv[0]);
        return 1;
}
int cmd_rmi(cli_ctx *ctx, int argc, char **argv)
{
        fprintf(stderr, "forge %s: not implemented yet\n", argv[0]);
        return 1;
}
