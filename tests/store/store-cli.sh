#!/usr/bin/env bash
# forge images / inspect / rmi / store gc / store verify through the CLI.
source "$FORGE_SRC/tests/integration/lib.sh"

mkdir -p "$T/ctx"
echo one >"$T/ctx/a.txt"
cat >"$T/ctx/a.yaml" <<'Y'
forge: 1
name: one
layers:
  - files: [{src: a.txt, dest: /a.txt}]
Y
sed -e 's/name: one/name: two/' -e 's/a.txt, dest/b.txt, dest/' "$T/ctx/a.yaml" >"$T/ctx/b.yaml"
echo two >"$T/ctx/b.txt"
d1=$(f build -q "$T/ctx/a.yaml")
d2=$(f build -q "$T/ctx/b.yaml")

f images >"$T/images"
grep -Eq "^one +latest +${d1:7:12} " "$T/images" || { cat "$T/images"; fail "images: one"; }
grep -Eq "^two +latest +${d2:7:12} " "$T/images" || fail "images: two"
f inspect one | jq -e --arg d "$d1" '.digest == $d and (.layers | length) == 1 and .tags == ["one:latest"]' >/dev/null || fail inspect
expect_status 1 f inspect nosuch
expect_status 2 f inspect
f inspect "${d1:7:14}" | jq -e --arg d "$d1" '.digest == $d' >/dev/null || fail "inspect by prefix"

# rmi, then gc frees exactly the untagged image's blobs
f rmi two | grep -q "untagged two:latest" || fail rmi
expect_status 1 f rmi two
f store gc --dry-run >"$T/dry"
grep -q "would remove $d2" "$T/dry" || { cat "$T/dry"; fail "gc --dry-run lists the manifest"; }
[ -f "$STORE/blobs/sha256/${d2#sha256:}" ] || fail "dry run removed something"
f store gc >"$T/gc"
grep -q "freed 3 blobs" "$T/gc" || { cat "$T/gc"; fail "gc freed"; }
[ ! -e "$STORE/blobs/sha256/${d2#sha256:}" ] || fail "gc kept the untagged manifest"
f store verify | grep -q "store ok" || fail verify
# a rebuild of the kept image is still fully cached
f build "$T/ctx/a.yaml" >"$T/re"; grep -q cached "$T/re" || fail "cache lost after gc"

# corrupt a layer blob: verify names it and exits 1
layer=$(f inspect one | jq -r '.layers[0].digest')
chmod u+w "$STORE/blobs/sha256/${layer#sha256:}"
printf 'ZZZZ' | dd of="$STORE/blobs/sha256/${layer#sha256:}" bs=1 seek=20 conv=notrunc 2>/dev/null
st=0; f store verify >"$T/verify" 2>&1 || st=$?
[ "$st" -eq 1 ] || fail "verify of a corrupt store exited $st"
grep -q "BAD $layer: corrupt" "$T/verify" || { cat "$T/verify"; fail "verify names the corrupt blob"; }
expect_status 2 f store frobnicate
echo "store-cli: ok"
