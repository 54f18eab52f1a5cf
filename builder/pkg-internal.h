/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Debian packages by name (`packages:` layers): where packages come from
 * (pkg-repo.c: apt's formats, pkg-sources.c: a spec's entries), how their
 * indexes are verified (pkg-verify.c, pkg-index.c), resolved (pkg-solve.c),
 * locked (lock.c), downloaded (pkg-fetch.c) and installed (pkg-install.c:
 * files and a dpkg database; pkg-dpkg.c: the image's dpkg in the sandbox);
 * sbom.c describes the result. Only the builder's own files include this.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

#include "builder/builder-internal.h"
#include "common/hash.h"

/* Caps on what a repository sends. */
#define PKG_MAX_INRELEASE (16u << 20)
#define PKG_MAX_PACKAGES_COMPRESSED (256ull << 20)
#define PKG_MAX_PACKAGES (1ull << 30)
#define PKG_MAX_DEB (4ull << 30)
#define PKG_MAX_CONTROL (64u << 20)

/* One archive: a base URI and a suite with components, as apt's one-line
 * `deb URI SUITE COMP...` or a deb822 stanza (one per suite) describes. */
typedef struct pkg_source {
        size_t entry;  /* index of the spec's `repositories:` entry */
        size_t source; /* index among the sources that entry expands to (host: many) */
        char *uri;     /* no trailing '/' */
        char *suite;
        char **components; /* NULL-terminated */
        char **keyrings;   /* key files that may sign InRelease, NULL-terminated */
        char *inline_key;  /* deb822 Signed-By given as an armored key block, or NULL */
        bool check_valid_until;
        char *origin; /* where it was configured ("/etc/apt/sources.list:3"), for messages */
} pkg_source;

typedef struct pkg_sources {
        pkg_source *v;
        size_t n;
} pkg_sources;

void pkg_sources_free(pkg_sources *s);

/* Parses a one-line sources.list text / a deb822 .sources text, appending
 * `deb` sources for arch (deb-src, other architectures and disabled stanzas
 * are skipped). file names the text in errors and in origin. Keys named by
 * signed-by / Signed-By stay as written; default_keyrings (NULL-terminated)
 * apply where none is given. */
int pkg_apt_parse_list(const char *text, const char *file, const char *arch,
                       char *const *default_keyrings, pkg_sources *out, forge_error **err);
int pkg_apt_parse_deb822(const char *text, const char *file, const char *arch,
                         char *const *default_keyrings, pkg_sources *out, forge_error **err);
/* The machine's apt sources under root ("/" normally; $FORGE_APT_ROOT for tests):
 * etc/apt/sources.list, sources.list.d/ *.list and *.sources, and the default
 * keyrings etc/apt/trusted.gpg and trusted.gpg.d/ *.gpg, *.asc. */
int pkg_apt_host(const char *root, const char *arch, pkg_sources *out, forge_error **err);

/* Appends one source (checked: http/https/file URI, suite and component words). */
int pkg_source_add(pkg_sources *out, const char *uri, const char *suite, char *const *comps,
                   char *const *keyrings, const char *inline_key, const char *origin,
                   forge_error **err);

/* The sources of a spec's `repositories:`, in priority order (pkg-sources.c). */
int pkg_sources_from_spec(const spec *sp, const char *arch, pkg_sources *ret, forge_error **err);

/* The host's Debian architecture (dpkg's name for uname's machine). */
const char *pkg_host_arch(void);

/* ---- InRelease (pkg-verify.c) ---- */

typedef struct pkg_release_file {
        char *path; /* "main/binary-amd64/Packages.xz" */
        uint64_t size;
        char sha256[DIGEST_STR_SIZE];
} pkg_release_file;

typedef struct pkg_release {
        char *date;        /* as written */
        char *valid_until; /* as written, or NULL */
        char *suite, *codename;
        pkg_release_file *files; /* the SHA256 section */
        size_t n_files, cap_files;
} pkg_release;

/* Parses the signed text of an InRelease (what gpgv printed, without armor). */
int pkg_release_parse(const char *text, size_t len, pkg_release *ret, forge_error **err);
void pkg_release_free(pkg_release *r);
const pkg_release_file *pkg_release_find(const pkg_release *r, const char *path);
/* RFC 2822 dates as Release files write them ("Sat, 10 Jun 2023 08:53:39 UTC"). */
int pkg_date_parse(const char *s, time_t *ret);

/* Verifies a clear-signed InRelease with gpgv against the source's keys and
 * returns the signed text (malloc'd). what names the file in errors.
 * tmpdir receives dearmored keys. */
int pkg_inrelease_verify(const pkg_source *src, const char *what, const char *inrelease, size_t len,
                         const char *tmpdir, char **ret_text, size_t *ret_len, forge_error **err);

/* Dearmors an ASCII-armored OpenPGP block (base64 between the BEGIN and END
 * lines, checksum line ignored) into binary packets. */
int pkg_dearmor(const char *text, size_t len, unsigned char **ret, size_t *ret_len);

/* ---- indexes (pkg-index.c) ---- */

/* One source's verified indexes: the InRelease digest and Date, and a
 * decompressed Packages file per component (open FILE, rewound). */
typedef struct pkg_index {
        const pkg_source *src;
        char inrelease_sha256[DIGEST_STR_SIZE];
        char *date;
        FILE **packages; /* one per component */
        size_t n_packages;
} pkg_index;

typedef struct pkg_fetcher pkg_fetcher;

int pkg_fetcher_new(store *s, pkg_fetcher **ret, forge_error **err);
void pkg_fetcher_free(pkg_fetcher *f);
static inline void pkg_fetcher_cleanup(pkg_fetcher **f)
{
        pkg_fetcher_free(*f);
}
#define cleanup_pkg_fetcher __attribute__((cleanup(pkg_fetcher_cleanup)))

/* Fetches and verifies InRelease and the Packages indexes of each source. */
int pkg_index_fetch(pkg_fetcher *f, const pkg_source *src, const char *arch, pkg_index *ret,
                    forge_error **err);
void pkg_index_release(pkg_index *ix);

/* ---- resolution (pkg-solve.c) ---- */

typedef struct pkg_locked {
        char *name;
        char *version;
        char *arch;
        size_t repo;    /* index into the lock's repositories */
        char *filename; /* path in the repository ("pool/main/c/curl/curl_...deb") */
        uint64_t size;
        char sha256[DIGEST_STR_SIZE];
        bool essential;
} pkg_locked;

typedef struct pkg_set {
        pkg_locked *v;
        size_t n;
} pkg_set;

void pkg_set_free(pkg_set *s);

typedef struct pkg_solver pkg_solver;

/* A pool over the indexes (in priority order); arch is the target's. */
int pkg_solver_new(const pkg_index *ix, size_t n_ix, const char *arch, pkg_solver **ret,
                   forge_error **err);
void pkg_solver_free(pkg_solver *ps);
/* Resolves one layer: its requests on top of what earlier layers installed
 * (below: their packages, kept). Returns the layer's new packages in dpkg's
 * install order (Pre-Depends first). Errors are usage errors naming the
 * request at its spec position, or the solver's problems in a few lines. */
int pkg_solver_layer(pkg_solver *ps, const spec *sp, const spec_layer *l, const pkg_set *below,
                     bool add_essential, pkg_set *ret, forge_error **err);

/* ---- the lock (lock.c) ---- */

/* SPEC.lock beside the spec (malloc'd path). */
char *builder_lock_path(const spec *sp);
/* Loads SPEC.lock: 1 and the object when present, 0 when absent. */
int builder_lock_load(const spec *sp, json_t **ret, forge_error **err);
/* Writes the object canonically (sorted keys, 2-space indent, newline), atomically. */
int builder_lock_save(const spec *sp, const json_t *lock, forge_error **err);

/* The "packages" part of a lock. */
typedef struct pkg_lock_repo {
        size_t entry, source;
        char *suite;
        char **components;
        char inrelease_sha256[DIGEST_STR_SIZE];
        char *date;
} pkg_lock_repo;

typedef struct pkg_lock {
        char *arch;
        pkg_lock_repo *repos;
        size_t n_repos;
        pkg_set *layers; /* one per spec layer (empty for non-packages layers) */
        size_t n_layers;
} pkg_lock;

void pkg_lock_free(pkg_lock *l);
/* Puts the lock's package part into the object (replacing it), keeping other keys. */
int pkg_lock_to_json(const spec *sp, const pkg_lock *pl, json_t *obj, forge_error **err);
/* Reads the package part back; a lock that does not match the spec (another
 * request, architecture or repositories) is a usage error naming what
 * changed, ending in "run 'forge lock SPEC'". */
int pkg_lock_from_json(const spec *sp, const json_t *obj, pkg_lock *ret, forge_error **err);

/* Resolves every packages: layer of sp (fetching and verifying indexes). */
int pkg_lock_resolve(store *s, const spec *sp, pkg_lock *ret, forge_error **err);

/* ---- downloads and installation (pkg-fetch.c, pkg-install.c) ---- */

typedef void (*pkg_progress_fn)(void *userdata, size_t done, size_t total, uint64_t bytes,
                                uint64_t bytes_total);

/* Makes sure every package of the set is in the store (blobs by sha256),
 * downloading the missing ones from the sources the lock names. */
int pkg_fetch_debs(store *s, const spec *sp, const pkg_lock *pl, const pkg_set *set,
                   pkg_progress_fn progress, void *userdata, forge_error **err);

/* The layer's entries for essential: false: every package's files and the
 * dpkg database (status, info/PKG.list, md5sums, conffiles, scripts).
 * base_status: the status file the layers below leave (pkg_status_below),
 * whose other packages stay in the layer's status; below: packages of
 * earlier packages: layers, written into the status too (NULL when
 * base_status, which lists them, is given). */
int pkg_install_files(store *s, const spec *sp, const pkg_set *below, const pkg_set *set,
                      const char *base_status, bentries *out, forge_error **err);

/* essential: true: unpacks, then runs the image's dpkg in the build sandbox
 * over lowerdirs (o->run_step). The layer's entries come from the overlay
 * upper directory, a scratch directory out owns (tmp_dir). */
int pkg_install_dpkg(store *s, const spec *sp, const builder_opts *o, const char *const *lowerdirs,
                     size_t n_lower, const pkg_set *set, bentries *out, forge_error **err);

/* ---- the dpkg status below a layer (pkg-status.c) ---- */

#define PKG_MAX_STATUS (256u << 20)

/* The text of var/lib/dpkg/status as the stack of unpacked layers (bottom
 * first, overlay lowerdirs) shows it, or NULL when none has it. */
int pkg_status_below(const char *const *lowerdirs, size_t n, char **ret, forge_error **err);

typedef struct pkg_stanza {
        char *name, *arch;
        char *text; /* the stanza, ending in "\n\n" */
} pkg_stanza;

/* base's stanzas (a status file's text, or NULL; what names it in errors)
 * except those of packages fresh installs again, and fresh's, sorted by
 * package and architecture as dpkg writes them. */
int pkg_status_merge(const char *base, const char *what, const pkg_stanza *fresh, size_t n_fresh,
                     char **ret, size_t *ret_len, forge_error **err);

/* The next regular file of a .deb member's tar (store_deb_tar), its name
 * without a leading "./"; NULL at the end or where the tar cannot be read. */
struct archive;
const char *pkg_tar_next_file(struct archive *in);

/* A control field of a stored .deb (one line), malloc'd; NULL when absent. */
int pkg_deb_field(store *s, const pkg_locked *p, const char *name, char **ret, forge_error **err);

/* Debian's grammar for names ([a-z0-9][a-z0-9+.-]+), versions and architectures:
 * what a lock or an index says is used in paths and scripts only when it passes. */
bool pkg_name_valid(const char *s);
bool pkg_version_valid(const char *s);
bool pkg_arch_valid(const char *s);

/* The canonical text of a packages: layer for its cache key. */
char *pkg_layer_def(const spec_layer *l, const pkg_set *set);
