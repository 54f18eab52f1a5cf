/* SPDX-License-Identifier: MIT */
/*
 * The guest side of `--network user`: no DHCP client in the image; the
 * launcher's command line carries the addressing, set with the classic
 * ioctls (the guest kernel's virtio_net, loaded from the initramfs, has made
 * eth0 by the time the root file system is mounted; we still wait a little).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/init/vm-net.h"

#define IFNAME "eth0"
#define HOST_NAME "host.forge.internal"

__attribute__((format(printf, 3, 4))) static int fail(char *errbuf, size_t errlen, const char *fmt,
                                                      ...)
{
        int e = errno;
        va_list ap;
        size_t n;

        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
        n = strlen(errbuf);
        if (e != 0 && n < errlen)
                snprintf(errbuf + n, errlen - n, ": %s", strerror(e));
        return -1;
}

static void set_sin(struct sockaddr *sa, struct in_addr a)
{
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = a};

        memcpy(sa, &sin, sizeof(sin));
}

static int link_up(int s, const char *name)
{
        struct ifreq ifr = {0};

        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return -1;
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        return ioctl(s, SIOCSIFFLAGS, &ifr);
}

static int wait_for_link(void)
{
        for (int i = 0; i < 100; i++) {
                struct timespec ts = {0, 50 * 1000 * 1000};

                if (if_nametoindex(IFNAME) != 0)
                        return 0;
                nanosleep(&ts, NULL);
        }
        errno = ENODEV;
        return -1;
}

static int configure(struct in_addr addr, unsigned prefix, struct in_addr gw, char *errbuf,
                     size_t errlen)
{
        struct ifreq ifr = {0};
        struct rtentry rt = {0};
        struct in_addr mask = {htonl(prefix ? ~0U << (32 - prefix) : 0)}, any = {0};
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = -1;

        if (s < 0)
                return fail(errbuf, errlen, "socket");
        if (link_up(s, "lo") < 0) {
                fail(errbuf, errlen, "bring lo up");
                goto out;
        }
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), IFNAME);
        set_sin(&ifr.ifr_addr, addr);
        if (ioctl(s, SIOCSIFADDR, &ifr) < 0) {
                fail(errbuf, errlen, "set the address of " IFNAME);
                goto out;
        }
        set_sin(&ifr.ifr_netmask, mask);
        if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) {
                fail(errbuf, errlen, "set the netmask of " IFNAME);
                goto out;
        }
        if (link_up(s, IFNAME) < 0) {
                fail(errbuf, errlen, "bring " IFNAME " up");
                goto out;
        }
        set_sin(&rt.rt_dst, any);
        set_sin(&rt.rt_genmask, any);
        set_sin(&rt.rt_gateway, gw);
        rt.rt_flags = RTF_UP | RTF_GATEWAY;
        rt.rt_dev = (char *)IFNAME;
        if (ioctl(s, SIOCADDRT, &rt) < 0 && errno != EEXIST) {
                fail(errbuf, errlen, "add the default route");
                goto out;
        }
        r = 0;
out:
        close(s);
        return r;
}

/* Writes /run/forge-net/NAME and binds it over /etc/NAME (made if missing). */
static int provide(const char *name, const char *text, char *errbuf, size_t errlen)
{
        char src[64], dst[64];
        int fd;

        snprintf(src, sizeof(src), "/run/forge-net/%s", name);
        snprintf(dst, sizeof(dst), "/etc/%s", name);
        fd = open(src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
                if (fd >= 0)
                        close(fd);
                return fail(errbuf, errlen, "write '%s'", src);
        }
        close(fd);
        mkdir("/etc", 0755);
        /* the mount point is a plain file: a symlink in the image is replaced */
        fd = open(dst, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno == ELOOP && unlink(dst) == 0)
                fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0)
                close(fd);
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                return fail(errbuf, errlen, "bind '%s' over '%s'", src, dst);
        return 0;
}

int vm_net_setup(const char *spec, const char *hostname, char *errbuf, size_t errlen)
{
        char buf[128], *prefix, *gw, *dns, text[512];
        struct in_addr a, g, d;
        long plen;

        errno = 0;
        if (strlen(spec) >= sizeof(buf))
                return fail(errbuf, errlen, "forge.net is too long");
        strcpy(buf, spec);
        prefix = strchr(buf, '/');
        gw = prefix ? strchr(prefix, ',') : NULL;
        dns = gw ? strchr(gw + 1, ',') : NULL;
        if (dns == NULL)
                return fail(errbuf, errlen, "forge.net '%s' is not ADDR/PREFIX,GATEWAY,DNS", spec);
        *prefix++ = *gw++ = *dns++ = '\0';
        plen = strtol(prefix, NULL, 10);
        if (inet_pton(AF_INET, buf, &a) != 1 || inet_pton(AF_INET, gw, &g) != 1 ||
            inet_pton(AF_INET, dns, &d) != 1 || plen < 1 || plen > 30)
                return fail(errbuf, errlen, "forge.net '%s' is not ADDR/PREFIX,GATEWAY,DNS", spec);
        if (wait_for_link() < 0)
                return fail(errbuf, errlen,
                            "no " IFNAME " (virtio_net missing from the initramfs?)");
        if (configure(a, (unsigned)plen, g, errbuf, errlen) < 0)
                return -1;
        mkdir("/run/forge-net", 0755);
        snprintf(text, sizeof(text), "nameserver %s\n", dns);
        if (provide("resolv.conf", text, errbuf, errlen) < 0)
                return -1;
        snprintf(
            text, sizeof(text),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n%s\t%s\n",
            buf, hostname && hostname[0] ? hostname : "forge", gw, HOST_NAME);
        return provide("hosts", text, errbuf, errlen);
}
