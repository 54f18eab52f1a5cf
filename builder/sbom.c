/* SPDX-License-Identifier: MIT */
/*
 * `forge sbom`: what an image is made of, from what its build recorded in
 * the config ("dev.forge": packages and inputs): every Debian package with
 * its purl and the sha256 of its .deb, the licences its machine-readable
 * copyright file declares (read from the .deb, which the store keeps with
 * the image), and the other inputs (.debs, archives, files layers, the base
 * image) with their digests. SPDX 2.3 or CycloneDX 1.5, canonical JSON.
 */
#include "builder/pkg-internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"

#define COPYRIGHT_MAX (1u << 20)

/* usr/share/doc/NAME/copyright from the .deb's data.tar, or NULL. */
static char *read_copyright(const char *deb, const char *name)
{
        cleanup_store_deb store_deb *d = NULL;
        cleanup_error forge_error *e = NULL;
        struct archive *in;
        const char *member, *p;
        char want[300], *text = NULL;
        size_t len;

        snprintf(want, sizeof(want), "usr/share/doc/%s/copyright", name);
        if (store_deb_open(deb, &d, &e) < 0 || store_deb_next(d, "data.tar", &member, &e) <= 0 ||
            (in = store_deb_tar(d, &e)) == NULL)
                return NULL;
        while ((p = pkg_tar_next_file(in)) != NULL) {
                if (strcmp(p, want) != 0)
                        continue;
                if (store_archive_entry_read(in, COPYRIGHT_MAX, &text, &len, &e) < 0)
                        return NULL;
                return text;
        }
        return NULL;
}

/* Debian's short licence names as SPDX identifiers, where they differ. */
static const char *spdx_name(const char *d)
{
        static const struct {
                const char *debian, *spdx;
        } map[] = {
            {"Expat", "MIT"},
            {"GPL-2", "GPL-2.0-only"},
            {"GPL-2+", "GPL-2.0-or-later"},
            {"GPL-3", "GPL-3.0-only"},
            {"GPL-3+", "GPL-3.0-or-later"},
            {"LGPL-2", "LGPL-2.0-only"},
            {"LGPL-2+", "LGPL-2.0-or-later"},
            {"LGPL-2.1", "LGPL-2.1-only"},
            {"LGPL-2.1+", "LGPL-2.1-or-later"},
            {"LGPL-3", "LGPL-3.0-only"},
            {"LGPL-3+", "LGPL-3.0-or-later"},
            {"BSD-2-clause", "BSD-2-Clause"},
            {"BSD-3-clause", "BSD-3-Clause"},
            {"BSD-4-clause", "BSD-4-Clause"},
            {"Apache-2.0", "Apache-2.0"},
            {"MPL-2.0", "MPL-2.0"},
            {"Zlib", "Zlib"},
            {"ISC", "ISC"},
            {"MIT", "MIT"},
            {"PSF-2", "PSF-2.0"},
            {"Artistic", "Artistic-1.0-Perl"},
            {"OpenSSL", "OpenSSL"},
            {"CC0-1.0", "CC0-1.0"},
            {"GFDL-1.3+", "GFDL-1.3-or-later"},
            {"public-domain", NULL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(map); i++)
                if (strcasecmp(map[i].debian, d) == 0)
                        return map[i].spdx;
        return NULL;
}

/* The distinct licences of the copyright file's Files paragraphs (DEP-5 only). */
static json_t *licences_of(const char *text)
{
        json_t *names = json_array();
        const char *p;

        if (text == NULL || names == NULL || strncmp(text, "Format:", 7) != 0 ||
            strstr(text, "copyright-format") == NULL)
                return names;
        for (p = text; (p = strstr(p, "\nLicense:")) != NULL;) {
                char lic[128];
                size_t i;
                json_t *v;
                bool dup = false;
                p += 9;
                if (sscanf(p, " %127[^\n]", lic) != 1)
                        continue;
                for (char *c = lic + strlen(lic); c > lic && isspace((unsigned char)c[-1]); c--)
                        c[-1] = '\0';
                json_array_foreach(names, i, v) dup |= strcmp(json_string_value(v), lic) == 0;
                if (!dup && lic[0] && json_array_size(names) < 32)
                        json_array_append_new(names, json_string(lic));
        }
        return names;
}

static char *purl(const char *name, const char *version, const char *arch)
{
        char *r = NULL, *enc = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&enc, &len);

        if (m == NULL)
                return NULL;
        /* purl: ':' in a version (an epoch) is percent-encoded */
        for (const char *c = version; *c; c++)
                if (isalnum((unsigned char)*c) || strchr(".-_~+", *c))
                        fputc(*c, m);
                else
                        fprintf(m, "%%%02X", (unsigned char)*c);
        fclose(m);
        if (enc && asprintf(&r, "pkg:deb/debian/%s@%s?arch=%s", name, enc, arch) < 0)
                r = NULL;
        free(enc);
        return r;
}

