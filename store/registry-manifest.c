/* SPDX-License-Identifier: MIT */
/*
 * Manifests and indexes as registries serve them: OCI image manifests and
 * indexes, Docker schema 2 manifests and manifest lists. The body is
 * untrusted: every descriptor is checked before anything uses it.
 */
#include "store/registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "common/cleanup.h"

#define MAX_LAYERS 4096

registry_manifest_kind registry_media_kind(const char *mt)
{
        if (mt == NULL)
                return REGISTRY_KIND_UNKNOWN;
        if (strcmp(mt, STORE_MEDIA_MANIFEST) == 0 ||
            strcmp(mt, REGISTRY_MEDIA_DOCKER_MANIFEST) == 0)
                return REGISTRY_KIND_IMAGE;
        if (strcmp(mt, REGISTRY_MEDIA_OCI_INDEX) == 0 ||
            strcmp(mt, REGISTRY_MEDIA_DOCKER_LIST) == 0)
                return REGISTRY_KIND_INDEX;
        return REGISTRY_KIND_UNKNOWN;
}

static int get_descriptor(json_t *j, const char *where, registry_descriptor *d, forge_error **err)
{
        const char *mt = json_string_value(json_object_get(j, "mediaType"));
        const char *digest = json_string_value(json_object_get(j, "digest"));
        json_t *size = json_object_get(j, "size");

        if (!json_is_object(j))
                return forge_error_make(err, EBADMSG, "%s is not a descriptor object", where);
        if (mt == NULL || strlen(mt) >= sizeof(d->media_type) || mt[0] == '\0')
                return forge_error_make(err, EBADMSG, "%s has no usable mediaType", where);
        if (!digest_valid(digest))
                return forge_error_make(err, EBADMSG,
                                        "%s: digest '%s' is not sha256: and 64 "
                                        "lowercase hex digits",
                                        where, digest ? digest : "");
        if (!json_is_integer(size) || json_integer_value(size) < 0)
                return forge_error_make(err, EBADMSG, "%s has no valid size", where);
        snprintf(d->media_type, sizeof(d->media_type), "%s", mt);
        memcpy(d->digest, digest, DIGEST_STR_SIZE);
        d->size = (uint64_t)json_integer_value(size);
        return 0;
}

static int parse_image(registry_manifest *m, forge_error **err)
{
        json_t *layers = json_object_get(m->json, "layers");
        size_t n;

        if (get_descriptor(json_object_get(m->json, "config"), "the manifest's config", &m->config,
                           err) < 0)
                return -1;
        if (!json_is_array(layers))
                return forge_error_make(err, EBADMSG, "the manifest has no layers array");
        n = json_array_size(layers);
        if (n > MAX_LAYERS)
                return forge_error_make(err, EBADMSG, "the manifest has %zu layers (at most %d)", n,
                                        MAX_LAYERS);
        m->layers = calloc(n ? n : 1, sizeof(*m->layers));
        if (m->layers == NULL)
                return forge_error_make(err, ENOMEM, "manifest");
        for (size_t i = 0; i < n; i++) {
                char where[64];
                snprintf(where, sizeof(where), "layer %zu of the manifest", i + 1);
                if (get_descriptor(json_array_get(layers, i), where, &m->layers[i], err) < 0)
                        return -1;
        }
        m->n_layers = n;
        return 0;
}

