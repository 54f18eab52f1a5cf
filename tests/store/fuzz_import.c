/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for everything an imported image brings: the OCI
 * index.json, nested indexes, manifests and configs, a docker-archive's
 * manifest.json and config, a whole archive (tar members with absolute
 * names, '..', links), and then the image config as forge reads it to run
 * a container or build a VM disk. Whatever the input, forge must fail
 * cleanly or import; it must never crash or leak.
 *
 * Input: a mode line ("oci", "docker" or "tar"), then parts separated by
 * "\n--\n". oci: index.json, manifest, config[, nested index]; docker:
 * manifest.json, config; tar: one archive. The harness lays the parts out
 * as files and substitutes @L/@D (a small layer's digest and diff_id), @C
 * (the config's digest), @M (the manifest's) and @I (the nested index's),
 * so the fuzzer reaches the parsers behind the digest checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/runtime.h"
#include "store/store.h"
#include "vmimage/vmimage.h"

#define MAX_PARTS 5

static char top[64];
static store *st;
static unsigned long iterations;
static char layer_digest[DIGEST_STR_SIZE];
static const char layer_tar[1024]; /* an empty tar: two zero blocks */

static void reset_store(void)
{
        char path[128];
        forge_error *e = NULL;

        if (st)
                store_close(st);
        snprintf(path, sizeof(path), "%s/store", top);
        fs_rm_rf(path, &e);
        forge_error_release(&e);
        if (store_open(path, &st, &e) < 0) {
                fprintf(stderr, "store: %s\n", e->msg);
                abort();
        }
}

static void remove_top(void)
{
        forge_error *e = NULL;

        if (st)
                store_close(st);
        fs_rm_rf(top, &e);
        forge_error_release(&e);
}

static void setup_once(void)
{
        if (top[0])
                return;
        /* tmpfs where there is one: the store fsyncs every write. The test
         * gives a directory it removes (libFuzzer may end without atexit). */
        snprintf(top, sizeof(top), "%s/forge-fuzz-import-XXXXXX",
                 getenv("FORGE_FUZZ_WORKDIR")    ? getenv("FORGE_FUZZ_WORKDIR")
                 : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                 : "/tmp");
        if (mkdtemp(top) == NULL)
                abort();
        hash_sha256_buf(layer_tar, sizeof(layer_tar), layer_digest);
        atexit(remove_top);
        reset_store();
}

/* text with every @X replaced; malloc'd */
static char *subst(const char *text, size_t len, const char *c, const char *m, const char *i)
{
        size_t cap = len * 72 + 1, o = 0;
        char *out = malloc(cap);

        if (out == NULL)
                abort();
        for (size_t k = 0; k < len; k++) {
                const char *rep = NULL;
                if (text[k] == '@' && k + 1 < len) {
                        switch (text[k + 1]) {
                        case 'L':
                        case 'D':
                                rep = layer_digest;
                                break;
                        case 'C':
                                rep = c;
                                break;
                        case 'M':
                                rep = m;
                                break;
                        case 'I':
                                rep = i;
                                break;
                        default:
                                break;
                        }
                }
                if (rep) {
                        memcpy(out + o, rep, strlen(rep));
                        o += strlen(rep);
                        k++;
                } else {
                        out[o++] = text[k];
                }
        }
        out[o] = '\0';
        return out;
}

static void put(int dirfd, const char *rel, const void *buf, size_t len)
{
        int fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || fs_write_all(fd, buf, len) < 0)
                abort();
        close(fd);
}

static void put_blob(int dirfd, const char *text, char digest[DIGEST_STR_SIZE])
{
        char rel[128];
        hash_sha256_buf(text, strlen(text), digest);
        snprintf(rel, sizeof(rel), "blobs/sha256/%s", digest_hex(digest));
        put(dirfd, rel, text, strlen(text));
}

/* What forge reads from an image config after import. */
static void use_image(const char *digest)
{
        store_image *img = NULL;
        forge_error *e = NULL;
        runtime_image_config rc;
        vmimage_vm_config vm;

        if (store_image_load(st, digest, &img, &e) < 0) {
                forge_error_release(&e);
                return;
        }
        if (runtime_image_config_parse(img->config, &rc, &e) == 0)
                runtime_image_config_free(&rc);
        forge_error_release(&e);
        if (vmimage_vm_config_parse(img->config, &vm, &e) < 0)
                forge_error_release(&e);
        free(vmimage_run_config(img->config));
        store_image_free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *p = (const char *)data, *end = p + size;
        const char *parts[MAX_PARTS];
        size_t lens[MAX_PARTS], n = 0;
        char dir[128], target[160], cd[DIGEST_STR_SIZE] = "", md[DIGEST_STR_SIZE] = "",
                                    id[DIGEST_STR_SIZE] = "", digest[DIGEST_STR_SIZE];
        const char *nl = memchr(p, '\n', size);
        char mode[8] = "";
        forge_error *e = NULL;
        int dfd;

        setup_once();
        if (++iterations % 2000 == 0)
                reset_store();
        if (nl == NULL || nl - p >= (long)sizeof(mode))
                return 0;
        memcpy(mode, p, (size_t)(nl - p));
        p = nl + 1;
        while (n < MAX_PARTS) {
                const char *sep = memmem(p, (size_t)(end - p), "\n--\n", 4);
                parts[n] = p;
                lens[n] = sep ? (size_t)(sep - p) : (size_t)(end - p);
                n++;
                if (sep == NULL)
                        break;
                p = sep + 4;
        }
        snprintf(dir, sizeof(dir), "%s/in", top);
        fs_rm_rf(dir, &e);
        forge_error_release(&e);
        if (mkdir(dir, 0755) < 0)
                abort();
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        snprintf(target, sizeof(target), "%s", dir);
        if (strcmp(mode, "oci") == 0 && n >= 3) {
                cleanup_free char *config = NULL, *manifest = NULL, *nested = NULL, *index = NULL;
                char rel[128];
                mkdirat(dfd, "blobs", 0755);
                mkdirat(dfd, "blobs/sha256", 0755);
                snprintf(rel, sizeof(rel), "blobs/sha256/%s", digest_hex(layer_digest));
                put(dfd, rel, layer_tar, sizeof(layer_tar));
                config = subst(parts[2], lens[2], "", "", "");
                put_blob(dfd, config, cd);
                manifest = subst(parts[1], lens[1], cd, "", "");
                put_blob(dfd, manifest, md);
                if (n >= 4) {
                        nested = subst(parts[3], lens[3], cd, md, "");
                        put_blob(dfd, nested, id);
                }
                index = subst(parts[0], lens[0], cd, md, id);
                put(dfd, "index.json", index, strlen(index));
                put(dfd, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
        } else if (strcmp(mode, "docker") == 0 && n >= 2) {
                cleanup_free char *man = subst(parts[0], lens[0], "", "", "");
                cleanup_free char *config = subst(parts[1], lens[1], "", "", "");
                put(dfd, "manifest.json", man, strlen(man));
                put(dfd, "c.json", config, strlen(config));
                put(dfd, "l.tar", layer_tar, sizeof(layer_tar));
        } else if (strcmp(mode, "tar") == 0) {
                snprintf(target, sizeof(target), "%s/in.tar", top);
                put(AT_FDCWD, target, parts[0], (size_t)(end - parts[0]));
        } else {
                close(dfd);
                return 0;
        }
        close(dfd);
        /* without --tag: the name comes from the input too */
        if (store_import(st, target, (iterations & 1) ? NULL : "fuzz:v1", digest, &e) == 0)
                use_image(digest);
        forge_error_release(&e);
        return 0;
}