static void iso_time(const char *created, char out[32])
{
        snprintf(out, 32, "%s",
                 created && strlen(created) >= 19 ? created : "1970-01-01T00:00:00Z");
        /* OCI configs may carry fractions: SPDX wants YYYY-MM-DDThh:mm:ssZ */
        if (strlen(out) > 20) {
                out[19] = 'Z';
                out[20] = '\0';
        }
}

typedef struct item {
        const char *name, *version, *arch, *sha256;
        char *purl;
        json_t *licences; /* Debian names */
} item;

/* A build input's digest: its sha256 (a file), digest or diff_id (a layer). */
static const char *input_digest(const json_t *in)
{
        static const char *const keys[] = {"sha256", "digest", "diff_id"};

        for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
                const char *d = json_string_value(json_object_get(in, keys[k]));
                if (d != NULL)
                        return d;
        }
        return NULL;
}

static json_t *spdx_doc(const char *ref, const store_image *img, item *items, size_t n,
                        json_t *inputs)
{
        json_t *pkgs = json_array(), *rels = json_array();
        char created[32];
        cleanup_free char *ns = NULL;
        size_t i;
        json_t *in;

        iso_time(json_string_value(json_object_get(img->config, "created")), created);
        if (asprintf(&ns, "urn:forge:sbom:%s", img->digest) < 0)
                ns = NULL;
        json_array_append_new(
            pkgs,
            json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:[{s:s, s:s}]}", "SPDXID",
                      "SPDXRef-Image", "name", ref, "versionInfo", img->digest, "downloadLocation",
                      "NOASSERTION", "filesAnalyzed", 0, "licenseConcluded", "NOASSERTION",
                      "licenseDeclared", "NOASSERTION", "copyrightText", "NOASSERTION", "checksums",
                      "algorithm", "SHA256", "checksumValue", digest_hex(img->digest)));
        json_array_append_new(rels, json_pack("{s:s, s:s, s:s}", "spdxElementId",
                                              "SPDXRef-DOCUMENT", "relationshipType", "DESCRIBES",
                                              "relatedSpdxElement", "SPDXRef-Image"));
        for (i = 0; i < n; i++) {
                char id[64], *expr = NULL;
                size_t len = 0, k;
                json_t *v;
                FILE *m = open_memstream(&expr, &len);
                bool all_known = json_array_size(items[i].licences) > 0;
                json_array_foreach(items[i].licences, k, v)
                {
                        const char *s = spdx_name(json_string_value(v));
                        all_known &= s != NULL;
                        if (s)
                                fprintf(m, "%s%s", k ? " AND " : "", s);
                }
                fclose(m);
                snprintf(id, sizeof(id), "SPDXRef-Package-%zu", i + 1);
                json_array_append_new(
                    pkgs,
                    json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:[{s:s, s:s}], "
                              "s:[{s:s, s:s, s:s}]}",
                              "SPDXID", id, "name", items[i].name, "versionInfo", items[i].version,
                              "downloadLocation", "NOASSERTION", "filesAnalyzed", 0,
                              "licenseConcluded", "NOASSERTION", "licenseDeclared",
                              all_known && expr ? expr : "NOASSERTION", "copyrightText",
                              "NOASSERTION", "supplier", "NOASSERTION", "checksums", "algorithm",
                              "SHA256", "checksumValue", digest_hex(items[i].sha256),
                              "externalRefs", "referenceCategory", "PACKAGE-MANAGER",
                              "referenceType", "purl", "referenceLocator", items[i].purl));
                free(expr);
                json_array_append_new(rels, json_pack("{s:s, s:s, s:s}", "spdxElementId",
                                                      "SPDXRef-Image", "relationshipType",
                                                      "CONTAINS", "relatedSpdxElement", id));
        }
        json_array_foreach(inputs, i, in)
        {
                const char *d = input_digest(in);
                const char *name = json_string_value(json_object_get(in, "name"));
                char id[64];
                if (!digest_valid(d))
                        continue;
                snprintf(id, sizeof(id), "SPDXRef-Input-%zu", i + 1);
                json_array_append_new(
                    pkgs,
                    json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:[{s:s, s:s}]}", "SPDXID",
                              id, "name",
                              name ? name : json_string_value(json_object_get(in, "kind")),
                              "downloadLocation", "NOASSERTION", "filesAnalyzed", 0,
                              "licenseConcluded", "NOASSERTION", "licenseDeclared", "NOASSERTION",
                              "copyrightText", "NOASSERTION", "primaryPackagePurpose",
                              !strcmp(json_string_value(json_object_get(in, "kind")), "image")
                                  ? "CONTAINER"
                                  : "FILE",
                              "checksums", "algorithm", "SHA256", "checksumValue", digest_hex(d)));
                json_array_append_new(rels, json_pack("{s:s, s:s, s:s}", "spdxElementId",
                                                      "SPDXRef-Image", "relationshipType",
                                                      "CONTAINS", "relatedSpdxElement", id));
        }
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:[s]}, s:o, s:o}", "spdxVersion",
                         "SPDX-2.3", "dataLicense", "CC0-1.0", "SPDXID", "SPDXRef-DOCUMENT", "name",
                         ref, "documentNamespace", ns ? ns : "urn:forge:sbom", "creationInfo",
                         "created", created, "creators", "Tool: forge-" FORGE_VERSION, "packages",
                         pkgs, "relationships", rels);
}

