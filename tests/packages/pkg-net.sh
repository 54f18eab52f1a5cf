#!/usr/bin/env bash
# packages: layers over the network as a CI machine meets it: an https
# repository with a private CA (trusted through SSL_CERT_FILE, never the
# machine's trust store), untrusted certificates refused with nothing
# written, http_proxy / https_proxy / no_proxy honoured (a logging proxy the
# test starts), and the download progress line: on a terminal, as a plain line
# in a log, none with -q. Every server is on 127.0.0.1, started here and
# stopped by its PID.
source "$FORGE_TESTS/../integration/lib.sh"
source "$FORGE_TESTS/lib-repo.sh"
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY SSL_CERT_FILE SSL_CERT_DIR

PIDS=()
stop_all() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	stop_server
}
trap 'stop_all; cleanup_t' EXIT

make_repo
start_server
HTTP_URL=http://127.0.0.1:$PORT
C=$T/ctx

# -- a CA, a certificate for 127.0.0.1 it signs, and a rogue CA's for the same name
P=$T/pki
mkdir -p "$P"
mkca() { # mkca NAME
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=forge test $1" \
		-keyout "$P/$1.key" -out "$P/$1.crt" 2>/dev/null
}
mkcert() { # mkcert CA NAME SAN
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$P/$2.key" -out "$P/$2.csr" 2>/dev/null
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$3" >"$P/$2.ext"
	openssl x509 -req -in "$P/$2.csr" -CA "$P/$1.crt" -CAkey "$P/$1.key" -CAcreateserial \
		-days 2 -extfile "$P/$2.ext" -out "$P/$2.crt" 2>/dev/null
}
mkca ca
mkca rogue
mkcert ca good IP:127.0.0.1
mkcert rogue evil IP:127.0.0.1
mkcert ca wrongname DNS:repo.forge.invalid

# start_tls CERTNAME LOG: an https server of $REPO; sets TPORT
start_tls() {
	TPORT=$(free_port)
	python3 "$FORGE_TESTS/tls-server.py" "$REPO" "$TPORT" "$P/$1.crt" "$P/$1.key" >"$2" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do
		curl -s -k -o /dev/null "https://127.0.0.1:$TPORT/" && return 0
		sleep 0.1
	done
	fail "the https test server did not start: $(cat "$2")"
}

# -- https with the test's CA in SSL_CERT_FILE: lock and build, fetched over TLS
start_tls good "$T/tls.log"
GOOD=$TPORT
write_spec s "https://127.0.0.1:$GOOD" "  - name: app" "    packages: [app]" "    essential: false"
SSL_CERT_FILE=$P/ca.crt f lock "$C/s.yaml" >"$T/out" 2>&1 || fail "lock over https: $(cat "$T/out")"
SSL_CERT_FILE=$P/ca.crt f build -q "$C/s.yaml" >"$T/out" 2>&1 || fail "build over https: $(cat "$T/out")"
grep -q "GET /dists/$SUITE/InRelease" "$T/tls.log" || fail "InRelease not fetched over https: $(cat "$T/tls.log")"
grep -q "GET /pool/main/app_1.0_$ARCH.deb" "$T/tls.log" || fail "app.deb not fetched over https: $(cat "$T/tls.log")"
f export s --format dir -o "$T/root"
[ -x "$T/root/usr/bin/app" ] || fail "the https build has no /usr/bin/app"
# an SSL_CERT_DIR (hashed, as c_rehash leaves it) works too
mkdir -p "$P/dir"
cp "$P/ca.crt" "$P/dir/$(openssl x509 -noout -hash -in "$P/ca.crt").0"
rm "$C/s.yaml.lock"
SSL_CERT_DIR=$P/dir f lock "$C/s.yaml" >"$T/out" 2>&1 || fail "lock with SSL_CERT_DIR: $(cat "$T/out")"

