/* SPDX-License-Identifier: MIT */
/*
 * GUID partition tables: written for our disks, read (untrusted) to find
 * the forge boot partition. UEFI spec, chapter 5: protective MBR in LBA 0,
 * header in LBA 1, 128 entries of 128 bytes from LBA 2, the backup entries
 * and header at the end of the disk; CRC32 as zlib computes it.
 */
#include "vmimage/vmimage-internal.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/cleanup.h"
#include "common/fs.h"

#define SECTOR 512
#define N_ENTRIES 128
#define ENTRY_SIZE 128
#define ENTRIES_SECTORS (N_ENTRIES * ENTRY_SIZE / SECTOR)

struct gpt_header {
        char signature[8];
        uint32_t revision;
        uint32_t header_size;
        uint32_t header_crc;
        uint32_t reserved;
        uint64_t my_lba;
        uint64_t alternate_lba;
        uint64_t first_usable;
        uint64_t last_usable;
        uint8_t disk_guid[16];
        uint64_t entries_lba;
        uint32_t n_entries;
        uint32_t entry_size;
        uint32_t entries_crc;
} __attribute__((packed));

struct gpt_entry {
        uint8_t type[16];
        uint8_t guid[16];
        uint64_t first_lba;
        uint64_t last_lba;
        uint64_t attributes;
        uint16_t name[36];
} __attribute__((packed));

_Static_assert(sizeof(struct gpt_entry) == ENTRY_SIZE, "GPT entry size");

/* GUID text "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" -> mixed-endian bytes. */
void vm_guid_parse(const char *s, uint8_t out[16])
{
        unsigned b[16];
        sscanf(s, "%2x%2x%2x%2x-%2x%2x-%2x%2x-%2x%2x-%2x%2x%2x%2x%2x%2x", &b[3], &b[2], &b[1],
               &b[0], &b[5], &b[4], &b[7], &b[6], &b[8], &b[9], &b[10], &b[11], &b[12], &b[13],
               &b[14], &b[15]);
        for (int i = 0; i < 16; i++)
                out[i] = (uint8_t)b[i];
}

void vm_guid_format(const uint8_t g[16], char out[37])
{
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12],
                 g[13], g[14], g[15]);
}

/* A version-4-shaped GUID derived from seed and a label. */
void vm_guid_derive(const char *seed, const char *label, uint8_t out[16])
{
        char buf[256], d[DIGEST_STR_SIZE];
        snprintf(buf, sizeof(buf), "forge-disk:%s:%s", seed, label);
        hash_sha256_buf(buf, strlen(buf), d);
        for (int i = 0; i < 16; i++) {
                unsigned v;
                sscanf(d + 7 + 2 * i, "%2x", &v);
                out[i] = (uint8_t)v;
        }
        out[7] = (uint8_t)((out[7] & 0x0f) | 0x40); /* version 4 (byte 7: high of time_hi) */
        out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* variant */
}

/* UTF-16LE name, as 72 bytes (the entry field is unaligned in a packed struct). */
static void put_name(void *name, const char *ascii)
{
        uint8_t *b = name;
        memset(b, 0, 72);
        for (int i = 0; i < 35 && ascii[i]; i++)
                b[2 * i] = (uint8_t)ascii[i];
}

