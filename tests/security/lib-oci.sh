# Writes OCI image layouts by hand (sourced): what a hostile registry or
# archive can hand forge, with any config it likes.

# oci_layout DIR ROOTFS_DIR CONFIG_JQ: DIR becomes an OCI layout of one
# uncompressed layer (the tar of ROOTFS_DIR) whose config is the base
# config with CONFIG_JQ (a jq filter) applied.
oci_layout() {
	local dir=$1 root=$2 filter=$3 layer ldig lsize cfg cdig csize man mdig msize
	mkdir -p "$dir/blobs/sha256"
	layer=$dir/layer.tar
	tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$layer" .
	ldig=$(sha256sum "$layer" | cut -d' ' -f1)
	lsize=$(stat -c %s "$layer")
	mv "$layer" "$dir/blobs/sha256/$ldig"
	cfg=$(jq -cn --arg d "sha256:$ldig" '{architecture: "amd64", os: "linux",
		config: {Cmd: ["/bin/th", "true"]}, rootfs: {type: "layers", diff_ids: [$d]}}' | jq -c "$filter")
	printf '%s' "$cfg" >"$dir/config.json"
	cdig=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
	csize=$(stat -c %s "$dir/config.json")
	mv "$dir/config.json" "$dir/blobs/sha256/$cdig"
	man=$(jq -cn --arg c "sha256:$cdig" --argjson cs "$csize" --arg l "sha256:$ldig" --argjson ls "$lsize" \
		'{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
		  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls}]}')
	printf '%s' "$man" >"$dir/manifest.json"
	mdig=$(sha256sum "$dir/manifest.json" | cut -d' ' -f1)
	msize=$(stat -c %s "$dir/manifest.json")
	mv "$dir/manifest.json" "$dir/blobs/sha256/$mdig"
	jq -cn --arg m "sha256:$mdig" --argjson s "$msize" '{schemaVersion: 2,
		manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $s}]}' \
		>"$dir/index.json"
	echo '{"imageLayoutVersion": "1.0.0"}' >"$dir/oci-layout"
}
