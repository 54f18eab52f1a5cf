#!/usr/bin/env bash
# forge import of archives and layouts whose members are symlinks to host
# files, FIFOs, or reached through a directory symlinked to /dev: each is
# refused quickly (exit 1, the member named), nothing of the host shows up in
# the store, and nothing is tagged.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

HOST=$T/host
mkdir -p "$HOST"
# a host file that happens to be a valid image config: "credentials"
printf '{"architecture":"amd64","os":"linux","config":{"Env":["HOSTSECRET=hunter2"]},"rootfs":{"type":"layers","diff_ids":[]}}' >"$HOST/creds.json"
printf '[{"Config":"c.json","RepoTags":["host:leak"],"Layers":[]}]' >"$HOST/manifest.json"

# try NAME DIR: tar DIR as a docker-archive/OCI tar and import it; must fail
# within 30 s with exit 1 and leave no tag.
try() {
	local name=$1 dir=$2 st=0
	tar -C "$dir" -cf "$T/$name.tar" .
	timeout -k 5 30 "$FORGE" --store "$T/s-$name" import "$T/$name.tar" --tag "$name:v1" >"$T/$name.out" 2>&1 || st=$?
	[ "$st" != 124 ] || fail "$name: import hangs"
	[ "$st" = 1 ] || { cat "$T/$name.out"; fail "$name: import exit $st, expected 1"; }
	if "$FORGE" --store "$T/s-$name" inspect "$name:v1" >"$T/$name.insp" 2>/dev/null; then
		fail "$name: image was tagged"
	fi
	! grep -rqs hunter2 "$T/s-$name/blobs" || fail "$name: a host file reached the store"
	# directories: the same layout imported in place
	if [ -n "${3:-}" ]; then
		st=0
		timeout -k 5 30 "$FORGE" --store "$T/d-$name" import "$dir" --tag "$name:v1" >"$T/$name.dout" 2>&1 || st=$?
		[ "$st" != 124 ] || fail "$name (directory): import hangs"
		[ "$st" = 1 ] || { cat "$T/$name.dout"; fail "$name (directory): exit $st, expected 1"; }
		! grep -rqs hunter2 "$T/d-$name/blobs" || fail "$name (directory): a host file reached the store"
	fi
}

# docker-archive: Config is a symlink to the host's credentials
mkdir -p "$T/da1"
ln -s "$HOST/creds.json" "$T/da1/c.json"
printf '[{"Config":"c.json","RepoTags":["x:y"],"Layers":[]}]' >"$T/da1/manifest.json"
try da-config-symlink "$T/da1" dir
# docker-archive: manifest.json itself a symlink to a host file
mkdir -p "$T/da2"
ln -s "$HOST/manifest.json" "$T/da2/manifest.json"
cp "$HOST/creds.json" "$T/da2/c.json"
try da-manifest-symlink "$T/da2" dir
# docker-archive: a layer reached through a directory symlinked to /dev
mkdir -p "$T/da3"
ln -s /dev "$T/da3/d"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%064d"]}}' 0 >"$T/da3/c.json"
printf '[{"Config":"c.json","RepoTags":["x:y"],"Layers":["d/zero"]}]' >"$T/da3/manifest.json"
try da-layer-dev-zero "$T/da3" dir
# docker-archive: the layer is a FIFO
mkdir -p "$T/da4"
mkfifo "$T/da4/layer.tar"
cp "$T/da3/c.json" "$T/da4/c.json"
printf '[{"Config":"c.json","RepoTags":["x:y"],"Layers":["layer.tar"]}]' >"$T/da4/manifest.json"
try da-layer-fifo "$T/da4" dir
# docker-archive: the config is a FIFO
mkdir -p "$T/da5"
mkfifo "$T/da5/c.json"
printf '[{"Config":"c.json","RepoTags":["x:y"],"Layers":[]}]' >"$T/da5/manifest.json"
try da-config-fifo "$T/da5" dir

# OCI layout: index.json a symlink to a host file
mkdir -p "$T/oci1/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$T/oci1/oci-layout"
printf '{"schemaVersion":2,"manifests":[]}' >"$HOST/index.json"
ln -s "$HOST/index.json" "$T/oci1/index.json"
try oci-index-symlink "$T/oci1" dir
# OCI layout: blobs/ a symlink to a host directory holding the config and manifest
mkdir -p "$T/hostblobs/sha256" "$T/oci2"
cp "$HOST/creds.json" "$T/hostblobs/sha256/$(sha256sum "$HOST/creds.json" | cut -d' ' -f1)"
cd_=$(sha256sum "$HOST/creds.json" | cut -d' ' -f1)
cs=$(stat -c %s "$HOST/creds.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[]}' "$cd_" "$cs" >"$T/m.json"
md=$(sha256sum "$T/m.json" | cut -d' ' -f1)
ms=$(stat -c %s "$T/m.json")
cp "$T/m.json" "$T/hostblobs/sha256/$md"
ln -s "$T/hostblobs" "$T/oci2/blobs"
echo '{"imageLayoutVersion":"1.0.0"}' >"$T/oci2/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s}]}' "$md" "$ms" >"$T/oci2/index.json"
try oci-blobs-symlink "$T/oci2" dir
# OCI layout: the manifest blob is a FIFO
mkdir -p "$T/oci3/blobs/sha256"
cp "$T/oci2/index.json" "$T/oci2/oci-layout" "$T/oci3/"
mkfifo "$T/oci3/blobs/sha256/$md"
try oci-blob-fifo "$T/oci3" dir
# OCI layout: the manifest blob is a symlink to /dev/zero
mkdir -p "$T/oci4/blobs/sha256"
cp "$T/oci2/index.json" "$T/oci2/oci-layout" "$T/oci4/"
ln -s /dev/zero "$T/oci4/blobs/sha256/$md"
try oci-blob-dev-zero "$T/oci4" dir

# the control: the same layout with real files imports (the attacks fail for
# the right reason)
mkdir -p "$T/ok/blobs"
cp -r "$T/hostblobs/sha256" "$T/ok/blobs/"
cp "$T/oci2/index.json" "$T/oci2/oci-layout" "$T/ok/"
"$FORGE" --store "$T/s-ok" import "$T/ok" --tag ok:v1 >/dev/null || fail "control import"
"$FORGE" --store "$T/s-ok" inspect ok:v1 | grep -q hunter2 || fail "control: config not imported"
echo OK
