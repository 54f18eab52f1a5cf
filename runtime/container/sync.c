/* SPDX-License-Identifier: MIT */
/* The container set-up protocol's codec (sync.h). Also linked into the static
 * forge-init, so it uses libc only. */
#include "runtime/container/sync.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void sync_msg_init(sync_msg *m, sync_type type, int value, const char *text)
{
        memset(m, 0, sizeof(*m));
        m->type = (uint32_t)type;
        m->value = value;
        if (text != NULL)
                snprintf(m->text, sizeof(m->text), "%s", text);
}

int sync_msg_decode(const void *buf, size_t len, sync_msg *ret)
{
        sync_msg m;

        if (len != sizeof(m))
                return -EBADMSG;
        memcpy(&m, buf, sizeof(m));
        if (memchr(m.text, '\0', sizeof(m.text)) == NULL)
                return -EBADMSG;
        switch ((sync_type)m.type) {
        case SYNC_GO:
        case SYNC_PTY:
        case SYNC_STARTED:
                if (m.value != 0)
                        return -EBADMSG;
                break;
        case SYNC_ERROR:
                if (m.value < 0)
                        return -EBADMSG;
                break;
        case SYNC_EXEC_FAILED:
                if (m.value <= 0)
                        return -EBADMSG;
                break;
        default:
                return -EBADMSG;
        }
        *ret = m;
        return 0;
}

int sync_send(int sock, const sync_msg *m, int pass_fd)
{
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {(void *)m, sizeof(*m)};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        size_t off = 0;

        if (pass_fd >= 0) {
                struct cmsghdr *c;

                msg.msg_control = cbuf;
                msg.msg_controllen = sizeof(cbuf);
                c = CMSG_FIRSTHDR(&msg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        while (off < sizeof(*m)) {
                ssize_t n;

                iov.iov_base = (char *)m + off;
                iov.iov_len = sizeof(*m) - off;
                n = sendmsg(sock, &msg, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                off += (size_t)n;
                /* the fd went with the first bytes */
                msg.msg_control = NULL;
                msg.msg_controllen = 0;
        }
        return 0;
}

int sync_recv(int sock, sync_msg *ret, int *ret_fd)
{
        char buf[sizeof(sync_msg)], cbuf[CMSG_SPACE(sizeof(int))];
        size_t len = 0;
        int fd = -1, r;

        while (len < sizeof(buf)) {
                struct iovec iov = {buf + len, sizeof(buf) - len};
                struct msghdr msg = {.msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = cbuf,
                                     .msg_controllen = sizeof(cbuf)};
                ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        goto fail;
                }
                if (n == 0) {
                        r = len == 0 ? 0 : -EBADMSG;
                        goto fail;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                            c->cmsg_len == CMSG_LEN(sizeof(int))) {
                                if (fd >= 0)
                                        close(fd);
                                memcpy(&fd, CMSG_DATA(c), sizeof(int));
                        }
                len += (size_t)n;
        }
        r = sync_msg_decode(buf, len, ret);
        if (r < 0)
                goto fail;
        if (ret_fd != NULL)
                *ret_fd = fd;
        else if (fd >= 0)
                close(fd);
        return 1;
fail:
        if (fd >= 0)
                close(fd);
        return r;
}

int sync_result_read(int sock, int stop_fd, bool (*stop)(int fd), sync_result *ret)
{
        ret->master = -1;
        ret->exec_errno = 0;
        ret->error[0] = '\0';
        for (;;) {
                struct pollfd p[2] = {{sock, POLLIN, 0}, {stop_fd, POLLIN, 0}};
                sync_msg m;
                int fd = -1, r;

                if (poll(p, stop_fd >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                /* a report already waiting goes first: a signal that comes
                 * once the workload runs (its "started" sent, not yet read)
                 * is the workload's, and stays queued for the relay */
                if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                        if (stop_fd >= 0 && (p[1].revents & POLLIN) && stop(stop_fd))
                                return -ECANCELED;
                        continue;
                }
                r = sync_recv(sock, &m, &fd);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -EPIPE;
                switch ((sync_type)m.type) {
                case SYNC_PTY:
                        if (fd < 0 || ret->master >= 0) {
                                if (fd >= 0)
                                        close(fd);
                                return -EBADMSG;
                        }
                        ret->master = fd;
                        continue;
                case SYNC_ERROR:
                        snprintf(ret->error, sizeof(ret->error), "%s", m.text);
                        r = -EPROTO;
                        break;
                case SYNC_EXEC_FAILED:
                        ret->exec_errno = m.value;
                        r = 0;
                        break;
                case SYNC_STARTED:
                        r = 0;
                        break;
                default: /* SYNC_GO goes the other way */
                        r = -EBADMSG;
                        break;
                }
                if (fd >= 0)
                        close(fd);
                return r;
        }
}

void sync_die(const char *fmt, ...)
{
        int e = errno;
        size_t n;
        sync_msg m;
        va_list ap;

        sync_msg_init(&m, SYNC_ERROR, e, NULL);
        va_start(ap, fmt);
        vsnprintf(m.text, sizeof(m.text), fmt, ap);
        va_end(ap);
        n = strlen(m.text);
        if (e != 0 && n < sizeof(m.text) - 1)
                snprintf(m.text + n, sizeof(m.text) - n, ": %s", strerror(e));
        (void)sync_send(SYNC_FD, &m, -1);
        _exit(125);
}
