/* SPDX-License-Identifier: MIT */
/* The user's terminal while a container runs with -t, and the container
 * child's side of it: the pty it hands to forge. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "runtime/container/container-internal.h"
#include "runtime/container/sync.h"

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

void ctr_terminal_pty_hand_over(uid_t uid)
{
        sync_msg msg;
        int master, slave, n, r, unlock = 0;
        char name[64];

        master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        sync_must(master, "open /dev/pts/ptmx in the container");
        sync_must(ioctl(master, TIOCSPTLCK, &unlock), "unlock the pty");
        sync_must(ioctl(master, TIOCGPTN, &n), "get the pty number");
        snprintf(name, sizeof(name), "/dev/pts/%d", n);
        slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        sync_must(slave, "open '%s'", name);
        sync_must(fchown(slave, uid, (gid_t)-1), "chown '%s'", name);
        /* before the workload can ask for it; later changes are relayed by
         * forge on SIGWINCH */
        ctr_terminal_set_size(STDIN_FILENO, slave);
        sync_msg_init(&msg, SYNC_PTY, 0, NULL);
        r = sync_send(SYNC_FD, &msg, master);
        if (r < 0) {
                errno = -r;
                sync_die("send the pty to forge");
        }
        close(master);
        for (int i = 0; i < 3; i++)
                sync_must(dup2(slave, i), "set up the pty as stdio");
        close(slave);
}
