/* SPDX-License-Identifier: MIT */
/*
 * `--network user`: a user-mode network stack per run. forge does not write
 * one: a container's network namespace is served by pasta, a VM's virtio-net
 * device by passt on a socket (both from Debian's passt package), with the
 * same addressing (runtime.h, docs/network.md).
 *
 * Lifetime: the tool runs under a keeper process forge forks into a new PID
 * namespace, with PR_SET_PDEATHSIG(SIGKILL). pasta and passt daemonize once
 * they are set up (their first process exits 0: that is the readiness
 * signal) and the daemon is reparented to the keeper, the namespace's init.
 * When forge (or forge-vmm, which forge becomes by exec) exits or is
 * SIGKILLed, the keeper dies and the kernel kills everything in its PID
 * namespace. Without the privilege for a PID namespace (a VM run by a user)
 * the keeper is a plain child subreaper, and passt ends by itself when the
 * launcher's end of its socket closes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/container/container-internal.h"

#define READY_TIMEOUT_MS 15000

struct runtime_net {
        pid_t keeper;
};

int runtime_port_parse(const char *arg, runtime_port *ret, forge_error **err)
{
        char buf[64], *proto, *fields[3];
        size_t n = 0;
        runtime_port p = {.host_ip = "127.0.0.1"};
        struct in_addr a;

        if (strlen(arg) >= sizeof(buf))
                goto bad;
        strcpy(buf, arg);
        proto = strchr(buf, '/');
        if (proto != NULL) {
                *proto++ = '\0';
                if (strcmp(proto, "udp") == 0)
                        p.udp = true;
                else if (strcmp(proto, "tcp") != 0)
                        goto bad;
        }
        for (char *s = buf, *c;; s = c + 1) {
                if (n == ARRAY_SIZE(fields))
                        goto bad;
                fields[n++] = s;
                c = strchr(s, ':');
                if (c == NULL)
                        break;
                *c = '\0';
        }
        if (n < 2)
                goto bad;
        if (n == 3) {
                if (inet_pton(AF_INET, fields[0], &a) != 1)
                        return forge_error_usage(
                            err, "-p '%s': '%s' is not an IPv4 address of this host", arg,
                            fields[0]);
                inet_ntop(AF_INET, &a, p.host_ip, sizeof(p.host_ip));
        }
        for (size_t i = n - 2; i < n; i++) {
                char *end;
                unsigned long v = strtoul(fields[i], &end, 10);

                if (fields[i][0] < '0' || fields[i][0] > '9' || *end != '\0' || v == 0 || v > 65535)
                        goto bad;
                if (i == n - 2)
                        p.host_port = (uint16_t)v;
                else
                        p.port = (uint16_t)v;
        }
        *ret = p;
        return 0;
bad:
        return forge_error_usage(
            err,
            "-p wants [IP:]HOSTPORT:PORT[/tcp|udp] with ports from 1 to 65535, "
            "got '%s'",
            arg);
}

const char *runtime_port_format(const runtime_port *p, char *buf, size_t len)
{
        snprintf(buf, len, "%s:%u/%s", p->host_ip, p->host_port, p->udp ? "udp" : "tcp");
        return buf;
}

/* pasta reports a port it cannot bind only as "Failed to bind any port for
 * '-t ...'": forge tries each one first to name it clearly. TCP with
 * SO_REUSEADDR as pasta binds (a connection in TIME_WAIT is no conflict). */
