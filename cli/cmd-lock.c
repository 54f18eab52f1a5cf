/* SPDX-License-Identifier: MIT */
/* forge lock SPEC */
#include <stdio.h>

#include "builder/builder.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "common/cleanup.h"

static const char lock_usage[] =
    "usage: forge lock SPEC\n\n"
    "Resolves every 'packages:' layer of the spec against its repositories (each\n"
    "InRelease checked against its keyring, each index against InRelease) and\n"
    "writes SPEC.lock beside the spec: canonical JSON naming each package's\n"
    "version, architecture, repository entry, file, size and sha256. Commit it;\n"
    "'forge build --locked' then builds exactly that set.\n\n"
    "exit status: 0 written, 1 failed (network, signature, digest), 2 usage or\n"
    "spec error (an unknown package, a set that cannot be installed)\n";

static int lock(store *s, char **args, void *data, forge_error **err)
{
        size_t n = 0;

        (void)data;
        if (builder_lock(s, args[0], &n, err) < 0)
                return -1;
        printf("%s.lock: %zu packages\n", args[0], n);
        return 0;
}

static const cli_opts_cmd lock_cmd = {"lock", lock_usage, 0, 1, 1, "expected one SPEC file"};

int cmd_lock(cli_ctx *ctx, int argc, char **argv)
{
        return cli_store_command(ctx, &lock_cmd, NULL, 0, argc, argv, lock, NULL);
}
