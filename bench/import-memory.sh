#!/usr/bin/env bash
# Peak RSS of `forge import` for a docker-archive of ~100 MB and of ~1 GB:
# it must not grow with the archive's size (everything is streamed).
# Usage: bench/import-memory.sh [FORGE]
set -euo pipefail
forge=$(readlink -f "${1:-build/cli/forge}")
w=$(mktemp -d /tmp/forge-bench.XXXXXX)
trap 'rm -rf "$w"' EXIT
mkarchive() { # DIR MB
	local d=$1 mb=$2 n=$(( $2 / 100 )) layers="" ids=""
	mkdir -p "$d"
	for i in $(seq "$n"); do
		mkdir -p "$d/src$i"
		head -c $((100 << 20)) /dev/urandom >"$d/src$i/blob"
		tar -C "$d/src$i" -cf "$d/l$i.tar" blob
		rm -rf "$d/src$i"
		layers="$layers\"l$i.tar\","
		ids="$ids\"sha256:$(sha256sum "$d/l$i.tar" | cut -d' ' -f1)\","
	done
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}' "${ids%,}" >"$d/config.json"
	printf '[{"Config":"config.json","RepoTags":["big:v1"],"Layers":[%s]}]' "${layers%,}" >"$d/manifest.json"
	tar -C "$d" -cf "$d.tar" .
	rm -rf "$d"
}
for mb in 100 1000; do
	mkarchive "$w/a$mb" "$mb"
	rss=$( { /usr/bin/time -f '%M' "$forge" --store "$w/store$mb" import "$w/a$mb.tar" >/dev/null; } 2>&1 | tail -n1)
	echo "import of a $(du -m "$w/a$mb.tar" | cut -f1) MB docker-archive: peak RSS ${rss} KiB"
	rm -rf "$w/store$mb" "$w/a$mb.tar"
done