static json_t *cdx_doc(const char *ref, const store_image *img, item *items, size_t n,
                       json_t *inputs)
{
        json_t *comps = json_array();
        char created[32], uuid[64];
        const char *h = digest_hex(img->digest);
        size_t i;
        json_t *in;

        iso_time(json_string_value(json_object_get(img->config, "created")), created);
        /* a name-based UUID (version 5 layout) from the image digest: the same image, the same BOM
         */
        snprintf(uuid, sizeof(uuid), "urn:uuid:%.8s-%.4s-5%.3s-a%.3s-%.12s", h, h + 8, h + 12,
                 h + 15, h + 18);
        for (i = 0; i < n; i++) {
                json_t *lics = json_array(), *v;
                size_t k;
                json_array_foreach(items[i].licences, k, v)
                {
                        const char *s = spdx_name(json_string_value(v));
                        json_array_append_new(lics, s ? json_pack("{s:{s:s}}", "license", "id", s)
                                                      : json_pack("{s:{s:s}}", "license", "name",
                                                                  json_string_value(v)));
                }
                json_t *c =
                    json_pack("{s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s}], s:[{s:s, s:s}]}", "type",
                              "library", "bom-ref", items[i].purl, "name", items[i].name, "version",
                              items[i].version, "purl", items[i].purl, "hashes", "alg", "SHA-256",
                              "content", digest_hex(items[i].sha256), "properties", "name",
                              "forge:architecture", "value", items[i].arch);
                if (json_array_size(lics) > 0)
                        json_object_set(c, "licenses", lics);
                json_decref(lics);
                json_array_append_new(comps, c);
        }
        json_array_foreach(inputs, i, in)
        {
                const char *kind = json_string_value(json_object_get(in, "kind"));
                const char *d = input_digest(in);
                const char *name = json_string_value(json_object_get(in, "name"));
                char bref[64];
                if (!digest_valid(d) || kind == NULL)
                        continue;
                snprintf(bref, sizeof(bref), "input-%zu", i + 1);
                json_array_append_new(
                    comps,
                    json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}], s:[{s:s, s:s}]}", "type",
                              !strcmp(kind, "image") ? "container" : "file", "bom-ref", bref,
                              "name", name ? name : kind, "hashes", "alg", "SHA-256", "content",
                              digest_hex(d), "properties", "name", "forge:input", "value", kind));
        }
        return json_pack("{s:s, s:s, s:s, s:i, s:{s:s, s:[{s:s, s:s, s:s}], s:{s:s, s:s, s:s, "
                         "s:s, s:[{s:s, s:s}]}}, s:o}",
                         "bomFormat", "CycloneDX", "specVersion", "1.5", "serialNumber", uuid,
                         "version", 1, "metadata", "timestamp", created, "tools", "vendor", "forge",
                         "name", "forge", "version", FORGE_VERSION, "component", "type",
                         "container", "bom-ref", "image", "name", ref, "version", img->digest,
                         "hashes", "alg", "SHA-256", "content", h, "components", comps);
}

