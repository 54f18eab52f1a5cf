/* SPDX-License-Identifier: MIT */
#pragma once

/* Options shared by the registry commands (pull, push, login) and by commands
 * that accept a remote image (run, inspect, export). */

#include <stdbool.h>

#include "cli/opts.h"
#include "store/registry.h"

/* The rows of --tls-verify true|false, --cert-dir DIR and --authfile FILE,
 * into the registry_opts *ro. */
#define CLI_REGISTRY_OPTS(ro)                                                                      \
        CLI_CHOICE("tls-verify", 0, &(ro)->tls_verify, &cli_registry_tls_verify),                  \
            CLI_VALUE("cert-dir", 0, &(ro)->certs_dir), CLI_VALUE("authfile", 0, &(ro)->auth_file)
extern const cli_choices cli_registry_tls_verify;

/* --compression gzip|zstd (push, export): the store_compression values. */
extern const cli_choices cli_compressions;

#define CLI_REGISTRY_HELP                                                                          \
        "  --tls-verify=false  allow plain HTTP and untrusted certificates (localhost and\n"       \
        "                      127.0.0.0/8 may always use plain HTTP)\n"                           \
        "  --cert-dir DIR      per-registry TLS files in DIR/HOST/ (ca.crt, client.cert,\n"        \
        "                      client.key); default /etc/containers/certs.d\n"                     \
        "  --authfile FILE     credentials (default $REGISTRY_AUTH_FILE, else\n"                   \
        "                      $XDG_RUNTIME_DIR/containers/auth.json, else "                       \
        "~/.docker/config.json)\n"

/* Commands that take a remote image (run, inspect, export) pull it with the
 * registry options plus --pull POLICY and -q (*quiet: no progress). */
#define CLI_PULL_OPTS(ro, quiet)                                                                   \
        CLI_REGISTRY_OPTS(ro), CLI_CHOICE("pull", 0, &(ro)->pull, &cli_registry_pull),             \
            CLI_FLAG("quiet", 'q', (quiet))
extern const cli_choices cli_registry_pull;

#define CLI_PULL_HELP                                                                              \
        "A remote IMAGE (HOST[:PORT]/REPO[:TAG][@sha256:HEX]) is pulled first, as 'forge pull'\n"  \
        "does, unless the store has what a pull of it stored:\n"                                   \
        "  --pull POLICY       missing (default): pull only when the store lacks it;\n"            \
        "                      always: pull every time; never: fail instead of pulling\n"          \
        "  -q, --quiet         no pull progress\n" CLI_REGISTRY_HELP

/* cli_opts_parse for a command with registry options into ro: ro's
 * defaults first; after it, progress on stderr unless *quiet (quiet NULL:
 * none). cmd-pull.c */
int cli_registry_opts_parse(const cli_opts_cmd *c, const cli_opt *opts, size_t n, int argc,
                            char **argv, registry_opts *ro, const bool *quiet, int *ret_first);

/* Progress on stderr (registry-progress.c): a line per blob when it is done;
 * on a terminal also a line per layer in flight (bytes done / total) and a
 * total line, redrawn in place below them. */
void cli_registry_progress(const registry_progress_event *ev, void *userdata);
/* Clears the status line (after the transfer). */
void cli_registry_progress_end(void);
