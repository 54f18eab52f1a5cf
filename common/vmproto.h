/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The protocol between forge on the host and forge-vminit, PID 1 of a forge
 * VM (docs/vm-protocol.md), in one place for both ends: the run configuration
 * the host puts on the kernel command line (vmproto_run), the image's own run
 * configuration in the root file system (vmproto_image, /.forge/run), the
 * I/O ports forge-vmm traps and the name of the root partition.
 *
 * libc only, no forge_error: forge-vminit is a small static program that
 * compiles vmproto.c in. Functions return 0, or -1 with errno (EINVAL for
 * input that is malformed or cannot be encoded, E2BIG for too much of it,
 * ENOMEM); the decoders then name the offending key in *ret_bad.
 *
 * Everything a decoder reads is hostile: lengths and counts are bounded, a
 * value that is not what its key wants is refused, unknown keys are ignored.
 */

#include <stdbool.h>
#include <stddef.h>

/* I/O ports */
#define VMPROTO_EXIT_PORT 0xf4 /* write: the workload's exit status (QEMU isa-debug-exit too) */
#define VMPROTO_CTL_PORT 0x4f4 /* read: VMPROTO_CTL_MAGIC under forge's launcher; write: */
#define VMPROTO_CTL_CONSOLE_READY 1 /* the guest's console is set up: send input */
#define VMPROTO_CTL_MAGIC 'F'
#define VMPROTO_CTL_SIG_PORT 0x4f5 /* read: a signal to forward to the workload, 0: none */

/* The GPT name of the root partition: forge.root's default */
#define VMPROTO_ROOT_NAME "forge-root"
/* The image's run configuration in the root file system, and its size cap */
#define VMPROTO_RUN_FILE "/.forge/run"
#define VMPROTO_RUN_FILE_MAX (1 << 20)

/* The longest command line the guest decodes (x86 Linux takes 2048) */
#define VMPROTO_CMDLINE_MAX 8192
/* Strings in one list (forge.args, forge.env, argv=, env=) */
#define VMPROTO_MAX_STRINGS 4096
/* Shared directories (forge.fs): forge-vmm's virtio-fs devices */
#define VMPROTO_MAX_SHARES 4
/* A virtio-fs tag: at most 36 bytes (the device's config field) */
#define VMPROTO_TAG_MAX 36
#define VMPROTO_ROOT_NAME_MAX 72
#define VMPROTO_NET_MAX 64

typedef struct vmproto_share {
        char *tag;  /* the virtio-fs tag */
        char *path; /* absolute mount point in the guest */
        bool ro;
} vmproto_share;

/* The run configuration on the kernel command line: overrides of the
 * image's. NULL / false / 0: not given. Decoded strings are malloc'd; an
 * encoded one is only read. */
typedef struct vmproto_run {
        bool has_args; /* forge.args: replaces the image's cmd, may be empty */
        char **args;
        size_t n_args;
        char **env; /* forge.env: K=V, each replaces the image's K or is added */
        size_t n_env;
        char *entrypoint; /* forge.entrypoint: replaces the image's, drops its cmd;
                             "": no entrypoint */
        char *user, *workdir, *hostname;
        vmproto_share shares[VMPROTO_MAX_SHARES]; /* forge.fs */
        size_t n_shares;
        bool read_only;      /* forge.ro=1 */
        char *net;           /* forge.net=ADDR/PREFIX,GATEWAY,DNS */
        bool tty;            /* forge.tty=1 */
        unsigned rows, cols; /* forge.rows, forge.cols: 1-65535, 0 unset */
        char *root;          /* forge.root: GPT name of the root, NULL: VMPROTO_ROOT_NAME */
        bool bootstat;       /* forge.bootstat=1: the init reports its timestamps (docs/vm.md) */
} vmproto_run;

/* base, then the words of r (a space between), malloc'd in *ret. EINVAL: a
 * value the guest would refuse (a list of one empty string, which reads as
 * none; a share without an absolute path; ...), or a base with an odd
 * number of double quotes (the words would be read as inside one); E2BIG:
 * longer than VMPROTO_CMDLINE_MAX. */
int vmproto_run_encode(const vmproto_run *r, const char *base, char **ret);
/* The forge.* words of a kernel command line (at most VMPROTO_CMDLINE_MAX
 * bytes; split as the kernel does, double quotes included); of a key given
 * twice the last counts. On failure *ret is left empty. */
int vmproto_run_decode(const char *cmdline, vmproto_run *ret, const char **ret_bad);
void vmproto_run_free(vmproto_run *r);

/* The image's run configuration (/.forge/run, written by `forge export
 * --format disk`). */
typedef struct vmproto_image {
        char **argv; /* entrypoint then cmd */
        size_t argc;
        size_t n_entrypoint; /* how many of argv are the entrypoint */
        char **env;
        size_t n_env;
        char *workdir, *user, *hostname; /* NULL: unset */
} vmproto_image;

/* The file's text, malloc'd. EINVAL: a string with a newline in workdir,
 * user or hostname, or a list of one empty string. */
int vmproto_image_encode(const vmproto_image *im, char **ret);
/* At most VMPROTO_RUN_FILE_MAX bytes; unknown lines are ignored. */
int vmproto_image_decode(const char *text, vmproto_image *ret, const char **ret_bad);
/* Applies the command line's overrides to the image's configuration: what
 * the workload runs with (docs/vm-protocol.md). */
int vmproto_image_apply(vmproto_image *im, const vmproto_run *r);
void vmproto_image_free(vmproto_image *im);

/* "abc" -> "616263"; the NUL-joined list encoding of forge.args and argv= */
int vmproto_hex_strv(const char *const *v, size_t n, char **ret);
/* The inverse (upper or lower case); NULL-terminated, at most VMPROTO_MAX_STRINGS. */
int vmproto_unhex_strv(const char *hex, size_t len, char ***ret, size_t *ret_n);
void vmproto_strv_free(char **v, size_t n);
