/* SPDX-License-Identifier: MIT */
/* forge pull REF [--tag NAME[:TAG]] [-q] [registry options] */
#include <stdio.h>
#include <string.h>
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

void cli_registry_progress(const registry_progress_event *ev, void *userdata)
{
        char size[32];

        (void)userdata;
        if (strcmp(ev->state, "downloading") == 0 || strcmp(ev->state, "uploading") == 0 ||
            strcmp(ev->state, "resuming") == 0) {
                if (strcmp(ev->state, "resuming") == 0)
                        fprintf(stderr, "%s %.19s resuming at %llu of %llu bytes\n", ev->what,
                                ev->digest, (unsigned long long)ev->now,
                                (unsigned long long)ev->total);
                return;
        }
        if (strcmp(ev->what, "layer") == 0)
                fprintf(stderr, "layer %zu/%zu %.19s %10s %s\n", ev->index + 1, ev->count,
                        ev->digest, cli_format_size(ev->total, size, sizeof(size)), ev->state);
        else
                fprintf(stderr, "%-11s %.19s %10s %s\n", ev->what, ev->digest,
                        cli_format_size(ev->total, size, sizeof(size)), ev->state);
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
        while ((c = getopt_long(argc, argv, "t:qh", opts, NULL)) != -1) {
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
                        return cli_usage_error("pull", "bad option");
                }
        }
        if (optind != argc - 1)
                return cli_usage_error("pull", "expected one REF");
        if (!quiet) {
                ro.progress = cli_registry_progress;
        }
        if (cli_store_open(ctx, &s, &err) < 0 || registry_pull(s, argv[optind], &ro, digest, &err) < 0)
                return cli_fail(&err);
        printf("%s\n", digest);
        return 0;
}

int cli_image_resolve(store *s, const char *ref, char ret[DIGEST_STR_SIZE], forge_error **err)
{
        registry_opts ro;

        registry_opts_init(&ro);
        return registry_resolve(s, ref, &ro, ret, err);
}
