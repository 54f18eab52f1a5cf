#!/usr/bin/env bash
# A no-change rebuild of a 5-layer spec versus its cold build (goal < 5%),
# and a no-change rebuild of a 2-layer spec (the .deb and one files: layer
# of the same 8,000 files) versus the stat floor: bench/statwalk.c, which
# only lstats the same inputs (goal < 2x), in task-clock (perf stat).
# Usage: bench/rebuild.sh [FORGE] [RUNS]
set -euo pipefail
forge=$(readlink -f "${1:-build/cli/forge}")
runs=${2:-5}
w=$(mktemp -d /tmp/forge-bench.XXXXXX)
trap 'rm -rf "$w"' EXIT
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$w/ctx"
cp "$src"/specs/examples/debs/busybox-static_*.deb "$w/ctx/bb.deb"
for l in 1 2 3 4; do
	mkdir -p "$w/ctx/l$l"
	for i in $(seq 2000); do head -c 8192 /dev/urandom >"$w/ctx/l$l/f$i"; done
done
cat >"$w/ctx/spec.yaml" <<'Y'
forge: 1
name: rebuild
layers:
  - deb: bb.deb
  - files: [{src: l1/, dest: /l1/}]
  - files: [{src: l2/, dest: /l2/}]
  - files: [{src: l3/, dest: /l3/}]
  - files: [{src: l4/, dest: /l4/}]
Y
cat >"$w/ctx/two.yaml" <<'Y'
forge: 1
name: rebuild2
layers:
  - deb: bb.deb
  - files: [{src: l1/, dest: /l1/}, {src: l2/, dest: /l2/}, {src: l3/, dest: /l3/}, {src: l4/, dest: /l4/}]
Y
cc -O2 -o "$w/statwalk" "$src/bench/statwalk.c"
now() { date +%s.%N; }
cold=(); warm=()
for r in $(seq "$runs"); do
	rm -rf "$w/store"
	a=$(now); "$forge" --store "$w/store" build -q "$w/ctx/spec.yaml" >/dev/null; b=$(now)
	cold+=("$(echo "$b - $a" | bc)")
	a=$(now); "$forge" --store "$w/store" build -q "$w/ctx/spec.yaml" >/dev/null; b=$(now)
	warm+=("$(echo "$b - $a" | bc)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mc=$(median "${cold[@]}"); mw=$(median "${warm[@]}")
# task-clock in ms of one run of "$@"
tclock() { perf stat -x, -e task-clock -o "$w/perf" "$@" >/dev/null && awk -F, '/task-clock/ {print $1}' "$w/perf"; }
"$forge" --store "$w/store" build -q "$w/ctx/two.yaml" >/dev/null
"$forge" --store "$w/store" build -q "$w/ctx/two.yaml" >/dev/null
two=(); floor=()
for r in $(seq $((runs * 4))); do
	two+=("$(tclock "$forge" --store "$w/store" build -q "$w/ctx/two.yaml")")
	floor+=("$(tclock "$w/statwalk" "$w/ctx/bb.deb" "$w/ctx/l1" "$w/ctx/l2" "$w/ctx/l3" "$w/ctx/l4")")
done
mt=$(median "${two[@]}"); mf=$(median "${floor[@]}")
echo "cold build (5 layers, 8000 files, 64 MB): median ${mc}s"
echo "no-change rebuild:                       median ${mw}s"
echo "ratio rebuild/cold: $(echo "scale=3; $mw / $mc" | bc)"
echo "2-layer no-change rebuild: median task-clock ${mt} ms"
echo "stat floor (statwalk):     median task-clock ${mf} ms"
echo "ratio rebuild/stat floor: $(echo "scale=2; $mt / $mf" | bc)"
