/* SPDX-License-Identifier: MIT */
/*
 * `forge exec` into a detached VM: the host end of the control channel
 * (docs/vm-protocol.md) over RUNS/ID/control.sock, which forge-vmm bridges
 * to a virtio-console port that forge-vminit serves. Everything that comes
 * from the guest is checked: the magic, a length of at most
 * VMCTL_MAX_PAYLOAD, a known type; frames of other sessions are skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/init/vmctl.h"
#include "runtime/service/service-internal.h"

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static int send_frame(int fd, uint8_t type, uint32_t sid, const void *data, size_t len)
{
        uint8_t h[VMCTL_HDR_LEN];

        vmctl_hdr_put(h, type, sid, (uint32_t)len);
        if (fs_write_all(fd, h, sizeof(h)) < 0 || (len && fs_write_all(fd, data, len) < 0))
                return -1;
        return 0;
}

static int send_exec(int fd, uint32_t sid, const service_vm_exec *x)
{
        size_t len = 16, off = 16;
        cleanup_free uint8_t *p = NULL;
        struct winsize ws = {0};
        const char *user = x->user ? x->user : "", *wd = x->workdir ? x->workdir : "";

        len += strlen(user) + 1 + strlen(wd) + 1;
        for (size_t i = 0; i < x->argc; i++)
                len += strlen(x->argv[i]) + 1;
        for (size_t i = 0; i < x->n_env; i++)
                len += strlen(x->env[i]) + 1;
        if (len > VMCTL_MAX_PAYLOAD)
                return -E2BIG;
        p = calloc(1, len);
        if (p == NULL)
                return -ENOMEM;
        if (x->tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0)
                memset(&ws, 0, sizeof(ws));
        p[0] = x->tty;
        p[2] = (uint8_t)ws.ws_row;
        p[3] = (uint8_t)(ws.ws_row >> 8);
        p[4] = (uint8_t)ws.ws_col;
        p[5] = (uint8_t)(ws.ws_col >> 8);
        vmctl_put32(p + 8, (uint32_t)x->argc);
        vmctl_put32(p + 12, (uint32_t)x->n_env);
#define PUT(s)                                                                                     \
        do {                                                                                       \
                size_t l_ = strlen(s) + 1;                                                         \
                memcpy(p + off, s, l_);                                                            \
                off += l_;                                                                         \
        } while (0)
        PUT(user);
        PUT(wd);
        for (size_t i = 0; i < x->argc; i++)
                PUT(x->argv[i]);
        for (size_t i = 0; i < x->n_env; i++)
                PUT(x->env[i]);
#undef PUT
        return send_frame(fd, VMCTL_EXEC, sid, p, len) < 0 ? -errno : 0;
}

static int connect_control(const service_info *si, forge_error **err)
{
        cleanup_close int dirfd = open(si->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (dirfd < 0)
                return forge_error_make(err, errno, "run '%.12s'", si->id);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/control.sock", dirfd);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;
                if (fd >= 0)
                        close(fd);
                return forge_error_make(err, e, "the control channel of run '%.12s'", si->id);
        }
        return fd;
}

int vmctl_frames(vmctl_reader *r, uint32_t sid, int out_fd, int err_fd, int *ret_status,
                 char **ret_msg, forge_error **err)
{
        size_t off = 0;
        int done = 0;

        while (!done && r->len - off >= VMCTL_HDR_LEN) {
                uint8_t type;
                uint32_t s, len;
                const uint8_t *p;

                if (vmctl_hdr_get(r->buf + off, &type, &s, &len) < 0)
                        return forge_error_make(err, 0, "the guest sent a corrupt control frame");
                if (len > VMCTL_MAX_PAYLOAD)
                        return forge_error_make(err, 0,
                                                "the guest sent a control frame of %u bytes "
                                                "(at most %d)",
                                                len, VMCTL_MAX_PAYLOAD);
                if (type != VMCTL_STARTED && type != VMCTL_STDOUT && type != VMCTL_STDERR &&
                    type != VMCTL_EXIT)
                        return forge_error_make(
                            err, 0, "the guest sent an unknown control frame (type %u)", type);
                if (r->len - off < VMCTL_HDR_LEN + len)
                        break;
                p = r->buf + off + VMCTL_HDR_LEN;
                off += VMCTL_HDR_LEN + len;
                if (s != sid)
                        continue; /* an earlier session's */
                if (type == VMCTL_STDOUT)
                        fs_write_all(out_fd, p, len);
                else if (type == VMCTL_STDERR)
                        fs_write_all(err_fd, p, len);
                else if (type == VMCTL_EXIT) {
                        if (len < 4)
                                return forge_error_make(err, 0,
                                                        "the guest sent a short exit frame");
                        *ret_status = (int)(vmctl_get32(p) & 0xff);
                        if (len > 4 && ret_msg)
                                *ret_msg = strndup((const char *)p + 4, len - 4);
                        done = 1;
                }
        }
        memmove(r->buf, r->buf + off, r->len - off);
        r->len -= off;
        return done;
}

