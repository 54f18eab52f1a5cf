/* SPDX-License-Identifier: MIT */
/*
 * What the virtio unit tests and fuzz targets share: little-endian loads and
 * stores into fake guest memory, typed BAR accessors for a device, and the
 * read of a vhost-user message header with the fds passed along with it.
 * Header-only and without cmocka, so the fuzz targets can use it too.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static inline uint16_t rd16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t rd32(const uint8_t *p)
{
        return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}
static inline uint64_t rd64(const uint8_t *p)
{
        return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static inline void wr16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}
static inline void wr32(uint8_t *p, uint32_t v)
{
        wr16(p, (uint16_t)v);
        wr16(p + 2, (uint16_t)(v >> 16));
}
static inline void wr64(uint8_t *p, uint64_t v)
{
        wr32(p, (uint32_t)v);
        wr32(p + 4, (uint32_t)(v >> 32));
}

/* Defines write(dev, off, v, len) and read(dev, off, len) for a device of
 * type whose PCI function pci_of(dev) gives: through the transport's
 * virtio_pci_bar_access, with the value in the 8-byte little-endian buffer it
 * takes. */
#define VMM_TEST_BAR_ACCESSORS(write, read, type, pci_of)                                          \
        static void write(type *d, uint64_t off, uint64_t v, unsigned len)                         \
        {                                                                                          \
                uint8_t b[8];                                                                      \
                wr64(b, v);                                                                        \
                virtio_pci_bar_access(pci_of(d), off, b, len, true);                               \
        }                                                                                          \
        static uint64_t read(type *d, uint64_t off, unsigned len)                                  \
        {                                                                                          \
                uint8_t b[8] = {0};                                                                \
                virtio_pci_bar_access(pci_of(d), off, b, len, false);                              \
                return rd64(b);                                                                    \
        }

#define VHU_TEST_MAX_FDS 8

/* Receives one vhost-user message header (12 bytes, all of it or nothing)
 * and the fds sent with it, at most VHU_TEST_MAX_FDS, stored in fds (close
 * on exec). Returns what recvmsg(2) returned; the payload is still to read. */
static inline ssize_t vhu_test_recv_hdr(int fd, uint8_t hdr[12], int fds[VHU_TEST_MAX_FDS],
                                        unsigned *ret_n_fds)
{
        union {
                struct cmsghdr h;
                uint8_t b[CMSG_SPACE(sizeof(int) * VHU_TEST_MAX_FDS)];
        } ctl;
        struct iovec iov = {hdr, 12};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = ctl.b,
                           .msg_controllen = sizeof(ctl.b)};
        unsigned n_fds = 0;
        ssize_t r = recvmsg(fd, &m, MSG_WAITALL | MSG_CMSG_CLOEXEC);

        if (r > 0)
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
                        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < n && n_fds < VHU_TEST_MAX_FDS; i++)
                                memcpy(&fds[n_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                }
        *ret_n_fds = n_fds;
        return r;
}
