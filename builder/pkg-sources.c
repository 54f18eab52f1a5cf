/* SPDX-License-Identifier: MIT */
/*
 * A spec's `repositories:` as sources, in priority order: a URL entry is one
 * source, `host` as many as the machine's apt configuration lists.
 */
#include "builder/pkg-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

int pkg_sources_from_spec(const spec *sp, const char *arch, pkg_sources *ret, forge_error **err)
{
        const char *root = getenv("FORGE_APT_ROOT");

        memset(ret, 0, sizeof(*ret));
        for (size_t i = 0; i < sp->n_repos; i++) {
                const spec_repo *r = &sp->repos[i];
                size_t first = ret->n;
                if (r->host) {
                        if (pkg_apt_host(root && root[0] ? root : "/", arch, ret, err) < 0)
                                goto fail;
                        if (ret->n == first) {
                                spec_error(err, sp, r->pos,
                                           "'host': the machine has no apt sources for %s "
                                           "(etc/apt/sources.list, sources.list.d/)",
                                           arch);
                                goto fail;
                        }
                } else {
                        char *keys[] = {r->keyring, NULL};
                        char origin[64];
                        snprintf(origin, sizeof(origin), "repositories[%zu]", i);
                        if (pkg_source_add(ret, r->url, r->suite, r->components, keys, NULL, origin,
                                           err) < 0)
                                goto fail;
                        ret->v[first].check_valid_until = r->check_valid_until;
                }
                for (size_t j = first; j < ret->n; j++) {
                        ret->v[j].entry = i;
                        ret->v[j].source = j - first;
                }
        }
        return 0;
fail:
        pkg_sources_free(ret);
        return -1;
}
