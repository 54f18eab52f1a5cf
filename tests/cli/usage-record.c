/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "cli/cli.h"
#include "tests/cli/usage-record.h"

char last_error[1024];
int n_errors;

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
        va_list ap;
        int n = snprintf(last_error, sizeof(last_error), "%s: ", cmd);

        va_start(ap, fmt);
        vsnprintf(last_error + n, sizeof(last_error) - (size_t)n, fmt, ap);
        va_end(ap);
        n_errors++;
        return FORGE_EXIT_USAGE;
}
