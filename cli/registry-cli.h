/* SPDX-License-Identifier: MIT */
#pragma once

/* Options shared by the registry commands (pull, push, login) and by commands
 * that accept a remote image (run, inspect, export). */

#include <getopt.h>
#include <stdbool.h>

#include "store/registry.h"

enum {
        CLI_REG_OPT_TLS_VERIFY = 0x1000,
        CLI_REG_OPT_CERT_DIR,
        CLI_REG_OPT_AUTHFILE,
        CLI_REG_OPT_PULL,
};

/* clang-format off */
#define CLI_REGISTRY_LONG_OPTIONS                                                                  \
        {"tls-verify", required_argument, NULL, CLI_REG_OPT_TLS_VERIFY},                           \
        {"cert-dir", required_argument, NULL, CLI_REG_OPT_CERT_DIR},                               \
        {"authfile", required_argument, NULL, CLI_REG_OPT_AUTHFILE}
/* clang-format on */

#define CLI_REGISTRY_HELP                                                                          \
        "  --tls-verify=false  allow plain HTTP and untrusted certificates (localhost and\n"       \
        "                      127.0.0.0/8 may always use plain HTTP)\n"                           \
        "  --cert-dir DIR      per-registry TLS files in DIR/HOST/ (ca.crt, client.cert,\n"        \
        "                      client.key); default /etc/containers/certs.d\n"                     \
        "  --authfile FILE     credentials (default $REGISTRY_AUTH_FILE, else\n"                   \
        "                      $XDG_RUNTIME_DIR/containers/auth.json, else "                       \
        "~/.docker/config.json)\n"

/* Commands that take a remote image (run, inspect, export) pull it with the
 * registry options plus --pull and -q (their short options include "q"). */
/* clang-format off */
#define CLI_PULL_LONG_OPTIONS                                                                      \
        CLI_REGISTRY_LONG_OPTIONS,                                                                 \
        {"pull", required_argument, NULL, CLI_REG_OPT_PULL},                                       \
        {"quiet", no_argument, NULL, 'q'}
/* clang-format on */

#define CLI_PULL_HELP                                                                              \
        "A remote IMAGE (HOST[:PORT]/REPO[:TAG][@sha256:HEX]) is pulled first, as 'forge pull'\n"  \
        "does, unless the store has what a pull of it stored:\n"                                   \
        "  --pull POLICY       missing (default): pull only when the store lacks it;\n"            \
        "                      always: pull every time; never: fail instead of pulling\n"          \
        "  -q, --quiet         no pull progress\n" CLI_REGISTRY_HELP

/* Defaults for a command that may pull: progress on stderr. */
void cli_pull_opts_init(registry_opts *o);
/* As cli_registry_option, for CLI_PULL_LONG_OPTIONS and 'q'. */
int cli_pull_option(const char *cmd, int c, const char *arg, registry_opts *o);

/* Handles one of the options above: 1 when it was one, 0 when not, -1 (after
 * printing a usage error for cmd) when its value is bad. */
int cli_registry_option(const char *cmd, int c, const char *arg, registry_opts *o);

/* Progress on stderr (registry-progress.c): a line per blob when it is done;
 * on a terminal also a line per layer in flight (bytes done / total) and a
 * total line, redrawn in place below them. */
void cli_registry_progress(const registry_progress_event *ev, void *userdata);
/* Clears the status line (after the transfer). */
void cli_registry_progress_end(void);
