/* SPDX-License-Identifier: MIT */
/*
 * The Linux/x86 64-bit boot protocol (Documentation/arch/x86/boot.rst): the
 * bzImage's setup header copied into a zero page with our e820 map, command
 * line and initrd; a GDT with the flat 64-bit code and data segments the
 * kernel's startup_64 expects; identity page tables for the first 4 GiB.
 * Plus the MP table (Intel MultiProcessor Spec 1.4) through which a kernel
 * without ACPI finds its CPUs, the IOAPIC and the interrupt routing.
 */
#include "runtime/vmm/vmm-internal.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* offsets in the bzImage / zero page */
#define HDR_START 0x1f1
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_VID_MODE 0x1fa
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_MAX 0x22c
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_INIT_SIZE 0x260
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128

#define LOADED_HIGH 0x01
#define KASLR_FLAG 0x02 /* set by whoever randomised the kernel's base */
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01

static uint16_t get16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

unsigned vmm_boot_e820(const guest_mem *gm, struct e820_entry *t, unsigned max)
{
        unsigned n = 0;

#define ADD(a, s, ty)                                                                              \
        do {                                                                                       \
                if (n < max)                                                                       \
                        t[n++] = (struct e820_entry){(a), (s), (ty)};                              \
        } while (0)
        ADD(0, EBDA_START, E820_RAM);
        ADD(EBDA_START, HIGH_MEMORY - EBDA_START, E820_RESERVED);
        ADD(HIGH_MEMORY, gm->low_size - HIGH_MEMORY, E820_RAM);
        if (gm->size > gm->low_size)
                ADD(MMIO_HOLE_END, gm->size - gm->low_size, E820_RAM);
#undef ADD
        return n;
}

static void setup_page_tables(guest_mem *gm)
{
        uint8_t *pml4 = gm_ptr(gm, PML4_ADDR, 4096);
        uint8_t *pdpt = gm_ptr(gm, PDPT_ADDR, 4096);
        uint8_t *pd = gm_ptr(gm, PD_ADDR, 4 * 4096);

        memset(pml4, 0, 4096);
        memset(pdpt, 0, 4096);
        put64(pml4, PDPT_ADDR | 0x3); /* present, writable */
        for (uint64_t i = 0; i < 4; i++)
                put64(pdpt + 8 * i, (PD_ADDR + i * 4096) | 0x3);
        for (uint64_t i = 0; i < 4 * 512; i++)
                put64(pd + 8 * i, (i << 21) | 0x83); /* present, writable, 2 MiB page */
}

static void setup_gdt(guest_mem *gm)
{
        uint8_t *gdt = gm_ptr(gm, GDT_ADDR, 5 * 8);

        memset(gdt, 0, 5 * 8);
        put64(gdt + 2 * 8, 0x00af9b000000ffffULL); /* 0x10: code, 64-bit, DPL 0 */
        put64(gdt + 3 * 8, 0x00cf93000000ffffULL); /* 0x18: data, flat */
        put64(gdt + 4 * 8, 0x008f8b000000ffffULL); /* 0x20: TSS, busy */
}

/* What the bzImage's setup header says, checked. */
typedef struct bz_header {
        size_t setup_size;  /* the real-mode part before the payload */
        size_t hdr_len;     /* of the setup header, from HDR_START */
        size_t payload_len; /* the protected-mode kernel */
        uint32_t init_size, initrd_max, cmdline_size;
} bz_header;

