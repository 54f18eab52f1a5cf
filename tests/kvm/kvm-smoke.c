/* SPDX-License-Identifier: MIT */
/* kvm-smoke: proves a /dev/kvm works, as the harness's first test.
 *
 * 1. the API version and the capabilities a launcher relies on;
 * 2. a VM without an in-kernel irqchip, one memory slot, one vCPU in real
 *    mode running code that stores a byte, writes a message to port 0x3f8
 *    and halts: a KVM_EXIT_IO per byte (direction, size, port, data) then
 *    KVM_EXIT_HLT at the expected rip, and the stored byte in host memory;
 * 3. a second VM with the in-kernel irqchip and PIT, a vCPU, supported CPUID.
 *
 * Prints what it checked; exit 0 on success, 1 on the first failure. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE 0x10000
#define CODE_ADDR 0x1000
#define DATA_ADDR 0x500

static const char message[] = "kvm-smoke: hello from the guest\n";

static int fail(const char *what)
{
        fprintf(stderr, "kvm-smoke: FAIL: %s%s%s\n", what, errno ? ": " : "",
                errno ? strerror(errno) : "");
        return 1;
}

static int failf(const char *what, unsigned long long got, unsigned long long want)
{
        fprintf(stderr, "kvm-smoke: FAIL: %s: got 0x%llx, expected 0x%llx\n", what, got, want);
        return 1;
}

/* a capability by its name, and whether forge-vmm needs it */
#define CAP(c, req)                                                                                \
        {                                                                                          \
                .name = #c, .cap = (c), .required = (req)                                          \
        }

static int check_caps(int kvm)
{
        static const struct {
                const char *name;
                int cap;
                int required;
        } caps[] = {
            CAP(KVM_CAP_IRQCHIP, 1),   CAP(KVM_CAP_USER_MEMORY, 1), CAP(KVM_CAP_SET_TSS_ADDR, 1),
            CAP(KVM_CAP_EXT_CPUID, 1), CAP(KVM_CAP_IOEVENTFD, 1),   CAP(KVM_CAP_IRQFD, 1),
            CAP(KVM_CAP_PIT2, 1),      CAP(KVM_CAP_IRQ_ROUTING, 1), CAP(KVM_CAP_IMMEDIATE_EXIT, 0),
            CAP(KVM_CAP_NR_VCPUS, 1),  CAP(KVM_CAP_MAX_VCPUS, 1),   CAP(KVM_CAP_NR_MEMSLOTS, 1),
        };
        int missing = 0;

        for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
                int v = ioctl(kvm, KVM_CHECK_EXTENSION, caps[i].cap);
                printf("kvm-smoke: %s=%d\n", caps[i].name, v);
                if (caps[i].required && v <= 0) {
                        fprintf(stderr, "kvm-smoke: FAIL: %s not available\n", caps[i].name);
                        missing++;
                }
        }
        return missing ? 1 : 0;
}

/* Real-mode code: mov byte [DATA_ADDR], 0x5a; mov dx, 0x3f8; then
 * mov al, C; out dx, al for each byte of the message; hlt. */
static size_t emit_code(uint8_t *p)
{
        size_t n = 0;
        const uint8_t head[] = {0xc6, 0x06, DATA_ADDR & 0xff, DATA_ADDR >> 8, 0x5a, 0xba,
                                0xf8, 0x03};

        memcpy(p, head, sizeof(head));
        n = sizeof(head);
        for (size_t i = 0; i < sizeof(message) - 1; i++) {
                p[n++] = 0xb0;
                p[n++] = (uint8_t)message[i];
                p[n++] = 0xee;
        }
        p[n++] = 0xf4;
        return n;
}