int vm_gpt_write(int fd, uint64_t disk_bytes, const vm_part *parts, size_t n, const char *seed,
                 forge_error **err)
{
        uint64_t sectors = disk_bytes / SECTOR;
        uint8_t mbr[SECTOR] = {0};
        struct gpt_entry *entries = calloc(N_ENTRIES, sizeof(*entries));
        struct gpt_header h = {0}, b;
        uint8_t sec[SECTOR];
        uint32_t ecrc;
        int r = -1;

        if (entries == NULL)
                return forge_error_make(err, ENOMEM, "gpt");
        if (n > N_ENTRIES || sectors < 2 * (2 + ENTRIES_SECTORS)) {
                forge_error_make(err, EINVAL, "gpt: disk too small");
                goto out;
        }
        /* protective MBR: one partition of type 0xEE over the whole disk */
        mbr[446 + 1] = 0x00;
        mbr[446 + 2] = 0x02;
        mbr[446 + 4] = 0xee;
        mbr[446 + 5] = 0xff;
        mbr[446 + 6] = 0xff;
        mbr[446 + 7] = 0xff;
        {
                uint32_t first = htole32(1);
                uint32_t count =
                    htole32(sectors - 1 > 0xffffffffULL ? 0xffffffffU : (uint32_t)(sectors - 1));
                memcpy(mbr + 446 + 8, &first, 4);
                memcpy(mbr + 446 + 12, &count, 4);
        }
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        for (size_t i = 0; i < n; i++) {
                vm_guid_parse(parts[i].type_guid, entries[i].type);
                vm_guid_derive(seed, parts[i].name, entries[i].guid);
                entries[i].first_lba = htole64(parts[i].offset / SECTOR);
                entries[i].last_lba = htole64((parts[i].offset + parts[i].size) / SECTOR - 1);
                entries[i].attributes = 0;
                put_name(entries[i].name, parts[i].name);
        }
        ecrc = (uint32_t)crc32(0, (const Bytef *)entries, N_ENTRIES * ENTRY_SIZE);
        memcpy(h.signature, "EFI PART", 8);
        h.revision = htole32(0x00010000);
        h.header_size = htole32(92);
        h.my_lba = htole64(1);
        h.alternate_lba = htole64(sectors - 1);
        h.first_usable = htole64(2 + ENTRIES_SECTORS);
        h.last_usable = htole64(sectors - 2 - ENTRIES_SECTORS);
        vm_guid_derive(seed, "disk", h.disk_guid);
        h.entries_lba = htole64(2);
        h.n_entries = htole32(N_ENTRIES);
        h.entry_size = htole32(ENTRY_SIZE);
        h.entries_crc = htole32(ecrc);
        b = h;
        h.header_crc = htole32((uint32_t)crc32(0, (const Bytef *)&h, 92));
        b.my_lba = htole64(sectors - 1);
        b.alternate_lba = htole64(1);
        b.entries_lba = htole64(sectors - 1 - ENTRIES_SECTORS);
        b.header_crc = 0;
        b.header_crc = htole32((uint32_t)crc32(0, (const Bytef *)&b, 92));

        if (pwrite(fd, mbr, SECTOR, 0) != SECTOR)
                goto io;
        memset(sec, 0, sizeof(sec));
        memcpy(sec, &h, sizeof(h));
        if (pwrite(fd, sec, SECTOR, SECTOR) != SECTOR ||
            pwrite(fd, entries, N_ENTRIES * ENTRY_SIZE, 2 * SECTOR) != N_ENTRIES * ENTRY_SIZE)
                goto io;
        memset(sec, 0, sizeof(sec));
        memcpy(sec, &b, sizeof(b));
        if (pwrite(fd, entries, N_ENTRIES * ENTRY_SIZE,
                   (off_t)((sectors - 1 - ENTRIES_SECTORS) * SECTOR)) != N_ENTRIES * ENTRY_SIZE ||
            pwrite(fd, sec, SECTOR, (off_t)((sectors - 1) * SECTOR)) != SECTOR)
                goto io;
        r = 0;
        goto out;
io:
        forge_error_make(err, errno, "write the partition table");
out:
        free(entries);
        return r;
}

int vm_gpt_find(int fd, uint64_t disk_bytes, const char *name, uint64_t *ret_offset,
                uint64_t *ret_size, forge_error **err)
{
        struct gpt_header h;
        uint8_t sec[SECTOR];
        cleanup_free struct gpt_entry *entries = NULL;
        uint32_t n, esize, want_crc;
        uint8_t wname[72];

        if (pread(fd, sec, SECTOR, SECTOR) != SECTOR)
                return forge_error_make(err, EIO, "read the partition table");
        memcpy(&h, sec, sizeof(h));
        if (memcmp(h.signature, "EFI PART", 8) != 0 || le32toh(h.header_size) < 92 ||
            le32toh(h.header_size) > SECTOR)
                return forge_error_make(err, EINVAL, "not a GPT disk (no 'EFI PART' header)");
        want_crc = le32toh(h.header_crc);
        h.header_crc = 0;
        memcpy(sec, &h, sizeof(h));
        if ((uint32_t)crc32(0, sec, le32toh(h.header_size)) != want_crc)
                return forge_error_make(err, EINVAL, "corrupt partition table (header CRC)");
        n = le32toh(h.n_entries);
        esize = le32toh(h.entry_size);
        if (n == 0 || n > 1024 || esize < sizeof(struct gpt_entry) || esize > 1024 ||
            le64toh(h.entries_lba) > disk_bytes / SECTOR)
                return forge_error_make(err, EINVAL, "corrupt partition table (entries)");
        entries = calloc(n, esize);
        if (entries == NULL)
                return forge_error_make(err, ENOMEM, "gpt");
        if (pread(fd, entries, (size_t)n * esize, (off_t)(le64toh(h.entries_lba) * SECTOR)) !=
            (ssize_t)((size_t)n * esize))
                return forge_error_make(err, EIO, "read the partition entries");
        if ((uint32_t)crc32(0, (const Bytef *)entries, n * esize) != le32toh(h.entries_crc))
                return forge_error_make(err, EINVAL, "corrupt partition table (entries CRC)");
        put_name(wname, name);
        for (uint32_t i = 0; i < n; i++) {
                const struct gpt_entry *e =
                    (const void *)((const char *)entries + (size_t)i * esize);
                uint64_t first = le64toh(e->first_lba), last = le64toh(e->last_lba);
                if (memcmp(e->name, wname, sizeof(wname)) != 0)
                        continue;
                if (first > last || last >= disk_bytes / SECTOR)
                        return forge_error_make(err, EINVAL, "partition '%s' lies outside the disk",
                                                name);
                *ret_offset = first * SECTOR;
                *ret_size = (last - first + 1) * SECTOR;
                return 0;
        }
        return forge_error_make(err, ENOENT, "no partition '%s': not a forge disk image", name);
}
