/* SPDX-License-Identifier: MIT */
/* forge build, forge check */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "builder/builder.h"
#include "cli/cli.h"
#include "cli/registry-cli.h"
#include "common/cleanup.h"
#include "common/image-name.h"
#include "common/fs.h"
#include "cli/build-step.h"
#include "runtime/runtime.h"

static const char build_usage[] =
    "usage: forge build SPEC [--tag NAME:TAG|TAG] [--no-cache] [--check] [--locked] [-q]\n\n"
    "Builds the image a spec describes and tags it (NAME:TAG from the spec).\n"
    "Prints a line per layer: cached or built, size, time, and why it was built.\n\n"
    "  --tag T      tag as T instead of the spec's name:tag\n"
    "  --no-cache   build every layer again\n"
    "  --check      also rebuild without cache and fail, naming the files that\n"
    "               differ, unless the result is bit-identical\n"
    "  --locked     packages: layers must come from SPEC.lock as it is (fail,\n"
    "               exit 2, when it is missing or out of date): what CI runs\n"
    "  -q, --quiet  print only the image digest (sha256:HEX) on stdout\n"
    "  --cache-from REF  use the layer cache a build pushed to the registry REF\n"
    "                    (repeatable; a layer found there is 'cached (registry)')\n"
    "  --cache-to REF    push this build's layers and cache keys to REF "
    "(repeatable)\n" CLI_REGISTRY_HELP "\n"
    "exit status: 0 built, 1 failed, 2 usage or spec error\n";

static const char check_usage[] =
    "usage: forge check SPEC\n\n"
    "Validates a spec without building or writing anything: keys, types, paths,\n"
    "sizes, pins, files: sources, the from: chain (images in the store, specs,\n"
    "loops) and every .deb and archive, read through as a build would read it.\n\n"
    "exit status: 0 valid, 1 an input could not be read, 2 invalid\n";

typedef struct progress {
        bool quiet;
        bool tty;
        char last[160];        /* the line on the terminal */
        size_t last_done;      /* its package count */
        struct timespec drawn; /* when it was drawn */
} progress;

/* A terminal line is redrawn when a package completes, else at most ten
 * times a second, and never with the same text. */
static bool redraw_due(progress *p, size_t done, size_t total, const char *line)
{
        struct timespec now;
        long ms;

        if (strcmp(line, p->last) == 0)
                return false;
        clock_gettime(CLOCK_MONOTONIC, &now);
        ms = (now.tv_sec - p->drawn.tv_sec) * 1000 + (now.tv_nsec - p->drawn.tv_nsec) / 1000000;
        if (done == p->last_done && done != total && p->last[0] != '\0' && ms < 100)
                return false;
        p->drawn = now;
        p->last_done = done;
        snprintf(p->last, sizeof(p->last), "%s", line);
        return true;
}

/* One line per layer on stderr: rewritten in place on a terminal as the
 * .debs arrive; elsewhere (a CI log) one plain line when they are all in. */
static void on_fetch(const char *layer, size_t done, size_t total, uint64_t bytes,
                     uint64_t bytes_total, void *ud)
{
        progress *p = ud;
        char a[32], b[32], line[160];

        if (p->quiet)
                return;
        if (!p->tty) {
                if (done == total)
                        fprintf(stderr, "%-28s downloaded %zu packages, %s\n", layer, total,
                                cli_format_size(bytes, a, sizeof(a)));
                return;
        }
        snprintf(line, sizeof(line), "%-28s downloading %zu/%zu packages, %s of %s", layer, done,
                 total, cli_format_size(bytes, a, sizeof(a)),
                 cli_format_size(bytes_total, b, sizeof(b)));
        if (!redraw_due(p, done, total, line))
                return;
        fprintf(stderr, "\r%s\033[K", line);
        if (done == total) {
                fputc('\n', stderr);
                p->last[0] = '\0';
                p->last_done = 0;
        }
}

static void on_layer(const builder_layer_event *ev, void *ud)
{
        progress *p = ud;
        char sz[32];

        if (p->quiet)
                return;
        printf("[%zu/%zu] %-28s %-6s %.19s %10s %6.2fs%s%s%s\n", ev->index + 1, ev->count, ev->name,
               ev->cached ? (ev->cached_remote ? "cached (registry)" : "cached") : "built",
               ev->digest, cli_format_size(ev->size, sz, sizeof(sz)), ev->seconds,
               ev->why ? " (" : "", ev->why ? ev->why : "", ev->why ? ")" : "");
        fflush(stdout);
}

