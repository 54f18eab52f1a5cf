/* SPDX-License-Identifier: MIT */
/* libFuzzer: forge exec's parser of what a (hostile) guest sends on a VM's
 * control channel, fed in pieces of every size. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/service/service-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static vmctl_reader r;
        static int devnull = -1;
        size_t off = 0, step = size ? (size_t)data[0] % 64 + 1 : 1;

        if (devnull < 0)
                devnull = open("/dev/null", O_WRONLY);
        r.len = 0;
        while (off < size) {
                size_t n = size - off < step ? size - off : step;
                forge_error *err = NULL;
                char *msg = NULL;
                int st = 0, d;

                if (n > sizeof(r.buf) - r.len)
                        n = sizeof(r.buf) - r.len;
                memcpy(r.buf + r.len, data + off, n);
                r.len += n;
                off += n;
                d = vmctl_frames(&r, 0x01020304, devnull, devnull, &st, &msg, &err);
                free(msg);
                forge_error_release(&err);
                if (d != 0)
                        break;
                if (r.len == sizeof(r.buf))
                        break; /* cannot happen: a frame fits; stop rather than spin */
        }
        return 0;
}
