/* SPDX-License-Identifier: MIT */
#pragma once

#include "store/store.h"

struct store {
        char *root;   /* absolute */
        int root_fd;  /* O_PATH|O_DIRECTORY */
        int lock_fd;  /* the store's lock file, -1 until locked */
        int lock_mode; /* 0, LOCK_SH or LOCK_EX */
};

/* "blobs/sha256/HEX" for a valid digest, in buf (at least 96 bytes). */
void store_blob_relpath(const char *digest, char *buf, size_t len);
/* Creates a temp file in tmp/ (O_RDWR|O_CLOEXEC); its relative path in ret_rel (malloc'd). */
int store_tmpfile(store *s, int *ret_fd, char **ret_rel, forge_error **err);
/* Renames tmp (relative to root) to dest (relative to root) and fsyncs the dest dir. */
int store_commit_file(store *s, const char *tmp_rel, const char *dest_rel, forge_error **err);

struct archive;
/* Extracts an already opened libarchive reader (see store_extract_fd). */
int store_extract_archive(struct archive *a, const char *dir, int flags, forge_error **err);
