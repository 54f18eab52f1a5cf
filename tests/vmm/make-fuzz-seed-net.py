#!/usr/bin/env python3
"""Writes the fuzzer's virtio-net seed (fuzz-seeds/net-txrx): a guest memory
image with a receive queue (one 1526-byte buffer) and a transmit queue (one
frame behind its 12-byte header in two descriptors), then the driver's set-up
of the net device, a transmit notify and one received frame (the input format
of fuzz_vmm.c: memory, then 12-byte operations)."""
import struct, sys

M = 8192
mem = bytearray(M)
def desc(table, i, addr, ln, flags, nxt):
    struct.pack_into('<QIHH', mem, table + 16 * i, addr, ln, flags, nxt)
# rx: desc 0x000, avail 0x400, used 0x800; buffer at 0x1000
desc(0x000, 0, 0x1000, 1526, 2, 0)
struct.pack_into('<HHH', mem, 0x400, 0, 1, 0)
# tx: desc 0xc00, avail 0xe00, used 0xf00; header 0x1800, frame 0x1900
desc(0xc00, 0, 0x1800, 12, 1, 1)
desc(0xc00, 1, 0x1900, 60, 0, 0)
struct.pack_into('<HHH', mem, 0xe00, 0, 1, 0)
mem[0x1900:0x1900 + 60] = bytes(range(60))

ops = bytearray()
def bar(off, val, ln):
    ops.extend(struct.pack('<BBHQ', 7, ln - 1, off, val))
bar(0x14, 0, 1); bar(0x14, 3, 1)
bar(0x08, 0, 4); bar(0x0c, 0x10020, 4)       # MAC, STATUS
bar(0x08, 1, 4); bar(0x0c, 1, 4)             # VERSION_1
bar(0x14, 11, 1)
for q, (d, a, u) in enumerate([(0x000, 0x400, 0x800), (0xc00, 0xe00, 0xf00)]):
    bar(0x16, q, 2); bar(0x18, 8, 2)
    bar(0x20, d, 8); bar(0x28, a, 8); bar(0x30, u, 8)
    bar(0x1c, 1, 2)
bar(0x14, 15, 1)
ops.extend(struct.pack('<BBHQ', 8, 1, 1, 0))     # notify tx
ops.extend(struct.pack('<BBHQ', 9, 0, 64, 0))    # a 64-byte frame received
ops.extend(struct.pack('<BBHQ', 6, 0, 0x1000, 0))  # read ISR
ops += bytes(M - len(ops))
sys.stdout.buffer.write(bytes(mem) + bytes(ops))
