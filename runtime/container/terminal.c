/* SPDX-License-Identifier: MIT */
/* The user's terminal while a container runs with -t. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "runtime/container/container-internal.h"

void ctr_terminal_set_size(int from_fd, int master)
{
        struct winsize ws;

        if (ioctl(from_fd, TIOCGWINSZ, &ws) == 0)
                ioctl(master, TIOCSWINSZ, &ws);
}

int ctr_terminal_raw(int fd, void *saved, size_t saved_len)
{
        struct termios t;

        if (saved_len < sizeof(t) || tcgetattr(fd, &t) < 0)
                return -1;
        memcpy(saved, &t, sizeof(t));
        cfmakeraw(&t);
        return tcsetattr(fd, TCSADRAIN, &t) < 0 ? -errno : 0;
}

void ctr_terminal_restore(int fd, const void *saved)
{
        tcsetattr(fd, TCSADRAIN, (const struct termios *)saved);
}
