/* SPDX-License-Identifier: MIT */
/*
 * forge-vminit's end of the control channel (docs/vm-protocol.md): a child of
 * PID 1 that serves `forge exec` on /dev/hvc0, one session at a time. The
 * host is its only peer: whoever writes to the port is forge-vmm's control
 * socket. A new EXEC ends the session before it (its host side is gone).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "runtime/init/vmctl-guest.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "runtime/init/supervise.h"
#include "runtime/init/vmctl.h"

#define MAX_STRINGS 4096

typedef struct session {
        uint32_t id;
        pid_t pid;
        int in, out, err; /* our ends; with a tty in == out (the master), err -1 */
        bool tty;
        int status;
        bool exited;
} session;

static int port = -1;
static uint32_t last_sid; /* the session that ended last */
static const vmctl_defaults *defaults;

static void send_frame(uint8_t type, uint32_t sid, const void *data, uint32_t len)
{
        uint8_t h[VMCTL_HDR_LEN];
        const uint8_t *p = data;

        vmctl_hdr_put(h, type, sid, len);
        if (write(port, h, sizeof(h)) < 0)
                return;
        while (len > 0) {
                ssize_t n = write(port, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                p += n;
                len -= (uint32_t)n;
        }
}

static void send_exit(uint32_t sid, int status, const char *msg)
{
        uint8_t buf[512];
        size_t n = msg ? strlen(msg) : 0;

        if (n > sizeof(buf) - 4)
                n = sizeof(buf) - 4;
        vmctl_put32(buf, (uint32_t)status);
        if (n)
                memcpy(buf + 4, msg, n);
        send_frame(VMCTL_EXIT, sid, buf, (uint32_t)(4 + n));
}

static void session_close_fds(session *s)
{
        if (s->in >= 0)
                close(s->in);
        if (s->out >= 0 && s->out != s->in)
                close(s->out);
        if (s->err >= 0)
                close(s->err);
        s->in = s->out = s->err = -1;
}

static void session_end(session *s)
{
        if (s->pid > 0) {
                kill(-s->pid, SIGKILL);
                kill(s->pid, SIGKILL);
                waitpid(s->pid, NULL, 0);
        }
        session_close_fds(s);
        memset(s, 0, sizeof(*s));
        s->in = s->out = s->err = -1;
}

/* K=V of extra replaces the run's K, else is appended. */
static char **merge_env(char **extra, size_t n)
{
        size_t base = 0;
        char **env;

        while (defaults->env && defaults->env[base])
                base++;
        env = calloc(base + n + 1, sizeof(char *));
        if (env == NULL)
                return NULL;
        for (size_t i = 0; i < base; i++)
                env[i] = defaults->env[i];
        for (size_t i = 0; i < n; i++) {
                size_t k = strcspn(extra[i], "="), j;
                for (j = 0; j < base; j++)
                        if (strncmp(env[j], extra[i], k) == 0 && env[j][k] == '=')
                                break;
                if (j < base)
                        env[j] = extra[i];
                else
                        env[base++] = extra[i];
        }
        return env;
}

static void __attribute__((noreturn))
child_exec(char **argv, char **env, const char *user, const char *wd, bool tty, int slave,
           int std[3], int errpipe)
{
        vmctl_ids ids;
        char msg[256];
        int e;

        init_signals_restore();
        setsid();
        if (tty) {
                ioctl(slave, TIOCSCTTY, 0);
                for (int i = 0; i < 3; i++)
                        dup2(slave, i);
        } else {
                for (int i = 0; i < 3; i++)
                        dup2(std[i], i);
        }
        if (defaults->resolve(user && user[0] ? user : defaults->user, &ids) < 0) {
                snprintf(msg, sizeof(msg), "125 user '%s' not found in the image",
                         user && user[0] ? user : defaults->user);
                goto fail;
        }
        if (setgroups(ids.n_groups, ids.groups) < 0 || setgid(ids.gid) < 0 || setuid(ids.uid) < 0) {
                snprintf(msg, sizeof(msg), "125 set user %u:%u: %s", (unsigned)ids.uid,
                         (unsigned)ids.gid, strerror(errno));
                goto fail;
        }
        wd = wd && wd[0] ? wd : defaults->workdir;
        if (wd && wd[0] && chdir(wd) < 0) {
                snprintf(msg, sizeof(msg), "125 workdir '%s': %s", wd, strerror(errno));
                goto fail;
        }
        execvpe(argv[0], argv, env);
        e = errno;
        snprintf(msg, sizeof(msg), "%d cannot execute '%s': %s", e == ENOENT ? 127 : 126, argv[0],
                 strerror(e));
fail:
        if (write(errpipe, msg, strlen(msg)) < 0)
                _exit(125);
        _exit(125);
}

/* Splits the EXEC payload; pointers into p (which ends in a NUL). */
static int parse_exec(uint8_t *p, uint32_t len, bool *tty, struct winsize *ws, char **user,
                      char **wd, char ***argv, char ***env, size_t *envc)
{
        uint32_t argc, nenv;
        char *s, *end = (char *)p + len;
        char **v;

        if (len < 16 || p[len - 1] != '\0')
                return -1;
        *tty = p[0] != 0;
        ws->ws_row = (unsigned short)(p[2] | p[3] << 8);
        ws->ws_col = (unsigned short)(p[4] | p[5] << 8);
        argc = vmctl_get32(p + 8);
        nenv = vmctl_get32(p + 12);
        if (argc == 0 || argc > MAX_STRINGS || nenv > MAX_STRINGS)
                return -1;
        v = calloc(argc + nenv + 2, sizeof(char *));
        if (v == NULL)
                return -1;
        s = (char *)p + 16;
        for (uint32_t i = 0; i < argc + nenv + 2; i++) {
                if (s >= end) {
                        free(v);
                        return -1;
                }
                v[i] = s;
                s += strlen(s) + 1;
        }
        *user = v[0];
        *wd = v[1];
        *argv = calloc(argc + 1, sizeof(char *));
        *env = calloc(nenv + 1, sizeof(char *));
        if (*argv == NULL || *env == NULL) {
                free(v);
                return -1;
        }
        memcpy(*argv, v + 2, argc * sizeof(char *));
        memcpy(*env, v + 2 + argc, nenv * sizeof(char *));
        *envc = nenv;
        free(v);
        return 0;
}

static int open_pty(int *ret_master, int *ret_slave)
{
        int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), s;

        if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
                return -1;
        s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s < 0)
                return -1;
        *ret_master = m;
        *ret_slave = s;
        return 0;
}

