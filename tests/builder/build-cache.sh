#!/usr/bin/env bash
# The cache: a no-change rebuild builds nothing; changing one input file
# rebuilds that layer and those above only, and says why.
source "$FORGE_SRC/tests/integration/lib.sh"

c=$T/ctx
mkdir -p "$c/l1" "$c/l2" "$c/l3"
echo 1 >"$c/l1/f"; echo 2 >"$c/l2/f"; echo 3 >"$c/l2/g"; echo 4 >"$c/l3/f"
cat >"$c/spec.yaml" <<'Y'
forge: 1
name: cache
layers:
  - name: one
    files: [{src: l1/, dest: /l1/}]
  - name: two
    files: [{src: l2/, dest: /l2/}]
  - name: three
    files: [{src: l3/, dest: /l3/}]
Y
f build "$c/spec.yaml" >"$T/b1"
[ "$(grep -c ' built ' "$T/b1")" = 3 ] || { cat "$T/b1"; fail "cold build"; }
f build "$c/spec.yaml" >"$T/b2"
[ "$(grep -c ' cached ' "$T/b2")" = 3 ] || { cat "$T/b2"; fail "no-change rebuild built something"; }
d_before=$(tail -n1 "$T/b2")

# touch without change: still cached (content, not mtimes)
touch -d '2031-01-01' "$c/l2/f"
f build "$c/spec.yaml" >"$T/b3"
[ "$(grep -c ' cached ' "$T/b3")" = 3 ] || { cat "$T/b3"; fail "mtime change invalidated the cache"; }

echo changed >"$c/l2/g"
f build "$c/spec.yaml" >"$T/b4"
grep -q '\[1/3\] one .* cached' "$T/b4" || { cat "$T/b4"; fail "layer 1 rebuilt"; }
grep -q "\[2/3\] two .* built .*'l2/g' changed" "$T/b4" || { cat "$T/b4"; fail "layer 2: not rebuilt or no reason"; }
grep -q '\[3/3\] three .* built .*(a layer below changed)' "$T/b4" || { cat "$T/b4"; fail "layer 3 not rebuilt"; }
[ "$(tail -n1 "$T/b4")" != "$d_before" ] || fail "digest unchanged after an input change"

# a new file and a removed one are named
echo new >"$c/l3/h"
f build "$c/spec.yaml" >"$T/b5"
grep -q "\[3/3\] three .* built .*'l3/h' added" "$T/b5" || { cat "$T/b5"; fail "added file not named"; }
rm "$c/l3/f"
f build "$c/spec.yaml" >"$T/b6"
grep -q "'l3/f' removed" "$T/b6" || { cat "$T/b6"; fail "removed file not named"; }

# --no-cache rebuilds all, same digest
f build --no-cache "$c/spec.yaml" >"$T/b7"
[ "$(grep -c 'built .*(--no-cache)' "$T/b7")" = 3 ] || { cat "$T/b7"; fail "--no-cache"; }
[ "$(tail -n1 "$T/b7")" = "$(tail -n1 "$T/b6")" ] || fail "--no-cache changed the digest"

# a capability set on a file after a build (content and mtime unchanged) is
# noticed (the fingerprint has ctime; xattrs are read only on a miss) and
# lands in the layer
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "security.capability", bytes.fromhex("0100000200040000000000000000000000000000"))' "$c/l3/h"
f build "$c/spec.yaml" >"$T/b9"
grep -q '\[3/3\] three .* built' "$T/b9" || { cat "$T/b9"; fail "a new capability did not rebuild the layer"; }
f export cache --format tar -o "$T/caps.tar"
python3 - "$T/caps.tar" <<'PY' || fail "the capability is not in the layer"
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    m = t.getmember("l3/h")
    v = m.pax_headers.get("SCHILY.xattr.security.capability")
    sys.exit(0 if v is not None else 1)
PY
f build "$c/spec.yaml" >"$T/b10"
[ "$(grep -c ' cached ' "$T/b10")" = 3 ] || { cat "$T/b10"; fail "rebuild after the capability change built something"; }

# the layer label is not part of the key
sed -i 's/name: two/name: renamed/' "$c/spec.yaml"
f build "$c/spec.yaml" >"$T/b8"
[ "$(grep -c ' cached ' "$T/b8")" = 3 ] || { cat "$T/b8"; fail "renaming a layer invalidated the cache"; }
# Content changed, size and mtime kept (touch -d back to the old time), with
# inputs older than the racy margin so that the build kept fingerprints of
# their stat data: ctime moved, so the layer is rebuilt with the new bytes.
s=$T/same
mkdir -p "$s/d"
printf aaaa >"$s/d/x"
printf '%s\n' 'forge: 1' 'name: same' 'layers:' '  - files: [{src: d/, dest: /d/}]' >"$s/spec.yaml"
old=$(stat -c %y "$s/d/x")
sleep 3
f build "$s/spec.yaml" >"$T/s1"
grep -q '"stamp"' "$STORE/kv/builds/same%3Alatest" || fail "no fingerprint kept for inputs older than the margin"
f build "$s/spec.yaml" >"$T/s2"
grep -q ' cached ' "$T/s2" || { cat "$T/s2"; fail "same: no-change rebuild built"; }
printf bbbb >"$s/d/x"
touch -d "$old" "$s/d/x"
[ "$(stat -c %y "$s/d/x")" = "$old" ] || fail "touch -d did not restore the mtime"
f build "$s/spec.yaml" >"$T/s3"
grep -q "built .*'d/x' changed" "$T/s3" || { cat "$T/s3"; fail "same-size edit with the old mtime not rebuilt"; }
f export same --format tar -o "$T/same.tar"
[ "$(tar -xOf "$T/same.tar" d/x)" = bbbb ] || fail "the layer has the old content"
echo "build-cache: ok"
