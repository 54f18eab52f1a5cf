#!/usr/bin/env bash
# export dir/tar/oci; skopeo and umoci accept the OCI layout; import of an
# OCI layout (dir and tar) and of a docker-archive round-trips the layers.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

spec=$FORGE_SRC/specs/examples/hello.yaml
d=$(f build -q "$spec")
diffs=$(f inspect hello | jq -c '[.layers[].diff_id]')

# dir and tar: the flattened rootfs; tar is deterministic
f export hello --format dir -o "$T/dir"
[ -x "$T/dir/bin/busybox" ] && [ "$(cat "$T/dir/etc/greeting")" = "hello from forge" ] || fail "export dir"
f export hello --format tar -o "$T/a.tar"
f export hello --format tar -o "$T/b.tar"
cmp "$T/a.tar" "$T/b.tar" || fail "export tar is not deterministic"
expect_status 2 f export hello --format tar -o "$T/a.tar"   # refuses to overwrite
expect_status 2 f export hello --format zip -o "$T/z"
expect_status 2 f export hello --format tar -o "$T/c.tar" --compression zstd

# oci (gzip layers by default): skopeo and umoci accept it
f export hello:latest --format oci -o "$T/oci"
skopeo inspect "oci:$T/oci:hello:latest" >"$T/skopeo.json" || fail "skopeo inspect"
jq -e '.Layers | length == 2' "$T/skopeo.json" >/dev/null || fail "skopeo sees 2 layers"
jq -r '.manifests[0].digest' "$T/oci/index.json" >/dev/null
mt=$(jq -r '.manifests[0].digest' "$T/oci/index.json" | cut -d: -f2)
jq -e '[.layers[].mediaType] | all(. == "application/vnd.oci.image.layer.v1.tar+gzip")' "$T/oci/blobs/sha256/$mt" >/dev/null || fail "layers are not gzip"
(cd "$T" && umoci unpack --image oci:hello:latest bundle >/dev/null 2>&1) || (cd "$T" && umoci unpack --image "$T/oci:hello:latest" "$T/bundle") || fail "umoci unpack"
[ "$(cat "$T/bundle/rootfs/etc/greeting")" = "hello from forge" ] || fail "umoci rootfs content"
# zstd on request
f export hello --format oci --compression zstd -o "$T/ocz"
mt=$(jq -r '.manifests[0].digest' "$T/ocz/index.json" | cut -d: -f2)
jq -e '[.layers[].mediaType] | all(. == "application/vnd.oci.image.layer.v1.tar+zstd")' "$T/ocz/blobs/sha256/$mt" >/dev/null || fail "zstd layers"
# an OCI layout as a tar
f export hello --format oci -o "$T/oci.tar"
tar -tf "$T/oci.tar" >"$T/oci.list"
grep -qx 'index.json' "$T/oci.list" && grep -qx 'oci-layout' "$T/oci.list" || fail "oci tar layout"

# import: OCI dir, OCI tar, docker-archive -> the same diff_ids, runnable
for src in "$T/oci" "$T/oci.tar" "$T/ocz"; do
	s2=$T/s-$(basename "$src")
	"$FORGE" --store "$s2" import "$src" --tag back:v1 >/dev/null || fail "import $src"
	got=$("$FORGE" --store "$s2" inspect back:v1 | jq -c '[.layers[].diff_id]')
	[ "$got" = "$diffs" ] || fail "import $src: diff_ids $got vs $diffs"
	"$FORGE" --store "$s2" store verify >/dev/null || fail "verify after import $src"
done
out=$("$FORGE" --store "$T/s-oci" run back:v1 -- imported)
[ "$out" = "hello from forge, imported!" ] || fail "imported image runs: $out"
# without --tag: named after the ref name / the file
"$FORGE" --store "$T/s-name" import "$T/oci" >/dev/null
"$FORGE" --store "$T/s-name" images >"$T/names"
grep -Eq "^hello +latest " "$T/names" || { cat "$T/names"; fail "default import name"; }

# a docker-archive made by hand (docker save layout)
docker_archive hello registry.example/library/dockerish:v2 "$T/docker.tar"
"$FORGE" --store "$T/s-da" import "$T/docker.tar" >/dev/null || fail "docker-archive import"
got=$("$FORGE" --store "$T/s-da" inspect dockerish:v2 | jq -c '[.layers[].diff_id]')
[ "$got" = "$diffs" ] || fail "docker-archive diff_ids"
out=$("$FORGE" --store "$T/s-da" run dockerish:v2)
[ "$out" = "hello from forge, world!" ] || fail "docker-archive image runs: $out"

# a tampered layout is refused, and nothing is tagged
cp -r "$T/oci" "$T/bad"
l=$(jq -r '.manifests[0].digest' "$T/bad/index.json" | cut -d: -f2)
l1=$(jq -r '.layers[0].digest' "$T/bad/blobs/sha256/$l" | cut -d: -f2)
printf 'tampered' | dd of="$T/bad/blobs/sha256/$l1" bs=1 seek=100 conv=notrunc 2>/dev/null
st=0; "$FORGE" --store "$T/s-bad" import "$T/bad" --tag bad:v1 2>"$T/bad.err" || st=$?
[ "$st" = 1 ] || fail "tampered import exit $st"
grep -q "does not match its digest" "$T/bad.err" || { cat "$T/bad.err"; fail "tampered import message"; }
"$FORGE" --store "$T/s-bad" images >"$T/bad.imgs"
! grep -q '^bad ' "$T/bad.imgs" || fail "tampered image tagged"
expect_status 2 f import "$T/dir"
echo "transfer-oci: ok"
