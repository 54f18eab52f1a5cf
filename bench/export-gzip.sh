#!/usr/bin/env bash
# gzip OCI export of a 50-layer image: `forge export --format oci` (layers
# recompressed from zstd to gzip, in parallel, one thread per CPU) against
# `skopeo copy --dest-compress-format gzip` doing the same conversion from
# forge's zstd export, and against forge itself pinned to one CPU.
# Usage: bench/export-gzip.sh [FORGE] [RUNS]
set -euo pipefail
forge=$(readlink -f "${1:-build/cli/forge}")
runs=${2:-3}
command -v skopeo >/dev/null || { echo "skopeo is not installed" >&2; exit 1; }
w=$(mktemp -d /tmp/forge-bench.XXXXXX)
trap 'rm -rf "$w"' EXIT
f() { "$forge" --store "$w/store" "$@"; }

# 50 layers of ~1.5 MB each, compressible like text and binaries mixed
mkdir -p "$w/ctx"
{
	echo "forge: 1"
	echo "name: fifty"
	echo "source_date_epoch: 0"
	echo "layers:"
} >"$w/ctx/spec.yaml"
for i in $(seq 50); do
	mkdir -p "$w/ctx/l$i"
	python3 - "$w/ctx/l$i/data" "$i" <<'PY'
import random, sys
r = random.Random(int(sys.argv[2]))
words = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9))) for _ in range(2000)]
with open(sys.argv[1], "wb") as f:
    for _ in range(12):
        f.write(b" ".join(r.choice(words) for _ in range(10000)))   # text
        f.write(bytes(r.getrandbits(8) for _ in range(16384)))       # incompressible
PY
	printf '  - files:\n      - {src: l%d/, dest: /l%d/}\n' "$i" "$i" >>"$w/ctx/spec.yaml"
done
f build -q "$w/ctx/spec.yaml" >/dev/null
f export fifty --format oci --compression zstd -o "$w/zstd" >/dev/null

t() { # seconds of "$@"
	local s e
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	e=$(date +%s.%N)
	echo "$e - $s" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fp=() fs=() sk=()
for r in $(seq "$runs"); do
	rm -rf "$w/g1" "$w/g2" "$w/sk"
	# drop the kv/blob results of the previous run: every run compresses
	f store gc >/dev/null 2>&1 || true
	fp+=("$(t "$forge" --store "$w/store" export fifty --format oci -o "$w/g1")")
	f store gc >/dev/null 2>&1 || true
	fs+=("$(t taskset -c 0 "$forge" --store "$w/store" export fifty --format oci -o "$w/g2")")
	sk+=("$(t skopeo copy --dest-compress-format gzip "oci:$w/zstd:fifty:latest" "oci:$w/sk:fifty:latest")")
done
cmp -s <(cd "$w/g1" && find blobs -type f | sort | xargs sha256sum) <(cd "$w/g2" && find blobs -type f | sort | xargs sha256sum) ||
	{ echo "parallel and one-CPU exports differ" >&2; exit 1; }
mp=$(printf '%s\n' "${fp[@]}" | median)
ms=$(printf '%s\n' "${fs[@]}" | median)
mk=$(printf '%s\n' "${sk[@]}" | median)
echo "CPUs: $(nproc); 50 layers, $(du -sm "$w/zstd" | cut -f1) MB as zstd; median of $runs runs"
printf 'forge export (gzip, parallel):   %6.2f s\n' "$mp"
printf 'forge export (gzip, one CPU):    %6.2f s\n' "$ms"
printf 'skopeo copy zstd -> gzip:        %6.2f s\n' "$mk"
printf 'ratio forge parallel / skopeo:   %6.2f\n' "$(echo "$mp / $mk" | bc -l)"
printf 'ratio forge parallel / one CPU:  %6.2f\n' "$(echo "$mp / $ms" | bc -l)"
