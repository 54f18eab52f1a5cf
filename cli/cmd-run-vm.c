/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: replaced by the module owner */
#include <stdio.h>
#include "cli/cli.h"
int cli_run_vm(cli_ctx *ctx, int argc, char **argv)
{
        fprintf(stderr, "forge run: --as vm: not implemented yet\n");
        return 125;
}
