#!/usr/bin/env bash
# The README's main job on the bundled example: build, list, inspect, export,
# rebuild from cache, --check, run as a container.
source "$(dirname "$0")/lib.sh"
need_root

spec=$FORGE_SRC/specs/examples/hello.yaml
[ "$(f check "$spec")" = "$spec: ok" ] || fail "forge check"
digest=$(f build -q "$spec")
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "build -q printed '$digest'"

f images | grep -E '^hello +latest ' || fail "forge images lacks hello:latest"
f inspect hello:latest >"$T/inspect.json"
jq -e --arg d "$digest" '.digest == $d' "$T/inspect.json" >/dev/null || fail "inspect digest"
jq -e '.layers | length == 2' "$T/inspect.json" >/dev/null || fail "inspect: 2 layers"

# A second build is fully cached and gives the same digest.
f build "$spec" >"$T/rebuild.out" 2>&1
grep -c cached "$T/rebuild.out" | grep -qx 2 || { cat "$T/rebuild.out"; fail "rebuild not cached"; }
[ "$(f build -q "$spec")" = "$digest" ] || fail "rebuild digest differs"
f build --check "$spec" >/dev/null || fail "--check"

# Another store, another copy of the context: same digest.
cp -r "$FORGE_SRC/specs/examples" "$T/ctx"
[ "$("$FORGE" --store "$T/store2" build -q "$T/ctx/hello.yaml")" = "$digest" ] || fail "digest differs in another store/dir"

f export hello:latest --format tar -o "$T/hello.tar"
tar -tf "$T/hello.tar" >"$T/list"
grep -qx 'bin/busybox' "$T/list" || fail "exported tar lacks bin/busybox"
f export hello:latest --format oci -o "$T/oci"
skopeo inspect "oci:$T/oci:hello:latest" >/dev/null || fail "skopeo inspect"

out=$(f run hello:latest -- forge)
[ "$out" = "hello from forge, forge!" ] || fail "run printed '$out'"
out=$(f run hello:latest)
[ "$out" = "hello from forge, world!" ] || fail "run (default cmd) printed '$out'"

f store verify || fail "store verify"
echo "e2e-example: ok"
