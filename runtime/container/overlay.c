/* SPDX-License-Identifier: MIT */
/*
 * overlayfs mount options. The whole option string must fit in one page, so
 * with many layers the lowerdirs are given relative to their common parent
 * (the store's layers/ directory), which the caller makes its cwd.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/container/container-internal.h"

#define OPTS_MAX 4000 /* a page, less a margin for the kernel's own use */

static size_t parent_len(const char *p)
{
        const char *slash = strrchr(p, '/');

        return slash ? (size_t)(slash - p) : 0;
}

static bool bad_chars(const char *p)
{
        /* overlayfs splits on ':' and ','; escaping is fragile across kernels */
        return strpbrk(p, ":,") != NULL;
}

int overlay_options(const char *const *lowerdirs, size_t n, const char *upper, const char *work,
                    char **ret_opts, char **ret_chdir, forge_error **err)
{
        cleanup_free char *opts = NULL;
        cleanup_free char *dir = NULL;
        size_t plen = 0, len = 0, cap;
        bool common = n > 0 && lowerdirs[0][0] == '/';

        if (n == 0)
                return forge_error_make(err, EINVAL, "no layers to mount");
        if (common) {
                plen = parent_len(lowerdirs[0]);
                for (size_t i = 0; i < n && common; i++)
                        common = parent_len(lowerdirs[i]) == plen && plen > 0 &&
                                 strncmp(lowerdirs[i], lowerdirs[0], plen) == 0;
        }
        cap = OPTS_MAX + 1;
        opts = malloc(cap);
        if (opts == NULL)
                return forge_error_make(err, ENOMEM, "overlay options");
        len = (size_t)snprintf(opts, cap, "lowerdir=");
        /* top first */
        for (size_t k = n; k-- > 0;) {
                const char *l = common ? lowerdirs[k] + plen + 1 : lowerdirs[k];

                if (bad_chars(lowerdirs[k]))
                        return forge_error_make(err, EINVAL, "layer path '%s' contains ':' or ','",
                                                lowerdirs[k]);
                len += (size_t)snprintf(opts + len, len < cap ? cap - len : 0, "%s%s", l,
                                        k > 0 ? ":" : "");
                if (len >= cap)
                        return forge_error_make(err, E2BIG,
                                                "too many layers (%zu) for one overlay mount", n);
        }
        if (upper != NULL) {
                if (bad_chars(upper) || bad_chars(work))
                        return forge_error_make(err, EINVAL,
                                                "upper directory path contains ':' or ','");
                len += (size_t)snprintf(opts + len, len < cap ? cap - len : 0,
                                        ",upperdir=%s,workdir=%s", upper, work);
                if (len >= cap)
                        return forge_error_make(err, E2BIG, "overlay options too long");
        }
        if (common) {
                dir = strndup(lowerdirs[0], plen);
                if (dir == NULL)
                        return forge_error_make(err, ENOMEM, "overlay options");
        }
        *ret_opts = take_ptr(opts);
        *ret_chdir = take_ptr(dir);
        return 0;
}
