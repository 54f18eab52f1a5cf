/* SPDX-License-Identifier: MIT */
#pragma once
/* Field-by-field equality of decoded VM protocol structs (test_vmproto.c,
 * fuzz_vmproto.c). */
#include <stdbool.h>
#include <string.h>

#include "common/vmproto.h"

static inline bool vmproto_str_eq(const char *a, const char *b)
{
        return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static inline bool vmproto_strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (strcmp(a[i], b[i]) != 0)
                        return false;
        return true;
}

static inline bool vmproto_run_eq(const vmproto_run *a, const vmproto_run *b)
{
        if (a->has_args != b->has_args ||
            !vmproto_strv_eq(a->args, a->n_args, b->args, b->n_args) ||
            !vmproto_strv_eq(a->env, a->n_env, b->env, b->n_env) ||
            !vmproto_str_eq(a->entrypoint, b->entrypoint) || !vmproto_str_eq(a->user, b->user) ||
            !vmproto_str_eq(a->workdir, b->workdir) || !vmproto_str_eq(a->hostname, b->hostname) ||
            a->n_shares != b->n_shares || a->read_only != b->read_only ||
            !vmproto_str_eq(a->net, b->net) || a->tty != b->tty || a->rows != b->rows ||
            a->cols != b->cols || !vmproto_str_eq(a->root, b->root) || a->bootstat != b->bootstat)
                return false;
        for (size_t i = 0; i < a->n_shares; i++)
                if (strcmp(a->shares[i].tag, b->shares[i].tag) != 0 ||
                    strcmp(a->shares[i].path, b->shares[i].path) != 0 ||
                    a->shares[i].ro != b->shares[i].ro)
                        return false;
        return true;
}

static inline bool vmproto_image_eq(const vmproto_image *a, const vmproto_image *b)
{
        return vmproto_strv_eq(a->argv, a->argc, b->argv, b->argc) &&
               a->n_entrypoint == b->n_entrypoint &&
               vmproto_strv_eq(a->env, a->n_env, b->env, b->n_env) &&
               vmproto_str_eq(a->workdir, b->workdir) && vmproto_str_eq(a->user, b->user) &&
               vmproto_str_eq(a->hostname, b->hostname);
}
