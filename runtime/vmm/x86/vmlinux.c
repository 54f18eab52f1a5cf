/* SPDX-License-Identifier: MIT */
/*
 * The uncompressed kernel: what a bzImage's decompressor would leave in
 * memory, done by the launcher on the host so the guest's vCPU starts in
 * the kernel itself. The input (vmimage/vmlinux.c) is the bzImage's
 * payload: vmlinux.bin, a stripped x86-64 ELF whose PT_LOAD segments go to
 * their physical addresses, followed by the relocation table the kernel's
 * build appends for KASLR (arch/x86/tools/relocs): three lists of 32-bit
 * link-time addresses, read from the end backwards, each ended by a zero
 * word: 32-bit relocations, inverse 32-bit relocations, 64-bit relocations.
 *
 * KASLR as the decompressor does it (arch/x86/boot/compressed/kaslr.c): a
 * random 2 MiB-aligned virtual base within the 1 GiB kernel image area,
 * the relocations shifted by it, and KASLR_FLAG in the zero page so the
 * kernel randomises its memory regions too; not with `nokaslr` on the
 * command line. The physical base stays where the ELF puts it.
 *
 * The ELF comes from the disk image, which the guest may have written:
 * every header field, extent and relocation is checked against the file
 * and the guest memory before anything is read or written. (The file is
 * mapped while the segments are copied: one that its owner truncates at
 * that moment ends forge-vmm with SIGBUS, before the guest runs.)
 */
#include "runtime/vmm/vmm-internal.h"

#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/fs.h"

#define MAX_PHDRS 32
#define MAX_RELOCS_BYTES (16u << 20)
#define KERNEL_ALIGN (2ULL << 20)      /* CONFIG_PHYSICAL_ALIGN, and what startup_64 checks */
#define KERNEL_IMAGE_SIZE (1ULL << 30) /* the kernel's mapping with KASLR */
#define START_KERNEL_MAP 0xffffffff80000000ULL /* __START_KERNEL_map */

static int bad(forge_error **err, const char *what)
{
        return forge_error_make(err, 0, "corrupt uncompressed kernel: %s", what);
}

/* The ELF header and program headers, checked against the file. */
static int headers_read(const boot_vmlinux *v, Elf64_Ehdr *eh, Elf64_Phdr *ph, forge_error **err)
{
        if (v->len < sizeof(*eh) || fs_pread_all(v->fd, eh, sizeof(*eh), v->off) < 0)
                return bad(err, "no ELF header");
        if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
            eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64 ||
            eh->e_type != ET_EXEC)
                return bad(err, "not an x86-64 executable ELF");
        if (eh->e_phentsize != sizeof(*ph) || eh->e_phnum == 0 || eh->e_phnum > MAX_PHDRS ||
            eh->e_phoff > v->len || (uint64_t)eh->e_phnum * sizeof(*ph) > v->len - eh->e_phoff)
                return bad(err, "bad program header table");
        if (fs_pread_all(v->fd, ph, (size_t)eh->e_phnum * sizeof(*ph), v->off + eh->e_phoff) < 0)
                return bad(err, "short program header table");
        return 0;
}

/* Where the loaded image lies and where the ELF's own bytes end in the
 * file (the relocation table follows). */
typedef struct span {
        uint64_t start, end; /* guest physical */
        uint64_t elf_end;    /* file offset */
} span;

static int segments_check(const guest_mem *gm, const boot_vmlinux *v, const Elf64_Ehdr *eh,
                          const Elf64_Phdr *ph, span *s, forge_error **err)
{
        unsigned loads = 0;

        s->start = UINT64_MAX;
        s->end = 0;
        s->elf_end = eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(*ph);
        if (eh->e_shoff != 0) {
                if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > v->len ||
                    (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > v->len - eh->e_shoff)
                        return bad(err, "bad section header table");
                if (eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > s->elf_end)
                        s->elf_end = eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr);
        }
        for (unsigned i = 0; i < eh->e_phnum; i++) {
                const Elf64_Phdr *p = &ph[i];
                if (p->p_type != PT_LOAD || p->p_memsz == 0)
                        continue;
                if (p->p_filesz > p->p_memsz || p->p_offset > v->len ||
                    p->p_filesz > v->len - p->p_offset)
                        return bad(err, "a segment lies outside the file");
                if (p->p_paddr < HIGH_MEMORY || p->p_memsz > gm->low_size ||
                    p->p_paddr > gm->low_size - p->p_memsz)
                        return forge_error_make(err, 0,
                                                "the kernel's segment at %#llx (%llu KiB) is "
                                                "outside the guest's low memory of %llu MiB",
                                                (unsigned long long)p->p_paddr,
                                                (unsigned long long)(p->p_memsz >> 10),
                                                (unsigned long long)(gm->low_size >> 20));
                if (p->p_paddr < s->start)
                        s->start = p->p_paddr;
                if (p->p_paddr + p->p_memsz > s->end)
                        s->end = p->p_paddr + p->p_memsz;
                if (p->p_offset + p->p_filesz > s->elf_end)
                        s->elf_end = p->p_offset + p->p_filesz;
                loads++;
        }
        if (loads == 0)
                return bad(err, "no loadable segment");
        if (s->start % KERNEL_ALIGN != 0)
                return bad(err, "the kernel does not start on a 2 MiB boundary");
        if (eh->e_entry < s->start || eh->e_entry >= s->end)
                return bad(err, "the entry point is outside the kernel");
        return 0;
}

