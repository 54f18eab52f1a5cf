/* SPDX-License-Identifier: MIT */
/*
 * The image's OCI config from the spec, over the base image's config.
 * forge's own settings (container defaults, vm) live under "dev.forge",
 * which OCI consumers ignore.
 */
#include "builder/builder-internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"

static json_t *strv_json(char **v)
{
        json_t *a = json_array();
        for (size_t i = 0; v && v[i]; i++)
                json_array_append_new(a, json_string(v[i]));
        return a;
}

/* Env is a list of K=V: override by key, keep order, append new keys. */
static void merge_env(json_t *env, const spec_kvs *kvs)
{
        for (size_t i = 0; i < kvs->n; i++) {
                size_t klen = strlen(kvs->items[i].key), idx;
                json_t *v;
                char *kv = NULL;
                bool done = false;
                if (asprintf(&kv, "%s=%s", kvs->items[i].key, kvs->items[i].value) < 0)
                        continue;
                json_array_foreach(env, idx, v)
                {
                        const char *s = json_string_value(v);
                        if (s && strncmp(s, kvs->items[i].key, klen) == 0 && s[klen] == '=') {
                                json_array_set_new(env, idx, json_string(kv));
                                done = true;
                                break;
                        }
                }
                if (!done)
                        json_array_append_new(env, json_string(kv));
                free(kv);
        }
}

static void rfc3339(uint64_t t, char *buf, size_t len)
{
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The container defaults an image carries: limits only. Host paths (mounts)
 * and host networking are the spec's own, used when that spec is run
 * (docs/run.md); a base image's are dropped, never carried on by from:. */
static json_t *container_ext(const spec *sp, json_t *base)
{
        const spec_container *c = &sp->container;
        json_t *o = json_is_object(base) ? json_deep_copy(base) : json_object();

        json_object_del(o, "mounts");
        json_object_del(o, "network");
        if (c->memory)
                json_object_set_new(o, "memory", json_integer((json_int_t)c->memory));
        if (c->cpus_milli)
                json_object_set_new(o, "cpus_milli", json_integer(c->cpus_milli));
        if (c->pids)
                json_object_set_new(o, "pids", json_integer(c->pids));
        if (c->read_only)
                json_object_set_new(o, "read_only", json_true());
        return o;
}

/* obj's member key when it is of the type make() makes, else a new one there. */
static json_t *member(json_t *obj, const char *key, json_t *(*make)(void))
{
        json_t *v = json_object_get(obj, key);
        json_t *want = make();

        if (v != NULL && want != NULL && json_typeof(v) == json_typeof(want)) {
                json_decref(want);
                return v;
        }
        json_object_set_new(obj, key, want);
        return want;
}

json_t *bconfig_make(const spec *sp, const json_t *base_config, json_t *forge_ext)
{
        json_t *cfg = json_object(), *rc, *env, *labels;
        cleanup_json json_t *ext = NULL, *cont = NULL;
        json_t *base_rc = base_config ? json_object_get(base_config, "config") : NULL;
        json_t *base_ext =
            base_config ? json_object_get(base_config, STORE_CONFIG_FORGE_KEY) : NULL;
        char created[32];

        rc = json_is_object(base_rc) ? json_deep_copy(base_rc) : json_object();
        rfc3339(sp->source_date_epoch, created, sizeof(created));
        json_object_set_new(cfg, "architecture", json_string("amd64"));
        json_object_set_new(cfg, "os", json_string("linux"));
        json_object_set_new(cfg, "created", json_string(created));

        if (sp->config.has_entrypoint) {
                json_object_set_new(rc, "Entrypoint", strv_json(sp->config.entrypoint));
                if (!sp->config.has_cmd)
                        json_object_del(rc, "Cmd"); /* as Docker: a new entrypoint resets cmd */
        }
        if (sp->config.has_cmd)
                json_object_set_new(rc, "Cmd", strv_json(sp->config.cmd));
        env = member(rc, "Env", json_array);
        merge_env(env, &sp->config.env);
        if (json_array_size(env) == 0)
                json_object_del(rc, "Env");
        if (sp->config.workdir)
                json_object_set_new(rc, "WorkingDir", json_string(sp->config.workdir));
        if (sp->config.user)
                json_object_set_new(rc, "User", json_string(sp->config.user));
        if (sp->config.hostname)
                json_object_set_new(rc, "Hostname", json_string(sp->config.hostname));
        labels = member(rc, "Labels", json_object);
        for (size_t i = 0; i < sp->config.labels.n; i++)
                json_object_set_new(labels, sp->config.labels.items[i].key,
                                    json_string(sp->config.labels.items[i].value));
        if (json_object_size(labels) == 0)
                json_object_del(rc, "Labels");
        json_object_set_new(cfg, "config", rc);

        ext = forge_ext ? json_incref(forge_ext) : json_object();
        cont = container_ext(sp, base_ext ? json_object_get(base_ext, "container") : NULL);
        if (json_object_size(cont) > 0)
                json_object_set_new(ext, "container", take_ptr(cont));
        if (json_object_get(ext, "vm") == NULL && base_ext && json_object_get(base_ext, "vm")) {
                json_object_set(ext, "vm", json_object_get(base_ext, "vm"));
                json_object_set(ext, "blobs", json_object_get(base_ext, "blobs"));
        }
        if (json_object_size(ext) > 0)
                json_object_set_new(cfg, STORE_CONFIG_FORGE_KEY, take_ptr(ext));
        return cfg;
}
