/* SPDX-License-Identifier: MIT */
/*
 * forge's side of a process it runs in a container (runtime_container_run's
 * init, runtime_container_exec's process): the signals it forwards, the pty
 * it relays, and the teardown both share.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/container/container-internal.h"
#include "runtime/init/wait-status.h"

const int ctr_forwarded_signals[CTR_N_FORWARDED] = {SIGINT,  SIGTERM, SIGHUP,
                                                    SIGQUIT, SIGUSR1, SIGUSR2};

int ctr_session_signals(ctr_session *s, forge_error **err)
{
        sigset_t set;

        sigemptyset(&set);
        for (size_t i = 0; i < CTR_N_FORWARDED; i++)
                sigaddset(&set, ctr_forwarded_signals[i]);
        sigaddset(&set, SIGCHLD);
        sigaddset(&set, SIGWINCH);
        if (sigprocmask(SIG_BLOCK, &set, &s->oldmask) < 0)
                return forge_error_make(err, errno, "block signals");
        s->masked = true;
        s->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (s->sfd < 0)
                return forge_error_make(err, errno, "signalfd");
        return 0;
}

int ctr_session_signal_take(int sfd, int master)
{
        struct signalfd_siginfo si;

        if (read(sfd, &si, sizeof(si)) != sizeof(si))
                return 0;
        if (si.ssi_signo == SIGWINCH && master >= 0)
                ctr_terminal_set_size(STDIN_FILENO, master);
        if (si.ssi_signo == SIGCHLD || si.ssi_signo == SIGWINCH)
                return 0;
        return (int)si.ssi_signo;
}

/* Copies what master has to stdout; returns master, or -1 once it is closed. */
static int pty_output(int master)
{
        char buf[8192];
        ssize_t n = read(master, buf, sizeof(buf));

        if (n > 0)
                fs_write_all(STDOUT_FILENO, buf, (size_t)n);
        else if (n < 0 && errno != EINTR && errno != EAGAIN)
                return -1; /* EIO: every slave is closed */
        return master;
}

/* What the process wrote to its terminal just before exiting. */
static void pty_drain(int master)
{
        char buf[8192];
        ssize_t n;

        fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
        while ((n = read(master, buf, sizeof(buf))) > 0)
                fs_write_all(STDOUT_FILENO, buf, (size_t)n);
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* With a grace period, SIGTERM and SIGINT always end the process, as `docker
 * stop` does: the first is forwarded; a second one, or the grace period
 * passing, kills it (a container's init: the whole pid namespace, a shell
 * ignoring SIGTERM too). */
typedef struct stop_state {
        int signo;        /* the first SIGTERM/SIGINT received, 0: none */
        int64_t deadline; /* ms, CLOCK_MONOTONIC */
        bool killed;
} stop_state;

static void on_signal(pid_t child, int signo, unsigned grace, stop_state *st)
{
        if (grace == 0 || (signo != SIGTERM && signo != SIGINT)) {
                kill(child, signo);
                return;
        }
        if (st->signo != 0) {
                kill(child, SIGKILL);
                st->killed = true;
                return;
        }
        st->signo = signo;
        st->deadline = now_ms() + (int64_t)grace * 1000;
        kill(child, signo);
}

static int poll_timeout(const stop_state *st)
{
        int64_t left;

        if (st->signo == 0 || st->killed)
                return -1;
        left = st->deadline - now_ms();
        return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

int ctr_session_relay(pid_t child, int sfd, int master, unsigned grace, int *ret_code)
{
        bool in_open = master >= 0, eof_pending = false;
        stop_state stop = {0};
        char in[8192];
        size_t in_len = 0, in_off = 0;

        /* Never block on the terminal: a workload that does not read its
         * input must not stop forge from relaying output and signals. */
        if (master >= 0) {
                ctr_terminal_set_size(STDIN_FILENO, master);
                fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
        }
        for (;;) {
                bool to_write = in_off < in_len || eof_pending;
                struct pollfd p[3] = {{sfd, POLLIN, 0},
                                      {master, (short)(POLLIN | (to_write ? POLLOUT : 0)), 0},
                                      {in_open && !to_write ? STDIN_FILENO : -1, POLLIN, 0}};
                int st;
                pid_t w = waitpid(child, &st, WNOHANG);

                if (w == child) {
                        *ret_code = wait_status_code(st);
                        /* killed by us: it died of the signal the user sent */
                        if (stop.killed && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
                                *ret_code = 128 + stop.signo;
                        if (master >= 0)
                                pty_drain(master);
                        break;
                }
                if (stop.signo != 0 && !stop.killed && poll_timeout(&stop) == 0) {
                        kill(child, SIGKILL);
                        stop.killed = true;
                }
                if (poll(p, master >= 0 ? 3 : 1, poll_timeout(&stop)) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[0].revents & POLLIN) {
                        int sig = ctr_session_signal_take(sfd, master);

                        if (sig != 0)
                                on_signal(child, sig, grace, &stop);
                }
                if (master >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
                        master = pty_output(master);
                if (master >= 0 && to_write && (p[1].revents & POLLOUT)) {
                        if (in_off < in_len) {
                                ssize_t n = write(master, in + in_off, in_len - in_off);

                                if (n > 0)
                                        in_off += (size_t)n;
                                if (in_off == in_len)
                                        in_off = in_len = 0;
                        } else if (write(master, "\x04", 1) == 1) {
                                eof_pending = false;
                        }
                }
                if (in_open && master >= 0 && !to_write &&
                    (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
                        ssize_t n = read(STDIN_FILENO, in, sizeof(in));

                        if (n > 0) {
                                in_len = (size_t)n;
                        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                                /* end of input: the terminal's EOF character */
                                eof_pending = true;
                                in_open = false;
                        }
                }
        }
        return 0;
}

void ctr_session_end(ctr_session *s)
{
        const int fds[] = {s->sock[0], s->sock[1], s->sfd, s->master};

        if (s->raw)
                ctr_terminal_restore(STDIN_FILENO, &s->saved_tio);
        if (s->child > 0) {
                kill(s->child, SIGKILL);
                waitpid(s->child, NULL, 0);
        }
        if (s->masked)
                sigprocmask(SIG_SETMASK, &s->oldmask, NULL);
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
                if (fds[i] >= 0)
                        close(fds[i]);
}
