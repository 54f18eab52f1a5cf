/* SPDX-License-Identifier: MIT */
/*
 * The files podman provides in every container: /etc/hosts, /etc/hostname
 * and /etc/resolv.conf, made per run in the run directory and bind-mounted
 * over the image's (setup.c), so that they never land in an image layer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/container/container-internal.h"

#define HOST_FILE_MAX (64 * 1024)

const etc_file etc_files[ETC_FILES_N] = {
    {"hosts", "/etc/hosts"},
    {"hostname", "/etc/hostname"},
    {"resolv.conf", "/etc/resolv.conf"},
};

bool etc_hostname_valid(const char *h)
{
        size_t n = strlen(h);

        if (n == 0 || n > 63 || h[0] == '-' || h[0] == '.')
                return false;
        for (const char *p = h; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
                        return false;
        return true;
}

/* The host's own file (its authority, not the image's): a regular file,
 * capped; a missing one is empty. */
static int host_file_read(const char *path, char *buf, size_t size, size_t *ret_len,
                          forge_error **err)
{
        cleanup_close int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        struct stat st;
        size_t len = 0;

        *ret_len = 0;
        if (fd < 0)
                return errno == ENOENT ? 0 : forge_error_make(err, errno, "read '%s'", path);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return forge_error_make(err, EINVAL, "'%s' is not a regular file", path);
        while (len < size) {
                ssize_t n = read(fd, buf + len, size - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return forge_error_make(err, errno, "read '%s'", path);
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        *ret_len = len;
        return 0;
}

static int file_write(const char *dir, const char *name, const char *a, size_t alen, const char *b,
                      forge_error **err)
{
        cleanup_free char *path = fs_path_join(dir, name);
        cleanup_close int fd = -1;

        if (path == NULL)
                return forge_error_make(err, ENOMEM, "etc files");
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || fchmod(fd, 0644) < 0 || fs_write_all(fd, a, alen) < 0 ||
            fs_write_all(fd, b, strlen(b)) < 0)
                return forge_error_make(err, errno, "write '%s'", path);
        return 0;
}

/* --network user: the stack's names (runtime_net_hosts: host.forge.internal
 * at the gateway) and its DNS forwarder (docs/network.md) */
static int net_user_files(const char *hostname, const char *dir, forge_error **err)
{
        cleanup_free char *hosts = NULL, *resolv = NULL;

        if (runtime_net_hosts(hostname, &hosts, err) < 0 ||
            runtime_net_resolv_conf(&resolv, err) < 0)
                return -1;
        if (file_write(dir, "hosts", "", 0, hosts, err) < 0 ||
            file_write(dir, "resolv.conf", "", 0, resolv, err) < 0)
                return -1;
        return 0;
}

int etc_files_make(const runtime_config *cfg, const char *dir, forge_error **err)
{
        const char *hostname = cfg->hostname ? cfg->hostname : "forge";
        cleanup_free char *host = malloc(HOST_FILE_MAX);
        char line[160];
        size_t len = 0;

        if (host == NULL)
                return forge_error_make(err, ENOMEM, "etc files");
        snprintf(line, sizeof(line), "%s\n", hostname);
        if (file_write(dir, "hostname", "", 0, line, err) < 0)
                return -1;
        if (cfg->network_user)
                return net_user_files(hostname, dir, err);
        /* with the host network, the host's own names too (as podman) */
        if (cfg->network_host &&
            host_file_read("/etc/hosts", host, HOST_FILE_MAX - 1, &len, err) < 0)
                return forge_error_prefix(err, "--network host");
        if (len > 0 && host[len - 1] != '\n')
                host[len++] = '\n';
        snprintf(line, sizeof(line),
                 "%s127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "127.0.1.1\t%s\n",
                 len > 0 ? "# forge: the host's /etc/hosts, then the container's names\n" : "",
                 hostname);
        if (file_write(dir, "hosts", host, len, line, err) < 0)
                return -1;
        len = 0;
        if (cfg->network_host &&
            host_file_read("/etc/resolv.conf", host, HOST_FILE_MAX, &len, err) < 0)
                return forge_error_prefix(err, "--network host");
        return file_write(dir, "resolv.conf", host, len,
                          cfg->network_host ? ""
                                            : "# forge: no network (--network none): no name "
                                              "servers\n",
                          err);
}
