/* SPDX-License-Identifier: MIT */
#include "common/array.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int array_grow(void *pp, size_t *cap, size_t need, size_t elem)
{
        size_t ncap = *cap;
        void *p, *np;

        if (need <= *cap)
                return 0;
        ncap = *cap <= SIZE_MAX / 2 ? *cap * 2 : need;
        if (ncap < need)
                ncap = need;
        if (ncap < 8)
                ncap = 8;
        if (elem == 0 || ncap > SIZE_MAX / elem) {
                errno = ENOMEM;
                return -1;
        }
        /* pp is a pointer to any object pointer: copied, not cast */
        memcpy(&p, pp, sizeof(p));
        np = realloc(p, ncap * elem);
        if (np == NULL) {
                errno = ENOMEM;
                return -1;
        }
        memcpy(pp, &np, sizeof(np));
        *cap = ncap;
        return 0;
}