static void start(session *s, uint32_t sid, uint8_t *p, uint32_t len)
{
        char *user, *wd, **argv = NULL, **extra = NULL, **env;
        int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, ep[2], slave = -1;
        int std[3];
        struct winsize ws;
        size_t n_extra = 0;
        char msg[300];
        ssize_t k;
        bool tty;

        session_end(s);
        s->id = sid;
        last_sid = sid; /* run once, even when it fails to start */
        if (parse_exec(p, len, &tty, &ws, &user, &wd, &argv, &extra, &n_extra) < 0) {
                send_exit(sid, 125, "malformed exec request");
                return;
        }
        env = merge_env(extra, n_extra);
        if (env == NULL || pipe2(ep, O_CLOEXEC) < 0)
                goto fail;
        if (tty) {
                if (open_pty(&s->in, &slave) < 0)
                        goto fail;
                if (ws.ws_row && ws.ws_col)
                        ioctl(s->in, TIOCSWINSZ, &ws);
                s->out = s->in;
        } else {
                if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
                    pipe2(err, O_CLOEXEC) < 0)
                        goto fail;
                s->in = in[1];
                s->out = out[0];
                s->err = err[0];
        }
        std[0] = in[0];
        std[1] = out[1];
        std[2] = err[1];
        s->tty = tty;
        s->pid = fork();
        if (s->pid == 0)
                child_exec(argv, env, user, wd, tty, slave, std, ep[1]);
        close(ep[1]);
        for (int i = 0; i < 3; i++)
                if (std[i] >= 0)
                        close(std[i]);
        if (slave >= 0)
                close(slave);
        k = read(ep[0], msg, sizeof(msg) - 1);
        close(ep[0]);
        if (k > 0) {
                msg[k] = '\0';
                send_exit(sid, atoi(msg), strchr(msg, ' ') ? strchr(msg, ' ') + 1 : msg);
                waitpid(s->pid, NULL, 0);
                s->pid = 0;
                session_end(s);
        } else if (s->pid > 0) {
                send_frame(VMCTL_STARTED, sid, NULL, 0);
        }
        free(argv);
        free(extra);
        free(env);
        return;
fail:
        send_exit(sid, 125, "cannot start the command");
        free(argv);
        free(extra);
        free(env);
        session_end(s);
}

static void on_frame(session *s, uint8_t type, uint32_t sid, uint8_t *p, uint32_t len)
{
        if (type == VMCTL_EXEC) {
                /* the host repeats an EXEC until it hears back (input sent
                 * before this server opened the port is lost): once per session */
                if (sid == last_sid)
                        return;
                start(s, sid, p, len);
                return;
        }
        if (s->pid <= 0 || sid != s->id)
                return;
        if (type == VMCTL_STDIN) {
                if (len == 0) {
                        if (s->tty) {
                                if (write(s->in, "\x04", 1) < 0)
                                        return;
                        } else {
                                close(s->in);
                                s->in = -1;
                        }
                        return;
                }
                for (uint32_t off = 0; off < len && s->in >= 0;) {
                        ssize_t n = write(s->in, p + off, len - off);
                        if (n <= 0)
                                break;
                        off += (uint32_t)n;
                }
        } else if (type == VMCTL_RESIZE && len >= 4 && s->tty) {
                struct winsize ws = {.ws_row = (unsigned short)(p[0] | p[1] << 8),
                                     .ws_col = (unsigned short)(p[2] | p[3] << 8)};
                ioctl(s->in, TIOCSWINSZ, &ws);
        } else if (type == VMCTL_SIGNAL && len >= 4) {
                uint32_t sig = vmctl_get32(p);
                if (sig > 0 && sig < 65)
                        kill(s->pid, (int)sig);
        }
}

