/* SPDX-License-Identifier: MIT */
/*
 * InRelease, as apt checks it: the clear-signed file is verified with gpgv
 * against the source's keys only (never a user keyring), and only the text
 * gpgv says was signed is parsed: whatever a server adds around the signed
 * part is never read. The SHA256 section then vouches for each index.
 */
#include "builder/pkg-internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/array.h"
#include "common/cleanup.h"
#include "common/fs.h"

extern char **environ;

#define MAX_RELEASE_FILES 100000
#define MAX_KEYS 64

void pkg_release_free(pkg_release *r)
{
        free(r->date);
        free(r->valid_until);
        free(r->suite);
        free(r->codename);
        for (size_t i = 0; i < r->n_files; i++)
                free(r->files[i].path);
        free(r->files);
        memset(r, 0, sizeof(*r));
}

const pkg_release_file *pkg_release_find(const pkg_release *r, const char *path)
{
        for (size_t i = 0; i < r->n_files; i++)
                if (strcmp(r->files[i].path, path) == 0)
                        return &r->files[i];
        return NULL;
}

static int add_file(pkg_release *r, const char *line, size_t n)
{
        char hex[65], path[512];
        unsigned long long size;
        pkg_release_file *f;
        cleanup_free char *l = strndup(line, n);

        if (l == NULL)
                return -1;
        if (sscanf(l, " %64[0-9a-fA-F] %llu %511s", hex, &size, path) != 3 || strlen(hex) != 64)
                return 1; /* not an entry: ignored, as apt does */
        if (r->n_files >= MAX_RELEASE_FILES || strstr(path, "..") != NULL || path[0] == '/')
                return 1;
        if (ARRAY_GROW(r->files, r->cap_files, r->n_files + 1) < 0)
                return -1;
        f = &r->files[r->n_files];
        f->path = strdup(path);
        f->size = size;
        snprintf(f->sha256, DIGEST_STR_SIZE, "sha256:%s", hex);
        for (char *c = f->sha256 + 7; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        if (f->path == NULL)
                return -1;
        r->n_files++;
        return 0;
}

int pkg_release_parse(const char *text, size_t len, pkg_release *ret, forge_error **err)
{
        pkg_release r = {0};
        const char *p = text, *end = text + len;
        bool in_sha256 = false;

        if (memchr(text, '\0', len) != NULL)
                return forge_error_make(err, EBADMSG, "InRelease contains a NUL byte");
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
                const char *colon = memchr(p, ':', n);

                if (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
                        if (in_sha256 && add_file(&r, p, n) < 0)
                                goto oom;
                } else if (colon != NULL) {
                        size_t kl = (size_t)(colon - p);
                        const char *v = colon + 1;
                        size_t vl = n - kl - 1;
                        char **dst = NULL;
                        while (vl > 0 && (*v == ' ' || *v == '\t'))
                                v++, vl--;
                        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\r'))
                                vl--;
                        in_sha256 = kl == 6 && strncasecmp(p, "SHA256", 6) == 0;
                        if (kl == 4 && strncasecmp(p, "Date", 4) == 0)
                                dst = &r.date;
                        else if (kl == 11 && strncasecmp(p, "Valid-Until", 11) == 0)
                                dst = &r.valid_until;
                        else if (kl == 5 && strncasecmp(p, "Suite", 5) == 0)
                                dst = &r.suite;
                        else if (kl == 8 && strncasecmp(p, "Codename", 8) == 0)
                                dst = &r.codename;
                        if (dst != NULL) {
                                free(*dst);
                                if ((*dst = strndup(v, vl)) == NULL)
                                        goto oom;
                        }
                } else {
                        in_sha256 = false;
                }
                p += n + 1;
        }
        if (r.n_files == 0) {
                pkg_release_free(&r);
                return forge_error_make(err, EBADMSG, "InRelease has no SHA256 entries");
        }
        if (r.date == NULL) {
                pkg_release_free(&r);
                return forge_error_make(err, EBADMSG, "InRelease has no Date");
        }
        *ret = r;
        return 0;
oom:
        pkg_release_free(&r);
        return forge_error_make(err, ENOMEM, "InRelease");
}

