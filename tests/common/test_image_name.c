/* SPDX-License-Identifier: MIT */
/* common/image-name: the store's name and tag grammar, at its edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "common/image-name.h"
#include "testutil.h"

typedef struct want {
        const char *s;
        bool name, tag; /* valid as a name, as a tag */
} want;

static const want cases[] = {
    {"app", true, true},    {"0ab.c_d-e", true, true}, {"V1.2_rc-3", false, true},
    {"_x", false, true},    {"", false, false},        {"App", false, true},
    {".app", false, false}, {"-app", false, false},    {"a/b", false, false},
    {"a:b", false, false},  {"..", false, false},      {"a b", false, false},
};

static void grammar(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                if (image_name_valid(cases[i].s) != cases[i].name)
                        fail_msg("'%s' as a name: expected %d", cases[i].s, cases[i].name);
                if (image_tag_valid(cases[i].s) != cases[i].tag)
                        fail_msg("'%s' as a tag: expected %d", cases[i].s, cases[i].tag);
        }
}

/* 128 characters are the most either takes. */
static void lengths(void **state)
{
        char s[130];

        (void)state;
        memset(s, 'a', sizeof(s));
        s[128] = '\0';
        assert_true(image_name_valid(s));
        assert_true(image_tag_valid(s));
        s[128] = 'a';
        s[129] = '\0';
        assert_false(image_name_valid(s));
        assert_false(image_tag_valid(s));
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(grammar), cmocka_unit_test(lengths))
