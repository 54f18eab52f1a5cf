/* SPDX-License-Identifier: MIT */
/* Remote image references: HOST[:PORT]/REPO[:TAG][@sha256:HEX]. */
#include "store/registry.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

#define MAX_REF 512

static size_t first_component_len(const char *s)
{
        const char *slash = strchr(s, '/');
        return slash ? (size_t)(slash - s) : strlen(s);
}

bool registry_ref_is_remote(const char *s)
{
        size_t n;

        if (s == NULL || strchr(s, '/') == NULL)
                return false;
        n = first_component_len(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        if (n == 9 && strncmp(s, "localhost", 9) == 0)
                return true;
        return memchr(s, '.', n) != NULL || memchr(s, ':', n) != NULL;
}

static bool label_ok(const char *p, size_t n)
{
        if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)p[i]) && p[i] != '-')
                        return false;
        return true;
}

/* A DNS name or IPv4 address, or [IPv6], with an optional :PORT. */
static bool host_ok(const char *h, size_t n)
{
        size_t name_end = n;
        const char *colon;

        if (n == 0 || n > 255)
                return false;
        if (h[0] == '[') {
                const char *close = memchr(h, ']', n);
                if (close == NULL || close == h + 1)
                        return false;
                for (const char *c = h + 1; c < close; c++)
                        if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.')
                                return false;
                name_end = (size_t)(close - h) + 1;
                if (name_end == n)
                        return true;
                if (h[name_end] != ':')
                        return false;
                colon = h + name_end;
        } else {
                colon = memchr(h, ':', n);
                if (colon != NULL)
                        name_end = (size_t)(colon - h);
                for (size_t i = 0, start = 0; i <= name_end; i++)
                        if (i == name_end || h[i] == '.') {
                                if (!label_ok(h + start, i - start))
                                        return false;
                                start = i + 1;
                        }
        }
        if (colon != NULL) {
                size_t plen = n - (size_t)(colon - h) - 1;
                if (plen == 0 || plen > 5)
                        return false;
                for (size_t i = 1; i <= plen; i++)
                        if (!isdigit((unsigned char)colon[i]))
                                return false;
                if (atoi(colon + 1) > 65535 || atoi(colon + 1) == 0)
                        return false;
        }
        return true;
}

/* One path component: [a-z0-9]+ joined by '.', '_', '__' or '-'+. */
static bool component_ok(const char *p, size_t n)
{
        size_t i = 0;

        if (n == 0 || !(islower((unsigned char)p[0]) || isdigit((unsigned char)p[0])))
                return false;
        while (i < n) {
                while (i < n && (islower((unsigned char)p[i]) || isdigit((unsigned char)p[i])))
                        i++;
                if (i == n)
                        return true;
                size_t sep = i;
                if (p[i] == '.') {
                        i++;
                } else if (p[i] == '_') {
                        i++;
                        if (i < n && p[i] == '_')
                                i++;
                } else if (p[i] == '-') {
                        while (i < n && p[i] == '-')
                                i++;
                } else {
                        return false;
                }
                if (i == n || i == sep ||
                    !(islower((unsigned char)p[i]) || isdigit((unsigned char)p[i])))
                        return false;
        }
        return true;
}

/* [A-Za-z0-9_][A-Za-z0-9._-]{0,127}, as the distribution spec has it */
static bool tag_ok(const char *t)
{
        size_t n = strlen(t);

        if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
                        return false;
        return true;
}

static bool repo_ok(const char *r)
{
        size_t len = strlen(r);

        if (len == 0 || len > 255)
                return false;
        for (const char *p = r;;) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);
                if (!component_ok(p, n))
                        return false;
                if (slash == NULL)
                        return true;
                p = slash + 1;
        }
}

static int bad_ref(forge_error **err, const char *s, const char *why)
{
        return forge_error_usage(err,
                                 "'%s' is not a registry reference: %s (expected "
                                 "HOST[:PORT]/REPO[:TAG][@sha256:HEX])",
                                 s, why);
}

int registry_ref_parse(const char *s, registry_ref *ret, forge_error **err)
{
        cleanup_free char *copy = NULL;
        char *at, *rest, *last, *colon;
        registry_ref r = {0};
        size_t hlen;

        if (strlen(s) > MAX_REF)
                return bad_ref(err, "(too long)", "longer than 512 characters");
        if (!registry_ref_is_remote(s))
                return bad_ref(err, s, "no registry host before the first '/'");
        copy = strdup(s);
        if (copy == NULL)
                return forge_error_make(err, ENOMEM, "parse reference");
        at = strchr(copy, '@');
        if (at != NULL) {
                *at = '\0';
                if (!digest_valid(at + 1))
                        return bad_ref(err, s,
                                       "the digest is not sha256: and 64 lowercase hex digits");
                memcpy(r.digest, at + 1, DIGEST_STR_SIZE);
        }
        hlen = first_component_len(copy);
        if (!host_ok(copy, hlen))
                return bad_ref(err, s, "the host is not a valid name[:port]");
        rest = copy + hlen + 1;
        last = strrchr(rest, '/');
        colon = strchr(last ? last : rest, ':');
        if (colon != NULL) {
                *colon = '\0';
                if (!tag_ok(colon + 1))
                        return bad_ref(err, s, "the tag is not [A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
        }
        if (!repo_ok(rest))
                return bad_ref(err, s, "the repository is not lowercase [a-z0-9._-] components");
        r.host = strndup(copy, hlen);
        r.repo = strdup(rest);
        if (colon != NULL)
                r.tag = strdup(colon + 1);
        else if (at == NULL)
                r.tag = strdup("latest");
        if (r.host == NULL || r.repo == NULL || (r.tag == NULL && (colon != NULL || at == NULL))) {
                registry_ref_release(&r);
                return forge_error_make(err, ENOMEM, "parse reference");
        }
        *ret = r;
        return 0;
}

void registry_ref_release(registry_ref *r)
{
        free(r->host);
        free(r->repo);
        free(r->tag);
        r->host = r->repo = r->tag = NULL;
        r->digest[0] = '\0';
}

char *registry_ref_format(const registry_ref *r)
{
        char *out = NULL;

        if (asprintf(&out, "%s/%s%s%s%s%s", r->host, r->repo, r->tag ? ":" : "",
                     r->tag ? r->tag : "", r->digest[0] ? "@" : "", r->digest) < 0)
                return NULL;
        return out;
}

bool registry_host_is_loopback(const char *host)
{
        size_t n = strcspn(host, ":/"); /* also a URL's host part */
        unsigned a, b, c, d;
        char tail;

        if (host[0] == '[')
                return strncmp(host, "[::1]", 5) == 0 && (host[5] == '\0' || host[5] == ':');
        if (n == 9 && strncmp(host, "localhost", 9) == 0)
                return true;
        cleanup_free char *name = strndup(host, n);
        if (name == NULL)
                return false;
        return sscanf(name, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
               c < 256 && d < 256;
}
