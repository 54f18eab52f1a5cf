/* SPDX-License-Identifier: MIT */
/* forge images, forge inspect, forge rmi */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/registry-cli.h"
#include "common/cleanup.h"

static const char images_usage[] =
    "usage: forge images\n\nLists the tagged images: name, tag, digest, size (compressed layers) "
    "and layer count.\n";

static const char inspect_usage[] =
    "usage: forge inspect IMAGE [options]\n\nPrints the image as JSON: digest, tags, layers "
    "(digest, diff_id, sizes, media type), the OCI config and the manifest.\nIMAGE is "
    "NAME[:TAG], sha256:HEX or a unique digest prefix.\n\n" CLI_PULL_HELP;

static const char rmi_usage[] =
    "usage: forge rmi IMAGE...\n\nRemoves tags. NAME[:TAG] removes that tag; a digest removes "
    "every tag pointing to it.\nThe data stays until 'forge store gc'.\n";

static int images(store *s, char **args, void *data, forge_error **err)
{
        store_tag *tags = NULL;
        size_t n = 0;

        (void)args;
        (void)data;
        if (store_tag_list(s, &tags, &n, err) < 0)
                return -1;
        printf("%-24s %-16s %-19s %10s %6s\n", "NAME", "TAG", "DIGEST", "SIZE", "LAYERS");
        for (size_t i = 0; i < n; i++) {
                store_image *img = NULL;
                uint64_t size = 0;
                char sz[32];
                if (store_image_load(s, tags[i].digest, &img, err) < 0) {
                        printf("%-24s %-16s %.19s %10s %6s\n", tags[i].name, tags[i].tag,
                               tags[i].digest + 7, "?", "?");
                        forge_error_release(err);
                        continue;
                }
                for (size_t l = 0; l < img->n_layers; l++)
                        size += img->layers[l].size;
                printf("%-24s %-16s %.12s %10s %6zu\n", tags[i].name, tags[i].tag,
                       tags[i].digest + 7, cli_format_size(size, sz, sizeof(sz)), img->n_layers);
                store_image_free(img);
        }
        store_tag_list_free(tags, n);
        return 0;
}

static const cli_opts_cmd images_cmd = {"images", images_usage, 0, 0, 0, NULL};

int cmd_images(cli_ctx *ctx, int argc, char **argv)
{
        return cli_store_command(ctx, &images_cmd, NULL, 0, argc, argv, images, NULL);
}

static const cli_opts_cmd inspect_cmd = {"inspect", inspect_usage, 0, 1, 1, "missing IMAGE"};

int cmd_inspect(cli_ctx *ctx, int argc, char **argv)
{
        registry_opts ro;
        bool quiet = false;
        const cli_opt opts[] = {CLI_PULL_OPTS(&ro, &quiet)};
        cleanup_store store *s = NULL;
        cleanup_store_image store_image *img = NULL;
        forge_error *err = NULL;
        char digest[DIGEST_STR_SIZE];
        store_tag *tags = NULL;
        size_t n = 0;
        cleanup_json json_t *out = NULL;
        json_t *jl, *jt;
        cleanup_free char *txt = NULL;
        int first, r;

        r = cli_registry_opts_parse(&inspect_cmd, opts, ARRAY_SIZE(opts), argc, argv, &ro, &quiet,
                                    &first);
        if (r != 0)
                return cli_opts_status(r);
        ctx->pull = &ro;
        if (cli_store_open(ctx, &s, &err) < 0 ||
            cli_image_resolve(ctx, s, argv[first], digest, &err) < 0 ||
            store_image_load(s, digest, &img, &err) < 0 || store_tag_list(s, &tags, &n, &err) < 0)
                return cli_fail(&err);
        jl = json_array();
        for (size_t i = 0; i < img->n_layers; i++) {
                store_layer *l = &img->layers[i];
                json_array_append_new(
                    jl, json_pack("{s:s, s:s, s:I, s:I, s:s}", "digest", l->digest, "diff_id",
                                  l->diff_id, "size", (json_int_t)l->size, "uncompressed_size",
                                  (json_int_t)l->usize, "media_type", l->media_type));
        }
        jt = json_array();
        for (size_t i = 0; i < n; i++)
                if (strcmp(tags[i].digest, digest) == 0) {
                        char *t = NULL;
                        if (asprintf(&t, "%s:%s", tags[i].name, tags[i].tag) >= 0) {
                                json_array_append_new(jt, json_string(t));
                                free(t);
                        }
                }
        store_tag_list_free(tags, n);
        out = json_pack("{s:s, s:o, s:o, s:O, s:O}", "digest", digest, "tags", jt, "layers", jl,
                        "config", img->config, "manifest", img->manifest);
        txt = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (txt)
                printf("%s\n", txt);
        return 0;
}

/* Each of the refs untagged: the status of the last that failed, else 0. */
static int rmi(store *s, char **refs, void *data, forge_error **err)
{
        int status = 0;

        (void)data;
        if (store_lock_shared(s, err) < 0)
                return -1;
        for (char **a = refs; *a != NULL; a++) {
                char digest[DIGEST_STR_SIZE];
                const char *ref = *a;
                bool by_digest =
                    strncmp(ref, "sha256:", 7) == 0 ||
                    (strlen(ref) >= 12 && strspn(ref, "0123456789abcdef") == strlen(ref));
                if (store_resolve(s, ref, digest, err) < 0) {
                        status = cli_fail(err);
                        continue;
                }
                if (by_digest) {
                        store_tag *tags = NULL;
                        size_t n = 0;
                        if (store_tag_list(s, &tags, &n, err) < 0) {
                                status = cli_fail(err);
                                continue;
                        }
                        for (size_t i = 0; i < n; i++)
                                if (strcmp(tags[i].digest, digest) == 0) {
                                        if (store_tag_remove(s, tags[i].name, tags[i].tag, err) < 0)
                                                status = cli_fail(err);
                                        else
                                                printf("untagged %s:%s\n", tags[i].name,
                                                       tags[i].tag);
                                }
                        store_tag_list_free(tags, n);
                } else {
                        cleanup_free char *name = strdup(ref);
                        char *colon = name ? strchr(name, ':') : NULL;
                        const char *tag = "latest";
                        if (colon) {
                                *colon = '\0';
                                tag = colon + 1;
                        }
                        if (name == NULL || store_tag_remove(s, name, tag, err) < 0)
                                status = cli_fail(err);
                        else
                                printf("untagged %s:%s\n", name, tag);
                }
        }
        return status;
}

static const cli_opts_cmd rmi_cmd = {"rmi", rmi_usage, 0, 1, -1, "missing IMAGE"};

int cmd_rmi(cli_ctx *ctx, int argc, char **argv)
{
        return cli_store_command(ctx, &rmi_cmd, NULL, 0, argc, argv, rmi, NULL);
}
