/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* Makes the malloc'd array at *pp (elements of elem bytes, *cap of them
 * allocated) hold at least need elements: the allocation at least doubles, so
 * pushing one at a time is amortised O(1). Returns 0, or -1 with errno ENOMEM
 * (also when the size would overflow); *pp and *cap are unchanged then. */
int array_grow(void *pp, size_t *cap, size_t need, size_t elem);

/* array_grow() for an array v of cap elements: ARRAY_GROW(v, cap, n + 1). */
#define ARRAY_GROW(v, cap, need) array_grow(&(v), &(cap), (need), sizeof(*(v)))
