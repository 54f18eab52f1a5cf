/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of forge-vmm's uncompressed-kernel boot (runtime/vmm/x86/
 * vmlinux.c): a synthetic kernel ELF with a relocation table in the layout
 * the kernel's build appends, loaded into a fake guest memory; KASLR shifts
 * every kind of relocation by the chosen slot; hostile headers, extents and
 * relocations are refused before guest memory is written out of bounds.
 */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/vmm/vmm-internal.h"
#include "testutil.h"

#define MEM (128ULL << 20)
#define TEXT_PA 0x1000000ULL /* LOAD_PHYSICAL_ADDR */
#define TEXT_VA (0xffffffff80000000ULL + TEXT_PA)
#define TEXT_LEN 0x2000ULL
#define DATA_PA (TEXT_PA + 0x200000ULL)
#define DATA_FILE 0x1000ULL
#define DATA_MEM 0x3000ULL
#define SEG_OFF 0x1000ULL /* file offset of the text; data follows */

static guest_mem *new_mem(void)
{
        guest_mem *gm = calloc(1, sizeof(*gm));
        gm->host = calloc(1, MEM);
        gm->size = gm->low_size = MEM;
        assert_non_null(gm->host);
        return gm;
}

static void free_mem(guest_mem *gm)
{
        free(gm->host);
        free(gm);
}

/* The kernel as vmimage stores it: an ELF (two segments) then relocations. */
typedef struct kimg {
        uint8_t *b;
        size_t len, elf_len;
} kimg;

static void put32(uint8_t *p, uint32_t v)
{
        memcpy(p, &v, 4);
}

static kimg make_kernel(void)
{
        kimg k;
        Elf64_Ehdr *eh;
        Elf64_Phdr *ph;
        uint8_t *r;
        /* 64-bit: one; inverse 32-bit: one; 32-bit: two */
        uint32_t relocs[] = {0,
                             (uint32_t)(TEXT_VA + 0x100),
                             0,
                             (uint32_t)(TEXT_VA + 0x200),
                             0,
                             (uint32_t)(TEXT_VA + 0x300),
                             (uint32_t)(TEXT_VA + 0x1ffc)};

        k.elf_len = SEG_OFF + TEXT_LEN + DATA_FILE;
        k.len = k.elf_len + sizeof(relocs);
        k.b = calloc(1, k.len);
        assert_non_null(k.b);
        eh = (Elf64_Ehdr *)k.b;
        memcpy(eh->e_ident, ELFMAG, SELFMAG);
        eh->e_ident[EI_CLASS] = ELFCLASS64;
        eh->e_ident[EI_DATA] = ELFDATA2LSB;
        eh->e_type = ET_EXEC;
        eh->e_machine = EM_X86_64;
        eh->e_entry = TEXT_PA;
        eh->e_phoff = sizeof(*eh);
        eh->e_phentsize = sizeof(Elf64_Phdr);
        eh->e_phnum = 2;
        ph = (Elf64_Phdr *)(k.b + sizeof(*eh));
        ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
                             .p_offset = SEG_OFF,
                             .p_vaddr = TEXT_VA,
                             .p_paddr = TEXT_PA,
                             .p_filesz = TEXT_LEN,
                             .p_memsz = TEXT_LEN};
        ph[1] = (Elf64_Phdr){.p_type = PT_LOAD,
                             .p_offset = SEG_OFF + TEXT_LEN,
                             .p_vaddr = TEXT_VA + 0x200000,
                             .p_paddr = DATA_PA,
                             .p_filesz = DATA_FILE,
                             .p_memsz = DATA_MEM};
        for (size_t i = 0; i < TEXT_LEN + DATA_FILE; i++)
                k.b[SEG_OFF + i] = (uint8_t)(i * 13 + 1);
        {
                uint64_t abs = TEXT_VA + 0x1000;
                memcpy(k.b + SEG_OFF + 0x100, &abs, 8);
        }
        put32(k.b + SEG_OFF + 0x200, 0x4000);                       /* a distance */
        put32(k.b + SEG_OFF + 0x300, (uint32_t)(TEXT_VA + 0x1800)); /* an address */
        put32(k.b + SEG_OFF + 0x1ffc, (uint32_t)(TEXT_VA + 0x10));  /* the last word */
        r = k.b + k.elf_len;
        memcpy(r, relocs, sizeof(relocs));
        return k;
}

