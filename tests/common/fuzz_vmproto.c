/* SPDX-License-Identifier: MIT */
/* libFuzzer: forge-vminit's decoders of the kernel command line and of
 * /.forge/run. What decodes must encode again and decode to the same
 * configuration; applying one to the other must hold together. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/vmproto.h"
#include "tests/common/vmproto-eq.h"

static void check_run(const char *text, vmproto_run *ret)
{
        vmproto_run again;
        const char *bad;
        char *cl = NULL;

        if (vmproto_run_decode(text, ret, &bad) < 0) {
                if (bad == NULL && strlen(text) <= VMPROTO_CMDLINE_MAX)
                        abort(); /* a refusal names its key */
                return;
        }
        if (vmproto_run_encode(ret, NULL, &cl) < 0)
                abort();
        if (vmproto_run_decode(cl, &again, &bad) < 0 || !vmproto_run_eq(ret, &again))
                abort();
        vmproto_run_free(&again);
        free(cl);
}

static void check_image(const char *text, const vmproto_run *r)
{
        vmproto_image im, again;
        const char *bad;
        char *out = NULL;

        if (vmproto_image_decode(text, &im, &bad) < 0)
                return;
        if (vmproto_image_encode(&im, &out) == 0) {
                if (vmproto_image_decode(out, &again, &bad) < 0 || !vmproto_image_eq(&im, &again))
                        abort();
                vmproto_image_free(&again);
                free(out);
        }
        if (vmproto_image_apply(&im, r) == 0 &&
            (im.n_entrypoint > im.argc || (im.argv && im.argv[im.argc] != NULL)))
                abort();
        vmproto_image_free(&im);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text = malloc(size + 1);
        vmproto_run r = {0};

        if (text == NULL)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        check_run(text, &r);
        check_image(text, &r);
        vmproto_run_free(&r);
        free(text);
        return 0;
}
