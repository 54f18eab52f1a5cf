#!/usr/bin/env python3
"""Drives `forge exec -t` from a pty of our own: the command gets a terminal
of the container's devpts as its controlling tty, sized like ours, and its
output comes back. argv: FORGE STORE RUN."""
import fcntl, os, select, struct, sys, termios, time

forge, store, run = sys.argv[1:4]
master, slave = os.openpty()
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.execv(forge, [forge, "--store", store, "exec", "-t", run, "/bin/sh", "-c",
                     "tty; stty size; read line; echo got-$line; exit 4"])
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
if not read_until(b"30 100"):
    sys.exit("FAIL: exec -t: no size 30 100: %r" % out)
if b"/dev/pts/" not in out:
    sys.exit("FAIL: exec -t: not a pty: %r" % out)
os.write(master, b"hello\r")
if not read_until(b"got-hello"):
    sys.exit("FAIL: exec -t: input not passed on: %r" % out)
_, st = os.waitpid(pid, 0)
if os.waitstatus_to_exitcode(st) != 4:
    sys.exit("FAIL: exec -t exited %d: %r" % (os.waitstatus_to_exitcode(st), out))
