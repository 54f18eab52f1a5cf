/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER so the library has a source; the module owner deletes it. */
int forge_store_placeholder_;
