/* SPDX-License-Identifier: MIT */
/*
 * service_start: creates a run and its supervisor.
 *
 *   forge (F) --fork--> A (setsid, fork, exit) --> supervisor S --fork--> workload W
 *
 * S is reparented away from F (double fork, own session) and survives it.
 * S owns the log (it reads W's stdout and stderr through a pipe and writes
 * them, rotated, to RUNS/ID/log), forwards the signals it gets to W and
 * records W's exit status in RUNS/ID/exit. W dies with S (PR_SET_PDEATHSIG);
 * a container's init dies with W in turn, so killing S ends everything.
 * W tells S "ready PID" (or execs) once the workload runs; S tells F, which
 * then returns. A workload that fails before it runs leaves nothing: S
 * sends its status and output to F and removes the run.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "runtime/init/wait-status.h"
#include "runtime/service/service-internal.h"
#include "store/store.h"

#define READY_FD 3
#define FAIL_OUTPUT_MAX (64 * 1024)

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* in the workload process */
static int workload_ready_fd = -1;
static char *workload_dir;

const char *service_workload_dir(void)
{
        return workload_dir;
}

bool service_in_workload(void)
{
        return workload_dir != NULL;
}

void service_ready(pid_t pid)
{
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "ready %d\n", (int)pid);

        if (workload_ready_fd >= 0) {
                fs_write_all(workload_ready_fd, buf, (size_t)n);
                close(workload_ready_fd);
                workload_ready_fd = -1;
        }
}

int service_file_put(const char *name, const void *buf, size_t len, forge_error **err)
{
        cleanup_close int dirfd = -1;

        if (workload_dir == NULL)
                return forge_error_make(err, EINVAL, "not in a detached run");
        dirfd = open(workload_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return forge_error_make(err, errno, "open '%s'", workload_dir);
        return fs_write_atomic(dirfd, name, buf, len, 0644, err);
}

static int new_id(char ret[SERVICE_ID_LEN + 1], forge_error **err)
{
        unsigned char raw[SERVICE_ID_LEN / 2];

        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
                return forge_error_make(err, errno, "getrandom");
        for (size_t i = 0; i < sizeof(raw); i++)
                sprintf(ret + 2 * i, "%02x", raw[i]);
        return 0;
}

static int config_write(int dirfd, const service_params *p, const char *id, forge_error **err)
{
        cleanup_json json_t *j =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", id, "name", p->name ? p->name : "",
                      "image", p->image ? p->image : "", "kind", p->kind, "command",
                      p->command ? p->command : "", "created", (json_int_t)time(NULL));
        cleanup_free char *s = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;

        if (s == NULL)
                return forge_error_make(err, ENOMEM, "config.json");
        return fs_write_atomic(dirfd, "config.json", s, strlen(s), 0644, err);
}

/* RUNS/ID with config.json and a state naming us, plus RUNS/names/NAME. */
static int run_create(const service_params *p, char id[SERVICE_ID_LEN + 1], int *ret_dirfd,
                      forge_error **err)
{
        cleanup_free char *names = fs_path_join(p->runs_dir, "names");
        cleanup_free char *dir = NULL;
        cleanup_close int dirfd = -1;
        service_pids pids = {.sup_pid = getpid()};

        if (p->name != NULL && !service_name_valid(p->name))
                return forge_error_usage(err,
                                         "bad name '%s': want [a-zA-Z0-9][a-zA-Z0-9._-]*, at most "
                                         "%d characters",
                                         p->name, SERVICE_NAME_MAX);
        if (names == NULL || fs_mkdir_p(names, 0700, err) < 0)
                return forge_error_prefix(err, "create the run directory '%s'", p->runs_dir);
        if (new_id(id, err) < 0)
                return -1;
        dir = fs_path_join(p->runs_dir, id);
        if (dir == NULL || mkdir(dir, 0700) < 0)
                return forge_error_make(err, errno, "create '%s'", dir ? dir : p->runs_dir);
        dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0 || service_proc_start_time(getpid(), &pids.sup_start) < 0 ||
            config_write(dirfd, p, id, err) < 0 || state_write(dirfd, &pids, err) < 0) {
                forge_error_make(err, errno, "create '%s'", dir);
                fs_rm_rf(dir, NULL);
                return -1;
        }
        if (p->name != NULL) {
                cleanup_free char *link = fs_path_join(names, p->name);

                /* symlink(2) is atomic: of two runs asking for one name, one gets EEXIST */
                if (link == NULL || symlink(id, link) < 0) {
                        int e = errno;
                        fs_rm_rf(dir, NULL);
                        if (e == EEXIST)
                                return forge_error_make(err, 0,
                                                        "the name '%s' is already in use (forge ps "
                                                        "-a; forge rm %s frees it)",
                                                        p->name, p->name);
                        return forge_error_make(err, e, "name the run '%s'", p->name);
                }
        }
        *ret_dirfd = take_fd(dirfd);
        return 0;
}