int pkg_date_parse(const char *s, time_t *ret)
{
        static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
        struct tm tm = {0};
        char mon[4], zone[8] = "";
        int day, year, h, m, sec, n = 0;
        const char *comma = strchr(s, ',');
        const char *mp;

        if (comma)
                s = comma + 1;
        if (sscanf(s, " %d %3s %d %d:%d:%d %n", &day, mon, &year, &h, &m, &sec, &n) != 6)
                return -1;
        sscanf(s + n, "%7s", zone);
        if (zone[0] && strcmp(zone, "UTC") && strcmp(zone, "GMT") && strcmp(zone, "Z") &&
            strcmp(zone, "+0000"))
                return -1;
        mp = strstr(months, mon);
        if (strlen(mon) != 3 || mp == NULL || (mp - months) % 3 != 0)
                return -1;
        if (day < 1 || day > 31 || year < 1970 || year > 9999 || h > 23 || m > 59 || sec > 60 ||
            h < 0 || m < 0 || sec < 0)
                return -1;
        tm.tm_mday = day;
        tm.tm_mon = (int)((mp - months) / 3);
        tm.tm_year = year - 1900;
        tm.tm_hour = h;
        tm.tm_min = m;
        tm.tm_sec = sec;
        *ret = timegm(&tm);
        return 0;
}

/* ---- ASCII armor ---- */

static int b64(int c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int pkg_dearmor(const char *text, size_t len, unsigned char **ret, size_t *ret_len)
{
        const char *end = text + len, *p;
        unsigned char *out;
        size_t o = 0;
        unsigned acc = 0;
        int bits = 0;

        p = memmem(text, len, "-----BEGIN PGP", 14);
        if (p == NULL)
                return -1;
        p = memchr(p, '\n', (size_t)(end - p));
        if (p == NULL)
                return -1;
        p++;
        /* armor headers ("Version: ...") end at the first empty line */
        {
                const char *q = p;
                while (q < end) {
                        const char *nl = memchr(q, '\n', (size_t)(end - q));
                        size_t n = nl ? (size_t)(nl - q) : (size_t)(end - q);
                        if (n > 0 && q[n - 1] == '\r')
                                n--;
                        if (n == 0) {
                                p = nl ? nl + 1 : end;
                                break;
                        }
                        if (memchr(q, ':', n) == NULL)
                                break; /* no headers */
                        q = nl ? nl + 1 : end;
                }
        }
        out = malloc(len);
        if (out == NULL)
                return -1;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
                if (n >= 5 && strncmp(p, "-----", 5) == 0)
                        break;
                if (n > 0 && p[0] == '=') { /* the CRC-24 line */
                        p += n + 1;
                        continue;
                }
                for (size_t i = 0; i < n; i++) {
                        int v = b64((unsigned char)p[i]);
                        if (p[i] == '=' || p[i] == '\r' || p[i] == ' ')
                                continue;
                        if (v < 0) {
                                free(out);
                                return -1;
                        }
                        acc = (acc << 6) | (unsigned)v;
                        bits += 6;
                        if (bits >= 8) {
                                bits -= 8;
                                out[o++] = (unsigned char)(acc >> bits);
                        }
                }
                p += n + 1;
        }
        if (o == 0) {
                free(out);
                return -1;
        }
        *ret = out;
        *ret_len = o;
        return 0;
}

/* A key file gpgv can read: binary as is, armored ones dearmored into tmpdir. */
static int key_for_gpgv(const char *path, const char *tmpdir, int n, char **ret, forge_error **err)
{
        cleanup_free char *buf = NULL;
        cleanup_free unsigned char *bin = NULL;
        size_t len, blen;
        char name[32];
        cleanup_close int dfd = -1;

        if (fs_read_all(AT_FDCWD, path, 16u << 20, &buf, &len, err) < 0)
                return forge_error_prefix(err, "read keyring");
        if (memmem(buf, len, "-----BEGIN PGP", 14) == NULL) {
                *ret = strdup(path);
                return *ret ? 0 : forge_error_make(err, ENOMEM, "keyring");
        }
        if (pkg_dearmor(buf, len, &bin, &blen) < 0)
                return forge_error_make(err, EINVAL, "keyring '%s' is not a valid armored key",
                                        path);
        snprintf(name, sizeof(name), "key-%d.gpg", n);
        dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fs_write_atomic(dfd, name, bin, blen, 0600, err) < 0)
                return forge_error_make(err, errno, "write key into '%s'", tmpdir);
        *ret = fs_path_join(tmpdir, name);
        return *ret ? 0 : forge_error_make(err, ENOMEM, "keyring");
}