/* --cache-from REF, --cache-to REF: a registry's */
static int cache_ref_opt(const char *cmd, const cli_opt *opt, const char *arg)
{
        if (!registry_ref_is_remote(arg))
                return cli_usage_error(cmd,
                                       "--%s '%s' names no registry "
                                       "(expected HOST[:PORT]/REPO[:TAG])",
                                       opt->name, arg);
        return 0;
}

static const cli_opts_cmd build_cmd = {"build", build_usage, 0, 1, 1, "missing SPEC"};

int cmd_build(cli_ctx *ctx, int argc, char **argv)
{
        const char *cache_from[16], *cache_to[16];
        size_t n_from = 0, n_to = 0;
        registry_opts ro;
        builder_opts bo = {0};
        progress p = {0};
        bool check = false;
        const cli_opt opts[] = {
            CLI_VALUE("tag", 't', &bo.tag),
            CLI_FLAG("no-cache", 0, &bo.no_cache),
            CLI_FLAG("check", 0, &check),
            CLI_FLAG("quiet", 'q', &p.quiet),
            CLI_FLAG("locked", 0, &bo.locked),
            CLI_LIST("cache-from", 0, cache_from, &n_from, cache_ref_opt),
            CLI_LIST("cache-to", 0, cache_to, &n_to, cache_ref_opt),
            CLI_REGISTRY_OPTS(&ro),
        };
        registry_cache *rc = NULL;
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        char digest[DIGEST_STR_SIZE];
        cleanup_free char *scratch = NULL;
        int first, r;

        r = cli_registry_opts_parse(&build_cmd, opts, ARRAY_SIZE(opts), argc, argv, &ro, NULL,
                                    &first);
        if (r != 0)
                return cli_opts_status(r);
        if (bo.tag != NULL) {
                cleanup_free char *copy = strdup(bo.tag);
                char *colon = copy ? strchr(copy, ':') : NULL;
                if (colon)
                        *colon = '\0';
                if (copy == NULL || (colon && !image_name_valid(copy)) ||
                    !image_tag_valid(colon ? colon + 1 : copy))
                        return cli_usage_error("build", "--tag '%s' is not NAME:TAG or TAG",
                                               bo.tag);
        }
        bo.progress = on_layer;
        bo.fetch_progress = on_fetch;
        p.tty = isatty(STDERR_FILENO);
        bo.progress_data = &p;
        bo.run_step = cli_build_step;
        if (cli_store_open(ctx, &s, &err) < 0)
                return cli_fail(&err);
        scratch = fs_path_join(store_root(s), "tmp");
        if (scratch == NULL)
                return cli_fail(&err);
        bo.run_step_data = scratch; /* run: steps keep their scratch dirs in the store */
        bo.registry = &ro;
        if (n_from + n_to > 0) {
                if (registry_cache_new(s, &ro, &rc, &err) < 0)
                        return cli_fail(&err);
                for (size_t i = 0; i < n_from; i++)
                        if (registry_cache_import(rc, cache_from[i], &err) < 0) {
                                registry_cache_free(rc);
                                return cli_fail(&err);
                        }
                bo.remote_cache = rc;
        }
        r = check ? builder_check(s, argv[first], &bo, digest, &err)
                  : builder_build(s, argv[first], &bo, digest, &err);
        for (size_t i = 0; r == 0 && i < n_to; i++)
                r = registry_cache_export(rc, cache_to[i], &err);
        registry_cache_free(rc);
        if (r < 0)
                return cli_fail(&err);
        if (p.quiet)
                printf("%s\n", digest);
        else
                printf("%s%s\n", digest,
                       check ? " (reproducible: the rebuild is bit-identical)" : "");
        return 0;
}

static int check(store *s, char **args, void *data, forge_error **err)
{
        (void)data;
        /* everything build checks before it writes, and every deb and archive read through */
        if (builder_spec_check(s, args[0], err) < 0)
                return -1;
        printf("%s: ok\n", args[0]);
        return 0;
}

static const cli_opts_cmd check_cmd = {"check", check_usage, 0, 1, 1, "missing SPEC"};

int cmd_check(cli_ctx *ctx, int argc, char **argv)
{
        return cli_store_command(ctx, &check_cmd, NULL, 0, argc, argv, check, NULL);
}