typedef struct supervisor {
        const service_params *p;
        const char *id;
        int dirfd;
        int notify_fd; /* to F; -1 once told */
        int log_fd;
        uint64_t log_size;
        uint64_t log_max;
        char *fail_out; /* output kept while not ready */
        size_t fail_len;
        service_pids pids;
        bool ready;
        bool failed;
        int cwd_fd;
} supervisor;

static void log_rotate(supervisor *s)
{
        close(s->log_fd);
        renameat(s->dirfd, "log", s->dirfd, "log.1");
        s->log_fd = openat(s->dirfd, "log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        s->log_size = 0;
}

static void log_write(supervisor *s, const char *buf, size_t n)
{
        if (!s->ready && s->fail_len < FAIL_OUTPUT_MAX) {
                size_t k = n < FAIL_OUTPUT_MAX - s->fail_len ? n : FAIL_OUTPUT_MAX - s->fail_len;
                memcpy(s->fail_out + s->fail_len, buf, k);
                s->fail_len += k;
        }
        while (n > 0) {
                size_t room = s->log_max - s->log_size, k = n < room ? n : room;

                if (s->log_fd >= 0 && fs_write_all(s->log_fd, buf, k) == 0)
                        s->log_size += k;
                else
                        s->log_size += k; /* a full disk drops output, never blocks the workload */
                buf += k;
                n -= k;
                if (s->log_size >= s->log_max)
                        log_rotate(s);
        }
}

/* W: stdio, signals, then the workload. */
static void __attribute__((noreturn))
workload_main(supervisor *s, service_workload_fn fn, void *data, int out_w, int ready_w,
              pid_t parent)
{
        sigset_t none;
        int devnull;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(125);
        signal(SIGPIPE, SIG_DFL);
        if (s->cwd_fd < 0 || fchdir(s->cwd_fd) < 0)
                _exit(125);
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(out_w, 2) < 0 ||
            dup2(ready_w, READY_FD) < 0)
                _exit(125);
        fcntl(READY_FD, F_SETFD, FD_CLOEXEC);
        syscall(SYS_close_range, READY_FD + 1, ~0U, 0);
        workload_ready_fd = READY_FD;
        workload_dir = NULL;
        if (asprintf(&workload_dir, "%s/%s", s->p->runs_dir, s->id) < 0)
                _exit(125);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
                signal(forwarded[i], SIG_DFL);
        {
                int status = fn(data);

                /* not started: says so, so that S never takes our exit for an exec */
                if (workload_ready_fd >= 0)
                        fs_write_all(workload_ready_fd, "fail\n", 5);
                _exit(status);
        }
}

static void tell_forge(supervisor *s, const char *msg, size_t len)
{
        if (s->notify_fd < 0)
                return;
        fs_write_all(s->notify_fd, msg, len);
        close(s->notify_fd);
        s->notify_fd = -1;
}

static void mark_ready(supervisor *s, pid_t init_pid)
{
        s->ready = true;
        s->pids.init_pid = init_pid;
        if (init_pid > 0) {
                service_proc_start_time(init_pid, &s->pids.init_start);
                state_cgroups_record(s->dirfd, init_pid);
        }
        state_write(s->dirfd, &s->pids, NULL);
        tell_forge(s, "ready\n", 6);
}