# -- attacks: a certificate the machine does not trust is exit 1, nothing written
untrusted() { # untrusted WHAT ENV... : lock and build fail, naming the URL; no lock, no image
	local what=$1
	shift
	rm -f "$C/u.yaml.lock"
	expect_status 1 env "$@" "$FORGE" --store "$T/store-u" lock "$C/u.yaml" 2>"$T/err"
	grep -q "https://127.0.0.1:$TPORT/dists/$SUITE/InRelease" "$T/err" &&
		grep -q "certificate is not trusted" "$T/err" || fail "$what: $(cat "$T/err")"
	[ ! -e "$C/u.yaml.lock" ] || fail "$what: a lock was written"
	expect_status 1 env "$@" "$FORGE" --store "$T/store-u" build "$C/u.yaml" 2>"$T/err"
	grep -q "certificate is not trusted" "$T/err" || fail "$what (build): $(cat "$T/err")"
	[ ! -e "$C/u.yaml.lock" ] || fail "$what: the build wrote a lock"
	expect_status 1 "$FORGE" --store "$T/store-u" inspect u 2>/dev/null
}
# the test CA only in SSL_CERT_FILE: without it, the system's CAs do not know it
write_spec u "https://127.0.0.1:$GOOD" "  - name: app" "    packages: [app]" "    essential: false"
TPORT=$GOOD untrusted "the system's CAs" FORGE_X=1
# a server whose certificate a rogue CA signed, for the right address
start_tls evil "$T/evil.log"
write_spec u "https://127.0.0.1:$TPORT" "  - name: app" "    packages: [app]" "    essential: false"
untrusted "a rogue CA" SSL_CERT_FILE="$P/ca.crt"
grep -q "GET /dists" "$T/evil.log" && fail "forge sent a request to the untrusted server: $(cat "$T/evil.log")"
# a certificate from the right CA for another name
start_tls wrongname "$T/wrong.log"
write_spec u "https://127.0.0.1:$TPORT" "  - name: app" "    packages: [app]" "    essential: false"
untrusted "a certificate for another name" SSL_CERT_FILE="$P/ca.crt"
# a lock made over a trusted connection does not let a build download from an untrusted one
write_spec u "https://127.0.0.1:$GOOD" "  - name: app" "    packages: [app]" "    essential: false"
SSL_CERT_FILE=$P/ca.crt "$FORGE" --store "$T/store-u" lock "$C/u.yaml" >/dev/null
expect_status 1 "$FORGE" --store "$T/store-u" build "$C/u.yaml" 2>"$T/err"
grep -q "certificate is not trusted" "$T/err" && grep -q "package 'app'\|package '" "$T/err" ||
	fail "a .deb over an untrusted connection: $(cat "$T/err")"
expect_status 1 "$FORGE" --store "$T/store-u" inspect u 2>/dev/null
[ -z "$(ls -A "$T/store-u/tmp" 2>/dev/null)" ] || fail "the refused download left files: $(ls -A "$T/store-u/tmp")"
"$FORGE" --store "$T/store-u" store verify >/dev/null || fail "store verify after a refused download"

# -- proxies: a logging proxy on 127.0.0.1 sees every fetch, unless no_proxy names the host
PXPORT=$(free_port)
python3 "$FORGE_TESTS/proxy.py" "$PXPORT" "$T/proxy.log" >"$T/proxy.err" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
	curl -s -o /dev/null -x "http://127.0.0.1:$PXPORT" "$HTTP_URL/" && break
	sleep 0.1
