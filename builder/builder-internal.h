/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <time.h>

#include "builder/builder.h"
#include "common/hash.h"

/* One entry of a layer, before it is written as tar. */
typedef struct bentry {
        char *path;  /* relative, no leading '/', no '..', no trailing '/' */
        mode_t type; /* S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO */
        mode_t perm; /* & 07777 */
        uid_t uid;
        gid_t gid;
        int64_t mtime;
        char *link; /* symlink target, or hardlink target path when hardlink */
        bool hardlink;
        dev_t rdev;
        uint64_t size;
        char *host_path; /* content from this file (its stat data below), or */
        dev_t host_dev;
        ino_t host_ino;
        nlink_t host_nlink; /* > 1: names of one inode become hardlinks (bentries_finish) */
        struct timespec host_mtim, host_ctim;
        int64_t spool_off; /* content at this offset of the layer's spool file (-1: none) */
        size_t n_xattrs;
        char **xattr_names; /* sorted */
        void **xattr_values;
        size_t *xattr_sizes;
} bentry;

typedef struct bentries {
        bentry *v;
        size_t n, cap;
        int spool_fd;  /* -1, or a temp file holding archive contents */
        char *tmp_dir; /* NULL, or a scratch directory holding content (a run's upper) */
} bentries;

void bentries_init(bentries *e);
/* Frees the entries, closes the spool and removes tmp_dir. */
void bentries_free(bentries *e);
/* Frees what the entry owns (path, link, host path, xattrs); en stays. */
void bentry_free(bentry *en);
/* Appends a copy of path; returns the new entry (zeroed but path, spool_off=-1). */
bentry *bentries_add(bentries *e, const char *path);
/* The same for a directory: 0755, owned by 0:0, modified at mtime. */
bentry *bentries_add_dir(bentries *e, const char *path, int64_t mtime);
/* Sorts (directory contents contiguous, opaque markers first in their dir),
 * drops duplicates (the last one added wins), adds missing parent
 * directories (0755, 0:0, mtime) and orders hardlinks: of each inode (host
 * files: dev, ino with nlink > 1 and the same mode, owner and mtime; archive
 * entries: a file and the hardlinks to it) the first name in sorted order
 * carries the content and every later name is a hardlink to it. */
int bentries_finish(bentries *e, int64_t parent_mtime, forge_error **err);
int bentry_add_xattr(bentry *en, const char *name, const void *value, size_t size);
/* en takes its content from the host's regular file at host (stat data st),
 * read when the layer is written. */
int bentry_host_file(bentry *en, const char *host, const struct stat *st, forge_error **err);
/* en becomes a symlink with the target of the host's symlink at host. */
int bentry_host_symlink(bentry *en, const char *host, forge_error **err);

/* Normalises an archive or destination path: strips leading "/" and "./",
 * collapses "//" and "/./"; fails on ".." components. "" means the root.
 * Returns a malloc'd string or NULL (errno EINVAL/ENOMEM). */
char *bpath_clean(const char *p);

/* Writes the entries as a deterministic tar, zstd-compressed, into the store. */
int btar_write(store *s, const bentries *e, store_layer *ret, forge_error **err);

/* Sources (src-*.c). sde: source_date_epoch. */
int bsrc_files(const spec *sp, const spec_layer *l, bentries *out, forge_error **err);
/* The same without the files' capabilities: a no-change rebuild decides on
 * stat fingerprints (ctime covers xattr changes) and reads no xattr; the
 * build loads them (bentries_load_caps) once the fingerprint misses. */
int bsrc_files_nocaps(const spec *sp, const spec_layer *l, bentries *out, forge_error **err);
int bentries_load_caps(bentries *e, forge_error **err);
/* deb (is_deb) or any archive libarchive reads, placed under dest. spool_dir: where
 * the content spool file goes. Hashes the input file into ret_sha (sha256:...). */
int bsrc_archive(const spec *sp, const spec_layer *l, const char *spool_dir, bentries *out,
                 forge_error **err);
/* The same checks without keeping anything (forge check): the whole input is
 * read, names and hardlinks checked, the entries ordered as a build would. */
int bsrc_archive_check(const spec *sp, const spec_layer *l, forge_error **err);
/* The upper directory of a run step: overlay whiteouts become OCI whiteouts. */
int bsrc_upper(const spec *sp, const char *upper, bentries *out, forge_error **err);

/* The symlinks of the layers so far (lower-links.c), sorted by path, to put
 * a new layer's entries where the container will see them. */
typedef struct blinks {
        char **path;
        char **target;
        size_t n, cap;
} blinks;
void blinks_init(blinks *l);
void blinks_release(blinks *l);
/* Folds a layer in, as a stack of layers would show it: from the store, or
 * from the entries just built. */
int blinks_fold_layer(store *s, const store_layer *layer, blinks *l, forge_error **err);
int blinks_fold_entries(blinks *l, const bentries *e);
/* Follows each entry's parent directories through l's symlinks (inside the
 * root), drops directory entries a symlink stands for, and orders the
 * entries again when anything moved. */