static int port_try_bind(const runtime_port *p, forge_error **err)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->host_port)};
        cleanup_close int s =
            socket(AF_INET, (p->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        int one = 1;
        char name[48];

        if (s < 0)
                return forge_error_make(err, errno, "socket");
        inet_pton(AF_INET, p->host_ip, &sa.sin_addr);
        if (!p->udp)
                setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return 0;
        runtime_port_format(p, name, sizeof(name));
        if (errno == EADDRINUSE)
                return forge_error_make(err, 0,
                                        "publish port %s: the host port is already in use "
                                        "(choose another HOSTPORT in -p)",
                                        name);
        return forge_error_make(err, errno, "publish port %s: cannot bind the host side", name);
}

int runtime_ports_check(const runtime_port *ports, size_t n, forge_error **err)
{
        char name[48];

        if (n > RUNTIME_NET_MAX_PORTS)
                return forge_error_usage(err, "too many published ports (at most %d)",
                                         RUNTIME_NET_MAX_PORTS);
        for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < i; j++)
                        if (ports[j].host_port == ports[i].host_port &&
                            ports[j].udp == ports[i].udp &&
                            strcmp(ports[j].host_ip, ports[i].host_ip) == 0)
                                return forge_error_usage(
                                    err, "port %s is published twice",
                                    runtime_port_format(&ports[i], name, sizeof(name)));
                if (port_try_bind(&ports[i], err) < 0)
                        return -1;
        }
        return 0;
}

/* ---- the tool's command line ---- */

#define MAX_ARGS (40 + 2 * RUNTIME_NET_MAX_PORTS)

typedef struct argv_buf {
        const char *v[MAX_ARGS + 1];
        size_t n;
        char ports[RUNTIME_NET_MAX_PORTS][48];
} argv_buf;

static void add(argv_buf *a, const char *s)
{
        if (a->n < MAX_ARGS)
                a->v[a->n++] = s;
        a->v[a->n] = NULL;
}

/* Only the ports asked for: pasta's default ("auto") would forward every
 * port bound in the namespace, and the reverse direction (-T/-U) would let
 * the workload reach the host's loopback services on its own 127.0.0.1. */
static void add_ports(argv_buf *a, const runtime_port *ports, size_t n)
{
        bool tcp = false, udp = false;

        for (size_t i = 0; i < n && i < RUNTIME_NET_MAX_PORTS; i++) {
                snprintf(a->ports[i], sizeof(a->ports[i]), "%s/%u:%u", ports[i].host_ip,
                         ports[i].host_port, ports[i].port);
                add(a, ports[i].udp ? "-u" : "-t");
                add(a, a->ports[i]);
                tcp |= !ports[i].udp;
                udp |= ports[i].udp;
        }
        if (!tcp) {
                add(a, "-t");
                add(a, "none");
        }
        if (!udp) {
                add(a, "-u");
                add(a, "none");
        }
}

static void build_argv(argv_buf *a, bool ns, const runtime_port *ports, size_t n_ports)
{
        static char prefix[4];

        snprintf(prefix, sizeof(prefix), "%d", RUNTIME_NET_PREFIX);
        add(a, ns ? "pasta" : "passt");
        add(a, "--quiet");
        add(a, "--ipv4-only");
        add(a, "--address");
        add(a, RUNTIME_NET_ADDR);
        add(a, "--netmask");
        add(a, prefix);
        add(a, "--gateway");
        add(a, RUNTIME_NET_GATEWAY);
        add(a, "--dns-forward");
        add(a, RUNTIME_NET_DNS);
        add_ports(a, ports, n_ports);
        if (ns) {
                /* pasta as "nobody" may not enter a namespace root owns; it
                 * still drops every capability it does not need */
                if (geteuid() == 0) {
                        add(a, "--runas");
                        add(a, "0:0");
                }
                add(a, "-T");
                add(a, "none");
                add(a, "-U");
                add(a, "none");
                add(a, "--config-net");
                add(a, "--ns-ifname");
                add(a, "eth0");
                /* the namespace is given as an inherited fd: /proc/PID/ns/net
                 * would need ptrace rights over the container's init */
                add(a, "--no-netns-quit");
                add(a, "--netns");
                add(a, "/proc/self/fd/3");
        } else {
                /* root's passt drops to nobody by name; numeric needs no
                 * passwd entry (a minimal host may have none) */
                if (geteuid() == 0) {
                        add(a, "--runas");
                        add(a, "65534:65534");
                }
                add(a, "--fd");
                add(a, "3");
        }
}

/* ---- keeper ---- */