/* "ready PID" from W, or EOF: W has exec'd (ready) or is exiting (not). */
static void ready_input(supervisor *s, int *fd, bool w_alive)
{
        char buf[64];
        ssize_t n = read(*fd, buf, sizeof(buf) - 1);
        int pid = 0;

        if (n < 0 && errno == EINTR)
                return;
        if (n > 0) {
                buf[n] = '\0';
                if (sscanf(buf, "ready %d", &pid) == 1 && pid >= 0)
                        mark_ready(s, (pid_t)pid);
        } else if (!s->ready && !s->failed && w_alive) {
                /* EOF without a message: W exec'd (the fd is close-on-exec); a
                 * W that fails before it runs says "fail" first */
                mark_ready(s, 0);
        }
        if (n > 0 && !s->ready)
                s->failed = true;
        close(*fd);
        *fd = -1;
}

static void drain(supervisor *s, int fd)
{
        char buf[16384];
        ssize_t n;

        /* W is gone; a process it left holding the pipe must not keep us */
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                log_write(s, buf, (size_t)n);
}

static void finish(supervisor *s, int status)
{
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d\n", status);

        if (!s->ready) {
                char head[32];
                int k = snprintf(head, sizeof(head), "fail %d\n", status);

                /* gone before forge returns */
                run_dir_remove(s->p->runs_dir, s->id, s->p->name, NULL);
                if (s->notify_fd >= 0) {
                        fs_write_all(s->notify_fd, head, (size_t)k);
                        fs_write_all(s->notify_fd, s->fail_out, s->fail_len);
                }
                tell_forge(s, "", 0);
                return;
        }
        fs_write_atomic(s->dirfd, "exit", buf, (size_t)n, 0644, NULL);
        if (s->p->remove) {
                run_dir_remove(s->p->runs_dir, s->id, s->p->name, NULL);
        }
}

