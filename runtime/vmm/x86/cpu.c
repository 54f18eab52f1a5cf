/* SPDX-License-Identifier: MIT */
/*
 * vCPU state at the 64-bit kernel entry: long mode with our GDT and identity
 * page tables, RSI = boot_params; CPUID as KVM supports it with each vCPU's
 * APIC id; the local APIC's LINT0/LINT1 wired as ExtINT and NMI, as a PC's
 * firmware leaves them.
 */
#include "runtime/vmm/x86/cpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_IA32_APICBASE 0x1b
#define APICBASE_BSP 0x100
#define APICBASE_ENABLE 0x800
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

struct kvm_cpuid2 *vmm_cpu_supported_cpuid(int kvm_fd, forge_error **err)
{
        for (unsigned n = 128; n <= 4096; n *= 2) {
                struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
                if (c == NULL) {
                        forge_error_make(err, ENOMEM, "cpuid");
                        return NULL;
                }
                c->nent = n;
                if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
                        return c;
                free(c);
                if (errno != E2BIG) {
                        forge_error_make(err, errno, "KVM_GET_SUPPORTED_CPUID");
                        return NULL;
                }
        }
        forge_error_make(err, E2BIG, "KVM_GET_SUPPORTED_CPUID");
        return NULL;
}

void vmm_cpu_cpuid_for(struct kvm_cpuid2 *c, unsigned id, unsigned ncpus, bool tsc_deadline)
{
        unsigned shift = 0;

        while ((1u << shift) < ncpus)
                shift++;
        for (unsigned i = 0; i < c->nent; i++) {
                struct kvm_cpuid_entry2 *e = &c->entries[i];

                switch (e->function) {
                case 1:
                        /* initial APIC id, logical processor count; a hypervisor is present */
                        e->ebx = (e->ebx & 0x0000ffff) | (id << 24) | ((ncpus & 0xff) << 16);
                        e->ecx |= 1u << 31;
                        e->edx |= 1u << 9; /* the in-kernel local APIC */
                        /* KVM emulates the TSC-deadline timer but does not
                         * report it as supported: without it the kernel
                         * calibrates the APIC timer against the PIT, which
                         * can fail (nested) and then costs seconds at boot */
                        if (tsc_deadline)
                                e->ecx |= 1u << 24;
                        if (ncpus > 1)
                                e->edx |= 1u << 28; /* HTT: the count above is valid */
                        break;
                case 0xb:
                case 0x1f:
                        /* one package of ncpus cores, one thread each */
                        e->edx = id; /* x2APIC id */
                        if (e->index == 0) {
                                e->eax = 0;
                                e->ebx = 1;
                                e->ecx = 1u << 8;
                        } else if (e->index == 1) {
                                e->eax = shift;
                                e->ebx = ncpus;
                                e->ecx = 2u << 8 | 1;
                        }
                        break;
                case 0x80000008:
                        e->ecx = (e->ecx & ~0xf0ffu) | (shift << 12) | ((ncpus - 1) & 0xff);
                        break;
                case 0x8000001e:
                        e->eax = id;        /* extended APIC id */
                        e->ebx = id & 0xff; /* core id, one thread per core */
                        e->ecx = 0;         /* node 0 */
                        break;
                default:
                        break;
                }
        }
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
        memset(s, 0, sizeof(*s));
        s->selector = sel;
        s->base = 0;
        s->limit = 0xffffffff;
        s->type = type;
        s->present = 1;
        s->dpl = 0;
        s->db = code64 ? 0 : 1;
        s->s = 1;
        s->l = code64 ? 1 : 0;
        s->g = 1;
}

int vmm_cpu_setup_boot(int vcpu_fd, uint64_t entry, forge_error **err)
{
        struct kvm_sregs sr;
        struct kvm_regs r;
        struct kvm_fpu fpu;

        if (ioctl(vcpu_fd, KVM_GET_SREGS, &sr) < 0)
                return forge_error_make(err, errno, "KVM_GET_SREGS");
        seg(&sr.cs, 0x10, 0xb, true);
        seg(&sr.ds, 0x18, 0x3, false);
        sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
        memset(&sr.tr, 0, sizeof(sr.tr));
        sr.tr.selector = 0x20;
        sr.tr.limit = 0xfffff;
        sr.tr.type = 0xb;
        sr.tr.present = 1;
        sr.gdt.base = GDT_ADDR;
        sr.gdt.limit = 5 * 8 - 1;
        sr.idt.base = 0;
        sr.idt.limit = 0;
        sr.cr0 = 0x80050033; /* PG, AM, WP, NE, ET, MP, PE */
        sr.cr3 = PML4_ADDR;
        sr.cr4 = 0x20;   /* PAE */
        sr.efer = 0x500; /* LME, LMA */
        if (ioctl(vcpu_fd, KVM_SET_SREGS, &sr) < 0)
                return forge_error_make(err, errno, "KVM_SET_SREGS");

        memset(&r, 0, sizeof(r));
        r.rflags = 2;
        r.rip = entry;
        r.rsi = ZERO_PAGE_ADDR;
        r.rsp = BOOT_STACK_TOP;
        r.rbp = BOOT_STACK_TOP;
        if (ioctl(vcpu_fd, KVM_SET_REGS, &r) < 0)
                return forge_error_make(err, errno, "KVM_SET_REGS");

        memset(&fpu, 0, sizeof(fpu));
        fpu.fcw = 0x37f;
        fpu.mxcsr = 0x1f80;
        if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
                return forge_error_make(err, errno, "KVM_SET_FPU");
        return 0;
}

int vmm_cpu_setup_common(int vcpu_fd, unsigned id, struct kvm_cpuid2 *cpuid, forge_error **err)
{
        /* the local APIC enabled at its default base (KVM derives CPUID's APIC
         * bit from it), the bootstrap processor flagged */
        struct {
                struct kvm_msrs h;
                struct kvm_msr_entry e[2];
        } msrs = {.h.nmsrs = 2,
                  .e = {{.index = MSR_IA32_APICBASE,
                         .data = LAPIC_ADDR | APICBASE_ENABLE | (id == 0 ? APICBASE_BSP : 0)},
                        {.index = MSR_IA32_MISC_ENABLE, .data = 1 /* fast strings */}}};
        struct kvm_lapic_state lapic;
        uint32_t v;
        int n;

        n = ioctl(vcpu_fd, KVM_SET_MSRS, &msrs);
        if (n != 2)
                return forge_error_make(err, n < 0 ? errno : 0, "KVM_SET_MSRS (%d of 2 set)", n);
        if (ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
                return forge_error_make(err, errno, "KVM_SET_CPUID2");
        if (ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) < 0)
                return forge_error_make(err, errno, "KVM_GET_LAPIC");
        memcpy(&v, lapic.regs + APIC_LVT0, 4);
        v = (v & ~0x700u) | (APIC_MODE_EXTINT << 8);
        memcpy(lapic.regs + APIC_LVT0, &v, 4);
        memcpy(&v, lapic.regs + APIC_LVT1, 4);
        v = (v & ~0x700u) | (APIC_MODE_NMI << 8);
        memcpy(lapic.regs + APIC_LVT1, &v, 4);
        if (ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) < 0)
                return forge_error_make(err, errno, "KVM_SET_LAPIC");
        return 0;
}