static int run_io_hlt(int kvm, int mmap_size)
{
        struct kvm_userspace_memory_region region;
        struct kvm_sregs sregs;
        struct kvm_regs regs;
        struct kvm_run *run;
        uint8_t *mem;
        size_t code_len, got = 0;
        char out[sizeof(message)];
        int vm, vcpu;

        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        if (vm < 0)
                return fail("KVM_CREATE_VM");
        mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
                return fail("mmap guest memory");
        code_len = emit_code(mem + CODE_ADDR);
        region = (struct kvm_userspace_memory_region){.slot = 0,
                                                      .guest_phys_addr = 0,
                                                      .memory_size = MEM_SIZE,
                                                      .userspace_addr = (uintptr_t)mem};
        if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
                return fail("KVM_SET_USER_MEMORY_REGION");
        vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
        if (vcpu < 0)
                return fail("KVM_CREATE_VCPU");
        run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
        if (run == MAP_FAILED)
                return fail("mmap kvm_run");
        if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
                return fail("KVM_GET_SREGS");
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        sregs.ds.base = 0;
        sregs.ds.selector = 0;
        if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
                return fail("KVM_SET_SREGS");
        memset(&regs, 0, sizeof(regs));
        regs.rip = CODE_ADDR;
        regs.rflags = 0x2;
        if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
                return fail("KVM_SET_REGS");

        for (;;) {
                errno = 0;
                if (ioctl(vcpu, KVM_RUN, 0) < 0)
                        return fail("KVM_RUN");
                if (run->exit_reason == KVM_EXIT_HLT)
                        break;
                if (run->exit_reason != KVM_EXIT_IO)
                        return failf("exit reason", run->exit_reason, KVM_EXIT_IO);
                if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != 0x3f8 ||
                    run->io.size != 1 || run->io.count != 1)
                        return failf("KVM_EXIT_IO port", run->io.port, 0x3f8);
                if (got >= sizeof(message) - 1)
                        return fail("more output than the guest code writes");
                out[got++] = *((char *)run + run->io.data_offset);
        }
        out[got] = '\0';
        if (strcmp(out, message) != 0) {
                errno = 0;
                return fail("bytes on port 0x3f8 differ from what the guest wrote");
        }
        printf("kvm-smoke: %zu KVM_EXIT_IO on 0x3f8: %s", got, out);
        if (ioctl(vcpu, KVM_GET_REGS, &regs) < 0)
                return fail("KVM_GET_REGS");
        if (regs.rip != CODE_ADDR + code_len)
                return failf("rip after hlt", regs.rip, CODE_ADDR + code_len);
        if (mem[DATA_ADDR] != 0x5a)
                return failf("byte stored by the guest", mem[DATA_ADDR], 0x5a);
        printf("kvm-smoke: KVM_EXIT_HLT at rip=0x%llx, guest store seen by the host\n",
               (unsigned long long)regs.rip);
        close(vcpu);
        close(vm);
        munmap(mem, MEM_SIZE);
        return 0;
}

static int irqchip_vm(int kvm)
{
        struct kvm_pit_config pit = {.flags = 0};
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 256 * sizeof(c->entries[0]));
        int vm, vcpu;

        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        if (vm < 0)
                return fail("KVM_CREATE_VM (second)");
        if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
                return fail("KVM_SET_TSS_ADDR");
        if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
                return fail("KVM_CREATE_IRQCHIP");
        if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
                return fail("KVM_CREATE_PIT2");
        vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
        if (vcpu < 0)
                return fail("KVM_CREATE_VCPU with irqchip");
        if (c == NULL)
                return fail("calloc");
        c->nent = 256;
        if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) < 0)
                return fail("KVM_GET_SUPPORTED_CPUID");
        if (ioctl(vcpu, KVM_SET_CPUID2, c) < 0)
                return fail("KVM_SET_CPUID2");
        printf("kvm-smoke: irqchip, PIT and %u CPUID entries set\n", c->nent);
        free(c);
        close(vcpu);
        close(vm);
        return 0;
}

int main(void)
{
        int kvm, api, mmap_size;

        kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm < 0)
                return fail("open /dev/kvm");
        api = ioctl(kvm, KVM_GET_API_VERSION, 0);
        printf("kvm-smoke: KVM_GET_API_VERSION=%d\n", api);
        if (api != KVM_API_VERSION)
                return failf("API version", (unsigned)api, KVM_API_VERSION);
        if (check_caps(kvm) != 0)
                return 1;
        mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (mmap_size < (int)sizeof(struct kvm_run))
                return fail("KVM_GET_VCPU_MMAP_SIZE");
        if (run_io_hlt(kvm, mmap_size) != 0 || irqchip_vm(kvm) != 0)
                return 1;
        printf("kvm-smoke: ok\n");
        return 0;
}