static int supervise_loop(supervisor *s, pid_t w, int out_r, int ready_r, int sfd)
{
        char buf[16384];
        int status = -1;

        while (status < 0) {
                struct pollfd pf[3] = {{sfd, POLLIN, 0}, {out_r, POLLIN, 0}, {ready_r, POLLIN, 0}};

                if (poll(pf, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pf[2].revents)
                        ready_input(s, &ready_r, true);
                if (pf[1].revents) {
                        ssize_t n = read(out_r, buf, sizeof(buf));

                        if (n > 0)
                                log_write(s, buf, (size_t)n);
                        else if (n == 0 || errno != EINTR)
                                out_r = -1;
                }
                if (pf[0].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        int st;

                        if (read(sfd, &si, sizeof(si)) != sizeof(si))
                                continue;
                        if (si.ssi_signo != SIGCHLD)
                                kill(w, (int)si.ssi_signo);
                        else if (waitpid(w, &st, WNOHANG) == w)
                                status = wait_status_code(st);
                }
        }
        if (ready_r >= 0)
                ready_input(s, &ready_r, false);
        if (out_r >= 0)
                drain(s, out_r);
        return status < 0 ? 125 : status;
}

/* Nothing of forge's (the store's lock, ...) stays open in the supervisor. */
static void close_others(int a, int b)
{
        int lo = a < b ? a : b, hi = a < b ? b : a;

        if (lo > 3)
                syscall(SYS_close_range, 3, lo - 1, 0);
        if (hi > lo + 1)
                syscall(SYS_close_range, lo + 1, hi - 1, 0);
        syscall(SYS_close_range, hi + 1, ~0U, 0);
}

static void __attribute__((noreturn))
supervisor_main(const service_params *p, const char *id, int dirfd, int notify_fd,
                service_workload_fn fn, void *data)
{
        supervisor s = {.p = p, .id = id, .dirfd = dirfd, .notify_fd = notify_fd};
        int out[2], rdy[2], sfd, devnull;
        sigset_t set;
        pid_t w;

        s.log_max = p->log_max ? p->log_max : SERVICE_LOG_MAX_DEFAULT;
        close_others(dirfd, notify_fd);
        s.fail_out = malloc(FAIL_OUTPUT_MAX);
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (s.fail_out == NULL || devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 ||
            dup2(devnull, 2) < 0)
                _exit(125);
        /* a gone forge must not end us through its end of the notify pipe */
        signal(SIGPIPE, SIG_IGN);
        /* W works where forge was started (relative SPEC, -v and --rootfs
         * paths); we hold no directory */
        s.cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (chdir("/") < 0)
                _exit(125);
        sigemptyset(&set);
        for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
                sigaddset(&set, forwarded[i]);
        sigaddset(&set, SIGCHLD);
        sigprocmask(SIG_BLOCK, &set, NULL);
        sfd = signalfd(-1, &set, SFD_CLOEXEC);
        s.log_fd = openat(dirfd, "log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        s.pids.sup_pid = getpid();
        if (sfd < 0 || s.log_fd < 0 ||
            service_proc_start_time(s.pids.sup_pid, &s.pids.sup_start) < 0 ||
            pipe2(out, O_CLOEXEC) < 0 || pipe2(rdy, O_CLOEXEC) < 0 ||
            state_write(dirfd, &s.pids, NULL) < 0) {
                finish(&s, 125);
                _exit(0);
        }
        w = fork();
        if (w < 0) {
                finish(&s, 125);
                _exit(0);
        }
        if (w == 0)
                workload_main(&s, fn, data, out[1], rdy[1], s.pids.sup_pid);
        close(out[1]);
        close(rdy[1]);
        close(s.cwd_fd);
        s.pids.work_pid = w;
        service_proc_start_time(w, &s.pids.work_start);
        state_write(dirfd, &s.pids, NULL);
        finish(&s, supervise_loop(&s, w, out[0], rdy[0], sfd));
        _exit(0);
}

/* F's side: "ready\n", or "fail N\n" and the output, then EOF. */
static int await_start(int fd, service_start_result *ret)
{
        size_t len = 0, cap = 4096;
        char *buf = malloc(cap);
        ssize_t n;

        if (buf == NULL)
                return -ENOMEM;
        for (;;) {
                if (len + 1 >= cap) {
                        char *nb = realloc(buf, cap *= 2);
                        if (nb == NULL)
                                break;
                        buf = nb;
                }
                n = read(fd, buf + len, cap - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        if (strncmp(buf, "ready\n", 6) == 0) {
                ret->started = true;
                free(buf);
                return 0;
        }
        ret->started = false;
        ret->status = 125;
        if (sscanf(buf, "fail %d", &ret->status) == 1) {
                char *nl = strchr(buf, '\n');
                memmove(buf, nl + 1, strlen(nl + 1) + 1);
                ret->output = buf;
        } else {
                free(buf);
        }
        return 0;
}

int service_start(const service_params *p, service_workload_fn fn, void *data,
                  service_start_result *ret, forge_error **err)
{
        service_start_result res = {0};
        cleanup_close int dirfd = -1;
        int notify[2];
        pid_t a;

        if (run_create(p, res.id, &dirfd, err) < 0)
                return -1;
        if (pipe2(notify, O_CLOEXEC) < 0) {
                forge_error_make(err, errno, "pipe");
                goto fail;
        }
        fflush(stdout);
        fflush(stderr);
        a = fork();
        if (a < 0) {
                forge_error_make(err, errno, "fork the supervisor");
                close(notify[0]);
                close(notify[1]);
                goto fail;
        }
        if (a == 0) {
                close(notify[0]);
                setsid();
                a = fork();
                if (a == 0)
                        supervisor_main(p, res.id, dirfd, notify[1], fn, data);
                _exit(a < 0 ? 1 : 0);
        }
        close(notify[1]);
        waitpid(a, NULL, 0);
        await_start(notify[0], &res);
        close(notify[0]);
        *ret = res;
        return 0;
fail:
        run_dir_remove(p->runs_dir, res.id, p->name, NULL);
        return -1;
}
