/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The container set-up protocol: forge, the container child (setup.c, or
 * exec.c's child for `forge exec`) and forge-init talk over one socket,
 * fd SYNC_FD in the child and in forge-init, in fixed-size typed messages
 * (as crun's sync_socket_message):
 *
 *   forge -> child       SYNC_GO           the child is in its cgroup: go on
 *   child -> forge       SYNC_PTY          the pty master rides along (SCM_RIGHTS)
 *   child -> forge       SYNC_ERROR        set-up failed: value errno, text what
 *   forge-init -> forge  SYNC_STARTED      the command runs
 *   forge-init -> forge  SYNC_EXEC_FAILED  it could not be executed: value errno
 *
 * One of the last three ends the exchange; EOF before it means the child
 * died while being set up.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYNC_FD 3

typedef enum sync_type {
        SYNC_GO = 1,
        SYNC_PTY,
        SYNC_ERROR,
        SYNC_STARTED,
        SYNC_EXEC_FAILED,
} sync_type;

#define SYNC_TEXT_MAX 1024

typedef struct sync_msg {
        uint32_t type;            /* sync_type */
        int32_t value;            /* errno for SYNC_ERROR (0: none) and SYNC_EXEC_FAILED */
        char text[SYNC_TEXT_MAX]; /* SYNC_ERROR's message, NUL-terminated */
} sync_msg;

/* Fills m; text (may be NULL) is cut to fit. */
void sync_msg_init(sync_msg *m, sync_type type, int value, const char *text);
/* Checks len bytes received as a message: the size, a known type, a value
 * that fits the type, a NUL-terminated text. Returns 0 or -EBADMSG. */
int sync_msg_decode(const void *buf, size_t len, sync_msg *ret);

/* Sends m, with pass_fd (>= 0) attached. Returns 0 or -errno. */
int sync_send(int sock, const sync_msg *m, int pass_fd);
/* Receives one message, and an fd that came with it into *ret_fd (-1 if
 * none; CLOEXEC). Returns 1, 0 at EOF before a message, or -errno
 * (-EBADMSG: a truncated or malformed message). */
int sync_recv(int sock, sync_msg *ret, int *ret_fd);

/* forge's side: what the exchange ended with. */
typedef struct sync_result {
        int master;                /* the pty master, or -1 */
        int exec_errno;            /* SYNC_EXEC_FAILED's errno; 0: started */
        char error[SYNC_TEXT_MAX]; /* SYNC_ERROR's message */
} sync_result;

/* Reads messages until one ends the exchange. While waiting, stop_fd (>= 0)
 * readable and stop(stop_fd) true abandon the wait. Returns 0 (started, or
 * exec_errno), -EPROTO (ret->error holds the child's message), -EPIPE (EOF
 * first: the child died), -ECANCELED (stopped), other -errno. */
int sync_result_read(int sock, int stop_fd, bool (*stop)(int fd), sync_result *ret);

/* In the child: reports "what: strerror(errno)" (errno 0: just what) to
 * forge on SYNC_FD as SYNC_ERROR and exits 125. */
void sync_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Runs expr; on < 0 reports the message with expr's errno and exits. */
#define sync_must(expr, ...)                                                                       \
        do {                                                                                       \
                errno = 0;                                                                         \
                if ((expr) < 0)                                                                    \
                        sync_die(__VA_ARGS__);                                                     \
        } while (0)
