/* SPDX-License-Identifier: MIT */
/*
 * What forge does to a run from the outside: signals (through a pidfd of a
 * process whose start time was checked, so a reused pid is never hit),
 * waiting, stopping, removing, reading the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/service/service-internal.h"

int service_pidfd(pid_t pid, uint64_t start)
{
        uint64_t now;
        int fd;

        if (pid <= 0)
                return -ESRCH;
        fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return -errno;
        /* checked after the open: the pidfd now pins this very process */
        if (service_proc_start_time(pid, &now) < 0 || now != start) {
                close(fd);
                return -ESRCH;
        }
        return fd;
}

static int not_up(const service_info *si, forge_error **err)
{
        char st[32];

        return forge_error_make(err, 0, "run '%s' is not up (%s)", si->name[0] ? si->name : si->id,
                                service_state_text(si, st, sizeof(st)));
}

int service_kill(const service_info *si, int sig, forge_error **err)
{
        pid_t pid = si->init_pid > 0 ? si->init_pid : si->work_pid;
        uint64_t start = si->init_pid > 0 ? si->init_start : si->work_start;
        cleanup_close int fd = -1;

        if (si->state != SERVICE_UP)
                return not_up(si, err);
        fd = service_pidfd(pid, start);
        if (fd < 0)
                return not_up(si, err);
        if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0)
                return forge_error_make(err, errno, "signal run '%.12s'", si->id);
        return 0;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int service_wait(service_info *si, int timeout_ms, forge_error **err)
{
        int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;

        for (;;) {
                cleanup_close int fd = -1;
                int left = -1;

                if (service_refresh(si, err) < 0)
                        return -1;
                if (si->state != SERVICE_UP)
                        return 1;
                if (deadline >= 0) {
                        int64_t l = deadline - now_ms();
                        if (l <= 0)
                                return 0;
                        left = (int)l;
                }
                /* the supervisor writes the exit file, then exits */
                fd = service_pidfd(si->sup_pid, si->sup_start);
                if (fd < 0)
                        continue;
                {
                        struct pollfd p = {fd, POLLIN, 0};
                        if (poll(&p, 1, left) < 0 && errno != EINTR)
                                return forge_error_make(err, errno, "wait for run '%.12s'", si->id);
                }
        }
}

int service_stop(service_info *si, unsigned timeout_s, forge_error **err)
{
        int r;

        if (service_kill(si, SIGTERM, err) < 0)
                return -1;
        r = service_wait(si, (int)(timeout_s * 1000), err);
        if (r != 0)
                return r < 0 ? -1 : 0;
        if (service_kill(si, SIGKILL, NULL) < 0 && service_refresh(si, err) < 0)
                return -1;
        return service_wait(si, -1, err) < 0 ? -1 : 0;
}

int service_remove(const char *runs_dir, service_info *si, bool force, forge_error **err)
{
        if (si->state == SERVICE_UP) {
                if (!force)
                        return forge_error_make(err, 0,
                                                "run '%s' is up: stop it first, or forge rm -f",
                                                si->name[0] ? si->name : si->id);
                if (service_kill(si, SIGKILL, NULL) < 0 && service_refresh(si, err) < 0)
                        return -1;
                if (service_wait(si, -1, err) < 0)
                        return -1;
        }
        /* a run whose supervisor was killed could not clean its cgroups up */
        if (si->state == SERVICE_UNKNOWN)
                state_cgroups_remove(si->dir);
        return run_dir_remove(runs_dir, si->id, si->name, err);
}

/* ---- logs ---- */

static void tail_start(const char *buf, size_t len, long lines, size_t *ret_off)
{
        size_t i = len;
        long seen = 0;

        if (lines < 0) {
                *ret_off = 0;
                return;
        }
        /* a final line without a newline counts as a line */
        if (i > 0 && buf[i - 1] == '\n')
                i--;
        while (i > 0) {
                if (buf[i - 1] == '\n' && ++seen == lines)
                        break;
                i--;
        }
        if (lines == 0)
                i = len;
        *ret_off = i;
}

static int copy_rest(int fd, int out_fd)
{
        char buf[16384];
        ssize_t n;

        while ((n = read(fd, buf, sizeof(buf))) > 0)
                if (fs_write_all(out_fd, buf, (size_t)n) < 0)
                        return -1;
        return n < 0 ? -1 : 0;
}

/* log.1 then log, the last `tail` lines */
static int logs_dump(int dirfd, int out_fd, long tail, int *ret_fd, forge_error **err)
{
        cleanup_free char *old = NULL, *cur = NULL, *all = NULL;
        size_t old_len = 0, cur_len = 0, off;
        cleanup_close int fd = openat(dirfd, "log", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;

        if (fd < 0 && errno != ENOENT)
                return forge_error_make(err, errno, "open the log");
        if (fs_read_all(dirfd, "log.1", 1ULL << 31, &old, &old_len, NULL) < 0)
                old_len = 0;
        if (fd >= 0 && fstat(fd, &st) == 0) {
                cur = malloc((size_t)st.st_size + 1);
                if (cur == NULL)
                        return forge_error_make(err, ENOMEM, "read the log");
                while (cur_len < (size_t)st.st_size) {
                        ssize_t n = read(fd, cur + cur_len, (size_t)st.st_size - cur_len);
                        if (n <= 0)
                                break;
                        cur_len += (size_t)n;
                }
        }
        all = malloc(old_len + cur_len + 1);
        if (all == NULL)
                return forge_error_make(err, ENOMEM, "read the log");
        if (old_len)
                memcpy(all, old, old_len);
        if (cur_len)
                memcpy(all + old_len, cur, cur_len);
        tail_start(all, old_len + cur_len, tail, &off);
        if (fs_write_all(out_fd, all + off, old_len + cur_len - off) < 0)
                return forge_error_make(err, errno, "write the log");
        *ret_fd = take_fd(fd);
        return 0;
}

int service_logs(service_info *si, int out_fd, long tail, bool follow, forge_error **err)
{
        cleanup_close int dirfd = open(si->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        cleanup_close int fd = -1;

        if (dirfd < 0)
                return forge_error_make(err, errno, "run '%.12s'", si->id);
        if (logs_dump(dirfd, out_fd, tail, &fd, err) < 0)
                return -1;
        while (follow) {
                struct stat a, b;
                bool ended;

                if (service_wait(si, 200, err) < 0)
                        return -1;
                ended = si->state != SERVICE_UP;
                if (fd >= 0 && copy_rest(fd, out_fd) < 0)
                        return forge_error_make(err, errno, "write the log");
                /* rotated: the old file is read to its end, then the new one */
                if (fstatat(dirfd, "log", &b, AT_SYMLINK_NOFOLLOW) == 0 &&
                    (fd < 0 ||
                     (fstat(fd, &a) == 0 && (a.st_ino != b.st_ino || a.st_dev != b.st_dev)))) {
                        if (fd >= 0)
                                close(fd);
                        fd = openat(dirfd, "log", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                        if (fd >= 0 && copy_rest(fd, out_fd) < 0)
                                return forge_error_make(err, errno, "write the log");
                }
                if (ended)
                        break;
        }
        return 0;
}
