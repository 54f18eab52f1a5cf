#!/usr/bin/env python3
"""A tiny logging HTTP proxy on 127.0.0.1 for forge's package tests.

usage: proxy.py PORT LOG
Forwards absolute-URI GET/HEAD requests and tunnels CONNECT, and appends
"METHOD TARGET" to LOG for each request, so a test can tell which fetches
went through it. It only connects to 127.0.0.1 / ::1 / localhost: anything
else is refused (403), so a test cannot reach outside through it.
"""
import http.client
import http.server
import select
import socket
import sys
import threading
import urllib.parse

port, log = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
LOCAL = {"127.0.0.1", "::1", "localhost"}


def record(line):
    with lock, open(log, "a") as f:
        f.write(line + "\n")


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_CONNECT(self):
        record("CONNECT " + self.path)
        host, _, p = self.path.rpartition(":")
        host = host.strip("[]")
        if host not in LOCAL:
            self.send_error(403)
            return
        try:
            up = socket.create_connection((host, int(p)))
        except OSError:
            self.send_error(502)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        conns = [self.connection, up]
        while True:
            r, _, _ = select.select(conns, [], [], 30)
            if not r:
                break
            done = False
            for s in r:
                data = s.recv(65536)
                if not data:
                    done = True
                    break
                (up if s is self.connection else self.connection).sendall(data)
            if done:
                break
        up.close()
        self.close_connection = True

    def forward(self):
        record(self.command + " " + self.path)
        u = urllib.parse.urlsplit(self.path)
        if u.scheme != "http" or u.hostname not in LOCAL:
            self.send_error(403)
            return
        c = http.client.HTTPConnection(u.hostname, u.port or 80)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-connection", "connection", "keep-alive")}
        c.request(self.command, (u.path or "/") + ("?" + u.query if u.query else ""), headers=headers)
        resp = c.getresponse()
        body = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        c.close()

    do_GET = forward
    do_HEAD = forward


http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy).serve_forever()