static const char *tool_path(bool ns)
{
        const char *env = getenv(ns ? "FORGE_PASTA" : "FORGE_PASST");

        return env != NULL && env[0] != '\0' ? env : ns ? "pasta" : "passt";
}

static void __attribute__((noreturn)) tool_exec(const argv_buf *a, bool ns, int fd, int errfd)
{
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        int hfd = fcntl(fd, F_DUPFD_CLOEXEC, 100), herr = fcntl(errfd, F_DUPFD_CLOEXEC, 100);
        sigset_t none;

        if (devnull < 0 || hfd < 0 || herr < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 ||
            dup2(herr, 2) < 0 || dup2(hfd, 3) < 0)
                _exit(126);
        syscall(SYS_close_range, 4, ~0U, 0);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(tool_path(ns), (char *const *)a->v);
        _exit(errno == ENOENT ? 127 : 126);
}

/* Moves the three fds to 3, 4, 5, stdio to /dev/null, closes the rest. */
static int keep_fds(int *a, int *b, int *c)
{
        int *fds[3] = {a, b, c};
        int high[3], devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

        if (devnull < 0)
                return -1;
        for (int i = 0; i < 3; i++)
                if ((high[i] = fcntl(*fds[i], F_DUPFD_CLOEXEC, 100)) < 0)
                        return -1;
        for (int i = 0; i < 3; i++)
                if (dup2(devnull, i) < 0)
                        return -1;
        for (int i = 0; i < 3; i++) {
                if (dup3(high[i], 3 + i, O_CLOEXEC) < 0)
                        return -1;
                *fds[i] = 3 + i;
        }
        return (int)syscall(SYS_close_range, 6, ~0U, 0);
}

/* PID 1 of its namespace (or a subreaper): starts the tool, reports how its
 * first process ended (0: set up), then reaps until the daemon is gone. */
static void __attribute__((noreturn))
keeper_main(const argv_buf *a, bool ns, int fd, int errfd, int status_fd, pid_t parent)
{
        unsigned char code;
        pid_t tool;
        int st;

        /* In its own PID namespace the keeper sees no parent (0). Should
         * forge die before this line, the status write below fails (SIGPIPE)
         * and takes the keeper and its namespace down. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent && getppid() != 0)
                _exit(1);
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        for (int s = 1; s < NSIG; s++)
                signal(s, SIG_DFL);
        /* nothing of forge's stays open here (a VM launcher's end of the
         * socket, a caller's output pipe) */
        if (keep_fds(&fd, &errfd, &status_fd) < 0)
                _exit(1);
        tool = fork();
        if (tool < 0)
                _exit(1);
        if (tool == 0)
                tool_exec(a, ns, fd, errfd);
        close(fd);
        close(errfd);
        while (waitpid(tool, &st, 0) < 0)
                if (errno != EINTR)
                        _exit(1);
        code = WIFEXITED(st) ? (unsigned char)WEXITSTATUS(st) : 255;
        if (write(status_fd, &code, 1) != 1 || code != 0)
                _exit(1);
        close(status_fd);
        while (wait(NULL) > 0 || errno == EINTR)
                ;
        _exit(0);
}

