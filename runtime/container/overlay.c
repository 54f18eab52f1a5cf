/* SPDX-License-Identifier: MIT */
/*
 * The overlay mount of a container's root. The whole option string must fit
 * in one page, which 64-character layer names fill at about 60 layers; so,
 * as podman does with its l/ directory, every lower, upper and work
 * directory gets a short symlink ("0", "1", ..., "u", "w") in a directory
 * of the run, and the mount is made from there with relative names. Layer
 * paths may then hold any byte, ':' and ',' included. overlayfs itself
 * stacks at most OVERLAY_MAX_LOWER lower layers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/container/container-internal.h"

#define OPTS_MAX 4000 /* a page, less a margin for the kernel's own use */

int overlay_links_make(const char *dir, const char *const *lowerdirs, size_t n, const char *upper,
                       const char *work, forge_error **err)
{
        cleanup_close int dfd = -1;
        char name[24];

        if (n == 0)
                return forge_error_make(err, EINVAL, "no layers to mount");
        if (n > OVERLAY_MAX_LOWER)
                return forge_error_make(err, E2BIG,
                                        "%zu layers: overlayfs stacks at most %d (flatten the "
                                        "image, or merge layers in its spec)",
                                        n, OVERLAY_MAX_LOWER);
        if (mkdir(dir, 0700) < 0)
                return forge_error_make(err, errno, "create '%s'", dir);
        dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return forge_error_make(err, errno, "open '%s'", dir);
        for (size_t i = 0; i < n; i++) {
                snprintf(name, sizeof(name), "%zu", i);
                if (symlinkat(lowerdirs[i], dfd, name) < 0)
                        return forge_error_make(err, errno, "link layer '%s'", lowerdirs[i]);
        }
        if (upper != NULL && (symlinkat(upper, dfd, "u") < 0 || symlinkat(work, dfd, "w") < 0))
                return forge_error_make(err, errno, "link the upper directory '%s'", upper);
        return 0;
}

int overlay_options(size_t n, bool upper, bool volatile_upper, char **ret_opts, forge_error **err)
{
        cleanup_free char *opts = malloc(OPTS_MAX + 1);
        size_t len;

        if (opts == NULL)
                return forge_error_make(err, ENOMEM, "overlay options");
        if (n == 0 || n > OVERLAY_MAX_LOWER)
                return forge_error_make(err, E2BIG, "%zu layers: overlayfs stacks 1 to %d", n,
                                        OVERLAY_MAX_LOWER);
        len = (size_t)snprintf(opts, OPTS_MAX + 1, "lowerdir=");
        /* top first; 500 names of at most 3 digits stay far below a page */
        for (size_t k = n; k-- > 0;)
                len +=
                    (size_t)snprintf(opts + len, OPTS_MAX + 1 - len, "%zu%s", k, k > 0 ? ":" : "");
        if (upper)
                len += (size_t)snprintf(opts + len, OPTS_MAX + 1 - len, ",upperdir=u,workdir=w%s",
                                        volatile_upper ? ",volatile" : "");
        if (len > OPTS_MAX)
                return forge_error_make(err, E2BIG, "overlay options too long");
        *ret_opts = take_ptr(opts);
        return 0;
}

/* overlayfs splits its options at ',' and layer lists at ':', and unescapes
 * '\\': a path holding one of them goes through the links. */
static bool plain_path(const char *p)
{
        return p[0] == '/' && strpbrk(p, ",:\\") == NULL;
}

int overlay_options_direct(const char *const *lowerdirs, size_t n, const char *upper,
                           const char *work, bool volatile_upper, char **ret_opts)
{
        cleanup_free char *opts = malloc(OPTS_MAX + 1);
        size_t len;

        if (opts == NULL)
                return -ENOMEM;
        if (n == 0 || n > OVERLAY_MAX_LOWER)
                return -E2BIG;
        len = (size_t)snprintf(opts, OPTS_MAX + 1, "lowerdir=");
        for (size_t k = n; k-- > 0 && len <= OPTS_MAX;) {
                if (!plain_path(lowerdirs[k]))
                        return -EINVAL;
                len += (size_t)snprintf(opts + len, OPTS_MAX + 1 - len, "%s%s", lowerdirs[k],
                                        k > 0 ? ":" : "");
        }
        if (upper != NULL && len <= OPTS_MAX) {
                if (!plain_path(upper) || !plain_path(work))
                        return -EINVAL;
                len += (size_t)snprintf(opts + len, OPTS_MAX + 1 - len, ",upperdir=%s,workdir=%s%s",
                                        upper, work, volatile_upper ? ",volatile" : "");
        }
        if (len > OPTS_MAX)
                return -E2BIG;
        *ret_opts = take_ptr(opts);
        return 0;
}
