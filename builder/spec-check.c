/* SPDX-License-Identifier: MIT */
/*
 * What can be checked before a build writes anything: pins of deb, archive
 * and kernel inputs, `from:` images and specs (the whole chain), files:
 * sources (walked and normalised), run: steps having a runtime. A spec
 * error found here leaves the store as it was. What only reading an archive
 * can tell (names leaving the layer, a corrupt archive) is found while that
 * layer is built.
 */
#include "builder/builder-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"

static int check_pin(const spec *sp, const spec_layer *l, bmemo *memo, forge_error **err)
{
        char h[DIGEST_STR_SIZE];

        if (l->sha256 == NULL)
                return 0;
        if (bhash_file(memo, l->src_path, h, err) < 0) {
                forge_error_release(err);
                return spec_error(err, sp, l->src_pos, "cannot read '%s'", l->src);
        }
        if (strcmp(h, l->sha256) != 0)
                return spec_error(err, sp, l->sha256_pos,
                                  "'%s' has sha256 %s but the spec pins %s (update the pin if "
                                  "the new file is intended)",
                                  l->src, digest_hex(h), digest_hex(l->sha256));
        return 0;
}

static int check_files(const spec *sp, size_t idx, bentries *ret, forge_error **err)
{
        bentries e;

        bentries_init(&e);
        if (bsrc_files_nocaps(sp, &sp->layers[idx], &e, err) < 0 ||
            bentries_finish(&e, (int64_t)sp->source_date_epoch, err) < 0) {
                bentries_free(&e);
                if ((*err)->status != FORGE_EXIT_USAGE) {
                        cleanup_free char *label = blayer_label(&sp->layers[idx]);
                        forge_error_prefix(err, "build layer %zu '%s'", idx + 1,
                                           label ? label : "");
                }
                return -1;
        }
        if (ret != NULL)
                *ret = e;
        else
                bentries_free(&e);
        return 0;
}

static int check_kernel(const spec *sp, bmemo *memo, forge_error **err)
{
        const spec_vm *vm = &sp->vm;
        const char *p = vm->kernel_deb ? vm->kernel_deb : vm->kernel_bzimage;
        char h[DIGEST_STR_SIZE];

        if (!vm->present || p == NULL)
                return 0;
        if (access(p, R_OK) < 0)
                return spec_error(err, sp, vm->kernel_pos, "cannot read '%s': %s", p,
                                  strerror(errno));
        if (vm->kernel_sha256 == NULL)
                return 0;
        if (bhash_file(memo, p, h, err) < 0)
                return -1;
        if (strcmp(h, vm->kernel_sha256) != 0)
                return spec_error(err, sp, vm->kernel_pos,
                                  "kernel '%s' has sha256 %s but the spec pins %s", p,
                                  digest_hex(h), digest_hex(vm->kernel_sha256));
        return 0;
}

static int check_from(store *s, const spec *sp, const builder_opts *o, int depth,
                      forge_error **err)
{
        char digest[DIGEST_STR_SIZE];
        forge_error *e = NULL;

        if (sp->from_kind == SPEC_FROM_IMAGE) {
                int r;
                if (store_resolve(s, sp->from, digest, &e) == 0)
                        return 0;
                r = spec_error(err, sp, sp->from_pos, "'from': %s", e->msg);
                forge_error_release(&e);
                return r;
        }
        if (sp->from_kind == SPEC_FROM_REMOTE) {
                registry_ref ref;
                int r;
                if (registry_ref_parse(sp->from, &ref, &e) == 0) {
                        registry_ref_release(&ref);
                        return 0;
                }
                r = spec_error(err, sp, sp->from_pos, "'from': %s", e->msg);
                forge_error_release(&e);
                return r;
        }
        if (sp->from_kind == SPEC_FROM_SPEC) {
                cleanup_spec spec *base = NULL;
                bmemo memo;
                int r;
                if (depth >= BUILDER_MAX_FROM_DEPTH)
                        return forge_error_usage(err,
                                                 "%s: 'from' specs nest more than %d deep "
                                                 "(a loop?)",
                                                 sp->from_path, BUILDER_MAX_FROM_DEPTH);
                if (spec_load(sp->from_path, &base, err) == 0) {
                        bmemo_init(s, base, &memo);
                        r = bcheck_spec(s, base, o, &memo, depth + 1, NULL, err);
                        bmemo_release(&memo);
                        if (r == 0)
                                return 0;
                }
                return forge_error_prefix(err, "%s:%d:%d: from '%s'", sp->path,
                                          sp->from_pos.line, sp->from_pos.col, sp->from);
        }
        return 0;
}

int bcheck_spec(store *s, const spec *sp, const builder_opts *o, bmemo *memo, int depth,
                bentries *ret_files, forge_error **err)
{
        if (check_from(s, sp, o, depth, err) < 0)
                return -1;
        for (size_t i = 0; i < sp->n_layers; i++) {
                const spec_layer *l = &sp->layers[i];
                switch (l->kind) {
                case SPEC_LAYER_DEB:
                case SPEC_LAYER_ARCHIVE:
                        if (check_pin(sp, l, memo, err) < 0)
                                return -1;
                        break;
                case SPEC_LAYER_FILES:
                        if (check_files(sp, i, ret_files ? &ret_files[i] : NULL, err) < 0)
                                return -1;
                        break;
                case SPEC_LAYER_PACKAGES:
                        if (l->essential && o != NULL && o->run_step == NULL)
                                return spec_error(err, sp, l->pos,
                                                  "'packages' layers with 'essential: true' "
                                                  "need the container runtime");
                        break;
                case SPEC_LAYER_RUN:
                        if (o != NULL && o->run_step == NULL)
                                return spec_error(err, sp, l->pos,
                                                  "'run' layers need the container runtime");
                        break;
                }
        }
        return check_kernel(sp, memo, err);
}

int builder_spec_check(store *s, const char *spec_path, forge_error **err)
{
        cleanup_spec spec *sp = NULL;
        bmemo memo;
        int r;

        if (spec_load(spec_path, &sp, err) < 0)
                return -1;
        bmemo_init(s, sp, &memo);
        r = bcheck_spec(s, sp, NULL, &memo, 0, NULL, err);
        bmemo_release(&memo);
        return r;
}
