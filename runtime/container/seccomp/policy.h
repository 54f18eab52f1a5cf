/* SPDX-License-Identifier: MIT */
#pragma once

/* The containers' seccomp policy as libseccomp rules (policy.c). Used only at
 * build time (gen.c) and by the test that checks the compiled program. */

#include <seccomp.h>

/* Add the policy's rules to CTX (made with seccomp_init(SCMP_ACT_ALLOW)).
 * Returns 0 or a negative errno. */
int ctr_seccomp_policy(scmp_filter_ctx ctx);

/* Compile the policy for the native architecture into *RET (malloc'ed BPF
 * instructions, struct sock_filter) of *RET_LEN bytes. Returns 0 or a
 * negative errno. */
int ctr_seccomp_policy_bpf(void **ret, size_t *ret_len);
