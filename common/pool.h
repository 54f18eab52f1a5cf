/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A small pool of threads working through items 0..n-1 (parallel downloads
 * and uploads): each item is handed out once; the first item that fails
 * stops the hand-out (items already running finish) and its error is the
 * pool's. The calling thread works too, so a pool runs even when no thread
 * can be started.
 */

#include <stddef.h>

#include "common/error.h"

#define POOL_MAX_THREADS 16

/* Works on item index of ctx: 0, or -1 with *err filled. Called from several
 * threads at once (ctx's own state wants its own lock). */
typedef int (*pool_fn)(void *ctx, size_t index, forge_error **err);

/* Runs fn on every item with at most threads threads (0: 4; capped at
 * POOL_MAX_THREADS and at n). Returns 0, or -1 with the first error. */
int pool_run(size_t n, unsigned threads, pool_fn fn, void *ctx, forge_error **err);
