/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The control channel of a detached VM (docs/vm-protocol.md): frames between
 * `forge exec` on the host (through forge-vmm's control.sock and a
 * virtio-console port) and forge-vminit in the guest (/dev/hvc0). Shared by
 * both ends; libc only.
 *
 *   header (12 bytes, little endian): 'F' 'X' type flags session:u32 length:u32
 *   then length bytes of payload, at most VMCTL_MAX_PAYLOAD
 */

#include <stdint.h>
#include <string.h>

#define VMCTL_HDR_LEN 12
#define VMCTL_MAX_PAYLOAD 32768

enum {
        /* host -> guest */
        VMCTL_EXEC = 1,   /* u8 tty, u8 0, u16 rows, u16 cols, u16 0, u32 argc, u32 envc,
                             then NUL-terminated: user, workdir, argv..., env... */
        VMCTL_STDIN = 2,  /* data; empty: end of input */
        VMCTL_RESIZE = 3, /* u16 rows, u16 cols */
        VMCTL_SIGNAL = 4, /* u32 signal number */
        /* guest -> host */
        VMCTL_STARTED = 16, /* empty: the command runs */
        VMCTL_STDOUT = 17,  /* data */
        VMCTL_STDERR = 18,  /* data */
        VMCTL_EXIT = 19,    /* u32 status (0-255), then an optional message */
};

static inline void vmctl_put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t vmctl_get32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void vmctl_hdr_put(uint8_t *h, uint8_t type, uint32_t session, uint32_t len)
{
        h[0] = 'F';
        h[1] = 'X';
        h[2] = type;
        h[3] = 0;
        vmctl_put32(h + 4, session);
        vmctl_put32(h + 8, len);
}

/* 0 and the fields when h is a header, -1 when it does not start with the magic. */
static inline int vmctl_hdr_get(const uint8_t *h, uint8_t *type, uint32_t *session, uint32_t *len)
{
        if (h[0] != 'F' || h[1] != 'X')
                return -1;
        *type = h[2];
        *session = vmctl_get32(h + 4);
        *len = vmctl_get32(h + 8);
        return 0;
}
