/* SPDX-License-Identifier: MIT */
/* forge export IMAGE --format dir|tar|oci|disk -o PATH [--compression gzip|zstd] */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/registry-cli.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include <unistd.h>

static const char usage_text[] =
    "usage: forge export IMAGE --format dir|tar|oci|disk -o PATH [--compression gzip|zstd]\n\n"
    "  dir    the flattened root filesystem (whiteouts applied) as a directory\n"
    "  tar    the same as a deterministic tar\n"
    "  oci    an OCI image layout (a directory, or a tar if PATH ends in .tar);\n"
    "         layers gzip-compressed unless --compression zstd\n"
    "  disk   a bootable VM disk image (the spec needs a vm: section)\n\n"
    "PATH must not exist yet; -o - writes a tar or an OCI tar to stdout.\n"
    "exit status: 0 ok, 1 failed, 2 usage error\n"
    "\n" CLI_PULL_HELP;

/* -o -: the tar is made in the store's tmp/ (an OCI layout as a tar) and
 * copied to stdout; nothing else goes there. */
static int export_stdout(store *s, const char *digest, const char *ref, store_export_format fmt,
                         store_compression comp)
{
        cleanup_free char *tmpl = NULL, *path = NULL;
        forge_error *err = NULL;
        int r = 0;

        if (asprintf(&tmpl, "%s/tmp/export-XXXXXX", store_root(s)) < 0 || mkdtemp(tmpl) == NULL ||
            asprintf(&path, "%s/out.tar", tmpl) < 0) {
                forge_error_make(&err, errno, "export: a temporary directory in the store");
                return cli_fail(&err);
        }
        /* a reader that goes away (| head) is an error here, not a kill that
         * would leave the temporary directory behind */
        signal(SIGPIPE, SIG_IGN);
        if (store_export_ref(s, digest, ref, fmt, comp, path, &err) < 0) {
                r = cli_fail(&err);
        } else {
                cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fs_copy_fd(fd, STDOUT_FILENO, &err) < 0) {
                        if (err == NULL)
                                forge_error_make(&err, errno, "read '%s'", path);
                        forge_error_prefix(&err, "export to stdout");
                        r = cli_fail(&err);
                }
        }
        fs_rm_rf(tmpl, NULL);
        if (r == 0)
                fprintf(stderr, "exported %s to stdout\n", digest);
        return r;
}

static char *export_ref_name(store *s, const char *arg, const char *digest)
{
        store_tag *tags = NULL;
        size_t n = 0;
        char *r = NULL;
        forge_error *e = NULL;

        if (registry_ref_is_remote(arg)) { /* HOST/REPO:TAG as the registry names it */
                registry_ref rr = {0};
                forge_error *pe = NULL;

                if (registry_ref_parse(arg, &rr, &pe) < 0) {
                        forge_error_release(&pe);
                        return strdup(arg);
                }
                if (rr.tag != NULL && asprintf(&r, "%s/%s:%s", rr.host, rr.repo, rr.tag) < 0)
                        r = NULL;
                registry_ref_release(&rr);
                if (r != NULL)
                        return r;
        }
        if (strncmp(arg, "sha256:", 7) != 0 && strspn(arg, "0123456789abcdef") != strlen(arg)) {
                if (asprintf(&r, "%s%s", arg, strchr(arg, ':') ? "" : ":latest") < 0)
                        return NULL;
                return r;
        }
        if (store_tag_list(s, &tags, &n, &e) == 0)
                for (size_t i = 0; i < n && r == NULL; i++)
                        if (strcmp(tags[i].digest, digest) == 0 &&
                            asprintf(&r, "%s:%s", tags[i].name, tags[i].tag) < 0)
                                r = NULL;
        forge_error_release(&e);
        store_tag_list_free(tags, n);
        return r ? r : strdup("latest");
}

static const cli_opts_cmd export_cmd = {"export", usage_text, 0, 1, 1, "missing IMAGE"};

int cmd_export(cli_ctx *ctx, int argc, char **argv)
{
        /* disk: -1, not the store's (cli_export_disk) */
        static const cli_choice formats[] = {
            {"dir", STORE_EXPORT_DIR},
            {"tar", STORE_EXPORT_TAR},
            {"oci", STORE_EXPORT_OCI},
            {"disk", -1},
        };
        const char *format = NULL, *out = NULL, *compression = NULL;
        registry_opts ro;
        bool quiet = false;
        const cli_opt opts[] = {
            CLI_VALUE("format", 'f', &format),
            CLI_VALUE("output", 'o', &out),
            CLI_VALUE("compression", 0, &compression),
            CLI_PULL_OPTS(&ro, &quiet),
        };
        cleanup_store store *s = NULL;
        forge_error *err = NULL;
        store_export_format fmt;
        store_compression comp = STORE_COMPRESSION_DEFAULT;
        char digest[DIGEST_STR_SIZE];
        cleanup_free char *ref = NULL;
        const char *image;
        int first, r, v;

        r = cli_registry_opts_parse(&export_cmd, opts, ARRAY_SIZE(opts), argc, argv, &ro, &quiet,
                                    &first);
        if (r != 0)
                return cli_opts_status(r);
        image = argv[first];
        if (format == NULL || out == NULL)
                return cli_usage_error("export", "--format and -o PATH are required");
        if (cli_choice_find(formats, ARRAY_SIZE(formats), format, &v) < 0)
                return cli_usage_error("export", "unknown --format '%s' (dir, tar, oci or disk)",
                                       format);
        fmt = (store_export_format)v;
        if (compression != NULL) {
                if (cli_choice_find(cli_compressions.v, cli_compressions.n, compression, &v) < 0)
                        return cli_usage_error("export",
                                               "unknown --compression '%s' (gzip or "
                                               "zstd)",
                                               compression);
                comp = (store_compression)v;
                if (fmt != STORE_EXPORT_OCI)
                        return cli_usage_error("export", "--compression applies to --format oci");
        }
        if (strcmp(out, "-") == 0 && fmt != STORE_EXPORT_TAR && fmt != STORE_EXPORT_OCI)
                return cli_usage_error("export", "-o - (stdout) is for --format tar or oci");
        if (strcmp(out, "-") == 0 && isatty(STDOUT_FILENO))
                return cli_usage_error("export", "-o -: stdout is a terminal (redirect it "
                                                 "to a file or a pipe)");
        ctx->pull = &ro;
        if (cli_store_open(ctx, &s, &err) < 0 || cli_image_resolve(ctx, s, image, digest, &err) < 0)
                return cli_fail(&err);
        if ((int)fmt == -1)
                return cli_export_disk(ctx, s, digest, out);
        /* The OCI ref name: NAME:TAG as the user named it (podman, skopeo and
         * forge import read it back as that), else a tag of the image. */
        ref = export_ref_name(s, image, digest);
        if (ref == NULL)
                return cli_fail(&err);
        if (strcmp(out, "-") == 0)
                return export_stdout(s, digest, ref, fmt, comp);
        if (store_export_ref(s, digest, ref, fmt, comp, out, &err) < 0)
                return cli_fail(&err);
        printf("exported %s to %s\n", digest, out);
        return 0;
}
