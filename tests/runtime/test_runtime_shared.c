/* SPDX-License-Identifier: MIT */
/*
 * The pieces the container runtime, the inits and the services share: a wait
 * status as an exit code (runtime/init/wait-status.h), the cgroup OOM
 * counter (over fake cgroup directories), and a signal taken from forge's
 * signalfd (session.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/container/container-internal.h"
#include "runtime/init/wait-status.h"
#include "testutil.h"

/* A real child that runs fn (and exits 99 if fn returns). */
static pid_t spawn(void (*fn)(void))
{
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                fn();
                _exit(99);
        }
        return pid;
}

/* Its status once it is gone. */
static int status_of(void (*fn)(void))
{
        pid_t pid = spawn(fn);
        int st;

        assert_int_equal(waitpid(pid, &st, 0), pid);
        return st;
}

static void exit_0(void)
{
        _exit(0);
}
static void exit_42(void)
{
        _exit(42);
}
static void exit_255(void)
{
        _exit(255);
}
static void die_term(void)
{
        signal(SIGTERM, SIG_DFL);
        raise(SIGTERM);
}
static void die_kill(void)
{
        raise(SIGKILL);
}

static void test_wait_status_code(void **state)
{
        (void)state;
        assert_int_equal(wait_status_code(status_of(exit_0)), 0);
        assert_int_equal(wait_status_code(status_of(exit_42)), 42);
        assert_int_equal(wait_status_code(status_of(exit_255)), 255);
        assert_int_equal(wait_status_code(status_of(die_term)), 128 + SIGTERM);
        assert_int_equal(wait_status_code(status_of(die_kill)), 128 + SIGKILL);
}

static void stop_self(void)
{
        raise(SIGSTOP);
}

static void test_wait_status_stopped(void **state)
{
        pid_t pid = spawn(stop_self);
        int st;

        (void)state;
        assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
        assert_true(WIFSTOPPED(st));
        /* neither an exit nor a death: 1 */
        assert_int_equal(wait_status_code(st), 1);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_int_equal(wait_status_code(st), 128 + SIGKILL);
}

static void test_oom_counted(void **state)
{
        char *dir = tu_tmpdir("oom");

        (void)state;
        /* v2's memory.events */
        tu_write_file(dir, "memory.events",
                      "low 0\nhigh 0\nmax 7\noom 1\noom_kill 0\noom_group_kill 0\n", 0644);
        assert_false(ctr_cgroup_oom_counted(dir, "memory.events"));
        tu_write_file(dir, "memory.events",
                      "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n", 0644);
        assert_true(ctr_cgroup_oom_counted(dir, "memory.events"));
        /* v1's memory.oom_control: "oom_kill_disable" and "under_oom" are
         * not the counter */
        tu_write_file(dir, "memory.oom_control", "oom_kill_disable 1\nunder_oom 1\noom_kill 0\n",
                      0644);
        assert_false(ctr_cgroup_oom_counted(dir, "memory.oom_control"));
        tu_write_file(dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
                      0644);
        assert_true(ctr_cgroup_oom_counted(dir, "memory.oom_control"));
        /* a file that is not one of those, a missing one: no OOM kill known */
        tu_write_file(dir, "garbage", "oom_kill\nnot a number\n", 0644);
        assert_false(ctr_cgroup_oom_counted(dir, "garbage"));
        assert_false(ctr_cgroup_oom_counted(dir, "missing"));
        tu_tmpdir_remove(dir);
}

static void test_oom_killed_no_memory(void **state)
{
        (void)state;
        /* no cgroup (no limit asked for): never an OOM kill */
        assert_false(ctr_cgroup_oom_killed(NULL));
}

static void test_signal_take(void **state)
{
        ctr_session s = CTR_SESSION_INIT;
        forge_error *err = NULL;

        (void)state;
        assert_int_equal(ctr_session_signals(&s, &err), 0);
        /* nothing pending */
        assert_int_equal(ctr_session_signal_take(s.sfd, -1), 0);
        raise(SIGUSR1);
        assert_int_equal(ctr_session_signal_take(s.sfd, -1), SIGUSR1);
        raise(SIGTERM);
        assert_int_equal(ctr_session_signal_take(s.sfd, -1), SIGTERM);
        /* SIGCHLD and SIGWINCH are forge's own, never forwarded */
        raise(SIGCHLD);
        assert_int_equal(ctr_session_signal_take(s.sfd, -1), 0);
        raise(SIGWINCH);
        assert_int_equal(ctr_session_signal_take(s.sfd, -1), 0);
        ctr_session_end(&s);
        /* the mask is back as it was */
        {
                sigset_t now;

                sigprocmask(SIG_SETMASK, NULL, &now);
                assert_false(sigismember(&now, SIGUSR1));
                assert_false(sigismember(&now, SIGTERM));
        }
}

static void wait_forever(void)
{
        for (;;)
                pause();
}

static void test_session_end_reaps(void **state)
{
        ctr_session s = CTR_SESSION_INIT;
        pid_t pid;
        int st;

        (void)state;
        pid = s.child = spawn(wait_forever);
        assert_int_equal(pipe(s.sock), 0);
        ctr_session_end(&s);
        /* its fds closed */
        assert_int_equal(fcntl(s.sock[0], F_GETFD), -1);
        assert_int_equal(fcntl(s.sock[1], F_GETFD), -1);
        /* killed and already reaped */
        assert_int_equal(waitpid(pid, &st, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_wait_status_code),
             cmocka_unit_test(test_wait_status_stopped), cmocka_unit_test(test_oom_counted),
             cmocka_unit_test(test_oom_killed_no_memory), cmocka_unit_test(test_signal_take),
             cmocka_unit_test(test_session_end_reaps))
