/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdarg.h>

/*
 * One error type for the whole code base. A function that can fail returns
 * a negative value and fills *err; callers add context on the way up with
 * forge_error_prefix(); only cli/ prints it, once.
 *
 *   if (store_blob_put(s, ..., err) < 0)
 *           return forge_error_prefix(err, "build layer '%s'", name);
 */

enum {
        FORGE_EXIT_OK = 0,
        FORGE_EXIT_FAILURE = 1,
        FORGE_EXIT_USAGE = 2, /* usage or spec error */
};

typedef struct forge_error {
        int errnum; /* errno value, or 0 */
        int status; /* exit status class: FORGE_EXIT_FAILURE or FORGE_EXIT_USAGE */
        char *msg;
} forge_error;

/* Sets *err (if err is non-NULL and *err is NULL); appends strerror(errnum) when
 * errnum != 0. Always returns -1. */
int forge_error_make(forge_error **err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like forge_error_make, but marks the error as a usage/spec error (exit 2). */
int forge_error_usage(forge_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* forge_error_usage with a va_list, for functions that take a format */
int forge_error_usagev(forge_error **err, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Prepends "context: " to an existing error. Always returns -1. */
int forge_error_prefix(forge_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void forge_error_release(forge_error **err);

static inline void cleanup_forge_error_fn(forge_error **err)
{
        forge_error_release(err);
}
#define cleanup_error __attribute__((cleanup(cleanup_forge_error_fn)))
