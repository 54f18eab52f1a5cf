/* SPDX-License-Identifier: MIT */
/* libFuzzer target for what a registry (or a user) hands the registry code
 * before anything is checked: manifests and indexes, WWW-Authenticate
 * headers, references, base64 from auth files. The first byte picks the
 * parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/registry.h"
#include "tests/helper/fuzz-input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        forge_error *e = NULL;
        char *s;

        s = fuzz_input_text(data, size, SIZE_MAX);
        if (s == NULL)
                return 0;
        switch (data[0] % 4) {
        case 0: {
                registry_manifest m;
                char d[DIGEST_STR_SIZE];
                if (registry_manifest_parse(s, size - 1, "application/vnd.oci.image.index.v1+json",
                                            &m, &e) == 0) {
                        if (m.kind == REGISTRY_KIND_INDEX &&
                            registry_index_pick(&m, "linux", "amd64", NULL, d, &e) < 0)
                                forge_error_release(&e);
                        registry_manifest_release(&m);
                }
                break;
        }
        case 1: {
                registry_challenge c;
                if (registry_challenge_parse(s, &c, &e) == 0)
                        registry_challenge_release(&c);
                break;
        }
        case 2: {
                registry_ref r;
                (void)registry_ref_is_remote(s);
                (void)registry_host_is_loopback(s);
                if (registry_ref_parse(s, &r, &e) == 0) {
                        char *f = registry_ref_format(&r);
                        free(f);
                        registry_ref_release(&r);
                }
                break;
        }
        default: {
                char *out = NULL;
                if (registry_base64_decode(s, &out, NULL) == 0)
                        free(out);
                break;
        }
        }
        forge_error_release(&e);
        free(s);
        return 0;
}
