/* SPDX-License-Identifier: MIT */
/* forge store gc [--dry-run], forge store verify */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "common/cleanup.h"

static const char usage_text[] =
    "usage: forge store gc [--dry-run]\n"
    "       forge store verify\n\n"
    "gc      removes every blob no tag reaches (layers, configs, manifests, kernels),\n"
    "        unpacked layers nothing uses, stale cache records and leftovers of\n"
    "        interrupted writes; prints what it frees. --dry-run removes nothing.\n"
    "verify  re-hashes every object and checks every tag's image; names each\n"
    "        corrupt or missing object and exits 1 if there is any.\n";

static void print_removed(const char *digest, uint64_t size, void *ud)
{
        char sz[32];
        printf("%s %s %s\n", *(bool *)ud ? "would remove" : "removed", digest,
               cli_format_size(size, sz, sizeof(sz)));
}

static void print_bad(const char *what, const char *problem, void *ud)
{
        printf("BAD %s: %s\n", what, problem);
}

static int do_gc(cli_ctx *ctx, bool dry_run)
{
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        store_gc_stats st = {0};
        char a[32], b[32];

        if (cli_store_open(ctx, &s, &err) < 0 ||
            store_gc(s, dry_run, print_removed, &dry_run, &st, &err) < 0)
                return cli_fail(&err);
        printf("%s %zu blobs (%s), %zu unpacked layers (%s), %zu cache records\n",
               dry_run ? "would free" : "freed", st.blobs, cli_format_size(st.bytes, a, sizeof(a)),
               st.unpacked, cli_format_size(st.unpacked_bytes, b, sizeof(b)), st.kv);
        return 0;
}

static int do_verify(cli_ctx *ctx)
{
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        size_t bad = 0;

        if (cli_store_open(ctx, &s, &err) < 0 || store_verify(s, print_bad, NULL, &bad, &err) < 0)
                return cli_fail(&err);
        if (bad > 0) {
                fprintf(stderr, "forge: store verify: %zu problem%s found\n", bad,
                        bad == 1 ? "" : "s");
                return 1;
        }
        printf("store ok\n");
        return 0;
}

static const cli_opts_cmd store_cmd = {"store", usage_text, 0, 1, 1, "expected 'gc' or 'verify'"};

int cmd_store(cli_ctx *ctx, int argc, char **argv)
{
        bool dry = false;
        const cli_opt opts[] = {CLI_FLAG("dry-run", 0, &dry)};
        int first, r = cli_opts_parse(&store_cmd, opts, ARRAY_SIZE(opts), argc, argv, &first);

        if (r != 0)
                return cli_opts_status(r);
        if (strcmp(argv[first], "gc") == 0)
                return do_gc(ctx, dry);
        if (strcmp(argv[first], "verify") == 0) {
                if (dry)
                        return cli_usage_error("store", "unexpected argument '--dry-run'");
                return do_verify(ctx);
        }
        return cli_usage_error("store", "unknown subcommand '%s' (expected gc or verify)",
                               argv[first]);
}
