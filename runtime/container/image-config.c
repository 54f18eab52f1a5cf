/* SPDX-License-Identifier: MIT */
/* The run configuration stored in an image's OCI config. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/runtime.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int strv_from_json(const json_t *a, const char *key, char ***ret, forge_error **err)
{
        size_t i, n = json_is_array(a) ? json_array_size(a) : 0;
        char **v;
        json_t *e;

        if (a != NULL && !json_is_array(a) && !json_is_null(a))
                return forge_error_usage(err, "image config: '%s' is not an array", key);
        v = calloc(n + 1, sizeof(char *));
        if (v == NULL)
                return forge_error_make(err, ENOMEM, "image config");
        json_array_foreach(a, i, e)
        {
                if (!json_is_string(e)) {
                        cleanup_strv_fn(&v);
                        return forge_error_usage(err, "image config: '%s' has a non-string item",
                                                 key);
                }
                v[i] = strdup(json_string_value(e));
                if (v[i] == NULL) {
                        cleanup_strv_fn(&v);
                        return forge_error_make(err, ENOMEM, "image config");
                }
        }
        *ret = v;
        return 0;
}

static char *str_or_null(const json_t *o, const char *k)
{
        const json_t *v = json_object_get(o, k);

        return json_is_string(v) && json_string_value(v)[0] ? strdup(json_string_value(v)) : NULL;
}

static int parse_limits(const json_t *c, runtime_image_config *r, forge_error **err)
{
        const json_t *j;
        unsigned long long v;

        if ((j = json_object_get(c, "memory")) != NULL) {
                if (json_is_integer(j) && json_integer_value(j) >= 0)
                        r->memory = (uint64_t)json_integer_value(j);
                else if (json_is_string(j) && parse_size(json_string_value(j), &v) == 0)
                        r->memory = v;
                else
                        return forge_error_usage(err, "image config: bad container.memory");
        }
        if ((j = json_object_get(c, "cpus")) != NULL) {
                if (!json_is_number(j) || json_number_value(j) <= 0)
                        return forge_error_usage(err, "image config: bad container.cpus");
                r->cpus_milli = (uint32_t)(json_number_value(j) * 1000 + 0.5);
        }
        if ((j = json_object_get(c, "cpus_milli")) != NULL) {
                if (!json_is_integer(j) || json_integer_value(j) <= 0 ||
                    json_integer_value(j) > 4096000)
                        return forge_error_usage(err, "image config: bad container.cpus_milli");
                r->cpus_milli = (uint32_t)json_integer_value(j);
        }
        if ((j = json_object_get(c, "pids")) != NULL) {
                if (!json_is_integer(j) || json_integer_value(j) < 0)
                        return forge_error_usage(err, "image config: bad container.pids");
                r->pids = json_integer_value(j);
        }
        if ((j = json_object_get(c, "network")) != NULL) {
                const char *n = json_is_string(j) ? json_string_value(j) : "";

                if (strcmp(n, "none") != 0 && strcmp(n, "host") != 0 && strcmp(n, "user") != 0)
                        return forge_error_usage(err, "image config: container.network must be "
                                                      "none, host or user");
                r->network = strcmp(n, "host") == 0 ? 1 : strcmp(n, "user") == 0 ? 2 : 0;
        }
        if ((j = json_object_get(c, "read_only")) != NULL)
                r->read_only = json_is_true(j);
        return 0;
}

/* "ports": ["[IP:]HOSTPORT:PORT[/tcp|udp]", ...] */
static int parse_ports(const json_t *c, runtime_image_config *r, forge_error **err)
{
        const json_t *a = json_object_get(c, "ports"), *e;
        size_t i, n = json_is_array(a) ? json_array_size(a) : 0;

        if (a != NULL && !json_is_array(a))
                return forge_error_usage(err, "image config: container.ports must be a list");
        if (n == 0)
                return 0;
        if (n > RUNTIME_NET_MAX_PORTS)
                return forge_error_usage(err, "image config: more than %d container.ports",
                                         RUNTIME_NET_MAX_PORTS);
        r->ports = calloc(n, sizeof(runtime_port));
        if (r->ports == NULL)
                return forge_error_make(err, ENOMEM, "image config");
        json_array_foreach(a, i, e)
        {
                if (!json_is_string(e))
                        return forge_error_usage(err, "image config: container.ports[%zu] must be "
                                                      "a string",
                                                 i);
                if (runtime_port_parse(json_string_value(e), &r->ports[i], err) < 0)
                        return forge_error_prefix(err, "image config: container.ports[%zu]", i);
                r->n_ports++;
        }
        return 0;
}

