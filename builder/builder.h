/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * spec -> layers -> image in the store.
 *
 * Each layer is a deterministic tar (sorted entries, mtimes clamped to
 * source_date_epoch, numeric owners, no atime/ctime/device/inode leaks),
 * zstd-compressed, stored by sha256, with its uncompressed digest (diff_id)
 * recorded. A layer's cache key covers its parent's key, its canonical
 * definition, the content of its inputs and BUILDER_LAYER_FORMAT.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "specs/specs.h"
#include "store/registry.h"
#include "store/store.h"

/* Bump when the produced tar bytes change for the same inputs. */
#define BUILDER_LAYER_FORMAT 3 /* 3: entries placed through lower layers' symlinks */

typedef struct builder_layer_event {
        size_t index; /* 0-based */
        size_t count;
        const char *name; /* label or a description like "deb busybox.deb" */
        bool cached;
        const char *why;    /* on a miss: which input changed, or "no cache", "new layer" */
        const char *digest; /* compressed blob digest */
        uint64_t size;      /* compressed bytes */
        uint64_t usize;     /* uncompressed bytes */
        double seconds;
        bool cached_remote; /* cached: found in a --cache-from registry */
} builder_layer_event;

typedef void (*builder_progress_fn)(const builder_layer_event *ev, void *userdata);

/* Runs one `run:` step: a container over lowerdirs (bottom first) whose
 * overlay upper directory is left in upper_dir (which exists and is empty).
 * Set by the caller (cli wires the container runtime in), so that the builder
 * does not depend on the runtime. Returns < 0 if the step could not be
 * started; otherwise *ret_status is the command's exit status (0 = success).
 * output_fd receives the step's stdout and stderr. */
typedef struct builder_run_step {
        const char *const *lowerdirs;
        size_t n_lowerdirs;
        const char *upper_dir;
        const char *work_dir; /* empty, same file system as upper_dir */
        const char *command;  /* passed to /bin/sh -c */
        char **env;           /* NULL-terminated "K=V" */
        bool network_host;
        bool network_user; /* its own stack through pasta */
        uint64_t memory;   /* 0: no memory limit */
        int64_t pids;      /* 0: the runtime's default (RUNTIME_DEFAULT_PIDS) */
        int output_fd;
} builder_run_step;
typedef int (*builder_run_fn)(const builder_run_step *step, int *ret_status, void *userdata,
                              forge_error **err);

/* Download progress of a packages: layer: packages and bytes so far. */
typedef void (*builder_fetch_fn)(const char *layer, size_t done, size_t total, uint64_t bytes,
                                 uint64_t bytes_total, void *userdata);

typedef struct builder_opts {
        bool no_cache;
        bool locked; /* --locked: SPEC.lock must exist and match (packages: layers) */
        builder_fetch_fn fetch_progress;
        const char *tag; /* overrides spec name:tag ("NAME:TAG" or "TAG") */
        builder_progress_fn progress;
        void *progress_data;
        builder_run_fn run_step;
        void *run_step_data;
        const registry_opts *registry; /* for a remote from: (NULL: defaults) */
        /* --cache-from / --cache-to: looked up on a local cache miss; every
         * layer of the build is added to it (NULL: none) */
        registry_cache *remote_cache;
} builder_opts;

/* Builds the spec (and, first, a spec named by from:), tags it and returns the
 * manifest digest. Spec errors are usage errors (exit 2) located in the spec;
 * those builder_spec_check() finds are found before anything is written. A
 * failed build leaves the store's tags and images as they were. */
int builder_build(store *s, const char *spec_path, const builder_opts *opts,
                  char ret_digest[DIGEST_STR_SIZE], forge_error **err);

/* Checks the spec and everything that can be checked without building:
 * input pins, `from:` images and specs, files: sources, the VM kernel. Reads
 * the store, writes nothing. Errors are spec errors (exit 2) where the spec
 * is at fault. builder_build() does the same first. */
int builder_spec_check(store *s, const char *spec_path, forge_error **err);

/* `forge lock`: resolves every packages: layer of the spec (fetching and
 * verifying the repositories' indexes) and writes SPEC.lock beside it,
 * keeping keys of the lock that others own. *ret_n: packages locked. */
int builder_lock(store *s, const char *spec_path, size_t *ret_n, forge_error **err);

/* `forge sbom`: SPDX 2.3 (or, with cyclonedx, CycloneDX 1.5) JSON of an image's
 * packages and inputs, malloc'd. */
int builder_sbom(store *s, const char *ref, bool cyclonedx, char **ret, forge_error **err);

/* --check: builds twice, the second time without cache into a scratch store,
 * and compares. Returns 0 when bit-identical; otherwise fails, naming each
 * differing layer and the files within it. */
int builder_check(store *s, const char *spec_path, const builder_opts *opts,
                  char ret_digest[DIGEST_STR_SIZE], forge_error **err);
