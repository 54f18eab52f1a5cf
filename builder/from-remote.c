/* SPDX-License-Identifier: MIT */
/*
 * from: HOST/REPO:TAG, pinned in SPEC.lock as
 *   "from": {"ref": "HOST/REPO:TAG", "digest": "sha256:..."}
 * A build with a lock whose pin names the spec's from: pulls that digest (a
 * moved tag changes nothing); without a pin it pulls the tag and, when a lock
 * exists, records the pin in it; --locked requires the pin. `forge lock`
 * writes it.
 */
#include "builder/builder-internal.h"
#include "builder/pkg-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

static const registry_opts *opts_of(const builder_opts *o, registry_opts *def)
{
        registry_opts_init(def);
        return o != NULL && o->registry != NULL ? o->registry : def;
}

int bfrom_pin(store *s, const spec *sp, const builder_opts *o, json_t *lock, forge_error **err)
{
        registry_opts def;
        char digest[DIGEST_STR_SIZE];

        if (registry_pull(s, sp->from, opts_of(o, &def), digest, err) < 0)
                return forge_error_prefix(err, "%s:%d:%d: from", sp->path, sp->from_pos.line,
                                          sp->from_pos.col);
        if (json_object_set_new(lock, "from",
                                json_pack("{s:s, s:s}", "ref", sp->from, "digest", digest)) < 0)
                return forge_error_make(err, ENOMEM, "lock");
        return 0;
}

int bfrom_remote(store *s, const spec *sp, const builder_opts *o, char ret[DIGEST_STR_SIZE],
                 forge_error **err)
{
        registry_opts def;
        json_t *lock = NULL, *pin;
        const char *pref, *pdigest;
        cleanup_free char *pinned = NULL;
        int r;

        if (strchr(sp->from, '@') != NULL) /* pinned in the spec itself */
                return registry_pull(s, sp->from, opts_of(o, &def), ret, err) < 0
                           ? forge_error_prefix(err, "%s:%d:%d: from", sp->path, sp->from_pos.line,
                                                sp->from_pos.col)
                           : 0;
        r = builder_lock_load(sp, &lock, err);
        if (r < 0)
                return -1;
        pin = json_object_get(lock, "from");
        pref = json_string_value(json_object_get(pin, "ref"));
        pdigest = json_string_value(json_object_get(pin, "digest"));
        if (pref != NULL && strcmp(pref, sp->from) == 0 && digest_valid(pdigest)) {
                if (asprintf(&pinned, "%s@%s", sp->from, pdigest) < 0) {
                        json_decref(lock);
                        return forge_error_make(err, ENOMEM, "from");
                }
                json_decref(lock);
                if (registry_pull(s, pinned, opts_of(o, &def), ret, err) < 0)
                        return forge_error_prefix(err, "%s:%d:%d: from (pinned in %s.lock)",
                                                  sp->path, sp->from_pos.line, sp->from_pos.col,
                                                  sp->path);
                return 0;
        }
        if (o != NULL && o->locked) {
                json_decref(lock);
                return forge_error_usage(err,
                                         "%s.lock is out of date (from '%s' is not pinned): "
                                         "run 'forge lock %s'",
                                         sp->path, sp->from, sp->path);
        }
        if (r == 0) {
                if (registry_pull(s, sp->from, opts_of(o, &def), ret, err) < 0)
                        return forge_error_prefix(err, "%s:%d:%d: from", sp->path,
                                                  sp->from_pos.line, sp->from_pos.col);
                return 0;
        }
        r = bfrom_pin(s, sp, o, lock, err);
        if (r == 0) {
                memcpy(ret,
                       json_string_value(json_object_get(json_object_get(lock, "from"), "digest")),
                       DIGEST_STR_SIZE);
                r = builder_lock_save(sp, lock, err);
        }
        json_decref(lock);
        return r;
}
