#!/usr/bin/env bash
# Names and digests across tools: forge's OCI export carries NAME:TAG in
# org.opencontainers.image.ref.name, so `podman load` names it
# localhost/NAME:TAG and `forge import` names it NAME:TAG; podman's own
# oci-archive comes back as NAME:TAG; an export re-imported keeps its
# manifest digest (zstd, and gzip once the layers are gzip); import says
# whether the tag is new or moved.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

d=$(f build -q "$FORGE_SRC/specs/examples/hello.yaml")
f tag hello hello:v7 >/dev/null 2>&1 || cp "$STORE/tags/hello/latest" "$STORE/tags/hello/v7"
f export hello --format oci -o "$T/h.tar" >/dev/null
f export hello:v7 --format oci -o "$T/h7" >/dev/null
[ "$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$T/h7/index.json")" = hello:v7 ] ||
	fail "ref name of hello:v7"
f export "$d" --format oci -o "$T/hd" >/dev/null   # by digest: a tag of the image
jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$T/hd/index.json" | grep -Eq '^hello:(latest|v7)$' ||
	fail "ref name of an export by digest"

# forge -> forge: the name, without --tag
"$FORGE" --store "$T/s1" import "$T/h.tar" >"$T/i1.out" 2>"$T/i1.err" || fail "import h.tar"
"$FORGE" --store "$T/s1" inspect hello:latest >/dev/null || { "$FORGE" --store "$T/s1" images; fail "forge import did not name it hello:latest"; }
grep -q "tagged hello:latest (new tag)" "$T/i1.err" || { cat "$T/i1.err"; fail "import does not say the tag is new"; }
"$FORGE" --store "$T/s1" import "$T/h7" >/dev/null 2>"$T/i2.err"
"$FORGE" --store "$T/s1" inspect hello:v7 >/dev/null || fail "forge import did not name it hello:v7"
"$FORGE" --store "$T/s1" import "$T/h.tar" >/dev/null 2>"$T/i3.err"
grep -q "hello:latest already pointed at this image" "$T/i3.err" || { cat "$T/i3.err"; fail "re-import message"; }
# a different image under the same tag: moved
mkdir -p "$T/ctx/hello" && cp -r "$FORGE_SRC/specs/examples/hello" "$FORGE_SRC/specs/examples/debs" "$T/ctx/"
sed 's/source_date_epoch: 1700000000/source_date_epoch: 1700000001/' "$FORGE_SRC/specs/examples/hello.yaml" >"$T/ctx/hello.yaml"
f build -q "$T/ctx/hello.yaml" >/dev/null
f export hello --format oci -o "$T/h2.tar" >/dev/null
"$FORGE" --store "$T/s1" import "$T/h2.tar" >/dev/null 2>"$T/i4.err"
grep -q "tagged hello:latest (moved from sha256:" "$T/i4.err" || { cat "$T/i4.err"; fail "import does not say the tag moved"; }

# a docker-archive with two RepoTags: both are set, and said
mkdir -p "$T/da"
n=0 layers=""
for l in $(f inspect hello:v7 | jq -r '.layers[].digest'); do
	n=$((n + 1))
	zstd -dc "$STORE/blobs/sha256/${l#sha256:}" >"$T/da/l$n.tar"
	layers="$layers\"l$n.tar\","
done
cfg=$(f inspect hello:v7 | jq -r '.manifest.config.digest')
cp "$STORE/blobs/sha256/${cfg#sha256:}" "$T/da/config.json"
echo "[{\"Config\":\"config.json\",\"RepoTags\":[\"localhost/two:a\",\"two:b\"],\"Layers\":[${layers%,}]}]" >"$T/da/manifest.json"
tar -C "$T/da" -cf "$T/two.tar" .
"$FORGE" --store "$T/s5" import "$T/two.tar" >/dev/null 2>"$T/two.err" || { cat "$T/two.err"; fail "import of two RepoTags"; }
grep -q "tagged two:a (new tag)" "$T/two.err" && grep -q "tagged two:b (new tag)" "$T/two.err" || { cat "$T/two.err"; fail "two RepoTags: messages"; }
[ "$("$FORGE" --store "$T/s5" inspect two:a | jq -r .digest)" = "$("$FORGE" --store "$T/s5" inspect two:b | jq -r .digest)" ] || fail "two RepoTags: both tags"

# digests survive round trips
d=$(f inspect hello:v7 | jq -r .digest)
f export hello:v7 --format oci --compression zstd -o "$T/z" >/dev/null
[ "$(jq -r '.manifests[0].digest' "$T/z/index.json")" = "$d" ] || fail "a zstd export changes the manifest digest"
"$FORGE" --store "$T/s2" import "$T/z" >/dev/null 2>&1
[ "$("$FORGE" --store "$T/s2" inspect hello:v7 | jq -r .digest)" = "$d" ] || fail "zstd export + import changes the digest"
g=$(jq -r '.manifests[0].digest' "$T/h7/index.json")
"$FORGE" --store "$T/s3" import "$T/h7" >/dev/null 2>&1
[ "$("$FORGE" --store "$T/s3" inspect hello:v7 | jq -r .digest)" = "$g" ] || fail "gzip export + import changes the digest"
"$FORGE" --store "$T/s3" export hello:v7 --format oci -o "$T/h7b" >/dev/null
[ "$(jq -r '.manifests[0].digest' "$T/h7b/index.json")" = "$g" ] || fail "gzip re-export changes the digest"
[ "$("$FORGE" --store "$T/s3" run hello:v7)" = "hello from forge, world!" ] || fail "the round-tripped image runs"

# gzip layers are compressed in parallel; the bytes do not depend on it
f export hello:v7 --format oci -o "$T/par" >/dev/null
taskset -c 0 "$FORGE" --store "$STORE" export hello:v7 --format oci -o "$T/seq" >/dev/null
diff -r "$T/par" "$T/seq" >/dev/null || fail "parallel and one-CPU gzip exports differ"

# podman: load names it localhost/hello:latest; its save comes back as hello:latest
if ! command -v podman >/dev/null; then
	echo "SKIP (podman part): podman is not installed" >&2
else
	P=(podman --root "$T/proot" --runroot "$T/prun" --storage-driver vfs)
	"${P[@]}" load -i "$T/h.tar" >"$T/pl.out" 2>&1 || { cat "$T/pl.out"; fail "podman load"; }
	grep -q "localhost/hello:latest" "$T/pl.out" || { cat "$T/pl.out"; fail "podman load named it otherwise"; }
	"${P[@]}" images --format '{{.Repository}}:{{.Tag}}' | grep -qx "localhost/hello:latest" || fail "podman images"
	"${P[@]}" save --format oci-archive -o "$T/pod.tar" localhost/hello:latest >/dev/null 2>&1 || fail "podman save"
	"$FORGE" --store "$T/s4" import "$T/pod.tar" >/dev/null 2>&1 || fail "forge import of podman's oci-archive"
	[ "$("$FORGE" --store "$T/s4" run hello)" = "hello from forge, world!" ] || fail "podman's archive runs as hello:latest"
	"${P[@]}" rmi -a -f >/dev/null 2>&1 || true
fi
echo OK
