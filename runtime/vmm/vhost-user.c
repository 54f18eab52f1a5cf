/* SPDX-License-Identifier: MIT */
/*
 * The front-end side of the vhost-user protocol (QEMU's docs/interop/
 * vhost-user.rst) over a connected UNIX stream socket: forge-vmm tells a
 * back-end (virtiofsd) where guest memory and the rings are and hands it the
 * eventfds; the back-end then serves the queues itself. The back-end is a
 * separate, less trusted process: every reply is checked (request code,
 * flags, size, no file descriptors) and every wait is bounded.
 */
#include "runtime/vmm/vmm-fs.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"

#define VHU_VERSION 0x1
#define VHU_FLAG_REPLY 0x4
#define VHU_HDR_SIZE 12
#define VHU_MAX_PAYLOAD 256        /* the largest reply forge reads is 8 bytes */
#define VHU_REPLY_TIMEOUT_MS 20000 /* virtiofsd starts slowly on a loaded or nested host */
#define VHU_VRING_NOFD (1ULL << 8)

struct vhu {
        int fd;
        int timeout_ms;
};

int vhu_new(int sock_fd, vhu **ret)
{
        vhu *u = calloc(1, sizeof(*u));

        if (u == NULL)
                return -1;
        u->fd = sock_fd;
        u->timeout_ms = VHU_REPLY_TIMEOUT_MS;
        *ret = u;
        return 0;
}

void vhu_set_timeout(vhu *u, int ms)
{
        u->timeout_ms = ms;
}

void vhu_free(vhu *u)
{
        if (u == NULL)
                return;
        cleanup_close_fn(&u->fd);
        free(u);
}

int vhu_encode(uint8_t *buf, size_t size, uint32_t request, const void *payload, uint32_t len)
{
        if (size < VHU_HDR_SIZE || len > size - VHU_HDR_SIZE)
                return -1;
        memcpy(buf, &request, 4);
        memcpy(buf + 4, &(uint32_t){VHU_VERSION}, 4);
        memcpy(buf + 8, &len, 4);
        if (len)
                memcpy(buf + VHU_HDR_SIZE, payload, len);
        return (int)(VHU_HDR_SIZE + len);
}

static int send_msg(vhu *u, uint32_t request, const void *payload, uint32_t len, const int *fds,
                    unsigned n_fds, forge_error **err)
{
        uint8_t buf[VHU_HDR_SIZE + sizeof(struct vhu_mem_table)];
        union {
                struct cmsghdr h;
                uint8_t b[CMSG_SPACE(sizeof(int) * VHU_MAX_REGIONS)];
        } ctl;
        struct iovec iov;
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        int n = vhu_encode(buf, sizeof(buf), request, payload, len);
        ssize_t w;

        if (n < 0 || n_fds > VHU_MAX_REGIONS)
                return forge_error_make(err, EINVAL, "vhost-user request %u: too large", request);
        iov = (struct iovec){buf, (size_t)n};
        if (n_fds) {
                memset(&ctl, 0, sizeof(ctl));
                m.msg_control = ctl.b;
                m.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&m);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        do
                w = sendmsg(u->fd, &m, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (w != n)
                return forge_error_make(err, w < 0 ? errno : EPIPE, "vhost-user request %u",
                                        request);
        return 0;
}

static void close_passed_fds(struct msghdr *m)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
                    c->cmsg_len < CMSG_LEN(0))
                        continue;
                size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        close(fd);
                }
        }
}

