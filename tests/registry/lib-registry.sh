# Registry helpers for tests (sourced after tests/integration/lib.sh): start
# Debian's docker-registry on 127.0.0.1 on a free port with a config written
# here, stopped by PID when the test ends.

REG_PIDS=()
reg_cleanup() {
	local p
	for p in "${REG_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	cleanup_t
}
trap reg_cleanup EXIT

# need_registry [tls]: skip (77) without docker-registry (with tls, also
# without htpasswd, for start_tls_registry)
need_registry() {
	command -v docker-registry >/dev/null || { echo "SKIP: docker-registry is not installed" >&2; exit 77; }
	[ "${1:-}" != tls ] || command -v htpasswd >/dev/null ||
		{ echo "SKIP: htpasswd (apache2-utils) is not installed" >&2; exit 77; }
}

# free_port: a TCP port nothing listens on (bound once by python, then freed)
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT [PID]: until something listens on 127.0.0.1:PORT (30 s)
wait_port() {
	local i
	for i in $(seq 1 300); do
		if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
		if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then return 1; fi
		sleep 0.1
	done
	return 1
}

# start_registry NAME [EXTRA-YAML]: a registry with its storage in $T/NAME;
# sets REG_PORT and REG (127.0.0.1:PORT). EXTRA-YAML is appended to the config
# (auth:, http.tls ...: then it must carry its own http: block, see below).
start_registry() {
	local name=$1 extra=${2:-} http_extra=${3:-}
	REG_PORT=$(free_port)
	mkdir -p "$T/$name/data"
	cat >"$T/$name/config.yml" <<Y
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $T/$name/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REG_PORT
$http_extra
$extra
Y
	# (REGISTRY_* variables are configuration overrides for docker-registry)
	env -u REGISTRY_AUTH_FILE docker-registry serve "$T/$name/config.yml" >"$T/$name/log" 2>&1 &
	REG_PIDS+=($!)
	wait_port "$REG_PORT" $! || { cat "$T/$name/log" >&2; fail "registry $name did not start"; }
	REG=127.0.0.1:$REG_PORT
}

# start_tls_registry NAME USER PASSWORD: a registry behind TLS (a CA made
# here, in $T/pki; the server's certificate for 127.0.0.1) with htpasswd
# auth for USER; sets REG as start_registry does and puts the CA in
# $T/certs/$REG/ca.crt (for --cert-dir $T/certs).
start_tls_registry() {
	local name=$1 user=$2 pw=$3
	mkdir -p "$T/pki"
	(
		cd "$T/pki"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=forge-test-ca 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null
		printf 'subjectAltName=IP:127.0.0.1\n' >ext.cnf
		openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext.cnf 2>/dev/null
	)
	htpasswd -Bbn "$user" "$pw" >"$T/pki/htpasswd"
	start_registry "$name" "auth:
  htpasswd:
    realm: forge-test
    path: $T/pki/htpasswd" "  tls:
    certificate: $T/pki/srv.crt
    key: $T/pki/srv.key"
	mkdir -p "$T/certs/$REG"
	cp "$T/pki/ca.crt" "$T/certs/$REG/ca.crt"
}
