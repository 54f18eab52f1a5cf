#!/usr/bin/env bash
# Two `forge build`s on one store at once, and builds SIGKILLed at random
# moments: the store stays consistent (verify passes, gc cleans tmp/).
source "$FORGE_SRC/tests/integration/lib.sh"

for n in a b; do
	mkdir -p "$T/$n/tree"
	for i in $(seq 300); do head -c 20000 /dev/urandom >"$T/$n/tree/f$i"; done
	printf 'forge: 1\nname: %s\nlayers:\n  - files: [{src: tree/, dest: /t/}]\n  - files: [{src: tree/f1, dest: /one}]\n' "$n" >"$T/$n/spec.yaml"
done
f build -q "$T/a/spec.yaml" >"$T/da" &
f build -q "$T/b/spec.yaml" >"$T/db" &
wait
f store verify >/dev/null || fail "verify after concurrent builds"
[ "$(f inspect a | jq -r .digest)" = "$(cat "$T/da")" ] || fail "tag a"
[ "$(f inspect b | jq -r .digest)" = "$(cat "$T/db")" ] || fail "tag b"

for round in 1 2 3 4 5 6; do
	echo "x$round" >>"$T/a/tree/f$round"
	f build --no-cache -q "$T/a/spec.yaml" >/dev/null 2>&1 &
	pid=$!
	sleep "0.0$((RANDOM % 9 + 1))"
	kill -9 $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	f store verify >"$T/v" 2>&1 || { cat "$T/v"; fail "store inconsistent after SIGKILL (round $round)"; }
done
f store gc >/dev/null
[ -z "$(ls -A "$STORE/tmp")" ] || fail "gc left tmp/ non-empty"
f store verify >/dev/null || fail "verify after gc"
d=$(f build -q "$T/a/spec.yaml")
[ "$(f inspect a | jq -r .digest)" = "$d" ] || fail "build after crashes"
echo "store-crash: ok"