/* Copying the segments in: most of the time goes to faulting in the guest's
 * (huge, zeroed) pages, so the copy runs on a few threads at once, each
 * taking 2 MiB pieces of guest memory in turn, from a read-only mapping of
 * the file (no pread's extra copy out of the page cache). */
#define COPY_CHUNK (2ULL << 20)
#define COPY_THREADS 4

typedef struct copy_piece {
        uint8_t *dst;
        const uint8_t *src;
        size_t len;
} copy_piece;

typedef struct copy_job {
        copy_piece *p;
        size_t n;
        atomic_size_t next;
} copy_job;

static void *copy_worker(void *arg)
{
        copy_job *j = arg;

        for (size_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
                const copy_piece *p = &j->p[i];
                uintptr_t from = ((uintptr_t)p->src + 4095) & ~(uintptr_t)4095;
                uintptr_t to = ((uintptr_t)p->src + p->len) & ~(uintptr_t)4095;

                memcpy(p->dst, p->src, p->len);
                /* the file's pages leave this process's memory at once (its
                 * peak RSS is guest memory and the launcher, not the file) */
                if (to > from)
                        madvise((void *)from, to - from, MADV_DONTNEED);
        }
        return NULL;
}

/* The segments' file bytes cut at 2 MiB boundaries of guest memory. */
static size_t pieces_make(guest_mem *gm, const uint8_t *file, const Elf64_Ehdr *eh,
                          const Elf64_Phdr *ph, copy_piece *out)
{
        size_t n = 0;

        for (unsigned i = 0; i < eh->e_phnum; i++) {
                const Elf64_Phdr *p = &ph[i];
                if (p->p_type != PT_LOAD || p->p_memsz == 0) /* as segments_check */
                        continue;
                for (uint64_t done = 0; done < p->p_filesz;) {
                        uint64_t gpa = p->p_paddr + done;
                        uint64_t len = COPY_CHUNK - gpa % COPY_CHUNK;
                        if (len > p->p_filesz - done)
                                len = p->p_filesz - done;
                        if (out)
                                out[n] = (copy_piece){gm_ptr(gm, gpa, len),
                                                      file + p->p_offset + done, len};
                        n++;
                        done += len;
                }
        }
        return n;
}

static int segments_copy(guest_mem *gm, const uint8_t *file, const Elf64_Ehdr *eh,
                         const Elf64_Phdr *ph)
{
        copy_job j = {.n = pieces_make(gm, file, eh, ph, NULL)};
        pthread_t t[COPY_THREADS - 1];
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned nt = 0, want = cpus > COPY_THREADS ? COPY_THREADS : cpus > 1 ? (unsigned)cpus : 1;

        j.p = calloc(j.n ? j.n : 1, sizeof(*j.p));
        if (j.p == NULL)
                return -1;
        pieces_make(gm, file, eh, ph, j.p);
        atomic_init(&j.next, 0);
        while (nt + 1 < want && pthread_create(&t[nt], NULL, copy_worker, &j) == 0)
                nt++;
        copy_worker(&j);
        while (nt > 0)
                pthread_join(t[--nt], NULL);
        free(j.p);
        return 0;
}

static int segments_load(guest_mem *gm, const boot_vmlinux *v, const Elf64_Ehdr *eh,
                         const Elf64_Phdr *ph, forge_error **err)
{
        uint64_t skew = v->off % 4096;
        uint8_t *map =
            mmap(NULL, v->len + skew, PROT_READ, MAP_PRIVATE, v->fd, (off_t)(v->off - skew));
        int r = 0;

        if (map != MAP_FAILED) {
                r = segments_copy(gm, map + skew, eh, ph);
                munmap(map, v->len + skew);
        }
        for (unsigned i = 0; i < eh->e_phnum; i++) {
                const Elf64_Phdr *p = &ph[i];
                uint8_t *dst;
                if (p->p_type != PT_LOAD || p->p_memsz == 0)
                        continue;
                dst = gm_ptr(gm, p->p_paddr, p->p_memsz); /* checked: not NULL */
                /* without a mapping (or the memory for the job), read */
                if ((map == MAP_FAILED || r < 0) &&
                    fs_pread_all(v->fd, dst, p->p_filesz, v->off + p->p_offset) < 0)
                        return forge_error_make(err, errno, "read the uncompressed kernel");
                memset(dst + p->p_filesz, 0, p->p_memsz - p->p_filesz);
        }
        return 0;
}

