/* SPDX-License-Identifier: MIT */
/* The commands' table-driven option parser (opts.h), on getopt_long: its
 * rules (permutation, "--", -oVAL, bundling, unique prefixes of long names)
 * are the ones users already know. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "common/cleanup.h"

enum {
        OPT_HELP = 255, /* getopt's value for --help */
        OPT_ROW = 256,  /* + the row's index, for a long name */
};

const char *cli_opt_label(const cli_opt *opt, char *buf, size_t len)
{
        if (opt->name != NULL)
                snprintf(buf, len, "--%s", opt->name);
        else
                snprintf(buf, len, "-%c", opt->short_name);
        return buf;
}

/* After getopt_long returned c ('?' or ':'): a usage error naming the
 * option that is wrong, as the user wrote it. */
static int bad_option(const char *cmd, int c, char **argv)
{
        const char *arg = optind > 0 ? argv[optind - 1] : "";
        char opt[64];

        if (strncmp(arg, "--", 2) == 0)
                snprintf(opt, sizeof(opt), "%.*s", (int)strcspn(arg, "="), arg);
        else if (optopt > 0 && optopt < 128)
                snprintf(opt, sizeof(opt), "-%c", optopt);
        else
                snprintf(opt, sizeof(opt), "%s", arg);
        if (c == ':')
                return cli_usage_error(cmd, "option '%s' needs a value", opt);
        return cli_usage_error(cmd, "unknown option '%s'", opt);
}

/* An operand too many ("unknown option" when it looks like one). */
static int extra_arg(const char *cmd, const char *arg)
{
        if (arg[0] == '-' && arg[1] != '\0')
                return cli_usage_error(cmd, "unknown option '%s'", arg);
        return cli_usage_error(cmd, "unexpected argument '%s'", arg);
}

/* getopt's long options and short letters for c's rows, and --help. */
static int getopt_tables(const cli_opts_cmd *c, const cli_opt *opts, size_t n,
                         struct option **ret_long, char **ret_short)
{
        cleanup_free struct option *lo = calloc(n + 2, sizeof(*lo));
        cleanup_free char *so = malloc(2 * n + 4);
        size_t nl = 0, ns = 0;

        if (lo == NULL || so == NULL)
                return -1;
        if (c->flags & CLI_OPTS_IN_ORDER)
                so[ns++] = '+';
        so[ns++] = ':'; /* a missing value is told apart from an unknown option */
        for (size_t i = 0; i < n; i++) {
                const cli_opt *o = &opts[i];
                int has_arg = o->type == CLI_OPT_FLAG ? no_argument : required_argument;

                if (o->name != NULL)
                        lo[nl++] = (struct option){o->name, has_arg, NULL, OPT_ROW + (int)i};
                if (o->short_name != 0) {
                        so[ns++] = o->short_name;
                        if (has_arg == required_argument)
                                so[ns++] = ':';
                }
        }
        if (!(c->flags & CLI_OPTS_NO_H))
                so[ns++] = 'h';
        so[ns] = '\0';
        lo[nl++] = (struct option){"help", no_argument, NULL, OPT_HELP};
        lo[nl] = (struct option){NULL, 0, NULL, 0};
        *ret_long = take_ptr(lo);
        *ret_short = take_ptr(so);
        return 0;
}

/* The row getopt's value ch stands for, or NULL. */
static const cli_opt *row_of(const cli_opt *opts, size_t n, int ch)
{
        if (ch >= OPT_ROW && (size_t)(ch - OPT_ROW) < n)
                return &opts[ch - OPT_ROW];
        for (size_t i = 0; ch > 0 && ch < OPT_HELP && i < n; i++)
                if (opts[i].short_name == ch)
                        return &opts[i];
        return NULL;
}

static int apply(const char *cmd, const cli_opt *o, const char *arg)
{
        char label[64];
        int r, v;

        if (o->fn != NULL && (r = o->fn(cmd, o, arg)) != 0)
                return r;
        if (o->field == NULL)
                return 0;
        switch (o->type) {
        case CLI_OPT_FLAG:
                *(bool *)o->field = true;
                break;
        case CLI_OPT_VALUE:
                *(const char **)o->field = arg;
                break;
        case CLI_OPT_LIST:
                if (*o->count >= o->max)
                        return cli_usage_error(cmd, "too many %s (at most %zu)",
                                               cli_opt_label(o, label, sizeof(label)), o->max);
                ((const char **)o->field)[(*o->count)++] = arg;
                break;
        case CLI_OPT_CHOICE:
                if (cli_choice_find(o->choices->v, o->choices->n, arg, &v) < 0)
                        return cli_usage_error(cmd, "%s is %s, not '%s'",
                                               cli_opt_label(o, label, sizeof(label)),
                                               o->choices->said, arg);
                memcpy(o->field, &v, sizeof(v)); /* an enum: int-sized, checked where it is named */
                break;
        }
        return 0;
}

int cli_opts_parse(const cli_opts_cmd *c, const cli_opt *opts, size_t n, int argc, char **argv,
                   int *ret_first)
{
        cleanup_free struct option *lo = NULL;
        cleanup_free char *so = NULL;
        int ch;

        if (getopt_tables(c, opts, n, &lo, &so) < 0) {
                fprintf(stderr, "forge %s: out of memory\n", c->name);
                return FORGE_EXIT_FAILURE;
        }
        optind = 0; /* glibc: start afresh, with this optstring's ordering ('+') */
        opterr = 0;
        while ((ch = getopt_long(argc, argv, so, lo, NULL)) != -1) {
                const cli_opt *o = row_of(opts, n, ch);
                int r;

                if (o == NULL && (ch == OPT_HELP || ch == 'h')) {
                        if (c->usage != NULL)
                                fputs(c->usage, stdout);
                        return CLI_OPTS_HELP;
                }
                if (o == NULL)
                        return bad_option(c->name, ch, argv);
                r = apply(c->name, o, o->type == CLI_OPT_FLAG ? NULL : optarg);
                if (r != 0)
                        return r;
        }
        if (argc - optind < c->min)
                return cli_usage_error(c->name, "%s", c->missing);
        if (c->max >= 0 && argc - optind > c->max)
                return extra_arg(c->name, argv[optind + c->max]);
        *ret_first = optind;
        return 0;
}

int cli_choice_find(const cli_choice *choices, size_t n, const char *arg, int *ret)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(arg, choices[i].name) == 0) {
                        *ret = choices[i].value;
                        return 0;
                }
        return -1;
}

int cli_opt_env(const char *cmd, const cli_opt *opt, const char *arg)
{
        if (strchr(arg, '=') == NULL || arg[0] == '=') {
                if (opt->short_name != 0)
                        return cli_usage_error(cmd, "-%c wants K=V, got '%s'", opt->short_name,
                                               arg);
                return cli_usage_error(cmd, "--%s wants K=V, got '%s'", opt->name, arg);
        }
        return 0;
}
