#!/usr/bin/env bash
# 500 layers, overlayfs' most: a busybox .deb at the bottom, 499 files:
# layers above it. The image runs (a file of the bottom, the second and the
# top layer read in it), a run: step on top of it builds (500 lowers and the
# step's upper in one mount), and the 501-layer result is refused with a clear
# error instead of a truncated mount.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

c=$T/ctx
mkdir -p "$c/l"
cp "$FORGE_SRC"/specs/examples/debs/busybox-static_*.deb "$c/bb.deb"
{
	printf 'forge: 1\nname: many\nlayers:\n  - deb: bb.deb\n'
	for i in $(seq 2 500); do
		echo "$i" >"$c/l/$i"
		printf '  - files: [{src: l/%s, dest: /l/%s}]\n' "$i" "$i"
	done
	printf 'config:\n  entrypoint: ["/bin/busybox", "sh", "-c"]\n'
} >"$c/many.yaml"
# bin/sh for run: steps comes with the second layer
mkdir -p "$c/l/bin" && ln -s busybox "$c/l/bin/sh"
sed -i 's|{src: l/2, dest: /l/2}|{src: l/2, dest: /l/2}, {src: l/bin/, dest: /bin/}|' "$c/many.yaml"

f build -q "$c/many.yaml" >"$T/digest" || fail "build of 500 layers"
[ "$(f inspect many | jq '.layers | length')" = 500 ] || fail "the image has not 500 layers"
out=$(f run many -- 'busybox --help >/dev/null && cat /l/2 /l/250 /l/500') ||
	fail "run of 500 layers: $out"
[ "$out" = $'2\n250\n500' ] || fail "run of 500 layers printed '$out'"

# a run: step on top: 500 lowers and the upper
cat >"$c/on-top.yaml" <<'Y'
forge: 1
name: ontop
from: many.yaml
layers:
  - run: cat /l/2 /l/500 > /both
Y
f build -q "$c/on-top.yaml" >/dev/null || fail "run: step on 500 layers"
[ "$(f inspect ontop | jq '.layers | length')" = 501 ] || fail "ontop has not 501 layers"
blob=$STORE/blobs/sha256/$(f inspect ontop | jq -r '.layers[500].digest' | cut -d: -f2)
[ "$(zstd -dc "$blob" | tar -xOf - both)" = $'2\n500' ] || fail "the run: step's layer"

# 501 lowers: more than overlayfs stacks, said so
expect_status 125 f run ontop -- true 2>"$T/err"
grep -q "501 layers: overlayfs stacks at most 500" "$T/err" || { cat "$T/err"; fail "501 layers: message"; }
echo "many-layers: ok"
