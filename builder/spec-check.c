/* SPDX-License-Identifier: MIT */
/*
 * What can be checked before a build writes anything: pins of deb, archive
 * and kernel inputs, `from:` images and specs (the whole chain), files:
 * sources (walked and normalised), run: steps having a runtime. A spec
 * error found here leaves the store as it was. What only reading an archive
 * can tell (names leaving the layer, a corrupt archive) is found while that
 * layer is built, and by `forge check`, which reads every deb and archive
 * of the chain through without keeping anything.
 */
#include "builder/builder-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"

int bpin_check(forge_error **err, const spec *sp, spec_pos pos, const char *label, const char *have,
               const char *want)
{
        if (strcmp(have, want) == 0)
                return 0;
        return spec_error(err, sp, pos,
                          "%s has sha256 %s but the spec pins %s (update the pin if the new file "
                          "is intended)",
                          label, digest_hex(have), digest_hex(want));
}

static int check_pin(const spec *sp, const spec_layer *l, bmemo *memo, forge_error **err)
{
        char h[DIGEST_STR_SIZE];

        if (l->sha256 == NULL)
                return 0;
        if (bhash_file(memo, l->src_path, h, err) < 0) {
                forge_error_release(err);
                return spec_error(err, sp, l->src_pos, "cannot read '%s'", l->src);
        }
        cleanup_free char *label = NULL;
        if (asprintf(&label, "'%s'", l->src) < 0)
                return forge_error_make(err, ENOMEM, "pin");
        return bpin_check(err, sp, l->sha256_pos, label, h, l->sha256);
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
        cleanup_free char *label = NULL;
        if (asprintf(&label, "kernel '%s'", p) < 0)
                return forge_error_make(err, ENOMEM, "pin");
        return bpin_check(err, sp, vm->kernel_pos, label, h, vm->kernel_sha256);
}

/* The specs of a from: chain, top first, as real paths. */
typedef struct chain {
        char *paths[BUILDER_MAX_FROM_DEPTH + 1];
        size_t n;
} chain;

static int check_rec(store *s, const spec *sp, const builder_opts *o, bmemo *memo, chain *ch,
                     bentries *ret_files, forge_error **err);

/* A path as the user will recognise it: relative to the top spec's directory
 * when below it. */
static const char *shown(const chain *ch, const char *p)
{
        const char *slash = strrchr(ch->paths[0], '/');
        size_t dlen = slash ? (size_t)(slash - ch->paths[0]) : 0;

        if (dlen > 0 && strncmp(p, ch->paths[0], dlen) == 0 && p[dlen] == '/')
                return p + dlen + 1;
        return p;
}

/* "from: loop: a.yaml -> b.yaml -> a.yaml", from the spec named again. */
static int loop_error(const spec *sp, const chain *ch, size_t again, forge_error **err)
{
        size_t len = 1;
        cleanup_free char *msg = NULL;

        for (size_t i = again; i < ch->n; i++)
                len += strlen(shown(ch, ch->paths[i])) + 4;
        len += strlen(shown(ch, ch->paths[again]));
        msg = calloc(1, len);
        if (msg == NULL)
                return forge_error_make(err, ENOMEM, "from");
        for (size_t i = again; i < ch->n; i++) {
                strcat(msg, shown(ch, ch->paths[i]));
                strcat(msg, " -> ");
        }
        strcat(msg, shown(ch, ch->paths[again]));
        spec_error(err, sp, sp->from_pos, "from: loop: %s", msg);
        (*err)->errnum = ELOOP; /* said in full: no prefix on the way up */
        return -1;
}

static int check_from_spec(store *s, const spec *sp, const builder_opts *o, chain *ch,
                           forge_error **err)
{
        cleanup_free char *real = realpath(sp->from_path, NULL);
        cleanup_spec spec *base = NULL;
        bmemo memo;
        int r;

        if (real != NULL)
                for (size_t i = 0; i < ch->n; i++)
                        if (strcmp(ch->paths[i], real) == 0)
                                return loop_error(sp, ch, i, err);
        if (ch->n > BUILDER_MAX_FROM_DEPTH)
                return spec_error(err, sp, sp->from_pos, "'from' specs nest more than %d deep",
                                  BUILDER_MAX_FROM_DEPTH);
        if (spec_load(sp->from_path, &base, err) == 0) {
                bmemo_init(s, base, &memo);
                r = check_rec(s, base, o, &memo, ch, NULL, err);
                bmemo_release(&memo);
                if (r == 0)
                        return 0;
        }
        if ((*err)->errnum == ELOOP)
                return -1;
        return forge_error_prefix(err, "%s:%d:%d: from '%s'", sp->path, sp->from_pos.line,
                                  sp->from_pos.col, sp->from);
}

static int check_from(store *s, const spec *sp, const builder_opts *o, chain *ch, forge_error **err)
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
        if (sp->from_kind == SPEC_FROM_SPEC)
                return check_from_spec(s, sp, o, ch, err);
        return 0;
}

static int check_layers(const spec *sp, const builder_opts *o, bmemo *memo, bentries *ret_files,
                        forge_error **err)
{
        for (size_t i = 0; i < sp->n_layers; i++) {
                const spec_layer *l = &sp->layers[i];
                switch (l->kind) {
                case SPEC_LAYER_DEB:
                case SPEC_LAYER_ARCHIVE:
                        if (check_pin(sp, l, memo, err) < 0)
                                return -1;
                        if (o == NULL && bsrc_archive_check(sp, l, err) < 0) {
                                if ((*err)->status != FORGE_EXIT_USAGE) {
                                        cleanup_free char *label = blayer_label(l);
                                        forge_error_prefix(err, "%s:%d:%d: layer %zu '%s'",
                                                           sp->path, l->pos.line, l->pos.col, i + 1,
                                                           label ? label : "");
                                }
                                return -1;
                        }
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
        return 0;
}

static int check_rec(store *s, const spec *sp, const builder_opts *o, bmemo *memo, chain *ch,
                     bentries *ret_files, forge_error **err)
{
        int r;

        ch->paths[ch->n] = realpath(sp->path, NULL);
        if (ch->paths[ch->n] == NULL)
                return forge_error_make(err, errno, "'%s'", sp->path);
        ch->n++;
        r = check_from(s, sp, o, ch, err);
        ch->n--;
        free(ch->paths[ch->n]);
        if (r < 0 || check_layers(sp, o, memo, ret_files, err) < 0)
                return -1;
        return check_kernel(sp, memo, err);
}

int bcheck_spec(store *s, const spec *sp, const builder_opts *o, bmemo *memo, bentries *ret_files,
                forge_error **err)
{
        chain ch = {.n = 0};

        return check_rec(s, sp, o, memo, &ch, ret_files, err);
}

int builder_spec_check(store *s, const char *spec_path, forge_error **err)
{
        cleanup_spec spec *sp = NULL;
        bmemo memo;
        int r;

        if (spec_load(spec_path, &sp, err) < 0)
                return -1;
        bmemo_init(s, sp, &memo);
        r = bcheck_spec(s, sp, NULL, &memo, NULL, err);
        bmemo_release(&memo);
        return r;
}
