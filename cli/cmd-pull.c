/* SPDX-License-Identifier: MIT */
/* forge pull REF [--tag NAME[:TAG]] [-q] [registry options] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/registry-cli.h"
#include "common/cleanup.h"

int cli_registry_option(const char *cmd, int c, const char *arg, registry_opts *o)
{
        switch (c) {
        case CLI_REG_OPT_TLS_VERIFY:
                if (strcmp(arg, "true") == 0)
                        o->tls_verify = 1;
                else if (strcmp(arg, "false") == 0)
                        o->tls_verify = 0;
                else {
                        cli_usage_error(cmd, "--tls-verify is 'true' or 'false', not '%s'", arg);
                        return -1;
                }
                return 1;
        case CLI_REG_OPT_CERT_DIR:
                o->certs_dir = arg;
                return 1;
        case CLI_REG_OPT_AUTHFILE:
                o->auth_file = arg;
                return 1;
        default:
                return 0;
        }
}

/* The state of the progress display: on a terminal, a status line (layers
 * done, bytes) redrawn under the per-layer lines; elsewhere only the lines. */
static struct {
        pthread_mutex_t lock;
        int tty; /* -1: not yet known */
        size_t count, done;
        uint64_t *now, *total;
        double last_draw;
        bool drawn;
} prog = {PTHREAD_MUTEX_INITIALIZER, -1, 0, 0, NULL, NULL, 0, false};

