/* SPDX-License-Identifier: MIT */
/* forge login HOST [-u USER] [--password-stdin]; forge logout HOST. The password
 * is read from stdin or the terminal, never from argv. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/registry-cli.h"
#include "common/cleanup.h"

#define MAX_SECRET 4096

/* One line from fd (without its newline) into buf. */
static int read_line(int fd, char *buf, size_t len)
{
        size_t n = 0;

        while (n + 1 < len) {
                char ch;
                ssize_t r = read(fd, &ch, 1);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0 || ch == '\n')
                        break;
                buf[n++] = ch;
        }
        if (n > 0 && buf[n - 1] == '\r')
                n--;
        buf[n] = '\0';
        return (int)n;
}

static int prompt(const char *what, bool echo, char *buf, size_t len)
{
        cleanup_close int tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
        struct termios old, quiet;
        int n;

        if (tty < 0)
                return -1;
        if (write(tty, what, strlen(what)) < 0)
                return -1;
        if (!echo && tcgetattr(tty, &old) == 0) {
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t)ECHO;
                tcsetattr(tty, TCSAFLUSH, &quiet);
                n = read_line(tty, buf, len);
                tcsetattr(tty, TCSAFLUSH, &old);
                if (write(tty, "\n", 1) < 0)
                        return -1;
                return n;
        }
        return read_line(tty, buf, len);
}

static int host_arg(const char *cmd, const char *arg, char *host, size_t len)
{
        registry_ref r;
        forge_error *e = NULL;
        cleanup_free char *probe = NULL;

        /* HOST alone, or HOST/REPO: the host part counts */
        if (asprintf(&probe, "%.*s/x", (int)strcspn(arg, "/"), arg) < 0)
                return -1;
        if (!registry_ref_is_remote(probe) || registry_ref_parse(probe, &r, &e) < 0) {
                forge_error_release(&e);
                cli_usage_error(cmd,
                                "'%s' is not a registry host (expected HOST[:PORT], where "
                                "HOST has a '.' or ':' or is localhost)",
                                arg);
                return -1;
        }
        snprintf(host, len, "%s", r.host);
        registry_ref_release(&r);
        return 0;
}

static const char login_usage[] =
    "usage: forge login HOST [-u USER] [--password-stdin] [options]\n\n"
    "Checks the user name and password against the registry, then saves them in the\n"
    "auth file (created 0600). The password is read from stdin (--password-stdin)\n"
    "or the terminal, never from the command line.\n\n"
    "  -u, --username USER  the user (else asked on the terminal)\n"
    "  --password-stdin     read the password from stdin\n" CLI_REGISTRY_HELP;

static const cli_opts_cmd login_cmd = {"login", login_usage, 0, 1, 1, "missing HOST"};

int cmd_login(cli_ctx *ctx, int argc, char **argv)
{
        registry_opts ro;
        const char *username = NULL;
        bool from_stdin = false;
        const cli_opt opts[] = {
            CLI_VALUE("username", 'u', &username),
            CLI_FLAG("password-stdin", 0, &from_stdin),
            CLI_REGISTRY_OPTS(&ro),
        };
        forge_error *err = NULL;
        char user[256] = "", host[300];
        char *pw = NULL;
        cleanup_free char *file = NULL;
        int first, r;

        (void)ctx;
        r = cli_registry_opts_parse(&login_cmd, opts, ARRAY_SIZE(opts), argc, argv, &ro, NULL,
                                    &first);
        if (r != 0)
                return cli_opts_status(r);
        if (username != NULL)
                snprintf(user, sizeof(user), "%s", username);
        if (host_arg("login", argv[first], host, sizeof(host)) < 0)
                return FORGE_EXIT_USAGE;
        if (user[0] == '\0' && (from_stdin || prompt("Username: ", true, user, sizeof(user)) <= 0))
                return cli_usage_error("login", "no user name: give -u USER");
        pw = calloc(1, MAX_SECRET);
        if (pw == NULL)
                return cli_fail(&err);
        if (from_stdin ? read_line(0, pw, MAX_SECRET) <= 0
                       : prompt("Password: ", false, pw, MAX_SECRET) <= 0) {
                free(pw);
                return cli_usage_error("login", "no password read (%s)",
                                       from_stdin ? "stdin was empty"
                                                  : "no terminal: use --password-stdin");
        }
        file = ro.auth_file ? strdup(ro.auth_file) : registry_auth_file_path();
        r = registry_login_check(host, user, pw, &ro, &err);
        if (r == 0)
                r = registry_auth_store(file, host, user, pw, &err);
        explicit_bzero(pw, MAX_SECRET);
        free(pw);
        if (r < 0)
                return cli_fail(&err);
        fprintf(stderr, "logged in to %s (credentials in %s)\n", host, file);
        return 0;
}

static const char logout_usage[] = "usage: forge logout HOST [--authfile FILE]\n\n"
                                   "Removes HOST's credentials from the auth file.\n";

static const cli_opts_cmd logout_cmd = {"logout", logout_usage, 0, 1, 1, "missing HOST"};

int cmd_logout(cli_ctx *ctx, int argc, char **argv)
{
        const char *af = NULL;
        const cli_opt opts[] = {CLI_VALUE("authfile", 0, &af)};
        forge_error *err = NULL;
        cleanup_free char *file = NULL;
        char host[300];
        int first, r;

        (void)ctx;
        r = cli_opts_parse(&logout_cmd, opts, ARRAY_SIZE(opts), argc, argv, &first);
        if (r != 0)
                return cli_opts_status(r);
        if (host_arg("logout", argv[first], host, sizeof(host)) < 0)
                return FORGE_EXIT_USAGE;
        file = af ? strdup(af) : registry_auth_file_path();
        if (registry_auth_store(file, host, NULL, NULL, &err) < 0)
                return cli_fail(&err);
        fprintf(stderr, "logged out of %s\n", host);
        return 0;
}
