/* SPDX-License-Identifier: MIT */
/* Unit tests of the run records (runtime/service/): start times of processes
 * with hostile names and of zombies, names, lookups, states from stale or
 * corrupt files, log tails across a rotation. */
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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fs.h"
#include "runtime/service/service-internal.h"
#include "testutil.h"

static char *runs;

static void put(const char *rel, const char *text)
{
        char *p = fs_path_join(runs, rel);
        FILE *f;

        assert_non_null(p);
        f = fopen(p, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        free(p);
}

static void mkrun(const char *id, const char *name)
{
        char *d = fs_path_join(runs, id), cfg[512];

        assert_int_equal(mkdir(d, 0700), 0);
        free(d);
        snprintf(cfg, sizeof(cfg),
                 "{\"id\":\"%s\",\"name\":\"%s\",\"image\":\"img\",\"kind\":\"container\","
                 "\"created\":1}",
                 id, name);
        {
                char rel[128];
                snprintf(rel, sizeof(rel), "%s/config.json", id);
                put(rel, cfg);
        }
}

static int setup(void **state)
{
        (void)state;
        runs = tu_tmpdir("svc-unit");
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        tu_tmpdir_remove(runs);
        return 0;
}

static void test_start_time_hostile_name(void **state)
{
        uint64_t a = 0, b = 0;
        int p[2];
        pid_t c;
        char x;

        (void)state;
        assert_int_equal(pipe(p), 0);
        c = fork();
        if (c == 0) {
                /* fields after the name must still be found */
                prctl(PR_SET_NAME, "a) 1 2 (3 4) ");
                if (write(p[1], "r", 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        assert_int_equal(read(p[0], &x, 1), 1);
        assert_int_equal(service_proc_start_time(c, &a), 0);
        assert_int_equal(service_proc_start_time(getpid(), &b), 0);
        assert_true(a >= b);
        assert_true(a > 0);
        kill(c, SIGKILL);
        /* a zombie has ended: not a start time any more */
        while (1) {
                char path[64], buf[512];
                FILE *f;
                snprintf(path, sizeof(path), "/proc/%d/stat", (int)c);
                f = fopen(path, "r");
                assert_non_null(f);
                assert_non_null(fgets(buf, sizeof(buf), f));
                fclose(f);
                if (strstr(buf, ") Z ") != NULL)
                        break;
                usleep(1000);
        }
        assert_int_equal(service_proc_start_time(c, &a), -ESRCH);
        waitpid(c, NULL, 0);
        assert_true(service_proc_start_time(c, &a) < 0);
        close(p[0]);
        close(p[1]);
}

static void test_names(void **state)
{
        char longname[200];
        static const char *const good[] = {"web", "a.b-c_1", NULL};
        static const char *const bad[] = {"", "-x", ".x", "a/b", "..", "a b", NULL};

        (void)state;
        tu_expect_predicate(service_name_valid, "service_name_valid", good, bad);
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_false(service_name_valid(longname));
}

#define ID_A "aa00000000000000000000000000000000000000000000000000000000000001"
#define ID_B "aa00000000000000000000000000000000000000000000000000000000000002"
#define ID_C "bb00000000000000000000000000000000000000000000000000000000000003"

static void test_find_and_states(void **state)
{
        forge_error *err = NULL;
        service_info si, *v = NULL;
        size_t n = 0;
        char names[4096], st[32];

        (void)state;
        snprintf(names, sizeof(names), "%s/names", runs);
        assert_int_equal(mkdir(names, 0700), 0);
        mkrun(ID_A, "one");
        mkrun(ID_B, "");
        mkrun(ID_C, "");
        put(ID_A "/exit", "42\n");
        /* state naming ourselves, but of another boot: not up */
        {
                char buf[256];
                uint64_t me;
                assert_int_equal(service_proc_start_time(getpid(), &me), 0);
                snprintf(buf, sizeof(buf), "boot 00000000-dead\nsup_pid %d\nsup_start %llu\n",
                         (int)getpid(), (unsigned long long)me);
                put(ID_B "/state", buf);
        }
        /* garbage state: no crash, not up */
        put(ID_C "/state", "sup_pid 99999999999999999999\nsup_start -1\n\x01\x02 zz\n");
        {
                char target[4200];
                snprintf(target, sizeof(target), "%s/one", names);
                assert_int_equal(symlink(ID_A, target), 0);
        }
        assert_int_equal(service_find(runs, "one", &si, &err), 0);
        assert_string_equal(si.id, ID_A);
        assert_int_equal(si.state, SERVICE_EXITED);
        assert_int_equal(si.status, 42);
        assert_string_equal(service_state_text(&si, st, sizeof(st)), "exited (42)");
        service_info_free(&si);
        /* an ambiguous prefix, a unique one, an unknown ref */
        assert_true(service_find(runs, "aa", &si, &err) < 0);
        assert_non_null(strstr(err->msg, "more than one"));
        forge_error_release(&err);
        assert_int_equal(service_find(runs, "bb", &si, &err), 0);
        assert_string_equal(si.id, ID_C);
        assert_int_equal(si.state, SERVICE_UNKNOWN);
        service_info_free(&si);
        assert_int_equal(service_find(runs, ID_B, &si, &err), 0);
        assert_int_equal(si.state, SERVICE_UNKNOWN);
        assert_string_equal(service_state_text(&si, st, sizeof(st)), "exited (unknown)");
        service_info_free(&si);
        assert_true(service_find(runs, "nosuch", &si, &err) < 0);
        assert_non_null(strstr(err->msg, "no run 'nosuch'"));
        forge_error_release(&err);
        /* an out-of-range exit status is no status */
        put(ID_A "/exit", "300\n");
        assert_int_equal(service_find(runs, "one", &si, &err), 0);
        assert_int_equal(si.state, SERVICE_UNKNOWN);
        service_info_free(&si);
        /* a corrupt config.json hides that run from the list, not the others */
        put(ID_B "/config.json", "{not json");
        assert_int_equal(service_list(runs, &v, &n, &err), 0);
        assert_int_equal(n, 2);
        service_list_free(v, n);
}

static void test_logs_tail(void **state)
{
        forge_error *err = NULL;
        service_info si;
        char out[] = "/tmp/forge-svc-out.XXXXXX", buf[256];
        int fd = mkstemp(out);
        ssize_t k;

        (void)state;
        mkrun(ID_A, "");
        put(ID_A "/log.1", "l1\nl2\nl3");
        put(ID_A "/log", "\nl4\nl5\n");
        put(ID_A "/exit", "0\n");
        assert_int_equal(service_find(runs, ID_A, &si, &err), 0);
        assert_int_equal(service_logs(&si, fd, 2, false, &err), 0);
        assert_int_equal(service_logs(&si, fd, 0, false, &err), 0);
        assert_int_equal(service_logs(&si, fd, 100, false, &err), 0);
        /* follow of an ended run returns */
        assert_int_equal(service_logs(&si, fd, 1, true, &err), 0);
        service_info_free(&si);
        k = pread(fd, buf, sizeof(buf) - 1, 0);
        assert_true(k > 0);
        buf[k] = '\0';
        assert_string_equal(buf, "l4\nl5\n"
                                 "l1\nl2\nl3\nl4\nl5\n"
                                 "l5\n");
        close(fd);
        unlink(out);
}

/* ---- the host's parser of what a guest sends on the control channel ---- */

static size_t frame(uint8_t *b, uint8_t type, uint32_t sid, const char *data, uint32_t len)
{
        vmctl_hdr_put(b, type, sid, len);
        memcpy(b + VMCTL_HDR_LEN, data, len);
        return VMCTL_HDR_LEN + len;
}

static void test_vmctl_frames(void **state)
{
        static vmctl_reader r;
        forge_error *err = NULL;
        char tmpl[] = "/tmp/forge-vmctl.XXXXXX", got[64];
        int fd = mkstemp(tmpl), status = -1;
        char *msg = NULL;
        uint8_t ex[8];

        (void)state;
        assert_true(fd >= 0);
        /* output of our session, another session's (skipped), then half an EXIT */
        r.len = 0;
        r.len += frame(r.buf + r.len, VMCTL_STARTED, 7, "", 0);
        r.len += frame(r.buf + r.len, VMCTL_STDOUT, 7, "ours ", 5);
        r.len += frame(r.buf + r.len, VMCTL_STDOUT, 9, "theirs", 6);
        r.len += frame(r.buf + r.len, VMCTL_STDERR, 7, "err", 3);
        vmctl_put32(ex, 3);
        memcpy(ex + 4, "oops", 4);
        r.len += frame(r.buf + r.len, VMCTL_EXIT, 7, (char *)ex, 8) - 5;
        assert_int_equal(vmctl_frames(&r, 7, fd, fd, &status, &msg, &err), 0);
        assert_int_equal(r.len, VMCTL_HDR_LEN + 3); /* the partial frame stays */
        memcpy(r.buf + r.len, ex + 3, 5);
        r.len += 5;
        assert_int_equal(vmctl_frames(&r, 7, fd, fd, &status, &msg, &err), 1);
        assert_int_equal(status, 3);
        assert_string_equal(msg, "oops");
        free(msg);
        assert_int_equal(pread(fd, got, sizeof(got), 0), 8);
        assert_memory_equal(got, "ours err", 8);
        /* hostile: bad magic, oversized, unknown type, short exit */
        r.len = frame(r.buf, VMCTL_STDOUT, 7, "x", 1);
        r.buf[0] = 'Z';
        assert_int_equal(vmctl_frames(&r, 7, fd, fd, &status, NULL, &err), -1);
        forge_error_release(&err);
        vmctl_hdr_put(r.buf, VMCTL_STDOUT, 7, VMCTL_MAX_PAYLOAD + 1);
        r.len = VMCTL_HDR_LEN;
        assert_int_equal(vmctl_frames(&r, 7, fd, fd, &status, NULL, &err), -1);
        assert_non_null(strstr(err->msg, "bytes"));
        forge_error_release(&err);
        r.len = frame(r.buf, 99, 7, "", 0);
        assert_int_equal(vmctl_frames(&r, 7, fd, fd, &status, NULL, &err), -1);
        assert_non_null(strstr(err->msg, "unknown"));
        forge_error_release(&err);
        r.len = frame(r.buf, VMCTL_EXIT, 7, "ab", 2);
        assert_int_equal(vmctl_frames(&r, 7, fd, fd, &status, NULL, &err), -1);
        forge_error_release(&err);
        /* a guest may not send host-to-guest types */
        r.len = frame(r.buf, VMCTL_EXEC, 7, "", 0);
        assert_int_equal(vmctl_frames(&r, 7, fd, fd, &status, NULL, &err), -1);
        forge_error_release(&err);
        close(fd);
        unlink(tmpl);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_start_time_hostile_name),
             cmocka_unit_test(test_names),
             cmocka_unit_test_setup_teardown(test_find_and_states, setup, teardown),
             cmocka_unit_test_setup_teardown(test_logs_tail, setup, teardown),
             cmocka_unit_test(test_vmctl_frames))
