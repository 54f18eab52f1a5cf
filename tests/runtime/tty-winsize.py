#!/usr/bin/env python3
"""Drives `forge run -t` from a pty of our own: the initial window size and a
SIGWINCH resize must reach the workload's terminal. argv: FORGE ROOTFS."""
import fcntl, os, select, struct, sys, termios, time

forge, rootfs = sys.argv[1], sys.argv[2]
master, slave = os.openpty()
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
script = 'stty size; trap "stty size; exit 0" WINCH; echo armed; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; exit 9'
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.execv(forge, [forge, "run", "--rootfs", rootfs, "-t", "--", "/bin/sh", "-c", script])
os.close(slave)

out = b""
def read_until(token, timeout=10):
    global out
    end = time.time() + timeout
    while token not in out and time.time() < end:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
    return token in out

if not read_until(b"armed"):
    sys.exit("FAIL: no 'armed' from the workload: %r" % out)
if b"30 100" not in out:
    sys.exit("FAIL: initial size not passed on: %r" % out)
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
if not read_until(b"40 120"):
    sys.exit("FAIL: resize not passed on: %r" % out)
_, st = os.waitpid(pid, 0)
if os.waitstatus_to_exitcode(st) != 0:
    sys.exit("FAIL: forge exited %d: %r" % (os.waitstatus_to_exitcode(st), out))
print("winsize ok")