int registry_manifest_parse(const char *body, size_t len, const char *content_type,
                            registry_manifest *ret, forge_error **err)
{
        cleanup_registry_manifest registry_manifest m = {0};
        json_error_t je;
        const char *mt;
        json_t *sv;

        if (len > REGISTRY_MAX_MANIFEST)
                return forge_error_make(err, EFBIG, "the manifest is %zu bytes (at most %u)", len,
                                        REGISTRY_MAX_MANIFEST);
        m.json = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        if (m.json == NULL)
                return forge_error_make(
                    err, EBADMSG, "the manifest is not valid JSON: %s (line %d)", je.text, je.line);
        if (!json_is_object(m.json))
                return forge_error_make(err, EBADMSG, "the manifest is not a JSON object");
        sv = json_object_get(m.json, "schemaVersion");
        if (!json_is_integer(sv) || json_integer_value(sv) != 2)
                return forge_error_make(err, EBADMSG,
                                        "the manifest is not schemaVersion 2 (schema 1 is "
                                        "not supported)");
        mt = json_string_value(json_object_get(m.json, "mediaType"));
        if (mt == NULL && content_type != NULL) {
                size_t n = strcspn(content_type, "; ");
                if (n < sizeof(m.media_type)) {
                        memcpy(m.media_type, content_type, n);
                        m.media_type[n] = '\0';
                        mt = m.media_type;
                }
        }
        if (mt == NULL) /* OCI allows an absent mediaType: tell by the shape */
                mt = json_object_get(m.json, "manifests") ? REGISTRY_MEDIA_OCI_INDEX
                                                          : STORE_MEDIA_MANIFEST;
        m.kind = registry_media_kind(mt);
        if (mt != m.media_type)
                snprintf(m.media_type, sizeof(m.media_type), "%s", mt);
        if (m.kind == REGISTRY_KIND_UNKNOWN)
                return forge_error_make(err, EBADMSG, "unsupported manifest media type '%s'", mt);
        if (m.kind == REGISTRY_KIND_IMAGE && parse_image(&m, err) < 0)
                return -1;
        if (m.kind == REGISTRY_KIND_INDEX && !json_is_array(json_object_get(m.json, "manifests")))
                return forge_error_make(err, EBADMSG, "the index has no manifests array");
        *ret = m;
        m = (registry_manifest){0}; /* *ret owns it now */
        return 0;
}

void registry_manifest_release(registry_manifest *m)
{
        json_decref(m->json);
        free(m->layers);
        m->json = NULL;
        m->layers = NULL;
        m->n_layers = 0;
}

static bool str_eq(json_t *o, const char *key, const char *want)
{
        const char *v = json_string_value(json_object_get(o, key));
        return v != NULL && strcmp(v, want) == 0;
}

int registry_index_pick(const registry_manifest *index, const char *os, const char *arch,
                        const char *variant, char ret_digest[DIGEST_STR_SIZE], forge_error **err)
{
        json_t *ms = json_object_get(index->json, "manifests"), *e;
        char seen[256] = "";
        size_t i, used = 0;

        json_array_foreach(ms, i, e)
        {
                json_t *p = json_object_get(e, "platform");
                const char *d = json_string_value(json_object_get(e, "digest"));
                const char *po = json_string_value(json_object_get(p, "os"));
                const char *pa = json_string_value(json_object_get(p, "architecture"));
                if (po && pa && used < sizeof(seen) - 1)
                        used += (size_t)snprintf(seen + used, sizeof(seen) - used, "%s%s/%s",
                                                 used ? ", " : "", po, pa);
                if (used >= sizeof(seen))
                        used = sizeof(seen) - 1;
                if (!str_eq(p, "os", os) || !str_eq(p, "architecture", arch))
                        continue;
                if (variant != NULL && !str_eq(p, "variant", variant))
                        continue;
                if (!digest_valid(d))
                        return forge_error_make(err, EBADMSG,
                                                "the index entry for %s/%s has a bad "
                                                "digest",
                                                os, arch);
                memcpy(ret_digest, d, DIGEST_STR_SIZE);
                return 0;
        }
        forge_error_make(err, 0, "the image index has no %s/%s image (it has: %s)", os, arch,
                         used ? seen : "none");
        (*err)->errnum = ENOENT;
        return -1;
}

const char *registry_host_arch(void)
{
        static const struct {
                const char *uname, *oci;
        } map[] = {
            {"x86_64", "amd64"},    {"aarch64", "arm64"}, {"armv7l", "arm"},      {"i686", "386"},
            {"ppc64le", "ppc64le"}, {"s390x", "s390x"},   {"riscv64", "riscv64"},
        };
        static char buf[65];
        struct utsname u;

        if (uname(&u) < 0)
                return "amd64";
        for (size_t i = 0; i < ARRAY_SIZE(map); i++)
                if (strcmp(u.machine, map[i].uname) == 0)
                        return map[i].oci;
        snprintf(buf, sizeof(buf), "%s", u.machine);
        return buf;
}
