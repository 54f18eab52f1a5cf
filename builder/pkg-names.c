/* SPDX-License-Identifier: MIT */
/*
 * Debian's grammar for package names, versions and architectures (Debian
 * Policy 5.6.1, 5.6.12): what an index, a lock or an image's dpkg status says
 * is used in a path or a command only when it passes.
 */
#include "builder/pkg-internal.h"

#include <ctype.h>
#include <string.h>

bool pkg_name_valid(const char *s)
{
        size_t n = strlen(s);
        if (n < 2 || n > 200 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
                return false;
        for (; *s; s++)
                if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
                    !strchr("+-.", *s))
                        return false;
        return true;
}

bool pkg_version_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > 200 || !isalnum((unsigned char)s[0]))
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr(".+~:-", *s))
                        return false;
        return true;
}

bool pkg_arch_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > 32)
                return false;
        for (; *s; s++)
                if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-')
                        return false;
        return true;
}