static int run_gpgv(char **argv, const char *status_path, int *ret_status, forge_error **err)
{
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int st, r;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, status_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        r = posix_spawnp(&pid, "gpgv", &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return forge_error_make(err, r, "run gpgv (install the gpgv package)");
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return forge_error_make(err, errno, "wait for gpgv");
        *ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return 0;
}

static bool status_good(const char *status)
{
        static const char *bad[] = {"BADSIG",    "ERRSIG", "EXPKEYSIG",
                                    "REVKEYSIG", "NODATA", "EXPSIG"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                char pat[32];
                snprintf(pat, sizeof(pat), "[GNUPG:] %s", bad[i]);
                if (strstr(status, pat) != NULL)
                        return false;
        }
        return strstr(status, "[GNUPG:] VALIDSIG ") != NULL &&
               strstr(status, "[GNUPG:] GOODSIG ") != NULL;
}

int pkg_inrelease_verify(const pkg_source *src, const char *what, const char *inrelease, size_t len,
                         const char *tmpdir, char **ret_text, size_t *ret_len, forge_error **err)
{
        cleanup_free char *in = fs_path_join(tmpdir, "InRelease"),
                          *out = fs_path_join(tmpdir, "signed");
        cleanup_free char *status_path = fs_path_join(tmpdir, "status"), *status = NULL;
        cleanup_strv char **keys = calloc(MAX_KEYS + 1, sizeof(char *));
        char *argv[8 + 2 * MAX_KEYS + 4];
        size_t nk = 0, a = 0, slen;
        cleanup_close int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int st = -1;

        if (!in || !out || !status_path || !keys)
                return forge_error_make(err, ENOMEM, "verify");
        if (dfd < 0 || fs_write_atomic(dfd, "InRelease", inrelease, len, 0600, err) < 0)
                return forge_error_make(err, errno, "write '%s'", in);
        if (src->inline_key) {
                cleanup_free unsigned char *bin = NULL;
                size_t blen;
                if (pkg_dearmor(src->inline_key, strlen(src->inline_key), &bin, &blen) < 0)
                        return forge_error_make(err, EINVAL, "%s: Signed-By holds no valid key",
                                                src->origin);
                if (fs_write_atomic(dfd, "inline.gpg", bin, blen, 0600, err) < 0)
                        return -1;
                if ((keys[nk++] = fs_path_join(tmpdir, "inline.gpg")) == NULL)
                        return forge_error_make(err, ENOMEM, "verify");
        }
        for (char **k = src->keyrings; k && *k && nk < MAX_KEYS; k++, nk++)
                if (key_for_gpgv(*k, tmpdir, (int)nk, &keys[nk], err) < 0)
                        return forge_error_prefix(err, "%s", src->origin);
        if (nk == 0)
                return forge_error_make(err, 0,
                                        "%s: no key to check '%s' against (give "
                                        "'keyring:' or Signed-By)",
                                        src->origin, what);
        argv[a++] = "gpgv";
        argv[a++] = "--homedir";
        argv[a++] = (char *)tmpdir;
        argv[a++] = "--status-fd";
        argv[a++] = "1";
        for (size_t i = 0; i < nk; i++) {
                argv[a++] = "--keyring";
                argv[a++] = keys[i];
        }
        argv[a++] = "--output";
        argv[a++] = out;
        argv[a++] = in;
        argv[a] = NULL;
        unlink(out);
        if (run_gpgv(argv, status_path, &st, err) < 0)
                return -1;
        if (fs_read_all(AT_FDCWD, status_path, 1u << 20, &status, &slen, err) < 0)
                return -1;
        if (st != 0 || !status_good(status))
                return forge_error_make(err, 0,
                                        "'%s': the signature is not valid for the repository's "
                                        "keys (gpgv status %d): refusing it",
                                        what, st);
        if (fs_read_all(AT_FDCWD, out, PKG_MAX_INRELEASE, ret_text, ret_len, err) < 0)
                return forge_error_prefix(err, "'%s': read what gpgv verified", what);
        return 0;
}
