/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdlib.h>

/* A name and its value, both malloc'd: an HTTP response's header
 * (common/http.h), a field of a Debian control stanza. */
typedef struct strpair {
        char *name;
        char *value;
} strpair;

/* Frees the n pairs of v, then v (NULL with n 0 is fine). */
static inline void strpair_array_free(strpair *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].value);
        }
        free(v);
}
