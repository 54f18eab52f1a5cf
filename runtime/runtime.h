/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The container runtime (runtime/container*.c, cgroup*.c, seccomp.c, ...).
 * The KVM launcher has its own header, runtime/vmm/vmm.h.
 * Owner: the runtime module; this first version only fixes the entry point the
 * builder's `run:` layers use.
 */

#include "builder/builder.h"
#include "common/error.h"
#include "store/store.h"

/* A builder_run_fn: runs one `run:` build step in a container over the given
 * lowerdirs, leaving the overlay upper dir in step->upper_dir. */
int runtime_build_step(const builder_run_step *step, int *ret_status, void *userdata,
                       forge_error **err);
