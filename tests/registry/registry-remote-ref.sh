#!/usr/bin/env bash
# Remote refs in forge run / inspect / export against docker-registry behind
# TLS with htpasswd on 127.0.0.1: they pull with forge pull's options
# (--cert-dir, --tls-verify=false, --authfile, -q), tag the image as pull does
# and record the ref, so that the same ref runs again with the registry
# stopped; --pull always|missing|never.
source "$FORGE_SRC/tests/integration/lib.sh"
source "$FORGE_SRC/tests/registry/lib-registry.sh"
need_registry tls
need_root

PW='remote-ref-pw-41c2'
AUTH=$T/auth.json
d=$(f build -q "$FORGE_SRC/specs/examples/hello.yaml")
mkdir -p "$T/ctx2" && echo other >"$T/ctx2/o.txt"
printf 'forge: 1\nname: other\nlayers:\n  - files: [{src: o.txt, dest: /o.txt}]\n' >"$T/ctx2/o.yaml"
d2=$(f build -q "$T/ctx2/o.yaml")

start_tls_registry tls u1 "$PW"
H=$REG
REG_PID=${REG_PIDS[-1]}
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$H" "$(printf 'u1:%s' "$PW" | base64 -w0)" >"$AUTH"
# (no other credentials file is looked at)
export REGISTRY_AUTH_FILE=$T/none.json
OPTS=(--cert-dir "$T/certs" --authfile "$AUTH")
f push -q "${OPTS[@]}" hello "$H/team/hello:v1" >/dev/null
REF=$H/team/hello:v1
s() { local st=$1; shift; "$FORGE" --store "$T/$st" "$@"; }

# without the options: the certificate is refused, then the credentials missing
s r0 run "$REF" -- x 2>"$T/err" && fail "run without --cert-dir succeeded"
grep -qi certificate "$T/err" || { cat "$T/err"; fail "run: no certificate error"; }
s r0 inspect --cert-dir "$T/certs" "$REF" 2>"$T/err" && fail "inspect without credentials succeeded"
grep -q 'authentication required' "$T/err" || { cat "$T/err"; fail "inspect: no auth error"; }
expect_status 2 s r0 run --pull sometimes "$REF"
expect_status 2 s r0 inspect --tls-verify=maybe "$REF"

# run with the options: pulled (progress on stderr), tagged as forge pull tags it
out=$(s run1 run "${OPTS[@]}" "$REF" -- remote 2>"$T/run1.err")
[ "$out" = "hello from forge, remote!" ] || { cat "$T/run1.err"; fail "run remote: $out"; }
[ "$(grep -c '^layer [12]/2 sha256:.* done$' "$T/run1.err")" -eq 2 ] || { cat "$T/run1.err"; fail "run: no pull progress"; }
[ "$(s run1 inspect hello:v1 | jq -r .digest)" = "$d" ] || fail "run did not tag hello:v1"

LOG=$T/tls/log
manifest_gets() { grep -ac '"GET /v2/team/hello/manifests/v1' "$LOG" || true; }
# run again (--pull missing): no request; run -q --pull always: pulled
# again, nothing on stderr
n0=$(manifest_gets)
[ "$(s run1 run "$REF" -- again 2>/dev/null)" = "hello from forge, again!" ] || fail "second run"
[ "$(manifest_gets)" -eq "$n0" ] || fail "the second run asked the registry"
out=$(s run1 run -q --pull always "${OPTS[@]}" "$REF" -- quiet 2>"$T/runq.err")
[ "$(manifest_gets)" -gt "$n0" ] || fail "--pull always did not ask the registry"
[ "$out" = "hello from forge, quiet!" ] || fail "run -q: $out"
[ ! -s "$T/runq.err" ] || { cat "$T/runq.err"; fail "run -q printed on stderr"; }

# inspect -q: nothing on stderr, the JSON on stdout; --tls-verify=false works too
s insp inspect -q "${OPTS[@]}" "$REF" >"$T/insp.json" 2>"$T/insp.err"
[ "$(jq -r .digest "$T/insp.json")" = "$d" ] || fail "inspect remote"
[ ! -s "$T/insp.err" ] || { cat "$T/insp.err"; fail "inspect -q printed on stderr"; }
[ "$(s insp2 inspect -q --tls-verify=false --authfile "$AUTH" "$REF" | jq -r .digest)" = "$d" ] ||
	fail "inspect --tls-verify=false"

# export with the options
s exp export -q "${OPTS[@]}" "$REF" --format tar -o "$T/remote.tar" >/dev/null 2>"$T/exp.err"
tar -tf "$T/remote.tar" >"$T/remote.list"
grep -qx 'etc/greeting' "$T/remote.list" || fail "export remote"
[ ! -s "$T/exp.err" ] || { cat "$T/exp.err"; fail "export -q printed on stderr"; }
[ "$(s exp inspect hello:v1 | jq -r .digest)" = "$d" ] || fail "export did not tag hello:v1"

# the tag moves: missing (the default) keeps what was pulled, always pulls
f push -q "${OPTS[@]}" other "$H/team/hello:v1" >/dev/null
[ "$(s insp inspect -q "$REF" | jq -r .digest)" = "$d" ] || fail "--pull missing asked the registry"
[ "$(s insp inspect -q --pull always "${OPTS[@]}" "$REF" | jq -r .digest)" = "$d2" ] || fail "--pull always"
[ "$(s insp inspect -q "$REF" | jq -r .digest)" = "$d2" ] || fail "the ref does not name the new pull"
f push -q "${OPTS[@]}" hello "$H/team/hello:v1" >/dev/null

# the registry stops: the same refs work from the store, no network
kill "$REG_PID"
wait "$REG_PID" 2>/dev/null || true
! (exec 3<>/dev/tcp/127.0.0.1/"${H#*:}") 2>/dev/null || fail "the registry still listens"
out=$(s run1 run "$REF" -- offline 2>"$T/run2.err")
[ "$out" = "hello from forge, offline!" ] || { cat "$T/run2.err"; fail "second run needed the registry: $out"; }
[ ! -s "$T/run2.err" ] || { cat "$T/run2.err"; fail "second run printed pull output"; }
out=$(s run1 run --pull never "$H/team/hello@$d" -- bydigest)
[ "$out" = "hello from forge, bydigest!" ] || fail "run by digest offline: $out"
[ "$(s exp inspect "$REF" | jq -r .digest)" = "$d" ] || fail "inspect offline"
s exp export "$REF" --format tar -o "$T/remote2.tar" >/dev/null
cmp -s "$T/remote.tar" "$T/remote2.tar" || fail "offline export differs"
# an OCI layout names the image as the registry does (the tag made explicit)
s exp export "$REF" --format oci -o "$T/oci" >/dev/null
jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$T/oci/index.json" >"$T/refname"
[ "$(cat "$T/refname")" = "$REF" ] || fail "OCI ref name $(cat "$T/refname")"
# always asks (and fails: the registry is gone); never fails on an empty store
s run1 run --pull always "${OPTS[@]}" "$REF" -- x 2>"$T/err" && fail "--pull always did not ask the registry"
s empty run --pull never "$REF" -- x 2>"$T/err" && fail "--pull never pulled"
grep -q 'not in the store' "$T/err" || { cat "$T/err"; fail "--pull never: $(cat "$T/err")"; }
# a gc'd image is not taken for present: the ref is pulled again (and fails here)
s exp rmi hello:v1 >/dev/null
s exp store gc >/dev/null
s exp inspect "$REF" 2>"$T/err" >/dev/null && fail "inspect found a collected image"
s run1 store verify >/dev/null
echo ok
