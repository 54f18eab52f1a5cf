#!/usr/bin/env bash
# Layer creation: forge (files layer of a tree: tar + sha256 + zstd -3 +
# sha256 + store) versus the shell pipeline
#   tar -cf - DIR | tee >(sha256sum) | zstd -3 | sha256sum
# and versus `umoci insert` of the same tree, alternating, same run.
# Usage: bench/layer-create.sh [FORGE] [FILES] [TOTAL_MB] [RUNS]
set -euo pipefail
forge=${1:-build/cli/forge}
files=${2:-20000}
total_mb=${3:-200}
runs=${4:-5}
forge=$(readlink -f "$forge")
w=$(mktemp -d /tmp/forge-bench.XXXXXX)
trap 'rm -rf "$w"' EXIT

echo "== generating $files files, $total_mb MB (deterministic, compressible like real binaries)"
python3 - "$w/ctx/tree" "$files" "$total_mb" <<'PY'
import os, random, sys
root, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(42)
per = mb * 1024 * 1024 // n
words = [bytes(rnd.getrandbits(8) for _ in range(64)) for _ in range(256)]
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 200), "e%02d" % (i % 17))
    os.makedirs(d, exist_ok=True)
    chunks = []
    size = 0
    while size < per:
        w = words[rnd.randrange(256)] if rnd.random() < 0.7 else bytes(rnd.getrandbits(8) for _ in range(64))
        chunks.append(w); size += len(w)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(b"".join(chunks)[:per])
PY
du -sh "$w/ctx/tree"
cat >"$w/ctx/spec.yaml" <<'Y'
forge: 1
name: bench
layers:
  - files: [{src: tree/, dest: /tree/}]
Y
sync

t_forge=(); t_pipe=(); t_umoci=()
now() { date +%s.%N; }
for i in $(seq "$runs"); do
	rm -rf "$w/store"
	a=$(now); "$forge" --store "$w/store" build -q --no-cache "$w/ctx/spec.yaml" >/dev/null; b=$(now)
	t_forge+=("$(echo "$b - $a" | bc)")
	a=$(now); tar -cf - -C "$w/ctx" tree | tee >(sha256sum >/dev/null) | zstd -q -3 | sha256sum >/dev/null; b=$(now)
	t_pipe+=("$(echo "$b - $a" | bc)")
	if command -v umoci >/dev/null; then
		rm -rf "$w/oci"
		umoci init --layout "$w/oci" >/dev/null 2>&1 && umoci new --image "$w/oci:b" >/dev/null 2>&1
		a=$(now); umoci insert --image "$w/oci:b" "$w/ctx/tree" /tree >/dev/null 2>&1; b=$(now)
		t_umoci+=("$(echo "$b - $a" | bc)")
	fi
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mf=$(median "${t_forge[@]}"); mp=$(median "${t_pipe[@]}")
echo "forge build (files layer):      median ${mf}s over $runs runs"
echo "tar|tee(sha256)|zstd -3|sha256: median ${mp}s"
echo "ratio forge/pipeline: $(echo "scale=2; $mf / $mp" | bc)"
if [ ${#t_umoci[@]} -gt 0 ]; then
	mu=$(median "${t_umoci[@]}")
	echo "umoci insert:                   median ${mu}s"
	echo "ratio forge/umoci: $(echo "scale=2; $mf / $mu" | bc)"
fi