static double mono(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void draw_status(void)
{
        uint64_t n = 0, t = 0;
        char a[32], b[32];

        for (size_t i = 0; i < prog.count; i++) {
                n += prog.now[i];
                t += prog.total[i];
        }
        fprintf(stderr, "\r\033[K%zu/%zu layers  %s / %s", prog.done, prog.count,
                cli_format_size(n, a, sizeof(a)), cli_format_size(t, b, sizeof(b)));
        prog.drawn = true;
        prog.last_draw = mono();
}

static void track(const registry_progress_event *ev)
{
        if (strcmp(ev->what, "layer") != 0 || ev->count == 0)
                return;
        if (prog.count != ev->count) {
                free(prog.now);
                free(prog.total);
                prog.now = calloc(ev->count, sizeof(*prog.now));
                prog.total = calloc(ev->count, sizeof(*prog.total));
                prog.count = prog.now && prog.total ? ev->count : 0;
                prog.done = 0;
        }
        if (ev->index < prog.count) {
                prog.now[ev->index] = ev->now;
                prog.total[ev->index] = ev->total;
        }
}

void cli_registry_progress(const registry_progress_event *ev, void *userdata)
{
        bool busy = strcmp(ev->state, "downloading") == 0 || strcmp(ev->state, "uploading") == 0;
        char size[32];

        (void)userdata;
        pthread_mutex_lock(&prog.lock);
        if (prog.tty < 0)
                prog.tty = isatty(2);
        track(ev);
        if (busy) {
                if (prog.tty && prog.count > 0 && mono() - prog.last_draw > 0.1)
                        draw_status();
                pthread_mutex_unlock(&prog.lock);
                return;
        }
        if (prog.drawn)
                fputs("\r\033[K", stderr);
        if (strcmp(ev->state, "resuming") == 0)
                fprintf(stderr, "%s %.19s resuming at %llu of %llu bytes\n", ev->what, ev->digest,
                        (unsigned long long)ev->now, (unsigned long long)ev->total);
        else if (strcmp(ev->what, "layer") == 0)
                fprintf(stderr, "layer %zu/%zu %.19s %10s %s\n", ev->index + 1, ev->count,
                        ev->digest, cli_format_size(ev->total, size, sizeof(size)), ev->state);
        else
                fprintf(stderr, "%-11s %.19s %10s %s\n", ev->what, ev->digest,
                        cli_format_size(ev->total, size, sizeof(size)), ev->state);
        if (strcmp(ev->what, "layer") == 0 && strcmp(ev->state, "resuming") != 0)
                prog.done++;
        prog.drawn = false;
        if (prog.tty && prog.count > 0 && prog.done < prog.count)
                draw_status();
        pthread_mutex_unlock(&prog.lock);
}

void cli_registry_progress_end(void)
{
        pthread_mutex_lock(&prog.lock);
        if (prog.drawn)
                fputs("\r\033[K", stderr);
        prog.drawn = false;
        free(prog.now);
        free(prog.total);
        prog.now = prog.total = NULL;
        prog.count = prog.done = 0;
        pthread_mutex_unlock(&prog.lock);
}

int cmd_pull(cli_ctx *ctx, int argc, char **argv)
{
        static const struct option opts[] = {
            {"tag", required_argument, NULL, 't'},
            {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            CLI_REGISTRY_LONG_OPTIONS,
            {NULL, 0, NULL, 0},
        };
        registry_opts ro;
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        char digest[DIGEST_STR_SIZE];
        bool quiet = false;
        int c, r;

        registry_opts_init(&ro);
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":t:qh", opts, NULL)) != -1) {
                if ((r = cli_registry_option("pull", c, optarg, &ro)) != 0) {
                        if (r < 0)
                                return FORGE_EXIT_USAGE;
                        continue;
                }
                switch (c) {
                case 't':
                        ro.local_tag = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        printf("usage: forge pull REF [--tag NAME[:TAG]] [-q] [options]\n\n"
                               "Pulls HOST[:PORT]/REPO[:TAG][@sha256:HEX] into the store (an "
                               "index gives its\nlinux/<host arch> image) and tags it "
                               "REPO-BASENAME:TAG, or --tag. Every blob is\nverified before "
                               "it is stored; an interrupted pull resumes. Prints the\nmanifest "
                               "digest.\n\n"
                               "  -t, --tag NAME[:TAG] the local name\n"
                               "  -q, --quiet          print only the digest\n" CLI_REGISTRY_HELP);
                        return 0;
                default:
                        return cli_bad_option("pull", c, argv);
                }
        }
        if (optind == argc)
                return cli_usage_error("pull", "missing REF");
        if (optind < argc - 1)
                return cli_extra_arg("pull", argv[optind + 1]);
        if (!quiet) {
                ro.progress = cli_registry_progress;
        }
        r = cli_store_open(ctx, &s, &err) < 0 ? -1
                                              : registry_pull(s, argv[optind], &ro, digest, &err);
        cli_registry_progress_end();
        if (r < 0)
                return cli_fail(&err);
        printf("%s\n", digest);
        return 0;
}

void cli_pull_opts_init(registry_opts *o)
{
        registry_opts_init(o);
        o->progress = cli_registry_progress;
}

int cli_pull_option(const char *cmd, int c, const char *arg, registry_opts *o)
{
        switch (c) {
        case 'q':
                o->progress = NULL;
                return 1;
        case CLI_REG_OPT_PULL:
                if (strcmp(arg, "missing") == 0)
                        o->pull = REGISTRY_PULL_MISSING;
                else if (strcmp(arg, "always") == 0)
                        o->pull = REGISTRY_PULL_ALWAYS;
                else if (strcmp(arg, "never") == 0)
                        o->pull = REGISTRY_PULL_NEVER;
                else {
                        cli_usage_error(cmd, "--pull is missing, always or never, not '%s'", arg);
                        return -1;
                }
                return 1;
        default:
                return cli_registry_option(cmd, c, arg, o);
        }
}

int cli_image_resolve(cli_ctx *ctx, store *s, const char *ref, char ret[DIGEST_STR_SIZE],
                      forge_error **err)
{
        registry_opts def;
        int r;

        if (ctx == NULL || ctx->pull == NULL)
                cli_pull_opts_init(&def);
        r = registry_resolve(s, ref, ctx && ctx->pull ? ctx->pull : &def, ret, err);
        cli_registry_progress_end();
        return r;
}
