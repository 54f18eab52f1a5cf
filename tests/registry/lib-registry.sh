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

need_registry() {
	command -v docker-registry >/dev/null || { echo "SKIP: docker-registry is not installed" >&2; exit 77; }
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
