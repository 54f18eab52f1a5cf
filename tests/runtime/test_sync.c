/* SPDX-License-Identifier: MIT */
/* The container set-up protocol (runtime/container/sync.h): the codec's
 * checks, messages split across reads, an fd passed along, the exchange as
 * forge reads it and a child's sync_die. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/container/sync.h"
#include "testutil.h"

static void pair(int sv[2])
{
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void decode_round_trip(void **state)
{
        static const sync_type types[] = {SYNC_GO, SYNC_PTY, SYNC_STARTED};
        char long_text[3000];
        sync_msg m, d;

        (void)state;
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
                sync_msg_init(&m, types[i], 0, NULL);
                assert_int_equal(sync_msg_decode(&m, sizeof(m), &d), 0);
                assert_int_equal(d.type, types[i]);
                assert_string_equal(d.text, "");
        }
        sync_msg_init(&m, SYNC_EXEC_FAILED, ENOENT, NULL);
        assert_int_equal(sync_msg_decode(&m, sizeof(m), &d), 0);
        assert_int_equal(d.value, ENOENT);
        /* a message longer than the text field is cut, still terminated */
        memset(long_text, 'x', sizeof(long_text) - 1);
        long_text[sizeof(long_text) - 1] = '\0';
        sync_msg_init(&m, SYNC_ERROR, EPERM, long_text);
        assert_int_equal(sync_msg_decode(&m, sizeof(m), &d), 0);
        assert_int_equal(strlen(d.text), SYNC_TEXT_MAX - 1);
        assert_int_equal(d.value, EPERM);
}

static void decode_rejects(void **state)
{
        sync_msg m, d;

        (void)state;
        sync_msg_init(&m, SYNC_STARTED, 0, NULL);
        assert_int_equal(sync_msg_decode(&m, sizeof(m) - 1, &d), -EBADMSG);
        assert_int_equal(sync_msg_decode(&m, 0, &d), -EBADMSG);
        m.type = 0;
        assert_int_equal(sync_msg_decode(&m, sizeof(m), &d), -EBADMSG);
        m.type = 99;
        assert_int_equal(sync_msg_decode(&m, sizeof(m), &d), -EBADMSG);
        /* values that do not fit the type */
        sync_msg_init(&m, SYNC_GO, 1, NULL);
        assert_int_equal(sync_msg_decode(&m, sizeof(m), &d), -EBADMSG);
        sync_msg_init(&m, SYNC_EXEC_FAILED, 0, NULL);
        assert_int_equal(sync_msg_decode(&m, sizeof(m), &d), -EBADMSG);
        sync_msg_init(&m, SYNC_ERROR, -1, "x");
        assert_int_equal(sync_msg_decode(&m, sizeof(m), &d), -EBADMSG);
        /* a text without its NUL */
        sync_msg_init(&m, SYNC_ERROR, 0, NULL);
        memset(m.text, 'a', sizeof(m.text));
        assert_int_equal(sync_msg_decode(&m, sizeof(m), &d), -EBADMSG);
}

static void send_recv_with_fd(void **state)
{
        int sv[2], p[2], fd = -1;
        struct stat a, b;
        sync_msg m, got;

        (void)state;
        pair(sv);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        sync_msg_init(&m, SYNC_PTY, 0, NULL);
        assert_int_equal(sync_send(sv[0], &m, p[0]), 0);
        assert_int_equal(sync_recv(sv[1], &got, &fd), 1);
        assert_int_equal(got.type, SYNC_PTY);
        assert_true(fd >= 0 && fd != p[0]);
        assert_int_equal(fstat(fd, &a), 0);
        assert_int_equal(fstat(p[0], &b), 0);
        assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        close(fd);
        /* without an fd: -1 */
        sync_msg_init(&m, SYNC_STARTED, 0, NULL);
        assert_int_equal(sync_send(sv[0], &m, -1), 0);
        assert_int_equal(sync_recv(sv[1], &got, &fd), 1);
        assert_int_equal(fd, -1);
        /* EOF before a message */
        close(sv[0]);
        assert_int_equal(sync_recv(sv[1], &got, &fd), 0);
        close(sv[1]);
        close(p[0]);
        close(p[1]);
}

