/* SPDX-License-Identifier: MIT */
/*
 * The VM's shared directories: one virtio-fs device per share on the PCI bus,
 * its doorbells as KVM ioeventfds and its interrupts as irqfds on MSI routes,
 * and the virtiofsd processes behind them, stopped and reaped with the VM.
 */
#include "runtime/vmm/vmm-fs.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"

/* the first share at 00:03.0, the others from 00:05.0 on; each device's BAR
 * 1 MiB apart from PCI_BAR_BASE by slot */
#define FS_SLOT(i) ((i) == 0 ? 3u : 4u + (i))
#define FS_BAR(i) (PCI_BAR_BASE + ((uint64_t)FS_SLOT(i) << 20))

struct vm_shares {
        vfs *fs[VMM_MAX_FS];
        const char *tag[VMM_MAX_FS];
        pid_t pid[VMM_MAX_FS];
        unsigned n_pids;
        unsigned n; /* devices */
};

/* virtiofsd's sandbox is a child in a PID namespace of its own, which the
 * process forge-vmm started waits for: a SIGTERM to that child ends both
 * quietly (a closed socket makes virtiofsd complain first). */
static pid_t sandbox_child(pid_t pid)
{
        char path[64], buf[32] = "";
        cleanup_fclose FILE *f = NULL;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
        f = fopen(path, "re");
        if (f == NULL || fgets(buf, sizeof(buf), f) == NULL)
                return 0;
        return (pid_t)strtol(buf, NULL, 10);
}

/* Each virtiofsd ended and reaped before the VM's end is reported; killed
 * when it does not stop within a second. */
static void stop_backends(const pid_t *pids, unsigned n)
{
        for (unsigned i = 0; i < n; i++) {
                pid_t inner = pids[i] > 0 ? sandbox_child(pids[i]) : 0;
                if (pids[i] > 0)
                        kill(inner > 0 ? inner : pids[i], SIGTERM);
        }
        for (unsigned i = 0; i < n; i++) {
                int status;

                if (pids[i] <= 0)
                        continue;
                for (int t = 0; t < 200 && waitpid(pids[i], &status, WNOHANG) == 0; t++) {
                        if (t == 100)
                                kill(pids[i], SIGKILL);
                        usleep(10000);
                }
        }
}

int vm_shares_new(int kvm_fd, irq_routes *routes, const guest_mem *gm, const vmm_config *c,
                  pci_bus *bus, vm_shares **ret, forge_error **err)
{
        static const struct {
                int cap;
                const char *name;
        } caps[] = {{KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
                    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
                    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"}};
        vm_shares *s;
        vfs_host_ops ops = irq_routes_host_ops(routes);
        unsigned i, taken = 0; /* sockets handed to vfs_new, which owns them then */

        *ret = NULL;
        if (c->n_fs == 0)
                return 0;
        if (c->n_fs > VMM_MAX_FS)
                return forge_error_make(err, 0, "%u shared directories: at most %d", c->n_fs,
                                        VMM_MAX_FS);
        s = calloc(1, sizeof(*s));
        if (s == NULL)
                return forge_error_make(err, ENOMEM, "virtio-fs");
        for (i = 0; i < c->n_fs; i++) {
                s->tag[i] = c->fs[i].tag;
                s->pid[i] = c->fs[i].pid;
        }
        s->n_pids = c->n_fs;
        for (size_t k = 0; k < ARRAY_SIZE(caps); k++)
                if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, caps[k].cap) <= 0) {
                        forge_error_make(err, 0, "this host's KVM lacks %s (shared directories)",
                                         caps[k].name);
                        goto fail;
                }
        for (i = 0; i < c->n_fs; i++) {
                taken = i + 1;
                if (vfs_new(c->fs[i].tag, c->fs[i].sock_fd, gm, FS_BAR(i), &ops, &s->fs[i], err) <
                    0)
                        goto fail;
                s->n++;
                bus->dev[FS_SLOT(i)] = vfs_pci(s->fs[i]);
        }
        *ret = s;
        return 0;
fail:
        for (i = taken; i < c->n_fs; i++)
                close(c->fs[i].sock_fd);
        for (i = 0; i < s->n; i++)
                bus->dev[FS_SLOT(i)] = NULL;
        vm_shares_free(s);
        return -1;
}

bool vm_shares_mmio(vm_shares *s, uint64_t addr, uint8_t *data, unsigned len, bool write)
{
        for (unsigned i = 0; s && i < s->n; i++)
                if (virtio_pci_mmio(vfs_pci(s->fs[i]), addr, data, len, write))
                        return true;
        return false;
}

void vm_shares_free(vm_shares *s)
{
        if (s == NULL)
                return;
        stop_backends(s->pid, s->n_pids);
        for (unsigned i = 0; i < s->n; i++) {
                if (vfs_error(s->fs[i]))
                        fprintf(stderr, "forge run: shared directory '%s': %s\n", s->tag[i],
                                vfs_error(s->fs[i]));
                vfs_free(s->fs[i]);
        }
        free(s);
}
