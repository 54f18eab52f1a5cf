/* SPDX-License-Identifier: MIT */
/* forge store gc [--dry-run], forge store verify */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
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

int cmd_store(cli_ctx *ctx, int argc, char **argv)
{
        if (argc < 2)
                return cli_usage_error("store", "expected 'gc' or 'verify'");
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fputs(usage_text, stdout);
                return 0;
        }
        if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
                fputs(usage_text, stdout);
                return 0;
        }
        if (strcmp(argv[1], "gc") == 0) {
                bool dry = false;
                for (int i = 2; i < argc; i++) {
                        if (strcmp(argv[i], "--dry-run") == 0)
                                dry = true;
                        else
                                return cli_usage_error("store", "unexpected argument '%s'",
                                                       argv[i]);
                }
                return do_gc(ctx, dry);
        }
        if (strcmp(argv[1], "verify") == 0) {
                if (argc > 2)
                        return cli_usage_error("store", "unexpected argument '%s'", argv[2]);
                return do_verify(ctx);
        }
        return cli_usage_error("store", "unknown subcommand '%s' (expected gc or verify)", argv[1]);
}
