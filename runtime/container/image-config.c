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
                else if (json_is_string(j) && fs_parse_size(json_string_value(j), &v) == 0)
                        r->memory = v;
                else
                        return forge_error_usage(err, "image config: bad container.memory");
        }
        if ((j = json_object_get(c, "cpus")) != NULL) {
                /* bounded before the conversion: a huge double does not fit */
                if (!json_is_number(j) || !(json_number_value(j) > 0) ||
                    json_number_value(j) > 4096)
                        return forge_error_usage(err, "image config: bad container.cpus "
                                                      "(expected 0-4096)");
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
        if ((j = json_object_get(c, "read_only")) != NULL)
                r->read_only = json_is_true(j);
        return 0;
}

int runtime_image_config_parse(const json_t *config, runtime_image_config *ret, forge_error **err)
{
        const json_t *c = json_object_get(config, "config");
        const json_t *forge = json_object_get(config, "dev.forge");
        runtime_image_config r = {.read_only = -1};

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
        if (parse_limits(json_object_get(forge, "container"), &r, err) < 0)
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