#define EXEC_RETRY_MS 1000
#define EXEC_GIVE_UP 120 /* retries: a VM still booting under nested TCG */

static int relay(int fd, uint32_t sid, const service_vm_exec *x, int sfd, int *ret_status,
                 char **ret_msg, forge_error **err)
{
        cleanup_free vmctl_reader *r = calloc(1, sizeof(*r));
        bool in_open = false, heard = false, tty = x->tty;
        uint8_t buf[16384];
        int tries = 0;

        if (r == NULL)
                return forge_error_make(err, ENOMEM, "exec");
        for (;;) {
                struct pollfd p[3] = {
                    {fd, POLLIN, 0}, {in_open ? STDIN_FILENO : -1, POLLIN, 0}, {sfd, POLLIN, 0}};
                ssize_t n;
                int d;

                int pr = poll(p, 3, heard ? -1 : EXEC_RETRY_MS);

                if (pr < 0) {
                        if (errno == EINTR)
                                continue;
                        return forge_error_make(err, errno, "poll");
                }
                if (pr == 0) {
                        /* not heard of yet: the guest's server may not have been
                         * listening; it runs a session's EXEC once */
                        if (++tries > EXEC_GIVE_UP)
                                return forge_error_make(err, 0,
                                                        "the VM does not answer on its "
                                                        "control channel");
                        if ((d = send_exec(fd, sid, x)) < 0)
                                return forge_error_make(err, -d, "send the command to the VM");
                        continue;
                }
                if (p[0].revents) {
                        n = read(fd, r->buf + r->len, sizeof(r->buf) - r->len);
                        if (n <= 0)
                                return forge_error_make(err, 0,
                                                        "the VM ended before the command did");
                        r->len += (size_t)n;
                        if (!heard) {
                                heard = true;
                                in_open = true; /* stdin only once the command runs */
                        }
                        d = vmctl_frames(r, sid, STDOUT_FILENO, STDERR_FILENO, ret_status, ret_msg,
                                         err);
                        if (d != 0)
                                return d < 0 ? -1 : 0;
                }
                if (p[1].revents) {
                        n = read(STDIN_FILENO, buf, sizeof(buf));
                        if (n > 0) {
                                send_frame(fd, VMCTL_STDIN, sid, buf, (size_t)n);
                        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                                send_frame(fd, VMCTL_STDIN, sid, NULL, 0);
                                in_open = false;
                        }
                }
                if (p[2].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        uint8_t v[4];

                        if (read(sfd, &si, sizeof(si)) != sizeof(si))
                                continue;
                        if (si.ssi_signo == SIGWINCH) {
                                struct winsize ws;
                                if (tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
                                        v[0] = (uint8_t)ws.ws_row;
                                        v[1] = (uint8_t)(ws.ws_row >> 8);
                                        v[2] = (uint8_t)ws.ws_col;
                                        v[3] = (uint8_t)(ws.ws_col >> 8);
                                        send_frame(fd, VMCTL_RESIZE, sid, v, 4);
                                }
                        } else if (!heard) {
                                /* nothing runs in the guest yet: we just stop */
                                *ret_status = 128 + (int)si.ssi_signo;
                                return 0;
                        } else {
                                vmctl_put32(v, si.ssi_signo);
                                send_frame(fd, VMCTL_SIGNAL, sid, v, 4);
                        }
                }
        }
}

int service_vm_exec_run(const service_info *si, const service_vm_exec *x, int *ret_status,
                        char **ret_msg, forge_error **err)
{
        cleanup_close int fd = -1, sfd = -1;
        struct termios saved;
        bool raw = false;
        sigset_t set, old;
        uint32_t sid;
        int r;

        if (si->state != SERVICE_UP)
                return forge_error_make(err, 0, "run '%.12s' is not up", si->id);
        if (getrandom(&sid, sizeof(sid), 0) != sizeof(sid))
                return forge_error_make(err, errno, "getrandom");
        fd = connect_control(si, err);
        if (fd < 0)
                return -1;
        r = send_exec(fd, sid, x);
        if (r < 0)
                return forge_error_make(err, -r, "send the command to the VM");
        sigemptyset(&set);
        for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
                sigaddset(&set, forwarded[i]);
        sigaddset(&set, SIGWINCH);
        sigprocmask(SIG_BLOCK, &set, &old);
        sfd = signalfd(-1, &set, SFD_CLOEXEC);
        if (x->tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
                struct termios t = saved;
                cfmakeraw(&t);
                raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
        }
        r = relay(fd, sid, x, sfd, ret_status, ret_msg, err);
        if (raw)
                tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        sigprocmask(SIG_SETMASK, &old, NULL);
        return r;
}
