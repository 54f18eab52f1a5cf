/* SPDX-License-Identifier: MIT */
/* forge lock SPEC */
#include <stdio.h>
#include <string.h>

#include "builder/builder.h"
#include "cli/cli.h"
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

int cmd_lock(cli_ctx *ctx, int argc, char **argv)
{
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        size_t n = 0;

        if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                fputs(lock_usage, stdout);
                return 0;
        }
        if (argc != 2 || argv[1][0] == '-')
                return cli_usage_error("lock", "expected one SPEC file");
        if (cli_store_open(ctx, &s, &err) < 0 || builder_lock(s, argv[1], &n, &err) < 0)
                return cli_fail(&err);
        printf("%s.lock: %zu packages\n", argv[1], n);
        return 0;
}
