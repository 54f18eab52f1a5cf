/* SPDX-License-Identifier: MIT */
/* forge build, forge check */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builder/builder.h"
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "cli/build-step.h"
#include "runtime/runtime.h"

static const char build_usage[] =
        "usage: forge build SPEC [--tag NAME:TAG|TAG] [--no-cache] [--check] [-q]\n\n"
        "Builds the image a spec describes and tags it (NAME:TAG from the spec).\n"
        "Prints a line per layer: cached or built, size, time, and why it was built.\n\n"
        "  --tag T      tag as T instead of the spec's name:tag\n"
        "  --no-cache   build every layer again\n"
        "  --check      also rebuild without cache and fail, naming the files that\n"
        "               differ, unless the result is bit-identical\n"
        "  -q, --quiet  print only the image digest (sha256:HEX) on stdout\n\n"
        "exit status: 0 built, 1 failed, 2 usage or spec error\n";

static const char check_usage[] =
        "usage: forge check SPEC\n\n"
        "Validates a spec without building or writing anything: keys, types, paths,\n"
        "sizes, pins, files: sources, the from: chain (images in the store, specs,\n"
        "loops) and every .deb and archive, read through as a build would read it.\n\n"
        "exit status: 0 valid, 1 an input could not be read, 2 invalid\n";

typedef struct progress {
        bool quiet;
} progress;

static void on_layer(const builder_layer_event *ev, void *ud)
{
        progress *p = ud;
        char sz[32];

        if (p->quiet)
                return;
        printf("[%zu/%zu] %-28s %-6s %.19s %10s %6.2fs%s%s%s\n", ev->index + 1, ev->count, ev->name,
               ev->cached ? "cached" : "built", ev->digest, cli_format_size(ev->size, sz, sizeof(sz)),
               ev->seconds, ev->why ? " (" : "", ev->why ? ev->why : "", ev->why ? ")" : "");
        fflush(stdout);
}

int cmd_build(cli_ctx *ctx, int argc, char **argv)
{
        static const struct option opts[] = {
                {"tag", required_argument, NULL, 't'},  {"no-cache", no_argument, NULL, 'n'},
                {"check", no_argument, NULL, 'c'},      {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
        };
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        builder_opts bo = {0};
        progress p = {0};
        bool check = false;
        char digest[DIGEST_STR_SIZE];
        cleanup_free char *scratch = NULL;
        int c, r;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":t:qh", opts, NULL)) != -1) {
                switch (c) {
                case 't':
                        bo.tag = optarg;
                        break;
                case 'n':
                        bo.no_cache = true;
                        break;
                case 'c':
                        check = true;
                        break;
                case 'q':
                        p.quiet = true;
                        break;
                case 'h':
                        fputs(build_usage, stdout);
                        return 0;
                default:
                        return cli_bad_option("build", c, argv);
                }
        }
        if (optind == argc)
                return cli_usage_error("build", "missing SPEC");
        if (optind < argc - 1)
                return cli_extra_arg("build", argv[optind + 1]);
        if (bo.tag != NULL) {
                cleanup_free char *copy = strdup(bo.tag);
                char *colon = copy ? strchr(copy, ':') : NULL;
                if (colon)
                        *colon = '\0';
                if (copy == NULL || (colon && !spec_name_valid(copy)) ||
                    !spec_tag_valid(colon ? colon + 1 : copy))
                        return cli_usage_error("build", "--tag '%s' is not NAME:TAG or TAG",
                                               bo.tag);
        }
        bo.progress = on_layer;
        bo.progress_data = &p;
        bo.run_step = cli_build_step;
        if (cli_store_open(ctx, &s, &err) < 0)
                return cli_fail(&err);
        scratch = path_join(store_root(s), "tmp");
        if (scratch == NULL)
                return cli_fail(&err);
        bo.run_step_data = scratch; /* run: steps keep their scratch dirs in the store */
        r = check ? builder_check(s, argv[optind], &bo, digest, &err)
                  : builder_build(s, argv[optind], &bo, digest, &err);
        if (r < 0)
                return cli_fail(&err);
        if (p.quiet)
                printf("%s\n", digest);
        else
                printf("%s%s\n", digest, check ? " (reproducible: the rebuild is bit-identical)" : "");
        return 0;
}

int cmd_check(cli_ctx *ctx, int argc, char **argv)
{
        static const struct option opts[] = {
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
                switch (c) {
                case 'h':
                        fputs(check_usage, stdout);
                        return 0;
                default:
                        return cli_bad_option("check", c, argv);
                }
        }
        if (optind == argc)
                return cli_usage_error("check", "missing SPEC");
        if (optind < argc - 1)
                return cli_extra_arg("check", argv[optind + 1]);
        /* everything build checks before it writes, and every deb and archive read through */
        if (cli_store_open(ctx, &s, &err) < 0 || builder_spec_check(s, argv[optind], &err) < 0)
                return cli_fail(&err);
        printf("%s: ok\n", argv[optind]);
        return 0;
}