int blinks_place(const blinks *l, bentries *e, int64_t sde, forge_error **err);

/* File hash memo (cache.c): per build context, by dev/inode/size/mtime/ctime. */
typedef struct bmemo {
        store *s;
        char key[DIGEST_HEX_LEN + 1];
        json_t *map; /* loaded on first use */
        bool dirty;
        int64_t trusted_before; /* ns since the epoch: a later ctime is racy */
} bmemo;
/* How much older than the build's start a ctime must be for its stat data
 * to stand for the content (see cache.c: the racy case). */
#define BMEMO_RACY_NS (2 * 1000000000LL)
/* Prepares the memo; it is read from the store only when a hash is needed.
 * Call it before the build stats its inputs: it notes the start time. */
void bmemo_init(store *s, const spec *sp, bmemo *m);
/* Whether a file with this ctime (stat'ed during this build) can be
 * recognised as unchanged by its stat data next time. */
bool bmemo_trusted(const bmemo *m, const struct timespec *ctim);
int bmemo_save(store *s, bmemo *m, forge_error **err);
void bmemo_release(bmemo *m);
/* sha256 of a file's content, memoised when m is not NULL. */
int bhash_file(bmemo *m, const char *path, char out[DIGEST_STR_SIZE], forge_error **err);
/* 0 when an input's sha256 (have) is the one the spec pins (want, at pos),
 * else the spec error saying so; label names the input ("'x.deb'",
 * "kernel 'k.deb'"). */
int bpin_check(forge_error **err, const spec *sp, spec_pos pos, const char *label, const char *have,
               const char *want);

/* A cheap fingerprint of a files layer's entries and their inputs' stat data
 * (dev, inode, size, mtime, ctime): when it matches the previous build's, the
 * previous cache key is still right and no file needs reading. false (and
 * out "") when an input is racy (bmemo_trusted): no fingerprint then. */
bool bstamp_files(const bmemo *m, const bentries *e, const char *parent_key, uint64_t sde,
                  char out[DIGEST_STR_SIZE]);

/* The same for a deb or archive input file. */
bool bstamp_input(const bmemo *m, const spec_layer *l, const char *parent_key, uint64_t sde,
                  char out[DIGEST_STR_SIZE]);

/* Cache keys (cache.c). inputs (JSON: layer path or source -> hash) tells a
 * later build what changed; def is the definition without the parent. */
typedef struct bkey_input {
        const spec *sp;
        const spec_layer *layer;
        const char *parent_key;  /* NULL for the first layer on scratch */
        const bentries *entries; /* files layers: the collected entries */
        bmemo *memo;
        const char *pkg_def; /* packages layers: the locked set (pkg_layer_def) */
} bkey_input;
typedef struct bkey {
        char key[DIGEST_STR_SIZE];
        char input_sha256[DIGEST_STR_SIZE]; /* deb/archive: the input file's hash */
        char def_hash[DIGEST_STR_SIZE];     /* sha256 of def */
        char *def;
        json_t *inputs;
} bkey;
int bkey_compute(const bkey_input *in, bkey *ret, forge_error **err);
void bkey_release(bkey *k);

/* OCI config for the image (config.c). base may be NULL. */
json_t *bconfig_make(const spec *sp, const json_t *base_config, json_t *forge_ext);

/* How deep `from:` specs may nest. */
#define BUILDER_MAX_FROM_DEPTH 16

/* "deb busybox.deb", or the layer's name (build.c); malloc'd, NULL on ENOMEM. */
char *blayer_label(const spec_layer *l);

/* from: HOST/REPO:TAG through SPEC.lock's "from" pin (from-remote.c). */
int bfrom_remote(store *s, const spec *sp, const builder_opts *o, char ret[DIGEST_STR_SIZE],
                 forge_error **err);
/* Pulls from: and sets lock["from"] = {ref, digest}. o may be NULL. */
int bfrom_pin(store *s, const spec *sp, const builder_opts *o, json_t *lock, forge_error **err);

/* Checks what can be checked before anything is written (spec-check.c): pins,
 * `from:` (the whole chain of specs; a loop is named in one line), files:
 * sources, run: steps having a runtime (when o is not NULL) and the VM
 * kernel. With o NULL (forge check) every deb and archive is also read
 * through (bsrc_archive_check), as its build would read it. ret_files (NULL,
 * or sp->n_layers initialised entries): receives the entries of files:
 * layers, ready for the build. */
int bcheck_spec(store *s, const spec *sp, const builder_opts *o, bmemo *memo, bentries *ret_files,
                forge_error **err);

/* Builds without cache, without writing cache records or tags (build.c). */
int builder_rebuild_untagged(store *s, const char *spec_path, const builder_opts *opts,
                             char ret_digest[DIGEST_STR_SIZE], forge_error **err);
