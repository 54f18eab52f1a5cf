/* SPDX-License-Identifier: MIT */
/* The words of the registry options and of --compression (registry-cli.h). */
#include "cli/cli.h"
#include "cli/registry-cli.h"
#include "common/cleanup.h"

/* the choices' fields are enums, written as ints */
_Static_assert(sizeof(store_compression) == sizeof(int), "store_compression is int-sized");
_Static_assert(sizeof(registry_pull_policy) == sizeof(int), "registry_pull_policy is int-sized");

static const cli_choice compressions[] = {
    {"gzip", STORE_COMPRESSION_GZIP},
    {"zstd", STORE_COMPRESSION_ZSTD},
};
const cli_choices cli_compressions = {compressions, ARRAY_SIZE(compressions), "gzip or zstd"};

static const cli_choice tls_verify[] = {{"true", 1}, {"false", 0}};
const cli_choices cli_registry_tls_verify = {tls_verify, ARRAY_SIZE(tls_verify),
                                             "'true' or 'false'"};

static const cli_choice pull_policies[] = {
    {"missing", REGISTRY_PULL_MISSING},
    {"always", REGISTRY_PULL_ALWAYS},
    {"never", REGISTRY_PULL_NEVER},
};
const cli_choices cli_registry_pull = {pull_policies, ARRAY_SIZE(pull_policies),
                                       "missing, always or never"};
