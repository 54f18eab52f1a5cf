"""Shared by the tests that drive forge from a pty of their own (imported):
Pty(ARGV, ROWS, COLS) runs ARGV as a session leader whose controlling
terminal is a new pty of that size; the test reads and types on its master."""
import fcntl, os, select, struct, termios, time


class Pty:
    def __init__(self, argv, rows, cols):
        self.master, slave = os.openpty()
        self.resize(rows, cols)
        self.out = b""
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(slave, fd)
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        os.close(slave)

    def resize(self, rows, cols):
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def read_until(self, token, timeout=10):
        """Reads into self.out until it holds token (True) or timeout s pass."""
        end = time.time() + timeout
        while token not in self.out and time.time() < end:
            r, _, _ = select.select([self.master], [], [], 0.2)
            if r:
                try:
                    self.out += os.read(self.master, 4096)
                except OSError:
                    break
        return token in self.out

    def write(self, data):
        os.write(self.master, data)

    def wait(self):
        """The exit status of ARGV."""
        _, st = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(st)