/* The tool's last line on stderr that is not its syslog noise. */
static void tool_message(int errfd, char *out, size_t len)
{
        char buf[4096], *line, *save = NULL;
        ssize_t n;

        out[0] = '\0';
        fcntl(errfd, F_SETFL, O_NONBLOCK);
        n = read(errfd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return;
        buf[n] = '\0';
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (strncmp(line, "Failed to send ", 15) != 0 && line[0] != '\0')
                        snprintf(out, len, "%s", line);
}

static int wait_ready(runtime_net *net, bool ns, int status_fd, int errfd, forge_error **err)
{
        struct pollfd p = {status_fd, POLLIN, 0};
        const char *tool = ns ? "pasta" : "passt";
        unsigned char code = 255;
        char msg[512];
        int r;

        do
                r = poll(&p, 1, READY_TIMEOUT_MS);
        while (r < 0 && errno == EINTR);
        if (r == 0)
                return forge_error_make(err, 0, "%s did not set up the network within %d s", tool,
                                        READY_TIMEOUT_MS / 1000);
        if (read(status_fd, &code, 1) == 1 && code == 0)
                return 0;
        if (code == 127)
                return forge_error_make(err, 0,
                                        "--network user needs %s (Debian package passt), not found "
                                        "in PATH",
                                        tool);
        tool_message(errfd, msg, sizeof(msg));
        (void)net;
        return forge_error_make(err, 0, "%s failed to set up the network%s%s", tool,
                                msg[0] ? ": " : "", msg);
}

static int net_start(bool ns, int fd, const runtime_port *ports, size_t n_ports, runtime_net **ret,
                     forge_error **err)
{
        cleanup_free runtime_net *net = calloc(1, sizeof(*net));
        cleanup_close int status_r = -1, status_w = -1, err_r = -1, err_w = -1;
        int pfd[2];
        pid_t parent = getpid();
        argv_buf *a;

        if (net == NULL)
                return forge_error_make(err, ENOMEM, "network");
        if (n_ports > RUNTIME_NET_MAX_PORTS)
                return forge_error_usage(err, "too many published ports (at most %d)",
                                         RUNTIME_NET_MAX_PORTS);
        a = calloc(1, sizeof(*a));
        if (a == NULL)
                return forge_error_make(err, ENOMEM, "network");
        build_argv(a, ns, ports, n_ports);
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                free(a);
                return forge_error_make(err, errno, "pipe");
        }
        status_r = pfd[0];
        status_w = pfd[1];
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                free(a);
                return forge_error_make(err, errno, "pipe");
        }
        err_r = pfd[0];
        err_w = pfd[1];
        /* fork-like, into a new PID namespace when we may */
        net->keeper = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0);
        if (net->keeper < 0 && (errno == EPERM || errno == EINVAL))
                net->keeper = fork();
        if (net->keeper == 0)
                keeper_main(a, ns, fd, err_w, status_w, parent);
        free(a);
        if (net->keeper < 0)
                return forge_error_make(err, errno, "start the network stack");
        close(status_w);
        status_w = -1;
        close(err_w);
        err_w = -1;
        if (wait_ready(net, ns, status_r, err_r, err) < 0) {
                runtime_net_stop(take_ptr(net));
                return -1;
        }
        *ret = take_ptr(net);
        return 0;
}

int runtime_net_start_ns(int netns_fd, const runtime_port *ports, size_t n_ports, runtime_net **ret,
                         forge_error **err)
{
        return net_start(true, netns_fd, ports, n_ports, ret, err);
}

int runtime_net_start_socket(int sock_fd, const runtime_port *ports, size_t n_ports,
                             runtime_net **ret, forge_error **err)
{
        return net_start(false, sock_fd, ports, n_ports, ret, err);
}

void runtime_net_kill(runtime_net *n)
{
        if (n != NULL && n->keeper > 0)
                kill(n->keeper, SIGKILL);
}

void runtime_net_stop(runtime_net *n)
{
        if (n == NULL)
                return;
        if (n->keeper > 0) {
                kill(n->keeper, SIGKILL);
                while (waitpid(n->keeper, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        free(n);
}

/* ---- the workload's /etc files ---- */

int runtime_net_hosts(const char *hostname, char **ret, forge_error **err)
{
        if (hostname == NULL || hostname[0] == '\0')
                hostname = "forge";
        if (asprintf(ret,
                     "127.0.0.1\tlocalhost\n"
                     "::1\tlocalhost ip6-localhost ip6-loopback\n"
                     "%s\t%s\n"
                     "%s\t%s\n",
                     RUNTIME_NET_ADDR, hostname, RUNTIME_NET_GATEWAY, RUNTIME_NET_HOST_NAME) < 0)
                return forge_error_make(err, ENOMEM, "hosts");
        return 0;
}

int runtime_net_resolv_conf(char **ret, forge_error **err)
{
        if (asprintf(ret, "nameserver %s\n", RUNTIME_NET_DNS) < 0)
                return forge_error_make(err, ENOMEM, "resolv.conf");
        return 0;
}
