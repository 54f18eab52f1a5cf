/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * forge's KVM launcher: a small VMM on /dev/kvm that boots a Linux bzImage
 * with the 64-bit boot protocol, an 8250 UART console on 0x3f8 and one
 * virtio-pci block device, and reports the guest's exit status (the byte the
 * guest init writes to port 0xf4, see docs/vm-protocol.md).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/vmproto.h"

/* A host directory shared into the guest: a virtio-fs device whose queues
 * virtiofsd serves (docs/vm.md). */
typedef struct vmm_fs_share {
        const char *tag; /* the mount tag the guest sees */
        int sock_fd;     /* a connected vhost-user socket to virtiofsd (taken over) */
        int pid;         /* virtiofsd, a child of this process: ended with the VM (0: none) */
} vmm_fs_share;
#define VMM_MAX_FS VMPROTO_MAX_SHARES

/* Starts virtiofsd for directory src (read-only on the host side when ro),
 * a child that dies with this process; returns the connected vhost-user
 * socket and its pid for a vmm_fs_share. */
int vmm_virtiofsd_start(const char *src, bool ro, int *ret_sock, int *ret_pid, forge_error **err);

/* more than a bzImage's real-mode setup takes (setup_sects 255, plus a page) */
#define VMM_BOOT_SETUP_MAX ((255 + 1) * 512 + 4096)

typedef struct vmm_config {
        const void *kernel; /* bzImage (with a vmlinux: its first VMM_BOOT_SETUP_MAX bytes do) */
        size_t kernel_len;
        /* the kernel uncompressed, at [vmlinux_off, +vmlinux_len) of
         * vmlinux_fd (vmimage/vmlinux.c); vmlinux_len 0: the bzImage boots */
        int vmlinux_fd;
        uint64_t vmlinux_off, vmlinux_len;
        const void *initrd;
        size_t initrd_len;
        const char *cmdline;
        uint64_t memory; /* bytes */
        unsigned cpus;
        const char *disk_path;  /* virtio-blk backing file, or NULL */
        int disk_fd;            /* >= 0: disk_path already open (read-write with persist) */
        bool persist;           /* write guest writes to disk_path (else copy-on-write) */
        bool net;               /* a virtio-net device on net_fd, a passt stream socket */
        int net_fd;             /* taken over: closed by vmm_destroy */
        int in_fd;              /* guest console input (-1: none) */
        int out_fd;             /* guest console output */
        bool tty;               /* in_fd is a terminal to put into raw mode */
        unsigned timeout_sec;   /* 0: none */
        bool quiet;             /* no launcher messages besides errors */
        bool read_only;         /* the disk rejects writes (VIRTIO_BLK_F_RO) */
        const vmm_fs_share *fs; /* shared directories; guest RAM is then a memfd */
        unsigned n_fs;
        /* a directory: a virtio-console port bridged to DIR/control.sock (the
         * control channel of detached runs, docs/vm-protocol.md); NULL: none */
        const char *control_dir;
} vmm_config;

/* How a run ended. */
typedef enum vmm_end {
        VMM_END_STATUS,   /* the guest reported an exit status (port 0xf4) */
        VMM_END_POWEROFF, /* shut down or reset without a status */
        VMM_END_PANIC,    /* the guest kernel panicked */
        VMM_END_TIMEOUT,  /* killed after timeout_sec */
        VMM_END_SIGNAL,   /* killed after a second SIGINT/SIGTERM, or the guest ignored one */
        VMM_END_CRASH,    /* triple fault or an internal KVM error */
} vmm_end;

typedef struct vmm_result {
        vmm_end end;
        int status;       /* VMM_END_STATUS: the guest's exit status; VMM_END_SIGNAL: the signal */
        char detail[256]; /* the panic line, the KVM error ... */
} vmm_result;

typedef struct vmm vmm;

/* Creates the VM with the kernel, initrd and command line loaded into guest
 * memory (the caller may free them afterwards). < 0 when the VM cannot be
 * made (no /dev/kvm, too little memory, a broken kernel ...). */
int vmm_create(const vmm_config *c, vmm **ret, forge_error **err);
/* Runs the guest to its end. */
int vmm_start(vmm *v, vmm_result *ret);
void vmm_destroy(vmm *v);

/* The exit status forge reports for a result (docs/vm.md). */
int vmm_result_exit_status(const vmm_result *r);