/* Reads what the host sent; frames are handed on whole. */
static void port_input(session *s, uint8_t *buf, size_t *len, size_t cap)
{
        ssize_t n = read(port, buf + *len, cap - *len);
        size_t off = 0;

        if (n <= 0)
                return;
        *len += (size_t)n;
        for (;;) {
                uint8_t type;
                uint32_t sid, plen;

                if (*len - off < VMCTL_HDR_LEN)
                        break;
                if (vmctl_hdr_get(buf + off, &type, &sid, &plen) < 0) {
                        off++; /* out of step: find the next header */
                        continue;
                }
                if (plen > VMCTL_MAX_PAYLOAD) {
                        off += 2;
                        continue;
                }
                if (*len - off < VMCTL_HDR_LEN + plen)
                        break;
                {
                        uint8_t *p = buf + off + VMCTL_HDR_LEN, save = p[plen];
                        /* EXEC's strings end in a NUL within plen; the byte after is restored */
                        p[plen] = '\0';
                        on_frame(s, type, sid, p, plen);
                        p[plen] = save;
                }
                off += VMCTL_HDR_LEN + plen;
        }
        memmove(buf, buf + off, *len - off);
        *len -= off;
}

static bool draining;

static bool pump(session *s, int *fd, uint8_t type)
{
        uint8_t buf[8192];
        ssize_t n;

        if (*fd < 0)
                return false;
        if (draining)
                fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) | O_NONBLOCK);
        n = read(*fd, buf, sizeof(buf));
        if (n < 0 && errno == EAGAIN && draining)
                return false;
        if (n > 0) {
                send_frame(type, s->id, buf, (uint32_t)n);
                return true;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        /* EOF, or EIO on a pty master once the slave is closed */
        if (*fd == s->in)
                s->in = -1;
        close(*fd);
        *fd = -1;
        return false;
}

static void __attribute__((noreturn)) serve(void)
{
        static uint8_t buf[VMCTL_HDR_LEN + VMCTL_MAX_PAYLOAD + 1 + 4096];
        size_t len = 0;
        session s = {.in = -1, .out = -1, .err = -1};
        sigset_t set;
        int sfd;

        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        sigprocmask(SIG_BLOCK, &set, NULL);
        sfd = signalfd(-1, &set, SFD_CLOEXEC);
        for (;;) {
                struct pollfd p[4] = {
                    {port, POLLIN, 0}, {sfd, POLLIN, 0}, {s.out, POLLIN, 0}, {s.err, POLLIN, 0}};

                if (poll(p, 4, -1) < 0 && errno != EINTR)
                        continue;
                if (p[0].revents & POLLIN)
                        port_input(&s, buf, &len, sizeof(buf) - 1);
                if (p[2].revents)
                        pump(&s, &s.out, s.tty ? VMCTL_STDOUT : VMCTL_STDOUT);
                if (p[3].revents)
                        pump(&s, &s.err, VMCTL_STDERR);
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        int st;

                        if (read(sfd, &si, sizeof(si)) < 0)
                                continue;
                        while (s.pid > 0 && waitpid(s.pid, &st, WNOHANG) == s.pid) {
                                s.exited = true;
                                s.status = WIFEXITED(st)     ? WEXITSTATUS(st)
                                           : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
                                                             : 1;
                        }
                        while (waitpid(-1, NULL, WNOHANG) > 0)
                                ;
                }
                if (s.exited) {
                        /* what it wrote before it ended; a process it left
                         * behind holding the pipe must not keep us */
                        draining = true;
                        while (pump(&s, &s.out, VMCTL_STDOUT))
                                ;
                        while (pump(&s, &s.err, VMCTL_STDERR))
                                ;
                        draining = false;
                        send_exit(s.id, s.status, NULL);
                        s.pid = 0;
                        session_end(&s);
                }
        }
}

void vmctl_serve_fd(int fd, const vmctl_defaults *d)
{
        defaults = d;
        port = fd;
        serve();
}

void vmctl_server_start(const vmctl_defaults *d)
{
        struct termios t;
        pid_t pid = fork();

        if (pid != 0)
                return;
        defaults = d;
        /* the port appears once virtio_console has probed the device */
        for (int i = 0; i < 100 && port < 0; i++) {
                struct timespec ts = {0, 50 * 1000 * 1000};

                port = open(VMCTL_GUEST_PORT, O_RDWR | O_NOCTTY | O_CLOEXEC);
                if (port < 0)
                        nanosleep(&ts, NULL);
        }
        if (port < 0)
                _exit(0); /* no control channel: an attached run */
        if (tcgetattr(port, &t) == 0) {
                cfmakeraw(&t);
                tcsetattr(port, TCSANOW, &t);
        }
        /* a half frame that came before the port was raw */
        tcflush(port, TCIFLUSH);
        serve();
        _exit(0);
}