static int bz_header_read(const uint8_t *k, size_t kernel_len, bz_header *h, forge_error **err)
{
        unsigned setup_sects;

        if (kernel_len < 0x400 || get16(k + HDR_BOOT_FLAG) != 0xaa55 ||
            memcmp(k + HDR_MAGIC, "HdrS", 4) != 0)
                return forge_error_make(
                    err, 0, "kernel is not a bzImage (no boot sector or 'HdrS' header)");
        if (get16(k + HDR_VERSION) < 0x020c)
                return forge_error_make(err, 0,
                                        "kernel boot protocol %u.%u is too old (2.12 needed)",
                                        k[HDR_VERSION + 1], k[HDR_VERSION]);
        if (!(get16(k + HDR_XLOADFLAGS) & XLF_KERNEL_64))
                return forge_error_make(err, 0, "kernel has no 64-bit entry point (XLF_KERNEL_64)");
        if (!(k[HDR_LOADFLAGS] & LOADED_HIGH))
                return forge_error_make(err, 0, "kernel is not a bzImage (loads low)");
        setup_sects = k[HDR_SETUP_SECTS] ? k[HDR_SETUP_SECTS] : 4;
        h->setup_size = (size_t)(setup_sects + 1) * 512;
        h->hdr_len = (size_t)HDR_JUMP + 2 + k[HDR_JUMP + 1] - HDR_START;
        if (h->setup_size >= kernel_len || HDR_START + h->hdr_len > 0x1000 ||
            HDR_START + h->hdr_len > kernel_len)
                return forge_error_make(err, 0, "kernel is truncated (setup of %zu bytes)",
                                        h->setup_size);
        h->payload_len = kernel_len - h->setup_size;
        h->init_size = get32(k + HDR_INIT_SIZE);
        h->cmdline_size = get32(k + HDR_CMDLINE_SIZE);
        h->initrd_max = get32(k + HDR_INITRD_MAX);
        return 0;
}

/* The initramfs as high as the kernel allows, page aligned, above kernel_end. */
static int initrd_place(guest_mem *gm, const bz_header *h, uint64_t kernel_end, const void *initrd,
                        size_t initrd_len, uint64_t *ret_addr, forge_error **err)
{
        uint64_t top = gm->low_size;

        *ret_addr = 0;
        if (initrd_len == 0)
                return 0;
        if (h->initrd_max && top > (uint64_t)h->initrd_max + 1)
                top = (uint64_t)h->initrd_max + 1;
        if (initrd_len > top || ((top - initrd_len) & ~0xfffULL) < kernel_end)
                return forge_error_make(err, 0,
                                        "guest memory of %llu MiB is too small for the kernel and "
                                        "an initramfs of %zu MiB",
                                        (unsigned long long)(gm->low_size >> 20), initrd_len >> 20);
        *ret_addr = (top - initrd_len) & ~0xfffULL;
        memcpy(gm_ptr(gm, *ret_addr, initrd_len), initrd, initrd_len);
        return 0;
}

/* The zero page: the kernel's setup header with what the loader fills in,
 * and the e820 map. */
static void zero_page_write(guest_mem *gm, const uint8_t *k, const bz_header *h,
                            uint64_t initrd_addr, size_t initrd_len, bool kaslr)
{
        struct e820_entry e820[BP_E820_MAX];
        uint8_t *zp = gm_ptr(gm, ZERO_PAGE_ADDR, 4096);
        unsigned n;

        memset(zp, 0, 4096);
        memcpy(zp + HDR_START, k + HDR_START, h->hdr_len);
        put16(zp + HDR_VID_MODE, 0xffff);
        zp[HDR_TYPE_OF_LOADER] = 0xff;
        zp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
        if (kaslr)
                zp[HDR_LOADFLAGS] |= KASLR_FLAG;
        put16(zp + HDR_HEAP_END, 0xfe00);
        put32(zp + HDR_CMD_LINE_PTR, (uint32_t)CMDLINE_ADDR);
        put32(zp + HDR_RAMDISK_IMAGE, (uint32_t)initrd_addr);
        put32(zp + HDR_RAMDISK_SIZE, (uint32_t)initrd_len);
        n = vmm_boot_e820(gm, e820, BP_E820_MAX);
        zp[BP_E820_ENTRIES] = (uint8_t)n;
        memcpy(zp + BP_E820_TABLE, e820, n * sizeof(e820[0]));
}

