#!/usr/bin/env python3
"""Writes the fuzzer's seed: a guest memory image with one virtio-blk read
request on a split ring, then the driver's set-up sequence and a notify
(the input format of fuzz_vmm.c: memory, then 12-byte operations)."""
import struct, sys

M = 8192
mem = bytearray(M)
def desc(i, addr, ln, flags, nxt):
    struct.pack_into('<QIHH', mem, 16 * i, addr, ln, flags, nxt)
desc(0, 0x1000, 16, 1, 1)          # header, NEXT
desc(1, 0x1200, 512, 2 | 1, 2)     # data, WRITE|NEXT
desc(2, 0x1400, 1, 2, 0)           # status, WRITE
struct.pack_into('<HHH', mem, 0x400, 0, 1, 0)   # avail: flags, idx=1, ring[0]=0
struct.pack_into('<IIQ', mem, 0x1000, 0, 0, 1)  # read sector 1

ops = bytearray()
def bar(off, val, ln):
    ops.extend(struct.pack('<BBHQ', 1, ln - 1, off, val))
bar(0x14, 0, 1); bar(0x14, 3, 1)
bar(0x08, 1, 4); bar(0x0c, 1, 4); bar(0x14, 11, 1)
bar(0x16, 0, 2); bar(0x18, 8, 2)
bar(0x20, 0, 8); bar(0x28, 0x400, 8); bar(0x30, 0x800, 8)
bar(0x1c, 1, 2); bar(0x14, 15, 1)
ops.extend(struct.pack('<BBHQ', 2, 1, 0, 0))    # notify
ops.extend(struct.pack('<BBHQ', 0, 0, 0x1000, 0))  # read ISR
ops += bytes(M - len(ops))                      # the script is as long as the memory part
sys.stdout.buffer.write(bytes(mem) + bytes(ops))
