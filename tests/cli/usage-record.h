/* SPDX-License-Identifier: MIT */
#pragma once

/* The cli's usage printer for the cli's unit tests: cli_usage_error()
 * records its message ("CMD: MESSAGE") instead of printing it, and counts. */

extern char last_error[1024];
extern int n_errors;