static int memfd_of(const uint8_t *b, size_t len)
{
        int fd = memfd_create("vmlinux", MFD_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, b, len), (ssize_t)len);
        return fd;
}

static uint64_t rd64(const uint8_t *p)
{
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
}

static uint32_t rd32(const uint8_t *p)
{
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
}

static int load(guest_mem *gm, const kimg *k, bool kaslr, uint64_t random, vmlinux_loaded *l,
                forge_error **err)
{
        int fd = memfd_of(k->b, k->len);
        boot_vmlinux v = {fd, 0, k->len};
        int r = vmm_vmlinux_load(gm, &v, kaslr, random, l, err);
        close(fd);
        return r;
}

static void test_load_plain(void **state)
{
        guest_mem *gm = new_mem();
        kimg k = make_kernel();
        vmlinux_loaded l;
        forge_error *err = NULL;

        (void)state;
        memset(gm->host + DATA_PA + DATA_FILE, 0xee, DATA_MEM - DATA_FILE);
        assert_int_equal(load(gm, &k, false, 12345, &l, &err), 0);
        assert_int_equal(l.entry, TEXT_PA);
        assert_int_equal(l.start, TEXT_PA);
        assert_int_equal(l.end, DATA_PA + DATA_MEM);
        assert_false(l.randomized);
        assert_int_equal(l.virt_delta, 0);
        /* the segments at their physical addresses, the rest of the data
         * segment zeroed, nothing relocated */
        assert_memory_equal(gm->host + TEXT_PA, k.b + SEG_OFF, TEXT_LEN);
        assert_memory_equal(gm->host + DATA_PA, k.b + SEG_OFF + TEXT_LEN, DATA_FILE);
        for (uint64_t i = DATA_FILE; i < DATA_MEM; i++)
                assert_int_equal(gm->host[DATA_PA + i], 0);
        /* nothing between the segments */
        assert_int_equal(gm->host[TEXT_PA + TEXT_LEN], 0);
        free(k.b);
        free_mem(gm);
}

static void test_load_kaslr(void **state)
{
        guest_mem *gm = new_mem();
        kimg k = make_kernel();
        vmlinux_loaded l;
        forge_error *err = NULL;
        /* slots of 2 MiB between the image's end and 1 GiB, plus its own */
        uint64_t slots = ((1ULL << 30) - (DATA_PA + DATA_MEM)) / (2ULL << 20) + 1;
        uint64_t delta = (1000 % slots) * (2ULL << 20);

        (void)state;
        assert_true(delta != 0);
        assert_int_equal(load(gm, &k, true, 1000, &l, &err), 0);
        assert_true(l.randomized);
        assert_int_equal(l.virt_delta, delta);
        assert_int_equal(l.entry, TEXT_PA); /* the physical entry stays */
        assert_int_equal(rd64(gm->host + TEXT_PA + 0x100), TEXT_VA + 0x1000 + delta);
        assert_int_equal(rd32(gm->host + TEXT_PA + 0x200), 0x4000 - (uint32_t)delta);
        assert_int_equal(rd32(gm->host + TEXT_PA + 0x300), (uint32_t)(TEXT_VA + 0x1800 + delta));
        assert_int_equal(rd32(gm->host + TEXT_PA + 0x1ffc), (uint32_t)(TEXT_VA + 0x10 + delta));
        /* a byte no relocation names is as in the file */
        assert_int_equal(gm->host[TEXT_PA + 0x400], k.b[SEG_OFF + 0x400]);
        /* random 0: the link-time slot, nothing to shift, KASLR still on */
        memset(gm->host, 0, MEM);
        assert_int_equal(load(gm, &k, true, 0, &l, &err), 0);
        assert_true(l.randomized);
        assert_int_equal(rd64(gm->host + TEXT_PA + 0x100), TEXT_VA + 0x1000);
        /* every slot stays below 1 GiB */
        assert_int_equal(load(gm, &k, true, slots - 1, &l, &err), 0);
        assert_true(TEXT_PA + l.virt_delta + (l.end - l.start) <= (1ULL << 30));
        free(k.b);
        free_mem(gm);
}

