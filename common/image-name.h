/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

/* The grammar of the names and tags the store files images under. It is the
 * store's grammar; it sits in common/ because specs/ (a peer of store/, not a
 * client) checks a spec's name: and tag: with the same rules. */

/* Image name: [a-z0-9][a-z0-9._-]{0,127}. */
bool image_name_valid(const char *name);
/* Tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
bool image_tag_valid(const char *tag);
