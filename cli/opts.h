/* SPDX-License-Identifier: MIT */
#pragma once

/* The commands' option parser: each command describes its options in a
 * table (name, short letter, where the value goes or what checks it) and
 * cli_opts_parse() reads argv once: --opt=VAL and --opt VAL, -o VAL and
 * -oVAL, bundled flags (-qt), options before or after the operands, "--"
 * ending them, --help (and -h) printing the command's text. A wrong option
 * or a missing value is a usage error (exit 2) naming it. */

#include <stdbool.h>
#include <stddef.h>

typedef enum cli_opt_type {
        CLI_OPT_FLAG,   /* no value: *(bool *)field = true */
        CLI_OPT_VALUE,  /* a value: *(const char **)field = it, the last one given wins */
        CLI_OPT_LIST,   /* a value: appended to the array field, *count entries of max */
        CLI_OPT_CHOICE, /* a word of choices: its value in the int (or enum) field */
} cli_opt_type;

/* A word of a closed set and the value it stands for (--pull always, --as vm). */
typedef struct cli_choice {
        const char *name;
        int value;
} cli_choice;

/* arg's value among the n choices: 0 and *ret, or -1 when it is none of them. */
int cli_choice_find(const cli_choice *choices, size_t n, const char *arg, int *ret);

/* The words a CLI_OPT_CHOICE option takes; for any other the usage error
 * is "--NAME is SAID, not 'VALUE'". */
typedef struct cli_choices {
        const cli_choice *v;
        size_t n;
        const char *said; /* "gzip or zstd" */
} cli_choices;

typedef struct cli_opt cli_opt;

/* Checks (or applies) one option given: arg is its value, NULL for a flag.
 * Returns 0, or an exit status after printing a usage error for cmd. */
typedef int (*cli_opt_fn)(const char *cmd, const cli_opt *opt, const char *arg);

struct cli_opt {
        const char *name; /* --NAME, or NULL */
        char short_name;  /* -C, or 0 */
        cli_opt_type type;
        void *field;                /* where it goes, or NULL (fn does what it means) */
        size_t *count;              /* CLI_OPT_LIST: entries in field so far */
        size_t max;                 /* CLI_OPT_LIST: the array's size */
        cli_opt_fn fn;              /* called first (before the value is stored), or NULL */
        void *data;                 /* for fn */
        const cli_choices *choices; /* CLI_OPT_CHOICE: the words */
};

/* Rows, type-checked: a bool *, a const char **, an array of const char *. */
/* clang-format off */
#define CLI_FLAG(n, c, p)                                                                          \
        {.name = (n), .short_name = (c), .type = CLI_OPT_FLAG, .field = (1 ? (p) : (bool *)0)}
#define CLI_VALUE(n, c, p)                                                                         \
        {.name = (n), .short_name = (c), .type = CLI_OPT_VALUE,                                    \
         .field = (1 ? (p) : (const char **)0)}
/* check: a cli_opt_fn that sees each value first, or NULL */
#define CLI_LIST(n, c, array, cnt, check)                                                          \
        {.name = (n), .short_name = (c), .type = CLI_OPT_LIST,                                     \
         .field = (1 ? (array) : (const char **)0), .count = (cnt),                                \
         .max = sizeof(array) / sizeof((array)[0]), .fn = (check)}
/* A word of the cli_choices *ch into an int-sized field (an int or an enum). */
#define CLI_CHOICE(n, c, p, ch)                                                                    \
        {.name = (n), .short_name = (c), .type = CLI_OPT_CHOICE, .field = (p), .choices = (ch)}
/* An option that fn handles alone; v: it takes a value. */
#define CLI_CALL(n, c, v, f, d)                                                                    \
        {.name = (n), .short_name = (c), .type = (v) ? CLI_OPT_VALUE : CLI_OPT_FLAG,               \
         .fn = (f), .data = (d)}
/* clang-format on */

enum {
        /* options end at the first operand (the rest is another command's) */
        CLI_OPTS_IN_ORDER = 1u << 0,
        /* -h is not --help */
        CLI_OPTS_NO_H = 1u << 1,
};

/* A command, beside its --help text: what cli_opts_parse needs besides its
 * options (which point at the command's variables). */
typedef struct cli_opts_cmd {
        const char *name;    /* the command, for messages: "forge NAME: ..." */
        const char *usage;   /* printed as it is for --help (NULL: the caller prints its own) */
        unsigned flags;      /* CLI_OPTS_* */
        int min, max;        /* how many operands; max -1: no limit */
        const char *missing; /* the usage error for fewer than min ("missing SPEC") */
} cli_opts_cmd;

#define CLI_OPTS_HELP (-1)

/* Reads argv (argv[0] the command's name) with the n options opts. Returns
 * 0 with *ret_first the index of the first operand (argv is reordered so
 * that the operands come last, as getopt does); CLI_OPTS_HELP after printing the
 * usage; else an exit status after printing a usage error: an unknown
 * option, a missing value, what an option's fn refused, too many values of a
 * list, too few or too many operands. */
int cli_opts_parse(const cli_opts_cmd *c, const cli_opt *opts, size_t n, int argc, char **argv,
                   int *ret_first);

/* What a command returns for cli_opts_parse's r != 0: 0 after --help. */
static inline int cli_opts_status(int r)
{
        return r == CLI_OPTS_HELP ? 0 : r;
}

/* The option as the user wrote it, for messages: "--name", else "-c". */
const char *cli_opt_label(const cli_opt *opt, char *buf, size_t len);

/* A cli_opt_fn for -e K=V: K not empty. */
int cli_opt_env(const char *cmd, const cli_opt *opt, const char *arg);