int builder_sbom(store *s, const char *ref, bool cyclonedx, char **ret, forge_error **err)
{
        cleanup_store_image store_image *img = NULL;
        char digest[DIGEST_STR_SIZE];
        json_t *ext, *pkgs, *inputs, *doc, *p;
        item *items;
        size_t n, i;
        char *txt;

        if (store_resolve(s, ref, digest, err) < 0 || store_image_load(s, digest, &img, err) < 0)
                return -1;
        ext = json_object_get(img->config, STORE_CONFIG_FORGE_KEY);
        pkgs = json_object_get(ext, "packages");
        inputs = json_object_get(ext, "inputs");
        n = json_array_size(pkgs);
        items = calloc(n + 1, sizeof(*items));
        if (items == NULL)
                return forge_error_make(err, ENOMEM, "sbom");
        json_array_foreach(pkgs, i, p)
        {
                item *it = &items[i];
                cleanup_free char *deb = NULL, *copyright = NULL;
                it->name = json_string_value(json_object_get(p, "name"));
                it->version = json_string_value(json_object_get(p, "version"));
                it->arch = json_string_value(json_object_get(p, "architecture"));
                it->sha256 = json_string_value(json_object_get(p, "sha256"));
                if (!it->name || !it->version || !it->arch || !digest_valid(it->sha256) ||
                    !pkg_name_valid(it->name)) {
                        n = i;
                        break;
                }
                it->purl = purl(it->name, it->version, it->arch);
                deb = store_blob_exists(s, it->sha256) ? store_blob_path(s, it->sha256) : NULL;
                copyright = deb ? read_copyright(deb, it->name) : NULL;
                it->licences = licences_of(copyright);
        }
        doc =
            cyclonedx ? cdx_doc(ref, img, items, n, inputs) : spdx_doc(ref, img, items, n, inputs);
        for (i = 0; i < json_array_size(pkgs); i++) {
                free(items[i].purl);
                json_decref(items[i].licences);
        }
        free(items);
        txt = doc ? json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(2)) : NULL;
        json_decref(doc);
        if (txt == NULL)
                return forge_error_make(err, ENOMEM, "sbom");
        *ret = txt;
        return 0;
}
