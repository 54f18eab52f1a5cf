/* SPDX-License-Identifier: MIT */
#include "common/image-name.h"

#include <ctype.h>
#include <string.h>

bool image_name_valid(const char *n)
{
        size_t len = strlen(n);
        if (len == 0 || len > 128 ||
            !(islower((unsigned char)n[0]) || isdigit((unsigned char)n[0])))
                return false;
        for (const char *c = n; *c; c++)
                if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '.' ||
                      *c == '_' || *c == '-'))
                        return false;
        return true;
}

bool image_tag_valid(const char *t)
{
        size_t len = strlen(t);
        if (len == 0 || len > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
                return false;
        for (const char *c = t; *c; c++)
                if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '_' || *c == '-'))
                        return false;
        return true;
}
