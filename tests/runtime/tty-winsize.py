#!/usr/bin/env python3
"""Drives `forge run -t` from a pty of our own: the initial window size and a
SIGWINCH resize must reach the workload's terminal. argv: FORGE ROOTFS."""
import os, sys

sys.dont_write_bytecode = True  # (no __pycache__ in the source tree)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from ptydrive import Pty

forge, rootfs = sys.argv[1], sys.argv[2]
script = 'stty size; trap "stty size; exit 0" WINCH; echo armed; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; exit 9'
p = Pty([forge, "run", "--rootfs", rootfs, "-t", "--", "/bin/sh", "-c", script], 30, 100)

if not p.read_until(b"armed"):
    sys.exit("FAIL: no 'armed' from the workload: %r" % p.out)
if b"30 100" not in p.out:
    sys.exit("FAIL: initial size not passed on: %r" % p.out)
p.resize(40, 120)
if not p.read_until(b"40 120"):
    sys.exit("FAIL: resize not passed on: %r" % p.out)
st = p.wait()
if st != 0:
    sys.exit("FAIL: forge exited %d: %r" % (st, p.out))
print("winsize ok")
