#!/usr/bin/env python3
"""Drives `forge exec -t` from a pty of our own: the command gets a terminal
of the container's devpts as its controlling tty, sized like ours, and its
output comes back. argv: FORGE STORE RUN."""
import os, sys

sys.dont_write_bytecode = True  # (no __pycache__ in the source tree)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from ptydrive import Pty

forge, store, run = sys.argv[1:4]
p = Pty([forge, "--store", store, "exec", "-t", run, "/bin/sh", "-c",
         "tty; stty size; read line; echo got-$line; exit 4"], 30, 100)
if not p.read_until(b"30 100"):
    sys.exit("FAIL: exec -t: no size 30 100: %r" % p.out)
if b"/dev/pts/" not in p.out:
    sys.exit("FAIL: exec -t: not a pty: %r" % p.out)
p.write(b"hello\r")
if not p.read_until(b"got-hello"):
    sys.exit("FAIL: exec -t: input not passed on: %r" % p.out)
st = p.wait()
if st != 4:
    sys.exit("FAIL: exec -t exited %d: %r" % (st, p.out))
