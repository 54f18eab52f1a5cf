/* SPDX-License-Identifier: MIT */
#pragma once

/* The wiring between the builder and the container runtime: the builder's
 * `run:` steps run as containers. */

#include "builder/builder.h"

/* A builder_run_fn: runs one `run:` build step in a container over the given
 * lowerdirs, leaving the overlay upper dir in step->upper_dir. userdata is
 * the directory for per-run scratch dirs (a const char *, e.g. the store's
 * tmp/), or NULL for $TMPDIR or /tmp. */
int cli_build_step(const builder_run_step *step, int *ret_status, void *userdata,
                   forge_error **err);
