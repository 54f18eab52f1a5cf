/* SPDX-License-Identifier: MIT */
/*
 * forge-testhelper: one static binary with subcommands, copied into test
 * images (crun's tests/init.c idea). Each subcommand prints plain
 * "key=value" lines so tests can assert on them.
 *
 *   true | false | exit N | echo ARGS... | args | env [NAME] | cwd | id |
 *   hostname | pid | cat | write PATH TEXT | read PATH | sleep SECONDS | kill-self SIG
 *
 * Runtime tests (tests/runtime/):
 *   caps | mounts | cgroup | escape [HOSTPID] | memhog MB | forkbomb |
 *   signals SECONDS (prints "signal=NAME" for each signal received) | tty |
 *   foreign-arch (x32 and i386 system calls in children: how they ended)
 *
 * Network tests (tests/network/, tests/kvm/vm-net.sh): udp-recv PORT SECONDS |
 *   dns-serve IP PORT NAME ADDR
 *
 * escape prints one "NAME=blocked|ESCAPED (detail)" line per attempt.
 *
 * Security tests (tests/security/):
 *   io-uring (io_uring_setup: "io_uring=ok" or "io_uring=ERRNO-NAME") |
 *   mknod PATH c|b MAJOR MINOR ("mknod=ok|ERR", then "open=ok|ERR" when made) |
 *   open PATH (O_RDONLY|O_NONBLOCK: "open=ok|ERR") | fdlink N (readlink of /proc/self/fd/N) |
 *   fill DIR N (creates up to N empty files: "created=K", "fill_error=ERR")
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <poll.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

extern char **environ;

typedef int (*subcmd_fn)(int argc, char **argv);

static int c_true(int argc, char **argv)
{
        return 0;
}
static int c_false(int argc, char **argv)
{
        return 1;
}
static int c_exit(int argc, char **argv)
{
        return argc > 1 ? atoi(argv[1]) : 0;
}
static int c_echo(int argc, char **argv)
{
        for (int i = 1; i < argc; i++)
                printf("%s%s", i > 1 ? " " : "", argv[i]);
        printf("\n");
        return 0;
}
static int c_args(int argc, char **argv)
{
        printf("argc=%d\n", argc - 1);
        for (int i = 1; i < argc; i++)
                printf("arg%d=%s\n", i, argv[i]);
        return 0;
}
static int c_env(int argc, char **argv)
{
        if (argc > 1) {
                const char *v = getenv(argv[1]);
                if (v == NULL)
                        return 1;
                printf("%s=%s\n", argv[1], v);
                return 0;
        }
        for (char **e = environ; *e; e++)
                printf("%s\n", *e);
        return 0;
}
static int c_cwd(int argc, char **argv)
{
        char buf[4096];
        if (getcwd(buf, sizeof(buf)) == NULL)
                return 1;
        printf("cwd=%s\n", buf);
        return 0;
}
static int c_id(int argc, char **argv)
{
        gid_t groups[64];
        int n = getgroups(64, groups);
        printf("uid=%u\ngid=%u\neuid=%u\negid=%u\ngroups=", getuid(), getgid(), geteuid(),
               getegid());
        for (int i = 0; i < n; i++)
                printf("%s%u", i ? "," : "", groups[i]);
        printf("\n");
        return 0;
}
static int c_hostname(int argc, char **argv)
{
        char buf[256];
        if (gethostname(buf, sizeof(buf)) < 0)
                return 1;
        printf("hostname=%s\n", buf);
        return 0;
}
static int c_pid(int argc, char **argv)
{
        printf("pid=%d\nppid=%d\n", getpid(), getppid());
        return 0;
}
static int c_cat(int argc, char **argv)
{
        char buf[65536];
        ssize_t n;
        int fd = argc > 1 ? open(argv[1], O_RDONLY) : 0;
        if (fd < 0) {
                fprintf(stderr, "cat: %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                if (write(1, buf, (size_t)n) != n)
                        return 1;
        return n < 0 ? 1 : 0;
}
static int c_write(int argc, char **argv)
{
        int fd;
        if (argc < 3)
                return 2;
        fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
                printf("write=%s\n", strerror(errno));
                return 1;
        }
        if (write(fd, argv[2], strlen(argv[2])) < 0) {
                printf("write=%s\n", strerror(errno));
                return 1;
        }
        close(fd);
        printf("write=ok\n");
        return 0;
}
static int c_sleep(int argc, char **argv)
{
        sleep(argc > 1 ? (unsigned)atoi(argv[1]) : 1000000);
        return 0;
}
static int c_kill_self(int argc, char **argv)
{
        int sig = argc > 1 ? atoi(argv[1]) : SIGKILL;
        signal(sig, SIG_DFL);
        kill(getpid(), sig);
        pause();
        return 0;
}

static int c_caps(int argc, char **argv)
{
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        if (f == NULL)
                return 1;
        while (fgets(line, sizeof(line), f) != NULL) {
                if (strncmp(line, "Cap", 3) == 0 || strncmp(line, "NoNewPrivs", 10) == 0 ||
                    strncmp(line, "Seccomp:", 8) == 0) {
                        char *tab = strchr(line, '\t');
                        char *colon = strchr(line, ':');
                        if (colon == NULL)
                                continue;
                        *colon = '\0';
                        while (tab && (*tab == '\t' || *tab == ' '))
                                tab++;
                        printf("%s=%s", line, tab ? tab : "\n");
                }
        }
        fclose(f);
        return 0;
}
static int c_mounts(int argc, char **argv)
{
        char *a[] = {"cat", "/proc/self/mounts", NULL};
        return c_cat(2, a);
}
static int print_file(const char *key, const char *path)
{
        char buf[256];
        FILE *f = fopen(path, "r");
        if (f == NULL)
                return 0;
        if (fgets(buf, sizeof(buf), f) != NULL) {
                buf[strcspn(buf, "\n")] = '\0';
                printf("%s=%s\n", key, buf);
        }
        fclose(f);
        return 1;
}
static int c_cgroup(int argc, char **argv)
{
        /* v2 */
        print_file("memory", "/sys/fs/cgroup/memory.max");
        print_file("pids", "/sys/fs/cgroup/pids.max");
        print_file("cpu", "/sys/fs/cgroup/cpu.max");
        /* v1 */
        print_file("memory", "/sys/fs/cgroup/memory/memory.limit_in_bytes");
        print_file("pids", "/sys/fs/cgroup/pids/pids.max");
        print_file("cpu_quota", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
        print_file("self", "/proc/self/cgroup");
        return 0;
}
static void result(const char *name, int escaped, const char *detail)
{
        printf("%s=%s (%s)\n", name, escaped ? "ESCAPED" : "blocked", detail);
}
static void try_rc(const char *name, long rc)
{
        result(name, rc >= 0, rc >= 0 ? "succeeded" : strerror(errno));
}
static int c_escape(int argc, char **argv)
{
        char buf[16];
        int fd;
        long rc;
        pid_t host_pid = argc > 1 ? atoi(argv[1]) : 1;

        mkdir("/tmp", 01777);
        try_rc("mount", mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
        fd = open("/proc/kcore", O_RDONLY);
        rc = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
        if (fd >= 0 && rc <= 0)
                errno = rc == 0 ? ENODATA : errno;
        result("kcore", rc > 0, rc > 0 ? "read bytes" : strerror(errno));
        if (fd >= 0)
                close(fd);
        /* a pid of the host: outside our pid namespace it does not exist */
        try_rc("kill", host_pid > 1 ? kill(host_pid, 0) : -1);
        fd = open("/proc/sysrq-trigger", O_WRONLY);
        result("sysrq", fd >= 0, fd >= 0 ? "opened" : strerror(errno));
        if (fd >= 0)
                close(fd);
        fd = open("/sys/kernel/uevent_helper", O_WRONLY);
        result("sysfs_write", fd >= 0, fd >= 0 ? "opened" : strerror(errno));
        if (fd >= 0)
                close(fd);
        try_rc("init_module", syscall(SYS_init_module, NULL, 0, ""));
        try_rc("finit_module", syscall(SYS_finit_module, 0, "", 0));
        try_rc("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
        try_rc("bpf", syscall(SYS_bpf, 0, NULL, 0));
        try_rc("unshare", unshare(CLONE_NEWUSER));
        try_rc("unshare_ns", unshare(CLONE_NEWNS));
        fd = open("/proc/1/ns/mnt", O_RDONLY);
        try_rc("setns", fd >= 0 ? setns(fd, 0) : -1);
        if (fd >= 0)
                close(fd);
        {
                struct {
                        unsigned int bytes;
                        int type;
                        unsigned char h[128];
                } fh = {128, 1, {0}};
                try_rc("open_by_handle_at",
                       syscall(SYS_open_by_handle_at, AT_FDCWD, &fh, O_RDONLY));
        }
        try_rc("ptrace", ptrace(PTRACE_ATTACH, 1, NULL, NULL));
        try_rc("mknod_disk", mknod("/dev/escape-vda", S_IFBLK | 0600, makedev(253, 0)));
        try_rc("chroot", chroot("/"));
        try_rc("reboot", syscall(SYS_reboot, 0xfee1dead, 672274793, 0x4321fedc, NULL));
        try_rc("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
        try_rc("clone_newuser", syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
        return 0;
}
static int c_memhog(int argc, char **argv)
{
        size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 1024;
        for (size_t i = 0; i < mb; i++) {
                char *p = malloc(1 << 20);
                if (p == NULL) {
                        printf("memhog=malloc failed at %zu MB\n", i);
                        return 1;
                }
                memset(p, 1, 1 << 20);
        }
        printf("memhog=%zu MB allocated\n", mb);
        return 0;
}
static int c_forkbomb(int argc, char **argv)
{
        int n = 0, failed = 0;
        /* Children sleep, so they hold their pid; stop on the first failure. */
        for (int i = 0; i < 100000; i++) {
                pid_t p = fork();
                if (p == 0) {
                        sleep(30);
                        _exit(0);
                }
                if (p < 0) {
                        failed = errno;
                        break;
                }
                n++;
        }
        printf("forked=%d\nfork_error=%s\n", n, failed ? strerror(failed) : "none");
        fflush(stdout);
        kill(0, SIGKILL);
        return 0;
}
static volatile sig_atomic_t got_sig;
static void on_sig(int sig)
{
        got_sig = sig;
}
static int c_signals(int argc, char **argv)
{
        int secs = argc > 1 ? atoi(argv[1]) : 30;
        int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                signal(sigs[i], on_sig);
        printf("ready\n");
        fflush(stdout);
        for (int i = 0; i < secs * 10; i++) {
                usleep(100000);
                if (got_sig) {
                        printf("signal=%s\n", strsignal(got_sig));
                        fflush(stdout);
                        return 0;
                }
        }
        printf("signal=none\n");
        return 1;
}
/* Makes a system call through a foreign entry point in a child and reports
 * how the child ended: the seccomp filter must kill it. */
static void foreign(const char *name, void (*fn)(void))
{
        int st;
        pid_t p = fork();
        if (p == 0) {
                fn();
                _exit(0);
        }
        waitpid(p, &st, 0);
        if (WIFSIGNALED(st))
                printf("%s=killed (%s)\n", name, strsignal(WTERMSIG(st)));
        else
                printf("%s=ESCAPED (exit %d)\n", name, WEXITSTATUS(st));
}
static void call_x32(void)
{
        syscall(0x40000000 | SYS_getpid);
}
static void call_i386(void)
{
#if defined(__x86_64__)
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory"); /* i386 getpid */
        (void)ret;
#endif
}
static int c_foreign_arch(int argc, char **argv)
{
        foreign("x32", call_x32);
        foreign("i386", call_i386);
        return 0;
}
static int c_tty(int argc, char **argv)
{
        char *name = ttyname(0);
        printf("isatty=%d\nttyname=%s\n", isatty(0), name ? name : "none");
        return 0;
}

/*
 * pty ROWS COLS INPUT CMD...: runs CMD on a new terminal of that size, types
 * INPUT (C escapes \\n \\r \\xHH) once CMD printed something, copies the
 * terminal's output to stdout until CMD exits, then says whether CMD left the
 * terminal's modes as it found them. Exits with CMD's status.
 */
static size_t unescape(const char *in, char *out)
{
        size_t n = 0;

        for (; *in; in++) {
                if (in[0] == '\\' && in[1] == 'n') {
                        out[n++] = '\n';
                        in++;
                } else if (in[0] == '\\' && in[1] == 'r') {
                        out[n++] = '\r';
                        in++;
                } else if (in[0] == '\\' && in[1] == 'x' && in[2] && in[3]) {
                        char hex[3] = {in[2], in[3], 0};
                        out[n++] = (char)strtoul(hex, NULL, 16);
                        in += 3;
                } else {
                        out[n++] = *in;
                }
        }
        return n;
}

static int c_pty(int argc, char **argv)
{
        struct winsize ws = {0};
        struct termios before, after;
        char input[4096], buf[4096];
        size_t in_len;
        int master, slave, status = 0;
        bool typed = false;
        pid_t pid;

        if (argc < 5 || strlen(argv[3]) >= sizeof(input)) {
                fprintf(stderr, "usage: pty ROWS COLS INPUT CMD...\n");
                return 2;
        }
        in_len = unescape(argv[3], input);
        master = posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
                return perror("posix_openpt"), 2;
        slave = open(ptsname(master), O_RDWR | O_NOCTTY);
        if (slave < 0)
                return perror("open pty"), 2;
        ws.ws_row = (unsigned short)atoi(argv[1]);
        ws.ws_col = (unsigned short)atoi(argv[2]);
        ioctl(slave, TIOCSWINSZ, &ws);
        tcgetattr(slave, &before);
        pid = fork();
        if (pid == 0) {
                setsid();
                ioctl(slave, TIOCSCTTY, 0);
                dup2(slave, 0);
                dup2(slave, 1);
                dup2(slave, 2);
                close(master);
                close(slave);
                execvp(argv[4], argv + 4);
                _exit(127);
        }
        for (;;) {
                struct pollfd p = {master, POLLIN, 0};
                int r = poll(&p, 1, 200);
                pid_t w = waitpid(pid, &status, WNOHANG);

                if (r > 0) {
                        ssize_t n = read(master, buf, sizeof(buf));
                        if (n > 0) {
                                fwrite(buf, 1, (size_t)n, stdout);
                                fflush(stdout);
                                if (!typed) {
                                        if (write(master, input, in_len) != (ssize_t)in_len)
                                                perror("write to the terminal");
                                        typed = true;
                                }
                        }
                }
                if (w == pid)
                        break;
        }
        /* what the command wrote before it exited and is still in the
         * terminal (more than the one read above took): this end holds the
         * slave open, so the master reads it rather than EIO */
        for (;;) {
                struct pollfd p = {master, POLLIN, 0};
                ssize_t n;
                if (poll(&p, 1, 0) <= 0 || (n = read(master, buf, sizeof(buf))) <= 0)
                        break;
                fwrite(buf, 1, (size_t)n, stdout);
        }
        fflush(stdout);
        tcgetattr(slave, &after);
        printf("\nterminal-restored=%d\n", before.c_lflag == after.c_lflag &&
                                               before.c_iflag == after.c_iflag &&
                                               before.c_oflag == after.c_oflag);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A UDP socket bound to sa with port (decimal text), or -1 after saying why
 * (what names the subcommand). */
static int udp_bind(struct sockaddr_in *sa, const char *port, const char *what)
{
        int s;

        sa->sin_port = htons((uint16_t)atoi(port));
        s = socket(AF_INET, SOCK_DGRAM, 0);
        if (s < 0 || bind(s, (struct sockaddr *)sa, sizeof(*sa)) < 0) {
                fprintf(stderr, "%s: bind: %s\n", what, strerror(errno));
                return -1;
        }
        return s;
}

/* udp-recv PORT SECONDS: prints "udp=TEXT from=IP" for the first datagram to
 * 0.0.0.0:PORT (network tests: a published UDP port); 1 on timeout. */
static int c_udp_recv(int argc, char **argv)
{
        struct sockaddr_in sa = {.sin_family = AF_INET}, from;
        socklen_t flen = sizeof(from);
        char buf[512], ip[INET_ADDRSTRLEN];
        struct pollfd p;
        ssize_t n;
        int s;

        if (argc < 3)
                return 2;
        s = udp_bind(&sa, argv[1], "udp-recv");
        if (s < 0)
                return 1;
        printf("listening\n");
        fflush(stdout);
        p = (struct pollfd){s, POLLIN, 0};
        if (poll(&p, 1, atoi(argv[2]) * 1000) != 1)
                return 1;
        n = recvfrom(s, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen);
        if (n < 0)
                return 1;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip));
        printf("udp=%s from=%s\n", buf, ip);
        return 0;
}

/* dns-serve IP PORT NAME ADDR: answers A queries for NAME with ADDR, every
 * other query with NXDOMAIN, until killed (network tests: a resolver of the
 * test's own where dnsmasq is not at hand). */
static int c_dns_serve(int argc, char **argv)
{
        struct sockaddr_in sa = {.sin_family = AF_INET}, from;
        struct in_addr answer;
        uint8_t q[512], r[600];
        int s;

        if (argc < 5 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
            inet_pton(AF_INET, argv[4], &answer) != 1)
                return 2;
        s = udp_bind(&sa, argv[2], "dns-serve");
        if (s < 0)
                return 1;
        for (;;) {
                socklen_t flen = sizeof(from);
                ssize_t n = recvfrom(s, q, sizeof(q), 0, (struct sockaddr *)&from, &flen);
                char name[256];
                size_t off = 12, nl = 0, qend;
                bool ok = true, match;

                if (n < 17)
                        continue;
                while (off < (size_t)n && q[off] != 0 && ok) {
                        size_t l = q[off];
                        if (l > 63 || off + 1 + l >= (size_t)n || nl + l + 1 >= sizeof(name))
                                ok = false;
                        else {
                                if (nl)
                                        name[nl++] = '.';
                                memcpy(name + nl, q + off + 1, l);
                                nl += l;
                                off += 1 + l;
                        }
                }
                qend = off + 5;
                if (!ok || qend > (size_t)n)
                        continue;
                name[nl] = '\0';
                match = strcasecmp(name, argv[3]) == 0 && q[off + 1] == 0 && q[off + 2] == 1;
                memcpy(r, q, qend);
                r[2] = 0x81;
                r[3] = match ? 0x80 : 0x83;
                r[4] = 0, r[5] = 1;             /* one question */
                r[6] = 0, r[7] = match ? 1 : 0; /* answers */
                memset(r + 8, 0, 4);
                if (match) {
                        static const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
                        memcpy(r + qend, rr, sizeof(rr));
                        memcpy(r + qend + sizeof(rr), &answer, 4);
                        qend += sizeof(rr) + 4;
                }
                sendto(s, r, qend, 0, (struct sockaddr *)&from, flen);
        }
}

/* errno as its symbolic name, so tests need not know the numbers */
static const char *errname(int e)
{
        static const struct {
                int e;
                const char *name;
        } names[] = {{0, "ok"},          {EPERM, "EPERM"},   {ENOENT, "ENOENT"},
                     {EACCES, "EACCES"}, {ENOSYS, "ENOSYS"}, {EROFS, "EROFS"},
                     {ENXIO, "ENXIO"},   {ENODEV, "ENODEV"}, {EINVAL, "EINVAL"},
                     {EEXIST, "EEXIST"}, {ELOOP, "ELOOP"},   {ENOSPC, "ENOSPC"}};

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (names[i].e == e)
                        return names[i].name;
        return strerror(e);
}
static int c_io_uring(int argc, char **argv)
{
        unsigned char params[120] = {0}; /* struct io_uring_params */
        long fd = syscall(425 /* io_uring_setup */, 4, params);

        printf("io_uring=%s\n", fd >= 0 ? "ok" : errname(errno));
        if (fd >= 0)
                close((int)fd);
        fd = syscall(426 /* io_uring_enter */, -1, 0, 0, 0, NULL, 0);
        printf("io_uring_enter=%s\n", fd >= 0 ? "ok" : errname(errno));
        fd = syscall(427 /* io_uring_register */, -1, 0, NULL, 0);
        printf("io_uring_register=%s\n", fd >= 0 ? "ok" : errname(errno));
        return 0;
}
static int c_open(int argc, char **argv)
{
        int fd;

        if (argc < 2)
                return 2;
        fd = open(argv[1], O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        printf("open=%s\n", fd >= 0 ? "ok" : errname(errno));
        if (fd >= 0)
                close(fd);
        return 0;
}
static int c_mknod(int argc, char **argv)
{
        mode_t type;

        if (argc < 5)
                return 2;
        type = argv[2][0] == 'b' ? S_IFBLK : S_IFCHR;
        if (mknod(argv[1], type | 0666, makedev(atoi(argv[3]), atoi(argv[4]))) < 0) {
                printf("mknod=%s\n", errname(errno));
                return 0;
        }
        printf("mknod=ok\n");
        return c_open(2, argv);
}
static int c_fill(int argc, char **argv)
{
        long n = argc > 2 ? atol(argv[2]) : 0, k;
        int e = 0;
        char path[4096];

        for (k = 0; k < n; k++) {
                int fd;

                snprintf(path, sizeof(path), "%s/f%ld", argc > 1 ? argv[1] : ".", k);
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0) {
                        e = errno;
                        break;
                }
                close(fd);
        }
        printf("created=%ld\nfill_error=%s\n", k, errname(e));
        return 0;
}
static int c_fdlink(int argc, char **argv)
{
        char path[64], buf[4096];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/self/fd/%s", argc > 1 ? argv[1] : "0");
        n = readlink(path, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        printf("fd=%s\n", n > 0 ? buf : errname(errno));
        return 0;
}

static const struct {
        const char *name;
        subcmd_fn fn;
} subcmds[] = {
    {"io-uring", c_io_uring},
    {"open", c_open},
    {"mknod", c_mknod},
    {"fdlink", c_fdlink},
    {"fill", c_fill},
    {"dns-serve", c_dns_serve},
    {"udp-recv", c_udp_recv},
    {"pty", c_pty},
    {"caps", c_caps},
    {"mounts", c_mounts},
    {"cgroup", c_cgroup},
    {"escape", c_escape},
    {"memhog", c_memhog},
    {"forkbomb", c_forkbomb},
    {"signals", c_signals},
    {"tty", c_tty},
    {"foreign-arch", c_foreign_arch},
    {"true", c_true},
    {"false", c_false},
    {"exit", c_exit},
    {"echo", c_echo},
    {"args", c_args},
    {"env", c_env},
    {"cwd", c_cwd},
    {"id", c_id},
    {"hostname", c_hostname},
    {"pid", c_pid},
    {"cat", c_cat},
    {"write", c_write},
    {"read", c_cat},
    {"sleep", c_sleep},
    {"kill-self", c_kill_self},
};

int main(int argc, char **argv)
{
        const char *base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];

        /* Called through a symlink named after a subcommand, or as
         * "forge-testhelper SUBCMD ...". */
        for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
                if (strcmp(base, subcmds[i].name) == 0)
                        return subcmds[i].fn(argc, argv);
        if (argc < 2) {
                fprintf(stderr, "usage: forge-testhelper SUBCOMMAND [ARGS]\n");
                return 2;
        }
        for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
                if (strcmp(argv[1], subcmds[i].name) == 0) {
                        int r = subcmds[i].fn(argc - 1, argv + 1);
                        fflush(stdout);
                        return r;
                }
        fprintf(stderr, "forge-testhelper: unknown subcommand '%s'\n", argv[1]);
        return 2;
}