/* Whether word stands alone on the command line (as the kernel's
 * cmdline_find_option_bool matches it). */
static bool cmdline_has(const char *cmdline, const char *word)
{
        size_t n = strlen(word);

        for (const char *p = cmdline; (p = strstr(p, word)) != NULL; p += n)
                if ((p == cmdline || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
                        return true;
        return false;
}

/* The uncompressed kernel, with KASLR unless the command line says
 * nokaslr; kernel_end: where it ends. */
static int vmlinux_place(guest_mem *gm, const boot_vmlinux *v, const char *cmdline,
                         uint64_t *kernel_end, boot_layout *ret, forge_error **err)
{
        bool kaslr = !cmdline_has(cmdline, "nokaslr");
        uint64_t random = 0;
        vmlinux_loaded l;

        if (kaslr && getrandom(&random, sizeof(random), 0) != (ssize_t)sizeof(random))
                return forge_error_make(err, errno, "random bytes for the kernel's KASLR");
        if (vmm_vmlinux_load(gm, v, kaslr, random, &l, err) < 0)
                return -1;
        *kernel_end = l.end;
        ret->kernel_entry = l.entry;
        ret->kaslr = l.randomized;
        return 0;
}

int vmm_boot_load(guest_mem *gm, const void *kernel, size_t kernel_len, const boot_vmlinux *vmlinux,
                  const void *initrd, size_t initrd_len, const char *cmdline, boot_layout *ret,
                  forge_error **err)
{
        const uint8_t *k = kernel;
        size_t cmd_len = strlen(cmdline);
        uint64_t initrd_addr, kernel_end = 0;
        bz_header h = {0};
        uint8_t *dst;

        memset(ret, 0, sizeof(*ret));
        if (gm->low_size < VMM_MIN_MEMORY)
                return forge_error_make(err, 0,
                                        "guest memory of %llu MiB is too small (at least %llu MiB)",
                                        (unsigned long long)(gm->low_size >> 20),
                                        (unsigned long long)(VMM_MIN_MEMORY >> 20));
        if (bz_header_read(k, kernel_len, &h, err) < 0)
                return -1;
        if (cmd_len + 1 > CMDLINE_MAX || (h.cmdline_size && cmd_len > h.cmdline_size))
                return forge_error_make(
                    err, 0, "kernel command line of %zu bytes is too long (at most %u)", cmd_len,
                    h.cmdline_size ? h.cmdline_size : (unsigned)CMDLINE_MAX - 1);
        if (vmlinux != NULL) {
                if (vmlinux_place(gm, vmlinux, cmdline, &kernel_end, ret, err) < 0)
                        return -1;
        } else {
                /* the kernel decompresses itself at or above 16 MiB
                 * (LOAD_PHYSICAL_ADDR) and needs init_size bytes there */
                kernel_end =
                    (h.payload_len > h.init_size ? h.payload_len : h.init_size) + 0x1000000ULL;
                if (kernel_end > gm->low_size)
                        return forge_error_make(
                            err, 0, "guest memory of %llu MiB is too small for the kernel",
                            (unsigned long long)(gm->low_size >> 20));
                dst = gm_ptr(gm, KERNEL_ADDR, h.payload_len);
                if (dst == NULL)
                        return forge_error_make(err, 0,
                                                "kernel of %zu bytes does not fit in guest memory",
                                                h.payload_len);
                memcpy(dst, k + h.setup_size, h.payload_len);
                ret->kernel_entry = KERNEL_ADDR + 0x200;
        }
        if (initrd_place(gm, &h, kernel_end, initrd, initrd_len, &initrd_addr, err) < 0)
                return -1;
        memcpy(gm_ptr(gm, CMDLINE_ADDR, cmd_len + 1), cmdline, cmd_len + 1);
        zero_page_write(gm, k, &h, initrd_addr, initrd_len, ret->kaslr);
        setup_gdt(gm);
        setup_page_tables(gm);
        ret->initrd_addr = initrd_addr;
        ret->initrd_size = initrd_len;
        return 0;
}

/* --- MP table --- */

#define MP_PROC 0
#define MP_BUS 1
#define MP_IOAPIC 2
#define MP_INTSRC 3
#define MP_LINTSRC 4
#define MP_BUS_PCI 0
#define MP_BUS_ISA 1
#define MP_INT 0
#define MP_NMI 1
#define MP_EXTINT 3

static uint8_t checksum(const uint8_t *p, size_t n)
{
        uint8_t s = 0;
        for (size_t i = 0; i < n; i++)
                s = (uint8_t)(s + p[i]);
        return (uint8_t)(0 - s);
}

/* An I/O (MP_INTSRC: to an IOAPIC pin) or local (MP_LINTSRC: to a LINT
 * input of local APIC apic, 0xff for all) interrupt assignment. */
static uint8_t *intsrc(uint8_t *p, uint8_t entry, uint8_t type, uint16_t flags, uint8_t bus,
                       uint8_t irq, uint8_t apic, uint8_t pin)
{
        p[0] = entry;
        p[1] = type;
        put16(p + 2, flags);
        p[4] = bus;
        p[5] = irq;
        p[6] = apic;
        p[7] = pin;
        return p + 8;
}

int vmm_boot_mptable(guest_mem *gm, unsigned cpus, unsigned pci_slot_intx, forge_error **err)
{
        size_t need = 16 + 44 + 20 * (size_t)cpus + 2 * 8 + 8 + 17 * 8 + 2 * 8;
        uint8_t *base = gm_ptr(gm, MPTABLE_ADDR, need), *p, *cfg;
        uint8_t ioapic_id = (uint8_t)cpus;
        uint16_t count = 0;

        if (cpus == 0 || cpus > VMM_MAX_CPUS)
                return forge_error_make(err, 0, "%u vCPUs: between 1 and %d are supported", cpus,
                                        VMM_MAX_CPUS);
        if (base == NULL)
                return forge_error_make(err, 0, "no room for the MP table");
        memset(base, 0, need);

        /* floating pointer */
        memcpy(base, "_MP_", 4);
        put32(base + 4, (uint32_t)(MPTABLE_ADDR + 16));
        base[8] = 1; /* length in 16-byte units */
        base[9] = 4; /* spec 1.4 */

        cfg = base + 16;
        memcpy(cfg, "PCMP", 4);
        cfg[6] = 4;
        memcpy(cfg + 8, "FORGE   ", 8);
        memcpy(cfg + 16, "FORGE-VM    ", 12);
        put32(cfg + 36, (uint32_t)LAPIC_ADDR);
        p = cfg + 44;

        for (unsigned i = 0; i < cpus; i++, count++) {
                p[0] = MP_PROC;
                p[1] = (uint8_t)i;                 /* local APIC id */
                p[2] = 0x14;                       /* local APIC version */
                p[3] = 0x01 | (i == 0 ? 0x02 : 0); /* enabled, bootstrap */
                put32(p + 4, 0x600);               /* family 6 */
                put32(p + 8, 0x201);               /* FPU, APIC */
                p += 20;
        }
        p[0] = MP_BUS;
        p[1] = MP_BUS_PCI;
        memcpy(p + 2, "PCI   ", 6);
        p += 8;
        p[0] = MP_BUS;
        p[1] = MP_BUS_ISA;
        memcpy(p + 2, "ISA   ", 6);
        p += 8;
        count += 2;
        p[0] = MP_IOAPIC;
        p[1] = ioapic_id;
        p[2] = 0x11;
        p[3] = 0x01;
        put32(p + 4, (uint32_t)IOAPIC_ADDR);
        p += 8;
        count++;
        /* ISA IRQ n on IOAPIC pin n, as KVM's default GSI routing has it */
        for (uint8_t irq = 0; irq < 16; irq++) {
                if (irq == PCI_INTX_GSI)
                        continue;
                p = intsrc(p, MP_INTSRC, MP_INT, 0, MP_BUS_ISA, irq, ioapic_id, irq);
                count++;
        }
        /* the virtio device's INTA#: level, active high */
        p = intsrc(p, MP_INTSRC, MP_INT, 0x0d, MP_BUS_PCI, (uint8_t)(pci_slot_intx << 2), ioapic_id,
                   PCI_INTX_GSI);
        count++;
        p = intsrc(p, MP_LINTSRC, MP_EXTINT, 0, MP_BUS_ISA, 0, 0xff, 0);
        p = intsrc(p, MP_LINTSRC, MP_NMI, 0, MP_BUS_ISA, 0, 0xff, 1);
        count += 2;

        put16(cfg + 4, (uint16_t)(p - cfg));
        put16(cfg + 34, count);
        cfg[7] = checksum(cfg, (size_t)(p - cfg));
        base[10] = checksum(base, 16);
        return 0;
}

/* --- ACPI: RSDP -> XSDT -> MADT, for kernels built without MP table support --- */

static void acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
        memcpy(t, sig, 4);
        put32(t + 4, len);
        t[8] = rev;
        memcpy(t + 10, "FORGE ", 6);
        memcpy(t + 16, "FORGEVM ", 8);
        put32(t + 24, 1);
        memcpy(t + 28, "FRGE", 4);
        put32(t + 32, 1);
        t[9] = checksum(t, len);
}

int vmm_boot_acpi(guest_mem *gm, unsigned cpus, forge_error **err)
{
        uint32_t madt_len = 44 + 8 * cpus + 12;
        uint8_t *rsdp = gm_ptr(gm, ACPI_RSDP_ADDR, 36);
        uint8_t *xsdt = gm_ptr(gm, ACPI_XSDT_ADDR, 36 + 8);
        uint8_t *madt = gm_ptr(gm, ACPI_MADT_ADDR, madt_len);
        uint8_t *p;

        if (cpus == 0 || cpus > VMM_MAX_CPUS)
                return forge_error_make(err, 0, "%u vCPUs: between 1 and %d are supported", cpus,
                                        VMM_MAX_CPUS);
        if (rsdp == NULL || xsdt == NULL || madt == NULL)
                return forge_error_make(err, 0, "no room for the ACPI tables");
        memset(madt, 0, madt_len);
        put32(madt + 36, (uint32_t)LAPIC_ADDR);
        put32(madt + 40, 1); /* PCAT_COMPAT: there are 8259s too */
        p = madt + 44;
        for (unsigned i = 0; i < cpus; i++, p += 8) {
                p[0] = 0; /* processor local APIC */
                p[1] = 8;
                p[2] = (uint8_t)i; /* ACPI processor UID */
                p[3] = (uint8_t)i; /* APIC id */
                put32(p + 4, 1);   /* enabled */
        }
        p[0] = 1; /* I/O APIC */
        p[1] = 12;
        p[2] = (uint8_t)cpus;
        put32(p + 4, (uint32_t)IOAPIC_ADDR);
        put32(p + 8, 0); /* GSI base */
        acpi_header(madt, "APIC", madt_len, 3);

        memset(xsdt, 0, 44);
        put64(xsdt + 36, ACPI_MADT_ADDR);
        acpi_header(xsdt, "XSDT", 44, 1);

        memset(rsdp, 0, 36);
        memcpy(rsdp, "RSD PTR ", 8);
        memcpy(rsdp + 9, "FORGE ", 6);
        rsdp[15] = 2; /* ACPI 2.0+: the XSDT */
        put32(rsdp + 20, 36);
        put64(rsdp + 24, ACPI_XSDT_ADDR);
        rsdp[8] = checksum(rsdp, 20);
        rsdp[32] = checksum(rsdp, 36);
        return 0;
}
