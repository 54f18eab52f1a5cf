/* SPDX-License-Identifier: MIT */
/*
 * The uncompressed kernel beside the bzImage. A bzImage's protected-mode
 * part is a decompressor with the kernel as its payload (the setup header's
 * payload_offset and payload_length, boot protocol 2.08+): vmlinux.bin, a
 * stripped ELF, followed by the relocation table KASLR applies
 * (vmlinux.relocs). Inside a VM that decompression runs on the guest's
 * vCPU, which nested virtualisation makes slow; forge-vmm loads the payload
 * as is, applies the relocations itself and enters the kernel's
 * startup_64 (docs/vm.md, "Boot"). The payload is decompressed here, once,
 * when the disk image is made, with libarchive's built-in decompressors
 * (the kernel's gzip, bzip2, xz, lzma, lz4 and zstd formats); a kernel in
 * another format keeps only its bzImage, which every launcher boots.
 */
#include "vmimage/vmimage-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "store/store.h"

#define MAX_BZIMAGE (256u << 20)
#define MAX_VMLINUX (256u << 20)

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The payload's extent in the bzImage, or -1 when the header has none. */
static int payload_extent(const uint8_t *k, size_t len, size_t *ret_off, size_t *ret_len)
{
        size_t setup, off, plen;

        if (len < 0x264 || memcmp(k + 0x202, "HdrS", 4) != 0 || (k[0x206] | k[0x207] << 8) < 0x0208)
                return -1;
        setup = (size_t)((k[0x1f1] ? k[0x1f1] : 4) + 1) * 512;
        off = le32(k + 0x248);
        plen = le32(k + 0x24c);
        if (setup > len || off > len - setup || plen == 0 || plen > len - setup - off)
                return -1;
        *ret_off = setup + off;
        *ret_len = plen;
        return 0;
}

/* Whether the payload starts as one of the kernel's compressions that
 * libarchive reads: gzip, bzip2, xz, lzma, lz4 (legacy frames), zstd. */
static bool payload_known(const uint8_t *p, size_t len)
{
        static const struct {
                const char *magic;
                size_t len;
        } m[] = {{"\x1f\x8b", 2},
                 {"BZh", 3},
                 {"\xfd\x37\x7a\x58\x5a\0", 6},
                 {"\x5d\0\0", 3},
                 {"\x02\x21\x4c\x18", 4},
                 {"\x28\xb5\x2f\xfd", 4}};

        for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
                if (len >= m[i].len && memcmp(p, m[i].magic, m[i].len) == 0)
                        return true;
        return false;
}

static int payload_broken(forge_error **err, struct archive *a)
{
        const char *why = archive_error_string(a);

        return forge_error_make(err, EBADMSG,
                                "the kernel's compressed payload cannot be read (%s): is the "
                                "bzImage truncated?",
                                why ? why : "no data");
}

static bool is_x86_64_elf(const char *b, size_t len)
{
        const Elf64_Ehdr *e = (const Elf64_Ehdr *)b;

        return len >= sizeof(*e) && memcmp(e->e_ident, ELFMAG, SELFMAG) == 0 &&
               e->e_ident[EI_CLASS] == ELFCLASS64 && e->e_ident[EI_DATA] == ELFDATA2LSB &&
               e->e_machine == EM_X86_64;
}

int vm_vmlinux_extract(const char *bzimage, const char *out, bool *ret_made, forge_error **err)
{
        cleanup_free char *k = NULL, *v = NULL;
        cleanup_archive struct archive *a = NULL;
        cleanup_close int fd = -1;
        struct archive_entry *ae;
        size_t klen, off, plen, vlen;
        forge_error *e = NULL;

        *ret_made = false;
        if (fs_read_all(AT_FDCWD, bzimage, MAX_BZIMAGE, &k, &klen, err) < 0)
                return forge_error_prefix(err, "kernel");
        if (payload_extent((const uint8_t *)k, klen, &off, &plen) < 0)
                return 0; /* an old boot protocol: the bzImage alone */
        if (!payload_known((const uint8_t *)k + off, plen))
                return 0; /* LZO, or none: the kernel decompresses itself */
        a = store_archive_raw_reader();
        if (a == NULL)
                return forge_error_make(err, ENOMEM, "decompress the kernel");
        if (archive_read_open_memory(a, k + off, plen) != ARCHIVE_OK ||
            archive_read_next_header(a, &ae) != ARCHIVE_OK)
                return payload_broken(err, a);
        if (store_archive_entry_read(a, MAX_VMLINUX, &v, &vlen, &e) < 0) {
                forge_error_release(&e);
                return payload_broken(err, a);
        }
        if (!is_x86_64_elf(v, vlen))
                return 0; /* some other payload: left to the kernel's decompressor */
        fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || fs_write_all(fd, v, vlen) < 0)
                return forge_error_make(err, errno, "write '%s'", out);
        *ret_made = true;
        return 0;
}
