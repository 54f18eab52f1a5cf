#!/usr/bin/env bash
# packages: layers against mmdebstrap, the same run, the machine's own apt
# sources (the only place forge talks to a real mirror; never in tests):
#   cold:  forge build (empty store: resolve, download, dpkg in the sandbox) of
#          python3 + ca-certificates vs mmdebstrap --variant=essential
#          --include=python3,ca-certificates of the same suite to a tarball
#   warm:  forge build --no-cache with every .deb in the store
#   memory: peak RSS of forge lock (resolving the host's suites: bookworm main)
# Usage: bench/packages.sh [FORGE] [RUNS]   (as root)
set -euo pipefail
forge=$(readlink -f "${1:-build/cli/forge}")
runs=${2:-3}
w=$(mktemp -d /tmp/forge-bench.XXXXXX)
trap 'rm -rf "$w"' EXIT
sources=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)
[ -n "$sources" ] || sources=/etc/apt/sources.list
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
mkdir -p "$w/ctx"
cat >"$w/ctx/py.yaml" <<'Y'
forge: 1
name: py
repositories: [host]
layers:
  - name: python
    packages: [python3, ca-certificates]
Y
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
/usr/bin/time -f %M -o "$w/rss" "$forge" --store "$w/store" lock "$w/ctx/py.yaml" >/dev/null
cold=(); warm=(); mm=()
for r in $(seq "$runs"); do
	rm -rf "$w/store" "$w/mm.tar"
	a=$(now); "$forge" --store "$w/store" build -q "$w/ctx/py.yaml" >/dev/null 2>&1; b=$(now)
	cold+=("$(echo "$b - $a" | bc)")
	a=$(now); "$forge" --store "$w/store" build --no-cache -q "$w/ctx/py.yaml" >/dev/null 2>&1; b=$(now)
	warm+=("$(echo "$b - $a" | bc)")
	a=$(now)
	mmdebstrap --quiet --variant=essential --include=python3,ca-certificates "$suite" "$w/mm.tar" "$sources" >/dev/null 2>&1
	b=$(now)
	mm+=("$(echo "$b - $a" | bc)")
done
mc=$(median "${cold[@]}"); mw=$(median "${warm[@]}"); mmm=$(median "${mm[@]}")
echo "forge cold build (python3 + ca-certificates, $(jq '[.packages.layers[].packages[]] | length' "$w/ctx/py.yaml.lock") packages): median ${mc}s"
echo "forge warm rebuild (--no-cache, .debs in the store):            median ${mw}s"
echo "mmdebstrap --variant=essential --include=python3,ca-certificates: median ${mmm}s"
echo "ratio forge cold / mmdebstrap: $(echo "scale=2; $mc / $mmm" | bc)"
echo "ratio forge warm / mmdebstrap: $(echo "scale=2; $mw / $mmm" | bc)"
echo "peak RSS of forge lock (resolving $suite from the host's sources): $(($(cat "$w/rss") / 1024)) MiB"