done
[ -s "$T/proxy.log" ] || fail "the proxy did not start: $(cat "$T/proxy.err")"
: >"$T/proxy.log"
PX=http://127.0.0.1:$PXPORT
# http_proxy for an http repository: lock (indexes) and a build in a new store (.debs)
write_spec p "$HTTP_URL" "  - name: app" "    packages: [app]" "    essential: false"
n0=$(wc -l <"$T/server.log")
http_proxy=$PX "$FORGE" --store "$T/store-p1" lock "$C/p.yaml" >/dev/null 2>"$T/err" || fail "lock via http_proxy: $(cat "$T/err")"
http_proxy=$PX "$FORGE" --store "$T/store-p1" build -q "$C/p.yaml" >/dev/null 2>"$T/err" || fail "build via http_proxy: $(cat "$T/err")"
for want in "GET $HTTP_URL/dists/$SUITE/InRelease" "GET $HTTP_URL/dists/$SUITE/main/binary-$ARCH/Packages.xz" \
	"GET $HTTP_URL/pool/main/app_1.0_$ARCH.deb" "GET $HTTP_URL/pool/main/libfoo1_2.0_$ARCH.deb"; do
	grep -qxF "$want" "$T/proxy.log" || fail "not through the proxy: '$want': $(cat "$T/proxy.log")"
done
# the server saw the same requests, from the proxy: as many as the proxy forwarded
[ "$(($(wc -l <"$T/server.log") - n0))" = "$(wc -l <"$T/proxy.log")" ] ||
	fail "requests bypassed the proxy: server $(tail -n +$((n0 + 1)) "$T/server.log"), proxy $(cat "$T/proxy.log")"
# https_proxy for an https repository: a CONNECT tunnel, the certificate still checked
: >"$T/proxy.log"
https_proxy=$PX SSL_CERT_FILE=$P/ca.crt "$FORGE" --store "$T/store-p2" build -q "$C/s.yaml" >/dev/null 2>"$T/err" ||
	fail "build via https_proxy: $(cat "$T/err")"
grep -qxF "CONNECT 127.0.0.1:$GOOD" "$T/proxy.log" || fail "https not through the proxy: $(cat "$T/proxy.log")"
! grep -q "^GET" "$T/proxy.log" || fail "https went through the proxy in clear: $(cat "$T/proxy.log")"
# through the tunnel the certificate is still checked: without the CA, refused
: >"$T/proxy.log"
expect_status 1 env https_proxy=$PX "$FORGE" --store "$T/store-p6" build -q "$C/s.yaml" 2>"$T/err"
grep -q "certificate is not trusted" "$T/err" || fail "https_proxy without the CA: $(cat "$T/err")"
grep -qxF "CONNECT 127.0.0.1:$GOOD" "$T/proxy.log" || fail "https_proxy not used: $(cat "$T/proxy.log")"
# http_proxy does not apply to https
: >"$T/proxy.log"
http_proxy=$PX SSL_CERT_FILE=$P/ca.crt "$FORGE" --store "$T/store-p3" build -q "$C/s.yaml" >/dev/null 2>"$T/err" ||
	fail "https build with http_proxy set: $(cat "$T/err")"
[ ! -s "$T/proxy.log" ] || fail "http_proxy was used for https: $(cat "$T/proxy.log")"
# no_proxy=127.0.0.1 bypasses it
: >"$T/proxy.log"
n0=$(wc -l <"$T/server.log")
rm "$C/p.yaml.lock"
http_proxy=$PX no_proxy=127.0.0.1 "$FORGE" --store "$T/store-p4" build -q "$C/p.yaml" >/dev/null 2>"$T/err" ||
	fail "build with no_proxy: $(cat "$T/err")"
[ ! -s "$T/proxy.log" ] || fail "no_proxy=127.0.0.1 still used the proxy: $(cat "$T/proxy.log")"
tail -n +$((n0 + 1)) "$T/server.log" | grep -q "GET /pool/main/app_1.0_$ARCH.deb" || fail "no_proxy: the server saw no download"
# a proxy that is down is exit 1 naming the URL, nothing written
DEAD=$(free_port)
rm -f "$C/p.yaml.lock"
expect_status 1 env http_proxy=http://127.0.0.1:$DEAD "$FORGE" --store "$T/store-p5" build "$C/p.yaml" 2>"$T/err"
grep -q "$HTTP_URL/dists/$SUITE/InRelease" "$T/err" || fail "proxy down: $(cat "$T/err")"
[ ! -e "$C/p.yaml.lock" ] || fail "proxy down: a lock was written"
# a file: repository never goes through a proxy
write_spec fl "file://$REPO" "  - packages: [app]" "    essential: false"
env http_proxy=http://127.0.0.1:$DEAD https_proxy=http://127.0.0.1:$DEAD all_proxy=http://127.0.0.1:$DEAD \
	"$FORGE" --store "$T/store-p7" build -q "$C/fl.yaml" >/dev/null 2>"$T/err" || fail "file: with proxies set: $(cat "$T/err")"

