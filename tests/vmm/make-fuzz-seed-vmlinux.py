#!/usr/bin/env python3
"""Writes fuzz_vmlinux's seed: a small kernel as a forge disk carries it
uncompressed (an x86-64 ELF with two PT_LOAD segments at 16 MiB, then the
KASLR relocation table: 64-bit, inverse 32-bit and 32-bit lists, each
preceded by its zero terminator, as arch/x86/tools/relocs appends them)."""
import struct, sys

TEXT_PA, DATA_PA = 0x1000000, 0x1200000
KMAP = 0xffffffff80000000
SEG_OFF, TEXT_LEN, DATA_FILE, DATA_MEM = 0x1000, 0x2000, 0x1000, 0x3000
eh = bytearray(64)
eh[0:8] = b'\x7fELF\x02\x01\x01\x00'
struct.pack_into('<HHIQQQIHHHHHH', eh, 16, 2, 62, 1, TEXT_PA, 64, 0, 0, 64, 56, 2, 0, 0, 0)
ph = struct.pack('<IIQQQQQQ', 1, 5, SEG_OFF, KMAP + TEXT_PA, TEXT_PA, TEXT_LEN, TEXT_LEN, 0x200000)
ph += struct.pack('<IIQQQQQQ', 1, 6, SEG_OFF + TEXT_LEN, KMAP + DATA_PA, DATA_PA, DATA_FILE, DATA_MEM, 0x200000)
img = bytearray(SEG_OFF + TEXT_LEN + DATA_FILE)
img[0:64] = eh
img[64:64 + len(ph)] = ph
struct.pack_into('<Q', img, SEG_OFF + 0x100, KMAP + TEXT_PA + 0x1000)
struct.pack_into('<I', img, SEG_OFF + 0x300, (KMAP + TEXT_PA + 0x1800) & 0xffffffff)
relocs = [0, (KMAP + TEXT_PA + 0x100) & 0xffffffff, 0, (KMAP + TEXT_PA + 0x200) & 0xffffffff,
          0, (KMAP + TEXT_PA + 0x300) & 0xffffffff]
img += struct.pack('<%dI' % len(relocs), *relocs)
sys.stdout.buffer.write(bytes(img))
