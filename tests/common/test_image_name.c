/* SPDX-License-Identifier: MIT */
/* common/image-name: the store's name and tag grammar, at its edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/image-name.h"

static void names(void **state)
{
        (void)state;
        char longest[129], too_long[130];

        assert_true(image_name_valid("app"));
        assert_true(image_name_valid("0ab.c_d-e"));
        assert_false(image_name_valid(""));
        assert_false(image_name_valid("App"));
        assert_false(image_name_valid(".app"));
        assert_false(image_name_valid("-app"));
        assert_false(image_name_valid("a/b"));
        assert_false(image_name_valid("a:b"));
        assert_false(image_name_valid(".."));
        memset(longest, 'a', 128);
        longest[128] = '\0';
        assert_true(image_name_valid(longest));
        memset(too_long, 'a', 129);
        too_long[129] = '\0';
        assert_false(image_name_valid(too_long));
}

static void tags(void **state)
{
        (void)state;
        char longest[129], too_long[130];

        assert_true(image_tag_valid("latest"));
        assert_true(image_tag_valid("V1.2_rc-3"));
        assert_true(image_tag_valid("_x"));
        assert_false(image_tag_valid(""));
        assert_false(image_tag_valid(".x"));
        assert_false(image_tag_valid("-x"));
        assert_false(image_tag_valid("a/b"));
        assert_false(image_tag_valid("a:b"));
        memset(longest, 'T', 128);
        longest[128] = '\0';
        assert_true(image_tag_valid(longest));
        memset(too_long, 'T', 129);
        too_long[129] = '\0';
        assert_false(image_tag_valid(too_long));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(names),
            cmocka_unit_test(tags),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
