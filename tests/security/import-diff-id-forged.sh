#!/usr/bin/env bash
# An image whose layer claims another image's diff_id must not replace that
# layer: import checks every diff_id against the uncompressed content (and
# stores nothing on a mismatch), unpack names an unpacked tree only by the
# hash of what it extracted, and 'forge store verify' finds an unpacked layer
# changed after the fact.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

f build -q "$FORGE_SRC/specs/examples/hello.yaml" >/dev/null
app_diff=$(f inspect hello | jq -r '.layers[1].diff_id')
[ "$(f run hello)" = "hello from forge, world!" ] || fail "control run"
rm -rf "$STORE/layers" "$STORE/kv/unpacked"   # nothing unpacked yet: the attacker goes first

# 1. import: an OCI layout whose second layer is the attacker's, with the
#    config claiming hello's app layer diff_id
f export hello --format oci -o "$T/oci"
mkdir -p "$T/evil/opt/app" "$T/evil/etc"
printf '#!/bin/sh\necho PWNED\n' >"$T/evil/opt/app/hello.sh"
echo PWNED >"$T/evil/etc/greeting"
tar -C "$T/evil" --owner=0 --group=0 -cf - opt etc | gzip -n >"$T/evil.tar.gz"
ed=$(sha256sum "$T/evil.tar.gz" | cut -d' ' -f1)
cp "$T/evil.tar.gz" "$T/oci/blobs/sha256/$ed"
m=$(jq -r '.manifests[0].digest' "$T/oci/index.json" | cut -d: -f2)
jq -c --arg d "sha256:$ed" --argjson s "$(stat -c %s "$T/evil.tar.gz")" \
	'.layers[1].digest = $d | .layers[1].size = $s' "$T/oci/blobs/sha256/$m" | tr -d '\n' >"$T/m.json"
nm=$(sha256sum "$T/m.json" | cut -d' ' -f1)
cp "$T/m.json" "$T/oci/blobs/sha256/$nm"
jq -c --arg d "sha256:$nm" --argjson s "$(stat -c %s "$T/m.json")" \
	'.manifests[0].digest = $d | .manifests[0].size = $s' "$T/oci/index.json" >"$T/i.json"
mv "$T/i.json" "$T/oci/index.json"
before=$(ls "$STORE/blobs/sha256" | sort)
st=0; f import "$T/oci" --tag evil:v1 >"$T/imp.out" 2>&1 || st=$?
[ "$st" = 1 ] || { cat "$T/imp.out"; fail "forged diff_id import: exit $st, expected 1"; }
grep -q "diff_id" "$T/imp.out" || { cat "$T/imp.out"; fail "the error does not name the diff_id"; }
[ "$(ls "$STORE/blobs/sha256" | sort)" = "$before" ] || fail "a forged import left blobs in the store"
! f inspect evil:v1 >/dev/null 2>&1 || fail "the forged image was tagged"
[ "$(f run hello)" = "hello from forge, world!" ] || fail "hello changed after the forged import"

# 2. unpack: the same forgery written straight into the store (as a pull or
#    an older forge could have left it) is refused when unpacked
rm -rf "$STORE/layers" "$STORE/kv/unpacked"
cp "$T/evil.tar.gz" "$STORE/blobs/sha256/$ed"
cp "$T/m.json" "$STORE/blobs/sha256/$nm"
chmod 0444 "$STORE/blobs/sha256/$ed" "$STORE/blobs/sha256/$nm"
mkdir -p "$STORE/tags/evil"
echo "sha256:$nm" >"$STORE/tags/evil/v2"
st=0; f run evil:v2 >"$T/run.out" 2>&1 || st=$?
[ "$st" = 125 ] || [ "$st" = 1 ] || { cat "$T/run.out"; fail "run of a forged layer: exit $st"; }
grep -q "not the diff_id" "$T/run.out" || { cat "$T/run.out"; fail "unpack error does not name the diff_id"; }
[ ! -e "$STORE/layers/${app_diff#sha256:}" ] || fail "the forged layer was unpacked under hello's diff_id"
[ "$(f run hello)" = "hello from forge, world!" ] || fail "hello changed after the forged run"
rm -rf "$STORE/tags/evil"

# 3. verify: a file changed in an unpacked layer, and a tree put there by hand
f store verify >/dev/null || fail "verify of a clean store"
echo TAMPERED >"$STORE/layers/${app_diff#sha256:}/etc/greeting"
st=0; f store verify >"$T/v.out" 2>&1 || st=$?
[ "$st" = 1 ] || { cat "$T/v.out"; fail "verify of a tampered unpacked layer: exit $st"; }
grep -q "layers/${app_diff#sha256:}.*changed" "$T/v.out" || { cat "$T/v.out"; fail "verify does not name the tampered layer"; }
rm -rf "$STORE/layers/${app_diff#sha256:}" "$STORE/kv/unpacked/${app_diff#sha256:}"
mkdir -p "$STORE/layers/${app_diff#sha256:}/etc"
echo PLANTED >"$STORE/layers/${app_diff#sha256:}/etc/greeting"
st=0; f store verify >"$T/v2.out" 2>&1 || st=$?
[ "$st" = 1 ] && grep -q "no integrity record" "$T/v2.out" || { cat "$T/v2.out"; fail "verify of an unrecorded unpacked layer"; }
# a run does not use the planted tree: it unpacks the real layer over it
[ "$(f run hello)" = "hello from forge, world!" ] || fail "a planted unpacked tree was used"
f store verify >/dev/null || fail "verify after the layer was unpacked again"
echo OK
