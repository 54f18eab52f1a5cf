/* SPDX-License-Identifier: MIT */
/* The commands that work on the store and nothing else (cli.h): options,
 * then the store, then the command's own part. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "common/cleanup.h"

int cli_store_command(cli_ctx *ctx, const cli_opts_cmd *c, const cli_opt *opts, size_t n, int argc,
                      char **argv, cli_store_fn *fn, void *data)
{
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        int first, r = cli_opts_parse(c, opts, n, argc, argv, &first);

        if (r != 0)
                return cli_opts_status(r);
        if (cli_store_open(ctx, &s, &err) < 0 || (r = fn(s, argv + first, data, &err)) < 0)
                return cli_fail(&err);
        return r;
}
