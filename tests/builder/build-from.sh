#!/usr/bin/env bash
# from: an image by name:tag, by digest, another spec (built first), and an
# imported OCI image.
source "$FORGE_SRC/tests/integration/lib.sh"

c=$T/ctx
mkdir -p "$c"
echo base >"$c/base.txt"; echo top >"$c/top.txt"
cat >"$c/base.yaml" <<'Y'
forge: 1
name: base
tag: v1
layers:
  - files: [{src: base.txt, dest: /base.txt}]
config:
  env: {FROM_BASE: "1", PATH: /bin}
  cmd: [base-cmd]
Y
top() { printf 'forge: 1\nname: top\nfrom: %s\nlayers:\n  - files: [{src: top.txt, dest: /top.txt}]\nconfig:\n  env: {PATH: /usr/bin}\n' "$1" >"$c/top.yaml"; }

# another spec, built first
top ./base.yaml
dt=$(f build -q "$c/top.yaml")
f images >"$T/imgs"
grep -Eq '^base +v1 ' "$T/imgs" || fail "the from: spec was not built and tagged"
f inspect top >"$T/top.json"
jq -e '.layers | length == 2' "$T/top.json" >/dev/null || fail "top has base's layer plus its own"
jq -e '.config.config.Env == ["FROM_BASE=1", "PATH=/usr/bin"]' "$T/top.json" >/dev/null || { jq .config.config "$T/top.json"; fail "env merge"; }
jq -e '.config.config.Cmd == ["base-cmd"]' "$T/top.json" >/dev/null || fail "cmd inherited"
f export top --format dir -o "$T/rootfs"
[ "$(cat "$T/rootfs/base.txt")" = base ] && [ "$(cat "$T/rootfs/top.txt")" = top ] || fail "flattened rootfs"

# by name:tag and by digest: same result
top base:v1
[ "$(f build -q "$c/top.yaml")" = "$dt" ] || fail "from name:tag differs from from spec"
top "$(f inspect base:v1 | jq -r .digest)"
[ "$(f build -q "$c/top.yaml")" = "$dt" ] || fail "from digest differs"

# from an imported OCI layout
f export base:v1 --format oci -o "$T/base-oci"
"$FORGE" --store "$T/s2" import "$T/base-oci" --tag imported:v1 >/dev/null
top imported:v1
"$FORGE" --store "$T/s2" build -q "$c/top.yaml" >/dev/null || fail "from an imported image"
"$FORGE" --store "$T/s2" export top --format dir -o "$T/rootfs2"
[ "$(cat "$T/rootfs2/base.txt")" = base ] || fail "imported base layer content"
echo "build-from: ok"