/* The relocation table: n words; lists[k] = [first, first + count) of each
 * list in file order (64-bit, inverse 32-bit, 32-bit). */
typedef struct relocs {
        uint32_t *w;
        size_t n;
        size_t first[3], count[3];
} relocs;

static int relocs_read(const boot_vmlinux *v, const span *s, relocs *r, forge_error **err)
{
        uint64_t len = v->len - s->elf_end;
        size_t i;

        memset(r, 0, sizeof(*r));
        if (len == 0)
                return 0;
        if (len % 4 != 0 || len > MAX_RELOCS_BYTES)
                return bad(err, "the relocation table has a bad size");
        r->n = len / 4;
        r->w = malloc(len);
        if (r->w == NULL)
                return forge_error_make(err, ENOMEM, "read the kernel's relocations");
        if (fs_pread_all(v->fd, r->w, len, v->off + s->elf_end) < 0) {
                free(r->w);
                r->w = NULL;
                return bad(err, "short relocation table");
        }
        /* from the end: 32-bit, then inverse 32-bit, then 64-bit, each
         * list ended (towards the front) by a zero word */
        i = r->n;
        for (int k = 2; k >= 0; k--) {
                size_t end = i;
                while (i > 0 && r->w[i - 1] != 0)
                        i--;
                if (i == 0) {
                        free(r->w);
                        r->w = NULL;
                        return bad(err, "the relocation table is not terminated");
                }
                r->first[k] = i;
                r->count[k] = end - i;
                i--; /* the terminator */
        }
        if (i != 0) {
                free(r->w);
                r->w = NULL;
                return bad(err, "bytes between the ELF and its relocation table");
        }
        return 0;
}

/* Each relocation names a link-time virtual address inside the image. */
static int relocs_apply(guest_mem *gm, const span *s, const relocs *r, uint64_t delta,
                        forge_error **err)
{
        static const unsigned width[3] = {8, 4, 4};

        for (int k = 0; k < 3; k++) {
                for (size_t j = 0; j < r->count[k]; j++) {
                        uint64_t va = (uint64_t)(int64_t)(int32_t)r->w[r->first[k] + j];
                        uint64_t pa = va - START_KERNEL_MAP;
                        uint8_t *p;
                        if (pa < s->start || pa > s->end - width[k])
                                return bad(err, "a relocation outside the kernel");
                        p = gm_ptr(gm, pa, width[k]);
                        if (k == 0) {
                                uint64_t x;
                                memcpy(&x, p, 8);
                                x += delta;
                                memcpy(p, &x, 8);
                        } else {
                                uint32_t x;
                                memcpy(&x, p, 4);
                                x = k == 1 ? x - (uint32_t)delta : x + (uint32_t)delta;
                                memcpy(p, &x, 4);
                        }
                }
        }
        return 0;
}

int vmm_vmlinux_load(guest_mem *gm, const boot_vmlinux *v, bool kaslr, uint64_t random,
                     vmlinux_loaded *ret, forge_error **err)
{
        Elf64_Phdr ph[MAX_PHDRS];
        Elf64_Ehdr eh;
        relocs r;
        span s;
        uint64_t delta = 0;
        int rc;

        memset(ret, 0, sizeof(*ret));
        if (headers_read(v, &eh, ph, err) < 0 || segments_check(gm, v, &eh, ph, &s, err) < 0 ||
            relocs_read(v, &s, &r, err) < 0)
                return -1;
        if (kaslr && r.w != NULL && s.end <= KERNEL_IMAGE_SIZE) {
                /* the slots a 2 MiB-aligned image fits in below 1 GiB, from
                 * its link address up */
                uint64_t slots = (KERNEL_IMAGE_SIZE - s.end) / KERNEL_ALIGN + 1;
                delta = (random % slots) * KERNEL_ALIGN;
                ret->randomized = true;
        }
        rc = segments_load(gm, v, &eh, ph, err);
        if (rc == 0 && delta != 0)
                rc = relocs_apply(gm, &s, &r, delta, err);
        free(r.w);
        if (rc < 0)
                return -1;
        ret->entry = eh.e_entry;
        ret->start = s.start;
        ret->end = s.end;
        ret->virt_delta = delta;
        return 0;
}
