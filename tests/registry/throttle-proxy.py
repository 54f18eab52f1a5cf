#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that forwards to another port of 127.0.0.1 at
most RATE bytes a second each way and connection, so that a transfer lasts
long enough for progress to be seen (the progress test).
usage: throttle-proxy.py LISTEN-PORT TARGET-PORT RATE"""
import socket, sys, threading, time

listen_port, target_port, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
CHUNK = 16384


def pump(src, dst):
    start, sent = time.monotonic(), 0
    try:
        while True:
            b = src.recv(CHUNK)
            if not b:
                break
            dst.sendall(b)
            sent += len(b)
            ahead = sent / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(c):
    try:
        u = socket.create_connection(("127.0.0.1", target_port))
    except OSError:
        c.close()
        return
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    threading.Thread(target=pump, args=(u, c), daemon=True).start()


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
# a small window (inherited by accepted sockets): what a client sends waits
# in its own buffers, not in megabytes of ours
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
ls.bind(("127.0.0.1", listen_port))
ls.listen(64)
while True:
    conn, _ = ls.accept()
    serve(conn)
