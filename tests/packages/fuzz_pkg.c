/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what a repository or a machine's apt configuration
 * hands the package source: one-line and deb822 sources, InRelease text,
 * ASCII armor, Release dates, and an image's dpkg status merged with a
 * layer's. The first byte picks the parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "builder/pkg-internal.h"
#include "tests/helper/fuzz-input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static char *const keys[] = {"/k.gpg", NULL};
        char *text;
        forge_error *err = NULL;
        pkg_sources s = {0};

        text = fuzz_input_text(data, size, 1 << 20);
        if (text == NULL)
                return 0;
        switch (data[0] % 6) {
        case 0:
                pkg_apt_parse_list(text, "f", "amd64", keys, &s, &err);
                break;
        case 1:
                pkg_apt_parse_deb822(text, "f", "amd64", keys, &s, &err);
                break;
        case 2: {
                pkg_release r = {0};
                if (pkg_release_parse(text, size - 1, &r, &err) == 0) {
                        for (size_t i = 0; i < r.n_files; i++)
                                (void)pkg_release_find(&r, r.files[i].path);
                        pkg_release_free(&r);
                }
                break;
        }
        case 3: {
                unsigned char *out = NULL;
                size_t len = 0;
                if (pkg_dearmor(text, size - 1, &out, &len) == 0)
                        free(out);
                break;
        }
        case 4: {
                pkg_stanza fresh = {"libfoo1", "amd64", "Package: libfoo1\n\n"};
                char *out = NULL;
                size_t len = 0;
                if (pkg_status_merge(text, "f", &fresh, 1, &out, &len, &err) == 0)
                        free(out);
                break;
        }
        default: {
                time_t t;
                (void)pkg_date_parse(text, &t);
                break;
        }
        }
        pkg_sources_free(&s);
        forge_error_release(&err);
        free(text);
        return 0;
}
