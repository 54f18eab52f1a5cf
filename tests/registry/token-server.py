#!/usr/bin/env python3
"""A small Bearer token server for the tests (docker distribution's token
auth): GET /token?service=S&scope=repository:NAME:ACTIONS... answers a JWT
(RS256, signed with openssl) the registry trusts through its rootcertbundle.
Basic credentials USER:PASSWORD grant what is asked; no credentials grant
pull only; wrong ones get 401. POST /token with the OAuth2 refresh-token
grant (refresh_token=idtoken-PASSWORD: an identity token) grants what is
asked too. Every request is logged (path and whether it
carried credentials) to LOG, one line each.

usage: token-server.py PORT KEY.pem USER PASSWORD LOG
"""
import base64, hashlib, json, subprocess, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, key, user, password, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def libtrust_kid(keyfile):
    der = subprocess.run(["openssl", "pkey", "-in", keyfile, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


KID = libtrust_kid(key)


def sign(data):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data, check=True,
                          capture_output=True).stdout


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        q = urllib.parse.parse_qs(self.rfile.read(n).decode())
        with open(log, "a") as f:
            f.write("POST %s %s\n" % (self.path, q.get("grant_type", [""])[0]))
        if q.get("refresh_token", [""])[0] != "idtoken-" + password:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.answer(q, True)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        auth = self.headers.get("Authorization", "")
        with open(log, "a") as f:
            f.write("%s %s\n" % (u.path, "creds" if auth else "anon"))
        granted_all = False
        if auth:
            want = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
            if auth != want:
                self.send_response(401)
                self.end_headers()
                return
            granted_all = True
        self.answer(q, granted_all)

    def answer(self, q, granted_all):
        access = []
        for sc in q.get("scope", []):
            parts = sc.split(":")
            if len(parts) != 3:
                continue
            actions = parts[2].split(",")
            if not granted_all:
                actions = [a for a in actions if a == "pull"]
            access.append({"type": parts[0], "name": parts[1], "actions": actions})
        now = int(time.time())
        hdr = {"typ": "JWT", "alg": "RS256", "kid": KID}
        claims = {"iss": "forge-test-issuer", "sub": user if granted_all else "", "aud":
                  q.get("service", [""])[0], "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": "%d-%f" % (now, time.time()), "access": access}
        signing = (b64url(json.dumps(hdr).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        tok = signing.decode() + "." + b64url(sign(signing))
        body = json.dumps({"token": tok, "expires_in": 300, "issued_at": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
