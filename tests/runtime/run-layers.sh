#!/bin/bash
# The overlay: layers stacked top-first, 40 layers (beyond what absolute
# lowerdir paths fit in one mount option page), whiteouts-free shadowing.
source "$(dirname "$0")/lib-run.sh" || exit 1

L=$T/layers-with-a-rather-long-directory-name-to-stress-the-option-length
mkdir -p "$L"
args=()
n=40
for i in $(seq -w 1 $n); do
	d=$L/layer-$i-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	mkdir -p "$d/layers"
	echo "$i" >"$d/layers/$i"
	echo "$i" >"$d/top"
	args+=(--rootfs "$d")
done
# the base: the test rootfs under the same parent
cp -a "$ROOTFS" "$L/base"
out=$("$FORGE" run --rootfs "$L/base" "${args[@]}" -- /bin/sh -c 'cat /top; ls /layers | wc -l')
expect_line "$out" "$n"
[ "$(tail -n1 <<<"$out" | tr -d ' ')" = "$n" ] || fail "not every layer is visible: $out"
# the lower layers are never written
"$FORGE" run --rootfs "$L/base" "${args[@]}" -- /bin/sh -c 'echo changed > /top' 
[ "$(cat "$L/layer-$n-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/top")" = "$n" ] ||
	fail "a lower layer was modified"
leftover_check
echo PASS