/* A PT_LOAD of no memory is no segment, whatever its file size and address
 * (the fuzzer's find: it was copied to a NULL guest pointer). */
static void test_empty_segment(void **state)
{
        guest_mem *gm = new_mem();
        kimg k = make_kernel();
        Elf64_Ehdr *eh = (Elf64_Ehdr *)k.b;
        Elf64_Phdr *ph = (Elf64_Phdr *)(k.b + sizeof(*eh));
        vmlinux_loaded l;
        forge_error *err = NULL;

        (void)state;
        eh->e_phnum = 3;
        ph[2] = (Elf64_Phdr){.p_type = PT_LOAD,
                             .p_offset = 0,
                             .p_paddr = UINT64_MAX - 10,
                             .p_filesz = 4096,
                             .p_memsz = 0};
        assert_int_equal(load(gm, &k, true, 3, &l, &err), 0);
        assert_int_equal(l.end, DATA_PA + DATA_MEM);
        free(k.b);
        free_mem(gm);
}

/* Through vmm_boot_load: the zero page says KASLR unless nokaslr. */
static void test_boot_vmlinux(void **state)
{
        guest_mem *gm = new_mem();
        kimg k = make_kernel();
        uint8_t bz[VMM_BOOT_SETUP_MAX] = {0};
        uint8_t initrd[4096];
        forge_error *err = NULL;
        boot_layout bl;
        int fd = memfd_of(k.b, k.len);
        boot_vmlinux v = {fd, 0, k.len};

        (void)state;
        bz[0x1f1] = 4;
        bz[0x1fe] = 0x55;
        bz[0x1ff] = 0xaa;
        bz[0x200] = 0xeb;
        bz[0x201] = 0x6a;
        memcpy(bz + 0x202, "HdrS", 4);
        bz[0x206] = 0x0f;
        bz[0x207] = 0x02;
        bz[0x211] = 0x01;
        put32(bz + 0x22c, 0x7fffffff);
        bz[0x236] = 0x01;
        put32(bz + 0x238, 2048);
        memset(initrd, 0x5a, sizeof(initrd));
        assert_int_equal(vmm_boot_load(gm, bz, sizeof(bz), &v, initrd, sizeof(initrd),
                                       "console=ttyS0", &bl, &err),
                         0);
        assert_int_equal(bl.kernel_entry, TEXT_PA);
        assert_true(bl.kaslr);
        assert_true(gm->host[ZERO_PAGE_ADDR + 0x211] & 0x02);
        assert_true(bl.initrd_addr >= DATA_PA + DATA_MEM);
        assert_memory_equal(gm->host + TEXT_PA + 0x400, k.b + SEG_OFF + 0x400, 16);

        memset(gm->host, 0, MEM);
        assert_int_equal(vmm_boot_load(gm, bz, sizeof(bz), &v, initrd, sizeof(initrd),
                                       "console=ttyS0 nokaslr quiet", &bl, &err),
                         0);
        assert_false(bl.kaslr);
        assert_false(gm->host[ZERO_PAGE_ADDR + 0x211] & 0x02);
        assert_int_equal(rd64(gm->host + TEXT_PA + 0x100), TEXT_VA + 0x1000);
        /* a word that only contains it is not it */
        memset(gm->host, 0, MEM);
        assert_int_equal(vmm_boot_load(gm, bz, sizeof(bz), &v, initrd, sizeof(initrd),
                                       "x.nokaslr=1 nokaslrx", &bl, &err),
                         0);
        assert_true(bl.kaslr);
        close(fd);
        free(k.b);
        free_mem(gm);
}

/* Each broken kernel is refused with a message and the guest memory past
 * its RAM is never touched (the fake memory is exactly MEM bytes: ASan
 * would catch a write beyond). */
static void expect_refused(const kimg *k, bool kaslr, const char *words)
{
        guest_mem *gm = new_mem();
        vmlinux_loaded l;
        forge_error *err = NULL;

        assert_int_equal(load(gm, k, kaslr, 7, &l, &err), -1);
        assert_non_null(err);
        assert_non_null(strstr(err->msg, words));
        forge_error_release(&err);
        free_mem(gm);
}

