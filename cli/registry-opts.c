/* SPDX-License-Identifier: MIT */
/* The registry options' values (registry-cli.h): data is the registry_opts. */
#include <string.h>

#include "cli/cli.h"
#include "cli/registry-cli.h"

int cli_registry_tls_verify_opt(const char *cmd, const cli_opt *opt, const char *arg)
{
        registry_opts *o = opt->data;

        if (strcmp(arg, "true") == 0)
                o->tls_verify = 1;
        else if (strcmp(arg, "false") == 0)
                o->tls_verify = 0;
        else
                return cli_usage_error(cmd, "--tls-verify is 'true' or 'false', not '%s'", arg);
        return 0;
}

int cli_registry_pull_opt(const char *cmd, const cli_opt *opt, const char *arg)
{
        registry_opts *o = opt->data;

        if (strcmp(arg, "missing") == 0)
                o->pull = REGISTRY_PULL_MISSING;
        else if (strcmp(arg, "always") == 0)
                o->pull = REGISTRY_PULL_ALWAYS;
        else if (strcmp(arg, "never") == 0)
                o->pull = REGISTRY_PULL_NEVER;
        else
                return cli_usage_error(cmd, "--pull is missing, always or never, not '%s'", arg);
        return 0;
}
