#!/usr/bin/env bash
# Siblings of the import holes: an archive whose members climb out ('..',
# absolute names, a symlinked directory, a hardlink to a host file), an
# oversized config or manifest, image indexes that nest without end or point
# at themselves, duplicate layers. Nothing lands outside the store's tmp/,
# nothing of the host is read, errors are clean (exit 1), duplicates work.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

HOST=$T/host
mkdir -p "$HOST"
echo HOSTFILE >"$HOST/secret"
f build -q "$FORGE_SRC/specs/examples/hello.yaml" >/dev/null
f export hello --format oci --compression zstd -o "$T/oci" >/dev/null
m=$(jq -r '.manifests[0].digest' "$T/oci/index.json" | cut -d: -f2)

# 1. an OCI tar with members that climb out, plus the real layout
mktar() {
python3 - "$@" <<'PY'
import io, os, sys, tarfile
out, layout, host, links = sys.argv[1:5]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data=b"", **kw):
        ti = tarfile.TarInfo(name)
        for k, v in kw.items():
            setattr(ti, k, v)
        if ti.type == tarfile.REGTYPE:
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        else:
            t.addfile(ti)
    add("../../../../.." + host + "/dotdot", b"X")
    add(host + "/absolute", b"X")
    add("up", type=tarfile.SYMTYPE, linkname="../../../../../../../.." + host)
    add("up/through-symlink", b"X")
    add("abs", type=tarfile.SYMTYPE, linkname=host)
    add("abs/through-abs-symlink", b"X")
    if links == "links":
        add("hl", type=tarfile.LNKTYPE, linkname=host + "/secret")
        add("hl2", type=tarfile.LNKTYPE, linkname="../../../../../../.." + host + "/secret")
    for root, dirs, files in os.walk(layout):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            t.add(p, arcname=os.path.relpath(p, layout))
PY
}
# members that climb land inside the unpacked archive: the layout imports
mktar "$T/climb.tar" "$T/oci" "$HOST" nolinks
f import "$T/climb.tar" --tag climb:v1 >"$T/c.out" 2>&1 || { cat "$T/c.out"; fail "climb import"; }
[ "$(ls -A "$HOST")" = secret ] || fail "an archive member landed in the host dir: $(ls -A "$HOST")"
[ "$(f run climb:v1)" = "hello from forge, world!" ] || fail "the climbing archive's image"
# hardlinks to a host file are refused (exit 1), the host file untouched
mktar "$T/hl.tar" "$T/oci" "$HOST" links
st=0; f import "$T/hl.tar" --tag hl:v1 >"$T/h.out" 2>&1 || st=$?
[ "$st" = 1 ] && grep -q "hardlink target" "$T/h.out" || { cat "$T/h.out"; fail "hardlink import: exit $st"; }
[ "$(ls -A "$HOST")" = secret ] && [ "$(cat "$HOST/secret")" = HOSTFILE ] || fail "the host dir changed"
[ "$(stat -c %h "$HOST/secret")" = 1 ] || fail "a hardlink to the host file was made"
[ -z "$(ls -A "$STORE/tmp" 2>/dev/null)" ] || fail "import left files in the store's tmp/"

# 2. an oversized config (5 MiB) and manifest are refused, not read into memory
mkdir -p "$T/big/blobs/sha256"
cp "$T/oci/oci-layout" "$T/big/"
python3 -c 'import json; print(json.dumps({"architecture":"amd64","os":"linux","pad":"x"*(5<<20),"rootfs":{"type":"layers","diff_ids":[]}}))' >"$T/bigcfg"
c=$(sha256sum "$T/bigcfg" | cut -d' ' -f1); cp "$T/bigcfg" "$T/big/blobs/sha256/$c"
printf '{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[]}' "$c" "$(stat -c %s "$T/bigcfg")" >"$T/bm"
bm=$(sha256sum "$T/bm" | cut -d' ' -f1); cp "$T/bm" "$T/big/blobs/sha256/$bm"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":1}]}' "$bm" >"$T/big/index.json"
st=0; f import "$T/big" --tag big:v1 >"$T/b.out" 2>&1 || st=$?
[ "$st" = 1 ] && grep -q "larger than forge accepts" "$T/b.out" || { cat "$T/b.out"; fail "oversized config: exit $st"; }

# 3. indexes: one that points at itself is impossible (its digest), but a
#    chain deeper than forge follows, and an index with no amd64 image, are errors
mkdir -p "$T/deep/blobs/sha256"
cp "$T/oci/oci-layout" "$T/deep/"
cp "$T/oci/blobs/sha256/"* "$T/deep/blobs/sha256/"
prev="{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$m\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}"
for i in $(seq 8); do
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$prev" >"$T/idx"
	d=$(sha256sum "$T/idx" | cut -d' ' -f1); cp "$T/idx" "$T/deep/blobs/sha256/$d"
	prev="{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"sha256:$d\",\"size\":1}"
done
echo "{\"schemaVersion\":2,\"manifests\":[$prev]}" >"$T/deep/index.json"
st=0; f import "$T/deep" --tag deep:v1 >"$T/d.out" 2>&1 || st=$?
[ "$st" = 1 ] && grep -q "nest too deeply" "$T/d.out" || { cat "$T/d.out"; fail "deep index: exit $st"; }
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":1,"platform":{"os":"linux","architecture":"arm64"}}]}' "$m" >"$T/idx"
d=$(sha256sum "$T/idx" | cut -d' ' -f1); cp "$T/idx" "$T/deep/blobs/sha256/$d"
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"sha256:$d\",\"size\":1}]}" >"$T/deep/index.json"
st=0; f import "$T/deep" --tag arm:v1 >"$T/a.out" 2>&1 || st=$?
[ "$st" = 1 ] && grep -q "no linux/amd64" "$T/a.out" || { cat "$T/a.out"; fail "arm64-only index: exit $st"; }

# 4. the same layer twice (and a manifest naming one blob for two layers)
mkdir -p "$T/dup/blobs/sha256"
cp "$T/oci/oci-layout" "$T/dup/"
cp "$T/oci/blobs/sha256/"* "$T/dup/blobs/sha256/"
cfg=$(jq -r .config.digest "$T/oci/blobs/sha256/$m" | cut -d: -f2)
jq -c '.rootfs.diff_ids = [.rootfs.diff_ids[0], .rootfs.diff_ids[1], .rootfs.diff_ids[1]]' "$T/oci/blobs/sha256/$cfg" | tr -d '\n' >"$T/dc"
dc=$(sha256sum "$T/dc" | cut -d' ' -f1); cp "$T/dc" "$T/dup/blobs/sha256/$dc"
jq -c --arg c "sha256:$dc" --argjson s "$(stat -c %s "$T/dc")" '.config.digest = $c | .config.size = $s | .layers = [.layers[0], .layers[1], .layers[1]]' "$T/oci/blobs/sha256/$m" | tr -d '\n' >"$T/dm"
dm=$(sha256sum "$T/dm" | cut -d' ' -f1); cp "$T/dm" "$T/dup/blobs/sha256/$dm"
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$dm\",\"size\":$(stat -c %s "$T/dm")}]}" >"$T/dup/index.json"
f import "$T/dup" --tag dup:v1 >/dev/null 2>"$T/dup.err" || { cat "$T/dup.err"; fail "import of duplicate layers"; }
[ "$(f run dup:v1)" = "hello from forge, world!" ] || fail "an image with a layer twice does not run"
f export dup:v1 --format oci -o "$T/dup-out" >/dev/null || fail "export of duplicate layers"
f store verify >/dev/null || fail "verify after the sibling attacks"
echo OK
