/* SPDX-License-Identifier: MIT */
/*
 * forge-testhelper: one static binary with subcommands, copied into test
 * images (crun's tests/init.c idea). Each subcommand prints plain
 * "key=value" lines so tests can assert on them.
 *
 *   true | false | exit N | echo ARGS... | args | env [NAME] | cwd | id |
 *   hostname | pid | cat | write PATH TEXT | read PATH | sleep SECONDS | kill-self SIG
 *
 * More subcommands (caps, mounts, escape attempts, memhog, forkbomb) are added
 * by the runtime tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

typedef int (*subcmd_fn)(int argc, char **argv);

static int c_true(int argc, char **argv)
{
        return 0;
}
static int c_false(int argc, char **argv)
{
        return 1;
}
static int c_exit(int argc, char **argv)
{
        return argc > 1 ? atoi(argv[1]) : 0;
}
static int c_echo(int argc, char **argv)
{
        for (int i = 1; i < argc; i++)
                printf("%s%s", i > 1 ? " " : "", argv[i]);
        printf("\n");
        return 0;
}
static int c_args(int argc, char **argv)
{
        printf("argc=%d\n", argc - 1);
        for (int i = 1; i < argc; i++)
                printf("arg%d=%s\n", i, argv[i]);
        return 0;
}
static int c_env(int argc, char **argv)
{
        if (argc > 1) {
                const char *v = getenv(argv[1]);
                if (v == NULL)
                        return 1;
                printf("%s=%s\n", argv[1], v);
                return 0;
        }
        for (char **e = environ; *e; e++)
                printf("%s\n", *e);
        return 0;
}
static int c_cwd(int argc, char **argv)
{
        char buf[4096];
        if (getcwd(buf, sizeof(buf)) == NULL)
                return 1;
        printf("cwd=%s\n", buf);
        return 0;
}
static int c_id(int argc, char **argv)
{
        gid_t groups[64];
        int n = getgroups(64, groups);
        printf("uid=%u\ngid=%u\neuid=%u\negid=%u\ngroups=", getuid(), getgid(), geteuid(),
               getegid());
        for (int i = 0; i < n; i++)
                printf("%s%u", i ? "," : "", groups[i]);
        printf("\n");
        return 0;
}
static int c_hostname(int argc, char **argv)
{
        char buf[256];
        if (gethostname(buf, sizeof(buf)) < 0)
                return 1;
        printf("hostname=%s\n", buf);
        return 0;
}
static int c_pid(int argc, char **argv)
{
        printf("pid=%d\nppid=%d\n", getpid(), getppid());
        return 0;
}
static int c_cat(int argc, char **argv)
{
        char buf[65536];
        ssize_t n;
        int fd = argc > 1 ? open(argv[1], O_RDONLY) : 0;
        if (fd < 0) {
                fprintf(stderr, "cat: %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                if (write(1, buf, (size_t)n) != n)
                        return 1;
        return n < 0 ? 1 : 0;
}
static int c_write(int argc, char **argv)
{
        int fd;
        if (argc < 3)
                return 2;
        fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
                printf("write=%s\n", strerror(errno));
                return 1;
        }
        if (write(fd, argv[2], strlen(argv[2])) < 0) {
                printf("write=%s\n", strerror(errno));
                return 1;
        }
        close(fd);
        printf("write=ok\n");
        return 0;
}
static int c_sleep(int argc, char **argv)
{
        sleep(argc > 1 ? (unsigned)atoi(argv[1]) : 1000000);
        return 0;
}
static int c_kill_self(int argc, char **argv)
{
        int sig = argc > 1 ? atoi(argv[1]) : SIGKILL;
        signal(sig, SIG_DFL);
        kill(getpid(), sig);
        pause();
        return 0;
}

static const struct {
        const char *name;
        subcmd_fn fn;
} subcmds[] = {
        {"true", c_true}, {"false", c_false},       {"exit", c_exit}, {"echo", c_echo},
        {"args", c_args}, {"env", c_env},           {"cwd", c_cwd},   {"id", c_id},
        {"hostname", c_hostname}, {"pid", c_pid},   {"cat", c_cat},   {"write", c_write},
        {"read", c_cat},  {"sleep", c_sleep},       {"kill-self", c_kill_self},
};

int main(int argc, char **argv)
{
        const char *base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];

        /* Called through a symlink named after a subcommand, or as
         * "forge-testhelper SUBCMD ...". */
        for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
                if (strcmp(base, subcmds[i].name) == 0)
                        return subcmds[i].fn(argc, argv);
        if (argc < 2) {
                fprintf(stderr, "usage: forge-testhelper SUBCOMMAND [ARGS]\n");
                return 2;
        }
        for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
                if (strcmp(argv[1], subcmds[i].name) == 0) {
                        int r = subcmds[i].fn(argc - 1, argv + 1);
                        fflush(stdout);
                        return r;
                }
        fprintf(stderr, "forge-testhelper: unknown subcommand '%s'\n", argv[1]);
        return 2;
}
