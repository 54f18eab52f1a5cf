/* SPDX-License-Identifier: MIT */
#include "common/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 0))) static int set_error(forge_error **err, int errnum,
                                                           int status, const char *fmt, va_list ap)
{
        char *msg = NULL;

        if (err == NULL || *err != NULL)
                return -1;
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        if (msg != NULL && errnum != 0) {
                char *full = NULL;
                if (asprintf(&full, "%s: %s", msg, strerror(errnum)) >= 0) {
                        free(msg);
                        msg = full;
                }
        }
        *err = calloc(1, sizeof(**err));
        if (*err == NULL) {
                free(msg);
                return -1;
        }
        (*err)->errnum = errnum;
        (*err)->status = status;
        (*err)->msg = msg != NULL ? msg : strdup("out of memory");
        return -1;
}

int forge_error_make(forge_error **err, int errnum, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        set_error(err, errnum, FORGE_EXIT_FAILURE, fmt, ap);
        va_end(ap);
        return -1;
}

int forge_error_usage(forge_error **err, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        set_error(err, 0, FORGE_EXIT_USAGE, fmt, ap);
        va_end(ap);
        return -1;
}

int forge_error_usagev(forge_error **err, const char *fmt, va_list ap)
{
        return set_error(err, 0, FORGE_EXIT_USAGE, fmt, ap);
}

int forge_error_prefix(forge_error **err, const char *fmt, ...)
{
        char *ctx = NULL, *full = NULL;
        va_list ap;

        if (err == NULL || *err == NULL)
                return -1;
        va_start(ap, fmt);
        if (vasprintf(&ctx, fmt, ap) < 0)
                ctx = NULL;
        va_end(ap);
        if (ctx == NULL)
                return -1;
        if (asprintf(&full, "%s: %s", ctx, (*err)->msg ? (*err)->msg : "") >= 0) {
                free((*err)->msg);
                (*err)->msg = full;
        }
        free(ctx);
        return -1;
}

void forge_error_release(forge_error **err)
{
        if (err == NULL || *err == NULL)
                return;
        free((*err)->msg);
        free(*err);
        *err = NULL;
}