# -- the download progress line: on a terminal (the helper's pty), a plain
# line in a log, none with -q; a fresh store each time so the .debs download
rm -f "$C/p.yaml.lock"
"$FORGE" --store "$T/store-g0" lock "$C/p.yaml" >/dev/null
total=$(jq '[.packages.layers[0].packages[].size] | add' "$C/p.yaml.lock")
"$FORGE_TESTHELPER" pty 24 120 '' "$FORGE" --store "$T/store-g1" build "$C/p.yaml" >"$T/pty.out" 2>&1 ||
	fail "build on a terminal: $(cat "$T/pty.out")"
tr '\r' '\n' <"$T/pty.out" | sed 's/\x1b\[K//g' >"$T/pty.lines"
grep -Eq "^app +downloading 4/4 packages, [0-9.]+ [KMG]?i?B of [0-9.]+ [KMG]?i?B$" "$T/pty.lines" ||
	fail "no progress line on the terminal: $(cat -A "$T/pty.out")"
grep -Eq "^app +downloading [0-3]/4 packages" "$T/pty.lines" || fail "no line before the end: $(cat -A "$T/pty.out")"
grep -q "^\[1/1\] app .* built" "$T/pty.lines" || fail "the layer line is missing on the terminal: $(cat -A "$T/pty.out")"
# the bytes of the last line are what the lock says the layer's .debs weigh
last=$(grep -E "^app +downloading 4/4" "$T/pty.lines" | tail -n1)
[ "$(sed -E 's/.*, (.*) of (.*)$/\1/' <<<"$last")" = "$(sed -E 's/.* of (.*)$/\1/' <<<"$last")" ] ||
	fail "the last progress line is not complete: $last (lock: $total bytes)"
# -q on a terminal: no progress, only the digest
"$FORGE_TESTHELPER" pty 24 120 '' "$FORGE" --store "$T/store-g2" build -q "$C/p.yaml" >"$T/ptyq.out" 2>&1 ||
	fail "build -q on a terminal: $(cat "$T/ptyq.out")"
! grep -q "download" "$T/ptyq.out" || fail "-q printed progress: $(cat -A "$T/ptyq.out")"
grep -Eq "^sha256:[0-9a-f]{64}" "$T/ptyq.out" || fail "-q printed no digest: $(cat -A "$T/ptyq.out")"
# not a terminal: one plain line, no carriage return or escape
"$FORGE" --store "$T/store-g3" build "$C/p.yaml" >"$T/log.out" 2>"$T/log.err" || fail "build to a log: $(cat "$T/log.err")"
grep -Eqx "app +downloaded 4 packages, [0-9.]+ [KMG]?i?B" "$T/log.err" || fail "no plain progress line: $(cat -A "$T/log.err")"
[ "$(grep -c downloaded "$T/log.err")" = 1 ] || fail "more than one plain line: $(cat -A "$T/log.err")"
! grep -q $'\r\|\x1b' "$T/log.err" || fail "terminal codes in a log: $(cat -A "$T/log.err")"
# nothing to download: no line
"$FORGE" --store "$T/store-g3" build --no-cache "$C/p.yaml" >/dev/null 2>"$T/log2.err"
! grep -q download "$T/log2.err" || fail "a progress line with nothing to download: $(cat "$T/log2.err")"
echo "pkg-net: ok"
