/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The forge spec: a YAML file parsed strictly into a plain data model.
 * See docs/spec.md. Every path in the model is
 * already resolved and checked to stay inside the build context (the spec's
 * directory); positions are kept so that later stages (builder) can report
 * errors as SPEC:LINE:COL with spec_error().
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

typedef struct spec_pos {
        int line; /* 1-based */
        int col;  /* 1-based */
} spec_pos;

/* Ordered string map as written in the spec (env, labels). */
typedef struct spec_kv {
        char *key;
        char *value;
} spec_kv;

typedef struct spec_kvs {
        size_t n;
        spec_kv *items;
} spec_kvs;

typedef enum spec_layer_kind {
        SPEC_LAYER_DEB,
        SPEC_LAYER_ARCHIVE,
        SPEC_LAYER_FILES,
        SPEC_LAYER_RUN,
        SPEC_LAYER_PACKAGES, /* Debian packages by name, from `repositories:` */
} spec_layer_kind;

typedef struct spec_file {
        char *src;      /* as written, relative to the context */
        char *src_path; /* absolute, resolved, inside the context */
        char *dest;     /* absolute path in the image; trailing '/' kept */
        int mode;       /* -1 when not given */
        uid_t uid;      /* 0 when not given */
        gid_t gid;
        spec_pos pos;
} spec_file;

typedef struct spec_layer {
        char *name; /* optional label, NULL when absent */
        spec_layer_kind kind;
        /* deb, archive */
        char *src;      /* as written */
        char *src_path; /* absolute, resolved, inside the context */
        char *sha256;   /* optional pin, "sha256:<hex>" normalised, or NULL */
        char *dest;     /* archive: where to unpack, default "/" */
        /* files */
        spec_file *files;
        size_t n_files;
        /* run */
        char *run;
        spec_kvs env;
        bool network_host; /* network: host */
        bool network_user; /* network: user (docs/network.md) */
        /* packages */
        char **packages; /* NULL-terminated requests: "NAME" or "NAME (OP VERSION)" */
        size_t n_packages;
        spec_pos *package_pos;
        bool essential;   /* default true: add the Essential: yes set, run maintainer scripts */
        bool recommends;  /* default false */
        uint64_t memory;  /* run: memory limit in bytes, 0 = unset */
        int64_t pids;     /* run: process limit, 0 = unset (the runtime's default) */
        spec_pos pos;     /* of the layer item */
        spec_pos src_pos; /* of the source key's value */
        spec_pos sha256_pos;
} spec_layer;

typedef struct spec_mount {
        char *src; /* absolute (relative ones resolved against the context) */
        char *dest;
        bool ro;
        spec_pos pos;
} spec_mount;

typedef struct spec_config {
        bool has_entrypoint, has_cmd;
        char **entrypoint; /* NULL-terminated; NULL when absent */
        char **cmd;
        spec_kvs env;
        char *workdir;  /* NULL when absent */
        char *user;     /* NULL when absent */
        char *hostname; /* NULL when absent */
        spec_kvs labels;
} spec_config;

typedef enum spec_network {
        SPEC_NETWORK_UNSET = 0,
        SPEC_NETWORK_NONE,
        SPEC_NETWORK_HOST,
        SPEC_NETWORK_USER, /* containers and VMs: user-mode stack (docs/network.md) */
} spec_network;

typedef struct spec_container {
        uint64_t memory;     /* bytes, 0 = unset */
        uint32_t cpus_milli; /* 1.5 cpus = 1500, 0 = unset */
        int64_t pids;        /* 0 = unset */
        spec_network network;
        bool read_only;
        spec_mount *mounts;
        size_t n_mounts;
        char **ports; /* "[IP:]HOSTPORT:PORT[/tcp|udp]", NULL-terminated; NULL when absent */
} spec_container;

typedef struct spec_vm {
        bool present;
        char *kernel_deb;     /* absolute path, or NULL */
        char *kernel_bzimage; /* absolute path, or NULL */
        char *kernel_modules; /* absolute path of lib/modules/VERSION, or NULL */
        char *kernel_sha256;  /* optional pin of the kernel deb/bzimage */
        uint64_t memory;      /* bytes, 0 = unset */
        uint32_t cpus;        /* 0 = unset */
        uint64_t disk_size;   /* bytes, 0 = unset (content plus headroom) */
        char *cmdline;        /* extra kernel arguments, or NULL */
        spec_network network; /* none or user */
        char **ports;         /* as container.ports */
        spec_pos pos;
        spec_pos kernel_pos;
} spec_vm;

/* One `repositories:` entry: `host` (the machine's apt sources) or a URL. */
typedef struct spec_repo {
        bool host;
        char *url; /* http:, https: or file: base of the archive */
        char *suite;
        char **components;      /* NULL-terminated, default {"main"} */
        char *keyring;          /* absolute path in the context */
        bool check_valid_until; /* default true; false for snapshot mirrors */
        spec_pos pos;
} spec_repo;

typedef enum spec_from_kind {
        SPEC_FROM_SCRATCH,
        SPEC_FROM_IMAGE,  /* NAME[:TAG] or sha256:HEX in the store */
        SPEC_FROM_SPEC,   /* path to another spec file */
        SPEC_FROM_REMOTE, /* HOST[:PORT]/REPO[:TAG][@sha256:HEX]: pulled from a registry */
} spec_from_kind;

typedef struct spec {
        char *path;        /* the spec file as given */
        char *context_dir; /* absolute, canonical directory of the spec */
        int version;       /* forge: 1 */
        char *name;
        char *tag; /* "latest" when absent */
        spec_from_kind from_kind;
        char *from;      /* as written ("scratch" when absent) */
        char *from_path; /* SPEC_FROM_SPEC: absolute path of that spec */
        spec_pos from_pos;
        uint64_t source_date_epoch; /* spec, else $SOURCE_DATE_EPOCH, else 0 */
        spec_layer *layers;
        size_t n_layers;
        spec_config config;
        spec_container container;
        spec_vm vm;
        spec_repo *repos; /* in priority order */
        size_t n_repos;
        spec_pos repos_pos;
        char *architecture; /* Debian architecture, NULL: the host's */
        spec_pos arch_pos;
} spec;

/* Parses and validates path. On error *err is a usage error (exit 2) whose
 * message is "SPEC:LINE:COL: what is wrong (what is expected)". Files named by
 * the spec must exist; their content is not read here. */
int spec_load(const char *path, spec **ret, forge_error **err);
void spec_free(spec *s);

/* Makes a usage error located in the spec: "PATH:LINE:COL: message". */
int spec_error(forge_error **err, const spec *s, spec_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline void cleanup_spec_fn(spec **s)
{
        spec_free(*s);
}
#define cleanup_spec __attribute__((cleanup(cleanup_spec_fn)))

/* A package repository's URL (a spec's `url:`, an apt source's URI): NULL
 * when it is http://, https:// or file:/ without spaces or control
 * characters, else what is wrong, for a message ("is not ..."). */
const char *spec_repo_url_problem(const char *url);
/* Whether a name ends in .yaml or .yml. */
bool spec_path_named(const char *path);
/* Whether a command-line argument (forge run, forge check) names a spec
 * rather than an image: an existing regular file whose name has a '/' or
 * ends in .yaml or .yml. */
bool spec_path_is_spec(const char *arg);
