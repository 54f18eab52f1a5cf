# Shared by the network tests (sourced): the runtime's test root file system
# plus busybox's network applets, and helpers to find what a run left behind.
source "$(dirname "${BASH_SOURCE[0]}")/../runtime/lib-run.sh" || exit 1
command -v pasta >/dev/null || { echo "SKIP: pasta (Debian package passt) is missing" >&2; exit 77; }
for a in ip wget nc httpd nslookup sleep grep timeout head; do ln -sf busybox "$ROOTFS/bin/$a"; done

# rbg ARGS &: like r, but $! is forge itself (for signals)
rbg() { exec "$FORGE" run --rootfs "$ROOTFS" "$@"; }

# free_port: a TCP port nobody listens on now (127.0.0.1)
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# host_token_server PREFIX: an HTTP server on the host's 127.0.0.1:HPORT
# (busybox httpd, PID HTTPD, stopped when the test ends) serving /token.txt,
# whose content token is PREFIX and a random number
host_token_server() {
	WWW=$T/www
	mkdir -p "$WWW"
	token=$1-$RANDOM$RANDOM
	echo "$token" >"$WWW/token.txt"
	HPORT=$(free_port)
	busybox httpd -f -p "127.0.0.1:$HPORT" -h "$WWW" &
	HTTPD=$!
	trap 'kill $HTTPD 2>/dev/null; cleanup_t' EXIT
	fetch "http://127.0.0.1:$HPORT/token.txt" >/dev/null || fail "the host's test server did not start"
}

# descendants PID: every process below PID
descendants() {
	local kids k
	kids=$(ps -o pid= --ppid "$1" 2>/dev/null || true)
	for k in $kids; do
		echo "$k"
		descendants "$k"
	done
}

# port_bound PORT [tcp|udp]: something on the host listens on 127.0.0.1:PORT
port_bound() {
	python3 - "$1" "${2:-tcp}" <<'PY'
import socket, sys
t = socket.SOCK_DGRAM if sys.argv[2] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, t)
if t == socket.SOCK_STREAM:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}

# fetch URL: the body from the host side, retried while the server starts
fetch() {
	local i
	for i in $(seq 1 50); do
		if python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' "$1" 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}
