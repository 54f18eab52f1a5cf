#!/usr/bin/env python3
"""A registry that lies, for the tests. Each repository name is a scenario;
everything else about it is a valid image (a real gzip layer and config):

  good         a valid image (its layer is served slowly while the file
               DIR/throttle exists: the kill-and-resume test)
  baddigest    the layer's bytes differ from its digest (same size)
  baddcd       the manifest's Docker-Content-Digest is another digest
  bigmanifest  a manifest of 5 MiB
  bigconfig    a config descriptor of 64 MiB
  redirect     the layer redirects to itself, forever
  truncated    the layer's body stops half way (Content-Length says more)
  error500     the manifest answers 500
  endless      the layer is an endless chunked body
  slow         the layer sends a few bytes, then nothing
  liesize      the layer is larger than its descriptor says
  badpath      a layer digest that is not sha256 hex ("../../etc/passwd")
  offsite      needs Basic credentials; its layer redirects to blob storage
               on another host name (http://localhost:PORT/storage/...)

Requests are logged to DIR/log as "METHOD PATH RANGE AUTH" (AUTH: auth or
noauth, whether an Authorization header came).
usage: hostile-registry.py PORT DIR
"""
import base64, gzip, hashlib, io, json, os, random, sys, tarfile, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, d = int(sys.argv[1]), sys.argv[2]


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def make_layer(size):
    rnd = random.Random(42)
    data = rnd.randbytes(size)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo("data.bin")
        ti.size = len(data)
        ti.mtime = 0
        t.addfile(ti, io.BytesIO(data))
    tar = raw.getvalue()
    return gzip.compress(tar, mtime=0), sha(tar)


LAYER, DIFF = make_layer(6 << 20)
CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": [DIFF]}}).encode()


def manifest(layer_digest=sha(LAYER), layer_size=len(LAYER), config_size=len(CONFIG)):
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": sha(CONFIG), "size": config_size},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                   "digest": layer_digest, "size": layer_size}]}).encode()


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body=b"", ctype="application/octet-stream", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        rng = self.headers.get("Range", "")
        auth = self.headers.get("Authorization")
        with open(os.path.join(d, "log"), "a") as f:
            f.write("%s %s %s %s\n" % (self.command, self.path, rng, "auth" if auth else "noauth"))
        p = self.path.split("/")
        if self.path == "/v2/":
            return self.send(200, b"{}", "application/json")
        if self.path.startswith("/storage/"):
            return self.send(200, LAYER)
        if self.path.startswith("/v2/offsite/"):
            if auth != "Basic " + base64.b64encode(b"u:offsite-pw").decode():
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', "application/json",
                                 [("WWW-Authenticate", 'Basic realm="hostile"')])
            if "/blobs/" in self.path and sha(CONFIG) not in self.path:
                self.send_response(307)
                self.send_header("Location", "http://localhost:%d/storage/%s" % (port, p[4]))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        if len(p) < 5 or p[1] != "v2":
            return self.send(404)
        repo, kind, ref = p[2], p[3], p[4]
        if kind == "manifests":
            return self.manifest(repo)
        if kind == "blobs":
            if ref == sha(CONFIG):
                return self.send(200, CONFIG)
            return self.layer(repo, rng)
        self.send(404)

    def manifest(self, repo):
        mt = "application/vnd.oci.image.manifest.v1+json"
        m = manifest()
        if repo == "error500":
            return self.send(500, b'{"errors":[{"code":"UNKNOWN","message":"boom"}]}', "application/json")
        if repo == "bigmanifest":
            m = m[:-1] + b', "pad": "' + b" " * (5 << 20) + b'"}'
        if repo == "bigconfig":
            m = manifest(config_size=64 << 20)
        if repo == "liesize":
            m = manifest(layer_size=len(LAYER) // 2)
        if repo == "badpath":
            m = manifest(layer_digest="sha256:../../../../etc/passwd")
        dcd = sha(m) if repo != "baddcd" else "sha256:" + "0" * 64
        self.send(200, m, mt, [("Docker-Content-Digest", dcd)])

    def layer(self, repo, rng):
        body = LAYER
        start = 0
        if rng.startswith("bytes=") and repo in ("good", "truncated"):
            start = int(rng[6:].split("-")[0])
        if repo == "baddigest":
            body = bytes([body[0] ^ 1]) + body[1:]
        if repo == "redirect":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if repo == "endless" or repo == "slow":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while True:
                    chunk = b"x" * 65536 if repo == "endless" else b"x"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                    if repo == "slow":
                        time.sleep(3600)
            except (BrokenPipeError, ConnectionResetError):
                return
        part = body[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(part)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Docker-Content-Digest", sha(LAYER))
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(body) - 1, len(body)))
        self.end_headers()
        try:
            if repo == "truncated":
                self.wfile.write(part[: len(part) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            step = 65536
            for i in range(0, len(part), step):
                self.wfile.write(part[i:i + step])
                if repo == "good" and os.path.exists(os.path.join(d, "throttle")):
                    self.wfile.flush()
                    time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            return


ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