static void split_and_truncated(void **state)
{
        int sv[2];
        sync_msg m, got;
        const char *bytes = (const char *)&m;

        (void)state;
        pair(sv);
        sync_msg_init(&m, SYNC_ERROR, EACCES, "mount point '/x'");
        /* arrives in three pieces: reassembled */
        assert_int_equal(write(sv[0], bytes, 5), 5);
        assert_int_equal(write(sv[0], bytes + 5, 600), 600);
        assert_int_equal(write(sv[0], bytes + 605, sizeof(m) - 605), (ssize_t)(sizeof(m) - 605));
        assert_int_equal(sync_recv(sv[1], &got, NULL), 1);
        assert_int_equal(got.value, EACCES);
        assert_string_equal(got.text, "mount point '/x'");
        /* cut short by the sender's death */
        assert_int_equal(write(sv[0], bytes, 100), 100);
        close(sv[0]);
        assert_int_equal(sync_recv(sv[1], &got, NULL), -EBADMSG);
        close(sv[1]);
}

static bool always_stop(int fd)
{
        (void)fd;
        return true;
}

static void result_read(void **state)
{
        int sv[2], p[2];
        sync_result r;
        sync_msg m;

        (void)state;
        /* a pty, then started */
        pair(sv);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        sync_msg_init(&m, SYNC_PTY, 0, NULL);
        assert_int_equal(sync_send(sv[0], &m, p[1]), 0);
        sync_msg_init(&m, SYNC_STARTED, 0, NULL);
        assert_int_equal(sync_send(sv[0], &m, -1), 0);
        assert_int_equal(sync_result_read(sv[1], -1, NULL, &r), 0);
        assert_true(r.master >= 0);
        assert_int_equal(r.exec_errno, 0);
        close(r.master);
        /* the command could not be executed */
        sync_msg_init(&m, SYNC_EXEC_FAILED, ENOENT, NULL);
        assert_int_equal(sync_send(sv[0], &m, -1), 0);
        assert_int_equal(sync_result_read(sv[1], -1, NULL, &r), 0);
        assert_int_equal(r.exec_errno, ENOENT);
        assert_int_equal(r.master, -1);
        /* set-up failed */
        sync_msg_init(&m, SYNC_ERROR, 0, "the image's '/proc' is not a directory");
        assert_int_equal(sync_send(sv[0], &m, -1), 0);
        assert_int_equal(sync_result_read(sv[1], -1, NULL, &r), -EPROTO);
        assert_string_equal(r.error, "the image's '/proc' is not a directory");
        /* a GO sent the wrong way is a protocol error */
        sync_msg_init(&m, SYNC_GO, 0, NULL);
        assert_int_equal(sync_send(sv[0], &m, -1), 0);
        assert_int_equal(sync_result_read(sv[1], -1, NULL, &r), -EBADMSG);
        /* a stop request while nothing comes */
        assert_int_equal(write(p[1], "s", 1), 1);
        assert_int_equal(sync_result_read(sv[1], p[0], always_stop, &r), -ECANCELED);
        /* the child died */
        close(sv[0]);
        assert_int_equal(sync_result_read(sv[1], -1, NULL, &r), -EPIPE);
        close(sv[1]);
        close(p[0]);
        close(p[1]);
}

static void die_reports_and_exits(void **state)
{
        int sv[2], st;
        sync_result r;
        pid_t pid;

        (void)state;
        pair(sv);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (dup2(sv[1], SYNC_FD) < 0)
                        _exit(1);
                sync_must(open("/nonexistent/forge-sync-test", O_RDONLY), "open '%s'", "x");
                _exit(0);
        }
        close(sv[1]);
        assert_int_equal(sync_result_read(sv[0], -1, NULL, &r), -EPROTO);
        assert_string_equal(r.error, "open 'x': No such file or directory");
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 125);
        close(sv[0]);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(decode_round_trip), cmocka_unit_test(decode_rejects),
             cmocka_unit_test(send_recv_with_fd), cmocka_unit_test(split_and_truncated),
             cmocka_unit_test(result_read), cmocka_unit_test(die_reports_and_exits))