static int parse_mounts(const json_t *c, runtime_image_config *r, forge_error **err)
{
        const json_t *a = json_object_get(c, "mounts"), *m;
        size_t i, n = json_is_array(a) ? json_array_size(a) : 0;

        if (n == 0)
                return 0;
        r->mounts = calloc(n, sizeof(runtime_mount));
        if (r->mounts == NULL)
                return forge_error_make(err, ENOMEM, "image config");
        json_array_foreach(a, i, m)
        {
                const json_t *src = json_object_get(m, "src"), *dst = json_object_get(m, "dest");

                if (!json_is_string(src) || !json_is_string(dst) ||
                    json_string_value(dst)[0] != '/')
                        return forge_error_usage(err,
                                                 "image config: container.mounts[%zu] needs "
                                                 "src and an absolute dest",
                                                 i);
                r->mounts[i].src = strdup(json_string_value(src));
                r->mounts[i].dest = strdup(json_string_value(dst));
                r->mounts[i].ro = json_is_true(json_object_get(m, "ro"));
                r->n_mounts++;
                if (r->mounts[i].src == NULL || r->mounts[i].dest == NULL)
                        return forge_error_make(err, ENOMEM, "image config");
        }
        return 0;
}

int runtime_image_config_parse(const json_t *config, runtime_image_config *ret, forge_error **err)
{
        const json_t *c = json_object_get(config, "config");
        const json_t *forge = json_object_get(config, "dev.forge");
        runtime_image_config r = {.network = -1, .read_only = -1};

        if (forge == NULL)
                forge = json_object_get(c, "dev.forge");
        if (strv_from_json(json_object_get(c, "Entrypoint"), "Entrypoint", &r.entrypoint, err) <
                0 ||
            strv_from_json(json_object_get(c, "Cmd"), "Cmd", &r.cmd, err) < 0 ||
            strv_from_json(json_object_get(c, "Env"), "Env", &r.env, err) < 0)
                goto fail;
        r.workdir = str_or_null(c, "WorkingDir");
        r.user = str_or_null(c, "User");
        r.hostname = str_or_null(c, "Hostname");
        if (r.hostname == NULL)
                r.hostname = str_or_null(json_object_get(forge, "config"), "hostname");
        if (r.hostname == NULL)
                r.hostname = str_or_null(forge, "hostname");
        if (parse_limits(json_object_get(forge, "container"), &r, err) < 0 ||
            parse_mounts(json_object_get(forge, "container"), &r, err) < 0 ||
            parse_ports(json_object_get(forge, "container"), &r, err) < 0)
                goto fail;
        *ret = r;
        return 0;
fail:
        runtime_image_config_free(&r);
        return -1;
}

void runtime_image_config_free(runtime_image_config *c)
{
        cleanup_strv_fn(&c->entrypoint);
        cleanup_strv_fn(&c->cmd);
        cleanup_strv_fn(&c->env);
        free(c->workdir);
        free(c->user);
        free(c->hostname);
        for (size_t i = 0; i < c->n_mounts; i++) {
                free((char *)c->mounts[i].src);
                free((char *)c->mounts[i].dest);
        }
        free(c->mounts);
        free(c->ports);
        memset(c, 0, sizeof(*c));
}

char **runtime_argv_build(char *const *entrypoint, char *const *cmd, char *const *args,
                          size_t n_args)
{
        size_t ne = 0, nc = 0, k = 0;
        char **v;

        while (entrypoint && entrypoint[ne])
                ne++;
        if (n_args == 0)
                while (cmd && cmd[nc])
                        nc++;
        v = calloc(ne + nc + n_args + 1, sizeof(char *));
        if (v == NULL)
                return NULL;
        for (size_t i = 0; i < ne; i++)
                v[k++] = entrypoint[i];
        for (size_t i = 0; i < nc; i++)
                v[k++] = cmd[i];
        for (size_t i = 0; i < n_args; i++)
                v[k++] = args[i];
        return v;
}

static bool has_key(char *const *v, size_t n, const char *e, size_t klen, size_t *ret_i)
{
        for (size_t j = 0; j < n; j++) {
                if (strncmp(v[j], e, klen) == 0 && v[j][klen] == '=') {
                        *ret_i = j;
                        return true;
                }
        }
        return false;
}

char **runtime_env_merge(char *const *image_env, const char *const *extra, size_t n_extra)
{
        size_t n = 0, k = 0, j;
        char **out;

        while (image_env && image_env[n])
                n++;
        out = calloc(n + n_extra + 2, sizeof(char *));
        if (out == NULL)
                return NULL;
        for (size_t i = 0; i < n + n_extra; i++) {
                const char *e = i < n ? image_env[i] : extra[i - n];
                size_t klen = strcspn(e, "=");

                if (has_key(out, k, e, klen, &j))
                        free(out[j]);
                else
                        j = k++;
                out[j] = strdup(e);
                if (out[j] == NULL)
                        goto oom;
        }
        if (!has_key(out, k, "PATH", 4, &j)) {
                out[k] = strdup(DEFAULT_PATH);
                if (out[k] == NULL)
                        goto oom;
        }
        return out;
oom:
        cleanup_strv_fn(&out);
        return NULL;
}
