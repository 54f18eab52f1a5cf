/* SPDX-License-Identifier: MIT */
/*
 * The libFuzzer targets that feed text parsers share one input layout: the
 * first byte picks the parser, the rest is the text, NUL-terminated.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A malloc'd copy of data[1..size) with a NUL after it, or NULL when the input
 * is empty, longer than max bytes, or memory runs out (the caller skips it). */
static inline char *fuzz_input_text(const uint8_t *data, size_t size, size_t max)
{
        char *text;

        if (size < 1 || size > max)
                return NULL;
        text = malloc(size);
        if (text == NULL)
                return NULL;
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        return text;
}