static void test_refuses(void **state)
{
        kimg k = make_kernel();
        Elf64_Ehdr *eh = (Elf64_Ehdr *)k.b;
        Elf64_Phdr *ph = (Elf64_Phdr *)(k.b + sizeof(*eh));
        Elf64_Phdr saved;
        size_t len = k.len;

        (void)state;
        k.b[1] = 'X';
        expect_refused(&k, false, "not an x86-64");
        k.b[1] = 'E';
        eh->e_machine = EM_386;
        expect_refused(&k, false, "not an x86-64");
        eh->e_machine = EM_X86_64;
        eh->e_phnum = 0;
        expect_refused(&k, false, "program header");
        eh->e_phnum = 1000;
        expect_refused(&k, false, "program header");
        eh->e_phnum = 2;
        eh->e_phoff = k.len - 8;
        expect_refused(&k, false, "program header");
        eh->e_phoff = sizeof(*eh);
        eh->e_shoff = k.len - 8;
        eh->e_shentsize = sizeof(Elf64_Shdr);
        eh->e_shnum = 4;
        expect_refused(&k, false, "section header");
        eh->e_shoff = 0;
        eh->e_shnum = 0;
        eh->e_shentsize = 0;

        saved = ph[1];
        ph[1].p_offset = k.len - 16; /* past the end of the file */
        expect_refused(&k, false, "outside the file");
        ph[1].p_offset = UINT64_MAX - 8;
        expect_refused(&k, false, "outside the file");
        ph[1] = saved;
        ph[1].p_filesz = ph[1].p_memsz + 1;
        expect_refused(&k, false, "outside the file");
        ph[1] = saved;
        ph[1].p_paddr = 0x7000; /* over the zero page */
        expect_refused(&k, false, "outside the guest");
        ph[1].p_paddr = MEM - 0x1000; /* past the guest's RAM */
        expect_refused(&k, false, "outside the guest");
        ph[1].p_paddr = UINT64_MAX - 0x1000; /* wraps */
        expect_refused(&k, false, "outside the guest");
        ph[1].p_memsz = UINT64_MAX;
        expect_refused(&k, false, "outside the guest");
        ph[1] = saved;
        ph[0].p_paddr = TEXT_PA + 0x1000;
        expect_refused(&k, false, "2 MiB");
        ph[0].p_paddr = TEXT_PA;
        eh->e_entry = DATA_PA + DATA_MEM;
        expect_refused(&k, false, "entry point");
        eh->e_entry = TEXT_PA;

        /* the relocation table: truncated to an unterminated list, an odd
         * size, junk words before it, a relocation outside the kernel */
        k.len = k.elf_len + 4;
        put32(k.b + k.elf_len, 0x81000010);
        expect_refused(&k, false, "not terminated");
        put32(k.b + k.elf_len, 0);
        k.len = len - 2;
        expect_refused(&k, false, "bad size");
        k.len = len;
        {
                kimg j = k;
                j.b = calloc(1, len + 8);
                memcpy(j.b, k.b, k.elf_len);
                put32(j.b + k.elf_len, 0);
                put32(j.b + k.elf_len + 4, 0);
                memcpy(j.b + k.elf_len + 8, k.b + k.elf_len, len - k.elf_len);
                j.len = len + 8;
                expect_refused(&j, false, "between the ELF");
                free(j.b);
        }
        put32(k.b + k.elf_len + 4, (uint32_t)(TEXT_VA + 0x400000)); /* a 64-bit one, outside */
        expect_refused(&k, true, "relocation outside");
        put32(k.b + k.elf_len + 4, (uint32_t)(TEXT_VA - 8));
        expect_refused(&k, true, "relocation outside");
        put32(k.b + k.elf_len + 4, (uint32_t)(DATA_PA + DATA_MEM - 4 + 0xffffffff80000000ULL));
        expect_refused(&k, true, "relocation outside"); /* 8 bytes from 4 before the end */
        free(k.b);
}

TU_TEST_MAIN(NULL, NULL, cmocka_unit_test(test_load_plain), cmocka_unit_test(test_load_kaslr),
             cmocka_unit_test(test_empty_segment), cmocka_unit_test(test_boot_vmlinux),
             cmocka_unit_test(test_refuses))