/* Reads exactly len bytes within the timeout; the first read may carry fds. */
static int read_full(vhu *u, uint8_t *buf, size_t len, bool *fds_seen)
{
        size_t done = 0;

        while (done < len) {
                struct pollfd p = {u->fd, POLLIN, 0};
                union {
                        struct cmsghdr h;
                        uint8_t b[CMSG_SPACE(sizeof(int) * 16)];
                } ctl;
                struct iovec iov = {buf + done, len - done};
                struct msghdr m = {.msg_iov = &iov,
                                   .msg_iovlen = 1,
                                   .msg_control = ctl.b,
                                   .msg_controllen = sizeof(ctl.b)};
                int r = poll(&p, 1, u->timeout_ms);
                ssize_t n;

                if (r < 0 && errno == EINTR)
                        continue;
                if (r == 0)
                        return -ETIMEDOUT;
                if (r < 0)
                        return -errno;
                n = recvmsg(u->fd, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return -errno;
                if (m.msg_controllen > 0) {
                        close_passed_fds(&m);
                        *fds_seen = true;
                }
                if (m.msg_flags & MSG_CTRUNC)
                        *fds_seen = true;
                if (n == 0)
                        return -EPIPE;
                done += (size_t)n;
        }
        return 0;
}

int vhu_decode_reply(const uint8_t *hdr, uint32_t request, uint32_t want_len)
{
        uint32_t req, flags, size;

        memcpy(&req, hdr, 4);
        memcpy(&flags, hdr + 4, 4);
        memcpy(&size, hdr + 8, 4);
        if (req != request || (flags & 0x3) != VHU_VERSION || !(flags & VHU_FLAG_REPLY) ||
            size != want_len)
                return -1;
        return 0;
}

static int recv_reply(vhu *u, uint32_t request, void *payload, uint32_t len, forge_error **err)
{
        uint8_t hdr[VHU_HDR_SIZE], body[VHU_MAX_PAYLOAD];
        bool fds = false;
        uint32_t size;
        int r = read_full(u, hdr, sizeof(hdr), &fds);

        if (r < 0)
                return forge_error_make(err, -r, "vhost-user request %u: no reply", request);
        memcpy(&size, hdr + 8, 4);
        if (size > VHU_MAX_PAYLOAD)
                return forge_error_make(err, EPROTO, "vhost-user request %u: reply of %u bytes",
                                        request, size);
        if (size && (r = read_full(u, body, size, &fds)) < 0)
                return forge_error_make(err, -r, "vhost-user request %u: short reply", request);
        if (fds)
                return forge_error_make(err, EPROTO,
                                        "vhost-user request %u: the back-end sent file descriptors",
                                        request);
        if (vhu_decode_reply(hdr, request, len) < 0)
                return forge_error_make(err, EPROTO, "vhost-user request %u: malformed reply",
                                        request);
        memcpy(payload, body, len);
        return 0;
}

static int get_u64(vhu *u, uint32_t request, uint64_t *ret, forge_error **err)
{
        uint64_t v;

        if (send_msg(u, request, NULL, 0, NULL, 0, err) < 0 ||
            recv_reply(u, request, &v, 8, err) < 0)
                return -1;
        *ret = v;
        return 0;
}

int vhu_set_owner(vhu *u, forge_error **err)
{
        return send_msg(u, VHU_SET_OWNER, NULL, 0, NULL, 0, err);
}

int vhu_get_features(vhu *u, uint64_t *ret, forge_error **err)
{
        return get_u64(u, VHU_GET_FEATURES, ret, err);
}

int vhu_set_features(vhu *u, uint64_t features, forge_error **err)
{
        return send_msg(u, VHU_SET_FEATURES, &features, 8, NULL, 0, err);
}

int vhu_set_mem_table(vhu *u, const struct vhu_region *r, unsigned n, const int *fds,
                      forge_error **err)
{
        struct vhu_mem_table t = {.nregions = n};

        if (n == 0 || n > VHU_MAX_REGIONS)
                return forge_error_make(err, EINVAL, "vhost-user: %u memory regions", n);
        memcpy(t.regions, r, n * sizeof(*r));
        return send_msg(u, VHU_SET_MEM_TABLE, &t, (uint32_t)(8 + n * sizeof(*r)), fds, n, err);
}

int vhu_set_vring_num(vhu *u, unsigned index, unsigned num, forge_error **err)
{
        uint32_t s[2] = {index, num};
        return send_msg(u, VHU_SET_VRING_NUM, s, 8, NULL, 0, err);
}

int vhu_set_vring_base(vhu *u, unsigned index, unsigned base, forge_error **err)
{
        uint32_t s[2] = {index, base};
        return send_msg(u, VHU_SET_VRING_BASE, s, 8, NULL, 0, err);
}

int vhu_set_vring_addr(vhu *u, const struct vhu_vring_addr *a, forge_error **err)
{
        return send_msg(u, VHU_SET_VRING_ADDR, a, sizeof(*a), NULL, 0, err);
}

static int set_vring_fd(vhu *u, uint32_t request, unsigned index, int fd, forge_error **err)
{
        uint64_t v = index & 0xff;

        if (fd < 0)
                v |= VHU_VRING_NOFD;
        return send_msg(u, request, &v, 8, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0, err);
}

int vhu_set_vring_kick(vhu *u, unsigned index, int fd, forge_error **err)
{
        return set_vring_fd(u, VHU_SET_VRING_KICK, index, fd, err);
}

int vhu_set_vring_call(vhu *u, unsigned index, int fd, forge_error **err)
{
        return set_vring_fd(u, VHU_SET_VRING_CALL, index, fd, err);
}

int vhu_get_vring_base(vhu *u, unsigned index, uint32_t *ret, forge_error **err)
{
        uint32_t s[2] = {index, 0};

        if (send_msg(u, VHU_GET_VRING_BASE, s, 8, NULL, 0, err) < 0 ||
            recv_reply(u, VHU_GET_VRING_BASE, s, 8, err) < 0)
                return -1;
        if (s[0] != index)
                return forge_error_make(
                    err, EPROTO, "vhost-user: ring state of ring %u for ring %u", s[0], index);
        *ret = s[1];
        return 0;
}
